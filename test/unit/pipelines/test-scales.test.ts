import { describe, expect, it } from 'vitest';
import { mergeScales, withinObjectSizes } from '../../../src/pipelines/faster-rcnn/test-scales.js';
import type { RawDetections } from '../../../src/core/postprocess.js';

function detections(rows: [number, number, number, number, number, number][], regions = 300): RawDetections {
  return {
    boxes: Float32Array.from(rows.flatMap((r) => r.slice(0, 4))),
    scores: Float32Array.from(rows.map((r) => r[4])),
    classIds: Int32Array.from(rows.map((r) => r[5])),
    regions,
    sources: Int32Array.from(rows, (_, i) => i),
  };
}

describe('withinObjectSizes', () => {
  // Boxes in the scale's input pixels, as the pipeline filters them before the one resize to original pixels.
  const d = detections([
    [0, 0, 20, 80, 0.9, 1], // size sqrt(20 * 80) = 40 input px
    [0, 0, 100, 100, 0.8, 2], // 100
    [0, 0, 10, 10, 0.7, 3], // 10
  ]);

  it("keeps sizes in [min, max) measured in the scale's input pixels", () => {
    const kept = withinObjectSizes(d, { minSize: 200, maxSize: 400, minObjectSize: 40, maxObjectSize: 100 });
    expect(Array.from(kept.scores)).toEqual([Math.fround(0.9)]);
    expect(Array.from(kept.boxes)).toEqual([0, 0, 20, 80]);
    expect(Array.from(kept.classIds)).toEqual([1]);
    expect(kept.regions).toBe(300);
  });

  it('keeps everything without bounds, and one-sided bounds work alone', () => {
    expect(withinObjectSizes(d, { minSize: 200, maxSize: 400 }).scores).toHaveLength(3);
    expect(Array.from(withinObjectSizes(d, { minSize: 200, maxSize: 400, minObjectSize: 41 }).classIds)).toEqual([2]);
    expect(Array.from(withinObjectSizes(d, { minSize: 200, maxSize: 400, maxObjectSize: 40 }).classIds)).toEqual([3]);
  });
});

describe('mergeScales', () => {
  it('NMSes the union per class, best first, keeps at most the limit, and sums the regions', () => {
    const a = detections([
      [0, 0, 10, 10, 0.6, 1],
      [50, 50, 60, 60, 0.5, 2],
    ], 100);
    const b = detections([
      [1, 0, 11, 10, 0.9, 1], // IoU 0.82 with a's first: suppresses it
      [0, 0, 10, 10, 0.4, 2], // another class at a's first box: kept
      [100, 100, 120, 120, 0.3, 1],
    ], 200);
    const merged = mergeScales([a, b], 0.5, 10);
    expect(Array.from(merged.scores)).toEqual([0.9, 0.5, 0.4, 0.3].map(Math.fround));
    expect(Array.from(merged.classIds)).toEqual([1, 2, 2, 1]);
    expect(Array.from(merged.boxes.subarray(0, 4))).toEqual([1, 0, 11, 10]);
    expect(merged.regions).toBe(300);
    // Sources index the passes' regions in pass order: b's start after a's 100.
    expect(Array.from(merged.sources)).toEqual([100, 1, 101, 102]);
    expect(mergeScales([a, b], 0.5, 2).scores).toHaveLength(2);
  });

  it('merges empty scales to nothing', () => {
    const empty = detections([], 0);
    const merged = mergeScales([empty, empty], 0.5, 100);
    expect(merged.boxes).toHaveLength(0);
    expect(merged.regions).toBe(0);
  });
});
