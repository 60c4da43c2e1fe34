import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { selectiveSearch } from '../../src/core/selective-search/selective-search.js';
import { decodeImage } from '../../src/image/decode.js';
import { partitionStrategies, SelectiveSearchPool } from '../../src/workers/selective-search-pool.js';
import { fixturePath } from '../helpers/fixtures.js';

const image = await decodeImage(readFileSync(fixturePath('images', 'shapes.png')));
const pools: SelectiveSearchPool[] = [];
afterAll(() => Promise.all(pools.map((p) => p.close())));

describe('selective search over worker threads', () => {
  it('partitions keep each colour space and k together and cover every strategy once', () => {
    const parts = partitionStrategies('opencv-fast', 2);
    expect(parts.flat().sort((a, b) => a - b)).toEqual([...Array(12).keys()]);
    expect(parts.map((p) => p.length)).toEqual([6, 6]);
  });

  it('gives byte-identical proposals for 1, 2 and 3 workers', async () => {
    const serial = selectiveSearch(image, { mode: 'fast', seed: 3 });
    for (const n of [1, 2, 3]) {
      const pool = new SelectiveSearchPool(n);
      pools.push(pool);
      const out = await pool.run(image, 'fast', { seed: 3 });
      expect(Buffer.from(out.buffer).equals(Buffer.from(serial.buffer))).toBe(true);
    }
  });
});

describe('a worker that dies', () => {
  it('fails the job it had and is replaced: the next job runs (it hung, the dead worker kept)', async () => {
    const pool = new SelectiveSearchPool(2);
    pools.push(pool);
    const serial = selectiveSearch(image, { mode: 'fast', seed: 1 });
    const job = pool.run(image, 'fast', { seed: 1 });
    // As an out-of-memory crash ends a worker: the thread is gone mid-job.
    await (pool as unknown as { threads: { slots: { worker: import('node:worker_threads').Worker }[] } }).threads.slots[0]!.worker.terminate();
    await expect(job).rejects.toThrow(/a selective-search worker stopped \(exit code 1\) before finishing its job/);
    const again = await pool.run(image, 'fast', { seed: 1 });
    expect(Buffer.from(again.buffer).equals(Buffer.from(serial.buffer))).toBe(true);
  });
});
