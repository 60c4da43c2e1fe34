import { describe, expect, it } from 'vitest';
import { boxesOverlap, gridPatches, greyOut, occlusionGrid, pixelDrops, restoreRect, type PixelTensor } from '../../../src/core/occlusion.js';

describe('the occlusion grid', () => {
  it('steps by the stride and puts the last patch at the edge, so that the squares cover the image', () => {
    expect(occlusionGrid(100, 64, 32, 32)).toEqual({ patch: 32, stride: 32, xs: [0, 32, 64, 68], ys: [0, 32] });
    expect(occlusionGrid(96, 96, 32, 16).xs).toEqual([0, 16, 32, 48, 64]);
    expect(occlusionGrid(32, 40, 32, 8)).toMatchObject({ xs: [0], ys: [0, 8] });
    for (const [w, h, p, s] of [[355, 370, 36, 36], [512, 512, 32, 16], [101, 77, 10, 7]] as const) {
      const g = occlusionGrid(w, h, p, s);
      expect(g.xs.at(-1)! + p).toBe(w);
      expect(g.ys.at(-1)! + p).toBe(h);
      expect(g.xs.every((x, i) => i === 0 || (x > g.xs[i - 1]! && x - g.xs[i - 1]! <= s))).toBe(true);
    }
  });

  it('refuses a patch larger than the image, and sizes that are not positive integers', () => {
    expect(() => occlusionGrid(30, 100, 31, 8)).toThrow('a 31-pixel patch does not fit in a 30x100 image');
    expect(() => occlusionGrid(30, 30, 0, 8)).toThrow(RangeError);
    expect(() => occlusionGrid(30, 30, 8, 1.5)).toThrow(RangeError);
  });

  it('lists the squares row by row', () => {
    expect(Array.from(gridPatches(occlusionGrid(64, 48, 32, 32)))).toEqual([0, 0, 32, 32, 32, 0, 64, 32, 0, 16, 32, 48, 32, 16, 64, 48]);
  });
});

describe('greying and restoring', () => {
  const tensor = (layout: 'chw' | 'hwc'): PixelTensor => ({ data: Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i + 1), layout, channels: 2, height: 3, width: 4 });

  it('zeroes the pixels whose centres lie in the rectangle, in every channel, either layout', () => {
    const chw = tensor('chw');
    greyOut(chw, [1, 1, 3, 3]);
    // Channel-major: rows 1-2, columns 1-2 of both planes.
    expect(Array.from(chw.data)).toEqual([1, 2, 3, 4, 5, 0, 0, 8, 9, 0, 0, 12, 13, 14, 15, 16, 17, 0, 0, 20, 21, 0, 0, 24]);
    const hwc = tensor('hwc');
    greyOut(hwc, [0, 2, 1, 3]);
    // Pixel (x 0, y 2): its two channels at (2 * 4 + 0) * 2.
    expect(Array.from(hwc.data).map((v, i) => (v === 0 ? i : -1)).filter((i) => i >= 0)).toEqual([16, 17]);
  });

  it('clips the rectangle to the tensor, and restoreRect undoes greyOut exactly', () => {
    for (const layout of ['chw', 'hwc'] as const) {
      const t = tensor(layout);
      const original = Float32Array.from(t.data);
      greyOut(t, [-5, -5, 2.4, 1.6]);
      expect(t.data.filter((v) => v === 0).length).toBe(2 * 2 * 2);
      restoreRect(t, original, [-5, -5, 2.4, 1.6]);
      expect(Buffer.from(t.data.buffer).equals(Buffer.from(original.buffer))).toBe(true);
    }
  });

  it('tells boxes that overlap from boxes that only touch', () => {
    const boxes = Float32Array.from([0, 0, 10, 10, 10, 0, 20, 10, 9, 9, 12, 12]);
    expect(boxesOverlap(boxes, 0, boxes, 1)).toBe(false);
    expect(boxesOverlap(boxes, 0, boxes, 2)).toBe(true);
  });
});

describe('the per-pixel map', () => {
  it('averages the drops of the squares that cover each pixel, at a scale', () => {
    const g = occlusionGrid(4, 2, 2, 1); // squares at x 0, 1, 2
    const map = pixelDrops(g, [3, 6, 9], 4, 2);
    expect(map).toMatchObject({ width: 4, height: 2 });
    expect(Array.from(map.data.subarray(0, 4))).toEqual([3, 4.5, 7.5, 9]);
    const half = pixelDrops(occlusionGrid(4, 4, 2, 2), [1, 2, 3, 4], 4, 4, 0.5);
    expect(half).toMatchObject({ width: 2, height: 2 });
    expect(Array.from(half.data)).toEqual([1, 2, 3, 4]);
  });
});
