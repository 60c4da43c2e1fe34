import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { felzenszwalb } from '../../../../src/core/selective-search/felzenszwalb.js';
import { decodeImage } from '../../../../src/image/decode.js';
import { fixturePath, loadFixture, loadU16Fixture } from '../../../helpers/fixtures.js';

const fx = loadFixture('selective-search', 'felzenszwalb.json');

async function unitImage(name: string): Promise<{ data: Float64Array; width: number; height: number }> {
  const img = await decodeImage(readFileSync(fixturePath('images', name)));
  return { data: Float64Array.from(img.data, (v) => v / 255), width: img.width, height: img.height };
}

describe('felzenszwalb against skimage.segmentation.felzenszwalb', () => {
  for (const c of fx.cases as any[]) {
    it(`${c.image} scale ${c.scale} sigma ${c.sigma} min ${c.minSize}: the same labels, pixel for pixel`, async () => {
      const img = await unitImage(c.image);
      const seg = felzenszwalb(img.data, img.width, img.height, 3, { scale: c.scale, sigma: c.sigma, minComponentSize: c.minSize });
      const ref = loadU16Fixture('selective-search', c.labels);
      // Measured: identical on all six cases (both number regions in raster order of their first pixel).
      expect(seg.count).toBe(c.count);
      let differing = 0;
      for (let i = 0; i < ref.length; i++) if (seg.labels[i] !== ref[i]) differing++;
      expect(differing).toBe(0);
    });
  }

  it('golden: two flat halves split into two regions; a 1x1 image is one region', () => {
    const w = 8, h = 4;
    const img = new Float64Array(w * h * 3).map((_, i) => (Math.floor(i / 3) % w < 4 ? 0.1 : 0.9));
    const seg = felzenszwalb(img, w, h, 3, { scale: 10, sigma: 0, minComponentSize: 1 });
    expect(seg.count).toBe(2);
    expect(Array.from(seg.labels.subarray(0, 8))).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    expect(felzenszwalb(Float64Array.of(0.5, 0.5, 0.5), 1, 1, 3, { scale: 100, sigma: 0.8, minComponentSize: 20 }).count).toBe(1);
  });
});
