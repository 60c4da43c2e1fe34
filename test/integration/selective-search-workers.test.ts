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
