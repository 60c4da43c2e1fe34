/** Left-right mirror images: of a decoded image, and of a batch of network crops. */

import type { RgbImage } from './image.js';

/** The image mirrored left to right. */
export function flipHorizontal(image: RgbImage): RgbImage {
  const { width, height, data } = image;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let x = 0; x < width; x++) {
      const from = row + 3 * x, to = row + 3 * (width - 1 - x);
      out[to] = data[from]!;
      out[to + 1] = data[from + 1]!;
      out[to + 2] = data[from + 2]!;
    }
  }
  return { width, height, data: out };
}

/**
 * Planar crops ([n, channels, height, width], rows `width` long) followed by
 * the same crops mirrored left to right: [2n, channels, height, width].
 */
export function withMirroredCrops(crops: Float32Array, width: number): Float32Array {
  const out = new Float32Array(2 * crops.length);
  out.set(crops);
  for (let from = 0, to = crops.length; from < crops.length; from += width, to += width) {
    for (let x = 0; x < width; x++) out[to + width - 1 - x] = crops[from + x]!;
  }
  return out;
}
