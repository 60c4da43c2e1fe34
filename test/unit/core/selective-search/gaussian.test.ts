import { describe, expect, it } from 'vitest';
import { gaussianKernel, smoothChannels } from '../../../../src/core/selective-search/gaussian.js';

/** scipy.ndimage.gaussian_filter's sums written out per output value: rows (axis 0), then columns. */
function reference(image: Float64Array, width: number, height: number, channels: number, kernel: Float64Array): Float64Array {
  const r = (kernel.length - 1) / 2;
  const reflect = (i: number, n: number) => {
    if (n === 1) return 0;
    let j = i % (2 * n);
    if (j < 0) j += 2 * n;
    return j < n ? j : 2 * n - 1 - j;
  };
  const at = (y: number, x: number, c: number) => (y * width + x) * channels + c;
  const pass = (src: Float64Array, alongY: boolean) => {
    const dst = new Float64Array(src.length);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < channels; c++) {
          const tap = (d: number) => src[alongY ? at(reflect(y + d, height), x, c) : at(y, reflect(x + d, width), c)]!;
          let acc = tap(0) * kernel[r]!;
          for (let j = 1; j <= r; j++) acc += (tap(j) + tap(-j)) * kernel[r + j]!;
          dst[at(y, x, c)] = acc;
        }
      }
    }
    return dst;
  };
  return pass(pass(image, true), false);
}

describe('smoothChannels', () => {
  const sizes: [number, number, number][] = [[1, 1, 3], [2, 5, 3], [7, 3, 1], [31, 17, 3]];
  // Radii 1, 2, 3 (the unrolled 7-tap path, 0.8 being the segmentation's) and 6 (the general loop).
  for (const sigma of [0.3, 0.5, 0.8, 1.5]) {
    it(`equals scipy's sums bit for bit, sigma ${sigma}`, () => {
      let seed = 7;
      for (const [width, height, channels] of sizes) {
        const image = Float64Array.from({ length: width * height * channels }, () => ((seed = (seed * 16807) % 2147483647) % 256) / 255);
        const kernel = gaussianKernel(sigma);
        expect(Array.from(smoothChannels(image, width, height, channels, kernel))).toEqual(Array.from(reference(image, width, height, channels, kernel)));
      }
    });
  }
});
