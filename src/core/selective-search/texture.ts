/**
 * Texture features of selective search (Uijlings et al. 2013, section 3.3):
 * Gaussian derivatives with sigma = 1 in eight orientations per colour
 * channel, each quantised into 10 bins.
 *
 * The eight orientations are the positive and negative parts of the
 * directional derivative along 0, 45, 90 and 135 degrees, d = cos(t) gx +
 * sin(t) gy (as OpenCV's ximgproc splits its four derivative images into
 * positive and negative halves). Each of the 8 x C response images is scaled
 * by its maximum over the image to [0, 1] before binning.
 */

import type { ChannelImage } from './colour-spaces.js';
import { gaussianKernel } from './gaussian.js';

export const TEXTURE_ORIENTATIONS = 8;
export const TEXTURE_BINS = 10;

/** Per pixel and channel, the bin (0..9) of each orientation: Uint8Array of H*W*C*8. */
export interface TextureBins {
  bins: Uint8Array;
  channels: number;
}

/**
 * Convolve every row of a plane with a 1-D kernel, borders replicated.
 * Interior pixels skip the border test.
 */
function convolveRows(src: Float64Array, dst: Float64Array, width: number, height: number, kernel: Float64Array): void {
  const r = (kernel.length - 1) / 2;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      let acc = 0;
      if (x >= r && x + r < width) {
        for (let k = -r; k <= r; k++) acc += kernel[r - k]! * src[row + x + k]!;
      } else {
        for (let k = -r; k <= r; k++) acc += kernel[r - k]! * src[row + Math.min(width - 1, Math.max(0, x + k))]!;
      }
      dst[row + x] = acc;
    }
  }
}

/** Convolve every column of a plane with a 1-D kernel, borders replicated. */
function convolveColumns(src: Float64Array, dst: Float64Array, width: number, height: number, kernel: Float64Array): void {
  const r = (kernel.length - 1) / 2;
  dst.fill(0);
  for (let k = -r; k <= r; k++) {
    const w = kernel[r - k]!;
    for (let y = 0; y < height; y++) {
      const from = Math.min(height - 1, Math.max(0, y + k)) * width;
      const to = y * width;
      for (let x = 0; x < width; x++) dst[to + x] = dst[to + x]! + w * src[from + x]!;
    }
  }
}

/** Derivative of a Gaussian, sampled, as a convolution kernel: a rising edge responds positively. */
function gaussianDerivativeKernel(sigma: number): Float64Array {
  const g = gaussianKernel(sigma);
  const r = (g.length - 1) / 2;
  // Convolution flips the kernel, so store -d/dx G(x) = x / sigma^2 G(x) reversed: (r - i) / sigma^2 G.
  return g.map((v, i) => ((r - i) / (sigma * sigma)) * v);
}

/**
 * Quantised orientation responses of every channel.
 * @param image channels in [0, 1].
 */
export function textureBins(image: ChannelImage, sigma = 1): TextureBins {
  const { width, height, channels } = image;
  const n = width * height;
  const g = gaussianKernel(sigma);
  const dg = gaussianDerivativeKernel(sigma);
  const bins = new Uint8Array(n * channels * TEXTURE_ORIENTATIONS);
  const plane = new Float64Array(n), tmp = new Float64Array(n), gx = new Float64Array(n), gy = new Float64Array(n);
  const max = new Float64Array(TEXTURE_ORIENTATIONS);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < n; i++) plane[i] = image.data[i * channels + c]!;
    convolveRows(plane, tmp, width, height, dg);
    convolveColumns(tmp, gx, width, height, g);
    convolveRows(plane, tmp, width, height, g);
    convolveColumns(tmp, gy, width, height, dg);
    // The directional derivatives along 0, 45, 90 and 135 degrees; orientation
    // 2a is the positive part of derivative a, 2a + 1 its negative part.
    const d = new Float64Array(4);
    const directional = (i: number) => {
      const x = gx[i]!, y = gy[i]!;
      d[0] = x;
      d[1] = Math.SQRT1_2 * (x + y);
      d[2] = y;
      d[3] = Math.SQRT1_2 * (y - x);
    };
    max.fill(0);
    for (let i = 0; i < n; i++) {
      directional(i);
      for (let a = 0; a < 4; a++) {
        const v = d[a]!;
        if (v > max[2 * a]!) max[2 * a] = v;
        else if (-v > max[2 * a + 1]!) max[2 * a + 1] = -v;
      }
    }
    for (let o = 0; o < TEXTURE_ORIENTATIONS; o++) max[o] = max[o]! > 0 ? TEXTURE_BINS / max[o]! : 0;
    const top = TEXTURE_BINS - 1;
    for (let i = 0; i < n; i++) {
      directional(i);
      const base = (i * channels + c) * TEXTURE_ORIENTATIONS;
      for (let a = 0; a < 4; a++) {
        const v = d[a]!;
        bins[base + 2 * a] = v > 0 ? Math.min(top, Math.floor(v * max[2 * a]!)) : 0;
        bins[base + 2 * a + 1] = v < 0 ? Math.min(top, Math.floor(-v * max[2 * a + 1]!)) : 0;
      }
    }
  }
  return { bins, channels };
}
