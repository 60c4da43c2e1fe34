import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { boxIou } from '../../../src/core/boxes.js';
import { batchedNms, nms } from '../../../src/core/nms.js';
import { loadFixture } from '../../helpers/fixtures.js';

const fx = loadFixture('core', 'nms.json');

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
      if (boxIou(boxes.subarray(4 * i, 4 * i + 4), boxes.subarray(4 * j, 4 * j + 4))[0]! > threshold) suppressed.add(j);
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
