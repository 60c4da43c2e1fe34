/**
 * Worker thread of the RoI threads: takes chunks of the regions until none
 * are left, pools them from feature maps in shared memory, and posts the
 * pooled features back (transferred, not copied).
 */
import { answerJobs } from './helper-threads.js';
import { poolChunks, type PooledChunks, type RoiShare } from './roi-threads.js';

answerJobs<RoiShare, PooledChunks>((share) => {
  const done: PooledChunks = { chunks: [], pooled: [] };
  poolChunks(share, (c, pooled) => {
    done.chunks.push(c);
    done.pooled.push(pooled);
  });
  return { answer: done, transfer: done.pooled.map((p) => p.buffer as ArrayBuffer) };
});
