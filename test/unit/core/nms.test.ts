import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { boxIou } from '../../../src/core/boxes.js';
import { batchedNms, nms } from '../../../src/core/nms.js';
import { loadFixture } from '../../helpers/fixtures.js';

const fx = loadFixture('core', 'nms.json');

/** IoU as torchvision's NMS kernel computes it, in double precision. */
function iou(b: Float64Array, i: number, j: number): number {
  const w = Math.min(b[4 * i + 2]!, b[4 * j + 2]!) - Math.max(b[4 * i]!, b[4 * j]!);
  const h = Math.min(b[4 * i + 3]!, b[4 * j + 3]!) - Math.max(b[4 * i + 1]!, b[4 * j + 1]!);
  if (w <= 0 || h <= 0) return 0;
  const area = (k: number) => (b[4 * k + 2]! - b[4 * k]!) * (b[4 * k + 3]! - b[4 * k + 1]!);
  return (w * h) / (area(i) + area(j) - w * h);
}

/** The obviously-correct O(N^2) greedy NMS, straight from the definition. */
function referenceNms(boxes: Float64Array, scores: number[], threshold: number): number[] {
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, i]) => i);
  const suppressed = new Set<number>();
  const keep: number[] = [];
  for (const i of order) {
    if (suppressed.has(i)) continue;
    keep.push(i);
    for (const j of order) {
      if (j === i || suppressed.has(j)) continue;
      if (iou(boxes, i, j) > threshold) suppressed.add(j);
    }
  }
  return keep;
}

describe('nms against torchvision', () => {
  for (const c of fx.cases as any[]) {
    const n = c.scores.length;
    it(`${n} boxes at IoU ${c.threshold}: same kept indices, same order`, () => {
      const boxes = Float32Array.from(c.boxes);
      expect(Array.from(nms(boxes, c.scores, c.threshold))).toEqual(c.keep);
    });
    it(`${n} boxes at IoU ${c.threshold}, 5 classes: batched_nms keeps the same indices`, () => {
      expect(Array.from(batchedNms(Float32Array.from(c.boxes), c.scores, c.labels, c.threshold))).toEqual(c.batchedKeep);
    });
  }
});

describe('nms', () => {
  it('tie-break: of two identical boxes with equal scores the first is kept', () => {
    const boxes = Float32Array.of(0, 0, 10, 10, 0, 0, 10, 10, 50, 50, 60, 60);
    expect(Array.from(nms(boxes, [0.5, 0.5, 0.9], 0.5))).toEqual([2, 0]);
  });
  it('a box at exactly the threshold survives; nudged above it, it is suppressed', () => {
    // (0,0,10,10) and (0,0,10,y2): IoU = min(10,y2)/max(10,y2); y2 = 20 -> exactly 0.5.
    const at = Float32Array.of(0, 0, 10, 10, 0, 0, 10, 20);
    expect(Array.from(nms(at, [0.9, 0.8], 0.5))).toEqual([0, 1]);
    const above = Float32Array.of(0, 0, 10, 10, 0, 0, 10, 19.99);
    expect(Array.from(nms(above, [0.9, 0.8], 0.5))).toEqual([0]);
  });
  it('empty input gives empty output', () => {
    expect(nms(new Float32Array(0), [], 0.5).length).toBe(0);
    expect(batchedNms(new Float32Array(0), [], [], 0.5).length).toBe(0);
  });

  const scene = fc.array(
    fc.tuple(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 60 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 3 })),
    { maxLength: 60 },
  );
  it('property: equals the O(N^2) reference; kept boxes pairwise IoU <= threshold; sorted by score', () => {
    fc.assert(
      fc.property(scene, fc.double({ min: 0, max: 1, noNaN: true }), (items, thr) => {
        const boxes = Float64Array.from(items.flatMap(([x, y, w, h]) => [x, y, x + w, y + h]));
        const scores = items.map((t) => t[4]);
        const keep = Array.from(nms(boxes, scores, thr));
        expect(keep).toEqual(referenceNms(boxes, scores, thr));
        for (let a = 0; a < keep.length; a++) {
          if (a > 0) expect(scores[keep[a]!]!).toBeLessThanOrEqual(scores[keep[a - 1]!]!);
          for (let b = a + 1; b < keep.length; b++) {
            const i = keep[a]!, j = keep[b]!;
            expect(boxIou(boxes.subarray(4 * i, 4 * i + 4), boxes.subarray(4 * j, 4 * j + 4))[0]).toBeLessThanOrEqual(thr);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
  it('property: tiny and huge boxes together (grid cells and the large-box list) still equal the reference', () => {
    const mixed = fc.array(
      // Coordinates on a quarter-pixel lattice: sizes from 0 to 600 px, no subnormal artefacts.
      fc.tuple(fc.integer({ min: -200, max: 2000 }), fc.integer({ min: -200, max: 2000 }), fc.integer({ min: 0, max: 2400 }), fc.integer({ min: 0, max: 2400 }), fc.double({ min: 0, max: 1, noNaN: true })).map(([x, y, w, h, s]) => [x / 4, y / 4, w / 4, h / 4, s] as const),
      { minLength: 1, maxLength: 120 },
    );
    fc.assert(
      fc.property(mixed, fc.constantFrom(0, 0.1, 0.5, 0.7, 0.95), (items, thr) => {
        // Half the boxes tiny: the median side, and so the cell size, is small and big boxes span many cells.
        const boxes = Float64Array.from(items.flatMap(([x, y, w, h], k) => (k % 2 ? [x, y, x + w, y + h] : [x, y, x + w / 100, y + h / 100])));
        const scores = items.map((t) => t[4]);
        expect(Array.from(nms(boxes, scores, thr))).toEqual(referenceNms(boxes, scores, thr));
      }),
      { numRuns: 300 },
    );
  });
  it('a negative threshold keeps only the best box; NaN is refused; NaN boxes neither suppress nor are suppressed', () => {
    const boxes = Float32Array.of(0, 0, 10, 10, 100, 100, 110, 110, NaN, 0, 10, 10);
    expect(Array.from(nms(boxes, [0.5, 0.9, 0.7], -0.1))).toEqual([1]);
    expect(() => nms(boxes, [0.5, 0.9, 0.7], NaN)).toThrow(/NaN/);
    expect(Array.from(nms(Float32Array.of(0, 0, 10, 10, NaN, 0, 10, 10), [0.5, 0.9], 0.5))).toEqual([1, 0]);
  });
  it('property: batched NMS equals NMS run per class, merged by score', () => {
    fc.assert(
      fc.property(scene, (items) => {
        const boxes = Float64Array.from(items.flatMap(([x, y, w, h]) => [x, y, x + w, y + h]));
        const scores = items.map((t) => t[4]);
        const labels = items.map((t) => t[5]);
        const expected: number[] = [];
        for (const c of new Set(labels)) {
          const members = labels.flatMap((l, i) => (l === c ? [i] : []));
          const sub = Float64Array.from(members.flatMap((i) => Array.from(boxes.subarray(4 * i, 4 * i + 4))));
          expected.push(...Array.from(nms(sub, members.map((i) => scores[i]!), 0.5), (k) => members[k]!));
        }
        expected.sort((a, b) => scores[b]! - scores[a]! || a - b);
        expect(Array.from(batchedNms(boxes, scores, labels, 0.5))).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });
});
