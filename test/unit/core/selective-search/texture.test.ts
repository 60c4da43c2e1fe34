import { describe, expect, it } from 'vitest';
import { TEXTURE_BINS, TEXTURE_DIRECTIONS, TEXTURE_ORIENTATIONS, textureBins } from '../../../../src/core/selective-search/texture.js';

/** A 1-channel image from a function of (x, y). */
function image(width: number, height: number, value: (x: number, y: number) => number) {
  const data = new Float64Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = value(x, y);
  return { data, width, height, channels: 1 };
}

describe('textureBins', () => {
  it('codes a rising vertical edge: its strongest response in the top bin of the right halves, flat parts in bin 0', () => {
    const width = 12, height = 5;
    const { codes } = textureBins(image(width, height, (x) => (x < 6 ? 0 : 1)));
    const at = (x: number, y: number, direction: number) => codes[(y * width + x) * TEXTURE_DIRECTIONS + direction]!;
    const first = (direction: number, negative: boolean) => (2 * direction + (negative ? 1 : 0)) * TEXTURE_BINS;
    for (const x of [5, 6]) {
      // Along x (direction 0) and 45 degrees (h (gx + gy)): positive; 135 degrees (h (gy - gx)): negative.
      expect(at(x, 2, 0)).toBe(first(0, false) + TEXTURE_BINS - 1);
      expect(at(x, 2, 1)).toBe(first(1, false) + TEXTURE_BINS - 1);
      expect(at(x, 2, 3)).toBe(first(3, true) + TEXTURE_BINS - 1);
    }
    // (Along y the derivative's taps cancel only to rounding, and each half is scaled by its own maximum, so
    // there the codes are noise.) Three pixels and more from the edge the 7-tap kernels see no step: exact
    // zeros, the positive halves' bin 0.
    for (const x of [0, 1, 2]) for (let d = 0; d < TEXTURE_DIRECTIONS; d++) expect(at(x, 2, d)).toBe(first(d, false));
  });

  it('gives every pixel a valid code in each direction, for tiny and odd sizes and three channels', () => {
    for (const [width, height, channels] of [[1, 1, 1], [2, 3, 3], [7, 1, 3], [9, 8, 1]] as const) {
      let seed = width * 31 + height;
      const data = Float64Array.from({ length: width * height * channels }, () => ((seed = (seed * 16807) % 2147483647) % 256) / 255);
      const { codes } = textureBins({ data, width, height, channels });
      expect(codes.length).toBe(width * height * channels * TEXTURE_DIRECTIONS);
      codes.forEach((code, i) => {
        const c = Math.floor(i / TEXTURE_DIRECTIONS) % channels, direction = i % TEXTURE_DIRECTIONS;
        const local = code - c * TEXTURE_ORIENTATIONS * TEXTURE_BINS - 2 * direction * TEXTURE_BINS;
        expect(local >= 0 && local < 2 * TEXTURE_BINS).toBe(true);
      });
    }
  });
});
