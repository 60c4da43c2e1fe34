/**
 * Worker thread of the RoI threads: takes chunks of the regions until none
 * are left, pools them from feature maps in shared memory into the shared
 * output, and answers with the chunks it took.
 */
import { answerJobs } from './helper-threads.js';
import { poolChunks, type RoiShare } from './roi-threads.js';

answerJobs<RoiShare, number[]>((share) => ({ answer: poolChunks(share) }));
