import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { topK } from '../../../src/core/topk.js';

describe('topK', () => {
  it('golden: the 3 largest of 8, ties by index', () => {
    expect(Array.from(topK([5, 9, 1, 9, 7, 3, 9, 0], 3))).toEqual([1, 3, 6]);
    expect(Array.from(topK([5, 9, 1, 9, 7, 3, 9, 0], 4))).toEqual([1, 3, 6, 4]);
  });
  it('k >= N sorts everything; k <= 0 gives nothing', () => {
    expect(Array.from(topK([1, 3, 2], 10))).toEqual([1, 2, 0]);
    expect(topK([1, 3, 2], 0).length).toBe(0);
  });
  it('property: equals the first k indices ordered by (value descending, index ascending), with many ties', () => {
    // The oracle is written out here, independent of the project's argsort.
    const oracle = (values: number[], k: number) =>
      values.map((_, i) => i).sort((a, b) => values[b]! - values[a]! || a - b).slice(0, Math.max(0, k));
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -5, max: 5 }), { maxLength: 300 }), fc.integer({ min: 0, max: 320 }), (values, k) => {
        expect(Array.from(topK(values, k))).toEqual(oracle(values, k));
      }),
      { numRuns: 500 },
    );
  });
});
