import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { boxArea, boxIou, clipBoxes, convertBoxes, flipBoxes, removeSmallBoxes } from '../../../src/core/boxes.js';
import { flipHorizontal } from '../../../src/core/flip.js';
import { loadFixture, maxAbsDiff } from '../../helpers/fixtures.js';

const fx = loadFixture('core', 'boxes.json');

describe('boxes against torchvision', () => {
  it('box_iou within 1e-6', () => {
    expect(maxAbsDiff(boxIou(Float32Array.from(fx.a), Float32Array.from(fx.b)), fx.iou)).toBeLessThanOrEqual(1e-6);
  });
  it('clip_boxes_to_image exactly', () => {
    const [w, h] = fx.clipSize;
    expect(Array.from(clipBoxes(Float32Array.from(fx.clipIn), w, h))).toEqual(fx.clipped);
  });
  it('remove_small_boxes keeps the same indices', () => {
    expect(Array.from(removeSmallBoxes(Float32Array.from(fx.smallIn), 1.5))).toEqual(fx.small);
  });
});

describe('boxes', () => {
  it('golden: area and IoU of two offset squares (10x10, overlap 5x10 -> 50 / 150)', () => {
    const a = Float32Array.of(0, 0, 10, 10), b = Float32Array.of(5, 0, 15, 10);
    expect(Array.from(boxArea(a))).toEqual([100]);
    expect(boxIou(a, b)[0]).toBeCloseTo(1 / 3, 6);
  });
  it('clips to [0, W] x [0, H], in place when asked', () => {
    const b = Float32Array.of(-5, 3, 120, 95);
    clipBoxes(b, 100, 90, b);
    expect(Array.from(b)).toEqual([0, 3, 100, 90]);
  });
  it('flips boxes left to right, and a box flipped with its image still covers the same pixels', () => {
    expect(Array.from(flipBoxes(Float32Array.of(10, 20, 50, 80, 0, 0, 100, 5), 100))).toEqual([50, 20, 90, 80, 0, 0, 100, 5]);
    // A 4 x 2 image whose pixel (1, 0) is lit: the box [1, 0, 2, 1] around it flips to [2, 0, 3, 1], lit in the mirror image.
    const data = new Uint8Array(4 * 2 * 3);
    data.set([200, 100, 50], 3 * 1);
    const mirror = flipHorizontal({ width: 4, height: 2, data });
    expect(Array.from(mirror.data.subarray(3 * 2, 3 * 3))).toEqual([200, 100, 50]);
    expect(mirror.data.reduce((s, v) => s + v, 0)).toBe(350);
    expect(Array.from(flipBoxes(Float32Array.of(1, 0, 2, 1), 4))).toEqual([2, 0, 3, 1]);
    expect(flipHorizontal(mirror).data).toEqual(data);
  });
  it('converts xyxy <-> xywh <-> cxcywh (golden)', () => {
    const xyxy = [10, 20, 50, 80];
    expect(Array.from(convertBoxes(xyxy, 'xyxy', 'xywh'))).toEqual([10, 20, 40, 60]);
    expect(Array.from(convertBoxes(xyxy, 'xyxy', 'cxcywh'))).toEqual([30, 50, 40, 60]);
    expect(Array.from(convertBoxes([30, 50, 40, 60], 'cxcywh', 'xywh'))).toEqual([10, 20, 40, 60]);
  });
  it('rejects a packed array whose length is not a multiple of 4', () => {
    expect(() => boxArea(Float32Array.of(1, 2, 3))).toThrow(/multiple of 4, got 3/);
  });

  const boxArb = fc
    .tuple(fc.double({ min: -100, max: 100, noNaN: true }), fc.double({ min: -100, max: 100, noNaN: true }), fc.double({ min: 0, max: 80, noNaN: true }), fc.double({ min: 0, max: 80, noNaN: true }))
    .map(([x, y, w, h]) => [x, y, x + w, y + h]);

  it('property: IoU is symmetric and in [0, 1]; a box has IoU 1 with itself', () => {
    fc.assert(
      fc.property(boxArb, boxArb, (p, q) => {
        const a = Float64Array.from(p), b = Float64Array.from(q);
        const ab = boxIou(a, b)[0]!, ba = boxIou(b, a)[0]!;
        expect(ab).toBe(ba);
        expect(ab).toBeGreaterThanOrEqual(0);
        expect(ab).toBeLessThanOrEqual(1);
        if (boxArea(a)[0]! > 1e-3) expect(boxIou(a, a)[0]).toBeCloseTo(1, 5);
      }),
      { numRuns: 500 },
    );
  });
  it('property: conversions round-trip', () => {
    fc.assert(
      fc.property(boxArb, fc.constantFrom('xywh', 'cxcywh') as fc.Arbitrary<'xywh' | 'cxcywh'>, (b, fmt) => {
        expect(maxAbsDiff(convertBoxes(convertBoxes(b, 'xyxy', fmt), fmt, 'xyxy'), b)).toBeLessThanOrEqual(1e-9);
      }),
    );
  });
});
