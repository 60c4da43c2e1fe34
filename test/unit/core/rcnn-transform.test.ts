import { describe, expect, it } from 'vitest';
import { rcnnTransform, resizedSize } from '../../../src/core/rcnn-transform.js';
import { loadFixture, maxAbsDiff } from '../../helpers/fixtures.js';

const fx = loadFixture('core', 'transform.json');

describe("torchvision's GeneralizedRCNNTransform", () => {
  for (const c of fx.cases as any[]) {
    it(`${c.height}x${c.width} -> min ${c.minSize} / max ${c.maxSize}: same sizes, tensor within 1e-6`, () => {
      const input = rcnnTransform(
        { data: Uint8Array.from(c.pixels), width: c.width, height: c.height },
        { channelOrder: 'RGB', pixelRange: 1, mean: fx.mean, std: fx.std, minSize: c.minSize, maxSize: c.maxSize, sizeDivisible: c.sizeDivisible },
      );
      expect([input.height, input.width]).toEqual(c.resized);
      expect([input.paddedHeight, input.paddedWidth]).toEqual(c.padded);
      expect(maxAbsDiff(input.tensor, c.tensor)).toBeLessThanOrEqual(1e-6);
    });
  }

  it('golden: 400 x 600 at min 320 / max 512 resizes to 319 x 479, as torch (320 / 400 = 0.79999995 in its float32)', () => {
    expect(resizedSize(400, 600, 320, 512)).toMatchObject({ height: 319, width: 479 });
    expect(resizedSize(600, 400, 800, 1333)).toMatchObject({ height: 1200, width: 800 });
  });

  it('a side torch would resize to 0 stays 1 pixel: 1 x 641 at min 512 / max 640 (scale 640 / 641), padded to the divisor', () => {
    // floor(1 * 0.99844) = 0 rows, an empty tensor that ONNX Runtime refused (HTTP 500 before);
    // the width is torch's floor(641 * 0.99844) = floor(639.9999) = 639.
    expect(resizedSize(1, 641, 512, 640)).toMatchObject({ height: 1, width: 639 });
    expect(resizedSize(2000, 3, 512, 640)).toMatchObject({ height: 640, width: 1 });
    const t = rcnnTransform({ data: new Uint8Array(3 * 641).fill(128), width: 641, height: 1 }, { channelOrder: 'RGB', pixelRange: 1, mean: [0, 0, 0], std: [1, 1, 1], minSize: 512, maxSize: 640, sizeDivisible: 32 });
    expect([t.height, t.width, t.paddedHeight, t.paddedWidth]).toEqual([1, 639, 32, 640]);
    // The one row is the image's grey (128 / 255); the padding is zeros.
    expect(t.tensor[0]).toBeCloseTo(128 / 255, 6);
    expect(t.tensor[639]).toBe(0);
    expect(t.tensor[640]).toBe(0);
  });

  it('BGR and 0..255 conventions (detectron2, Caffe) reorder and skip the /255', () => {
    const px = { data: Uint8Array.of(10, 20, 30), width: 1, height: 1 };
    const t = rcnnTransform(px, { channelOrder: 'BGR', pixelRange: 255, mean: [1, 2, 3], std: [1, 1, 1], minSize: 1, maxSize: 1, sizeDivisible: 1 });
    expect(Array.from(t.tensor)).toEqual([30 - 1, 20 - 2, 10 - 3]);
  });
});
