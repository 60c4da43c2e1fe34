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
/** Kernel radius in sigmas: 3 (7 taps at sigma 1) keeps 99.7% of the Gaussian's mass. */
const TRUNCATE = 3;
export const TEXTURE_BINS = 10;

/**
 * Per pixel, for each channel c and orientation o, the index into a region's
 * texture histogram: (c * 8 + o) * 10 + bin, at most 239 for three channels.
 * Uint8Array of H*W*C*8, pixel-major.
 */
export interface TextureBins {
  bins: Uint8Array;
  channels: number;
}

/**
 * Convolve every row of a plane with two kernels of the same length at once,
 * borders replicated.
 */
function convolveRows2(src: Float32Array, outA: Float32Array, outB: Float32Array, width: number, height: number, ka: Float64Array, kb: Float64Array): void {
  const r = (ka.length - 1) / 2;
  const len = ka.length;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      let a = 0, b = 0;
      if (x >= r && x + r < width) {
        const base = row + x + r;
        for (let k = 0; k < len; k++) {
          const v = src[base - k]!;
          a += ka[k]! * v;
          b += kb[k]! * v;
        }
      } else {
        for (let k = -r; k <= r; k++) {
          const xi = x + k;
          const v = src[row + (xi < 0 ? 0 : xi >= width ? width - 1 : xi)]!;
          a += ka[r - k]! * v;
          b += kb[r - k]! * v;
        }
      }
      outA[row + x] = a;
      outB[row + x] = b;
    }
  }
}

/** Convolve every column of a plane with a 1-D kernel, borders replicated, one output row at a time. */
function convolveColumns(src: Float32Array, dst: Float32Array, width: number, height: number, kernel: Float64Array): void {
  const r = (kernel.length - 1) / 2;
  const rows = new Int32Array(kernel.length);
  for (let y = 0; y < height; y++) {
    for (let k = -r; k <= r; k++) rows[k + r] = Math.min(height - 1, Math.max(0, y + k)) * width;
    const to = y * width;
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let k = 0; k < kernel.length; k++) acc += kernel[kernel.length - 1 - k]! * src[rows[k]! + x]!;
      dst[to + x] = acc;
    }
  }
}

/** Derivative of a Gaussian, sampled, as a convolution kernel: a rising edge responds positively. */
function gaussianDerivativeKernel(sigma: number): Float64Array {
  const g = gaussianKernel(sigma, TRUNCATE);
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
  const g = gaussianKernel(sigma, TRUNCATE);
  const dg = gaussianDerivativeKernel(sigma);
  const bins = new Uint8Array(n * channels * TEXTURE_ORIENTATIONS);
  // float32 planes: texture needs no more, and half the memory traffic is faster.
  const plane = new Float32Array(n), rowsD = new Float32Array(n), rowsG = new Float32Array(n);
  const gx = new Float32Array(n), gy = new Float32Array(n);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < n; i++) plane[i] = image.data[i * channels + c]!;
    convolveRows2(plane, rowsD, rowsG, width, height, dg, g);
    convolveColumns(rowsD, gx, width, height, g);
    convolveColumns(rowsG, gy, width, height, dg);
    // The directional derivatives along 0, 45, 90 and 135 degrees:
    // orientation 2a is the positive part of derivative a, 2a + 1 its negative part.
    const h = Math.SQRT1_2;
    let p0 = 0, n0 = 0, p1 = 0, n1 = 0, p2 = 0, n2 = 0, p3 = 0, n3 = 0;
    for (let i = 0; i < n; i++) {
      const x = gx[i]!, y = gy[i]!;
      const d1 = h * (x + y), d3 = h * (y - x);
      if (x > p0) p0 = x; else if (-x > n0) n0 = -x;
      if (d1 > p1) p1 = d1; else if (-d1 > n1) n1 = -d1;
      if (y > p2) p2 = y; else if (-y > n2) n2 = -y;
      if (d3 > p3) p3 = d3; else if (-d3 > n3) n3 = -d3;
    }
    const scale = [p0, n0, p1, n1, p2, n2, p3, n3].map((m) => (m > 0 ? TEXTURE_BINS / m : 0));
    const s0 = scale[0]!, s1 = scale[1]!, s2 = scale[2]!, s3 = scale[3]!, s4 = scale[4]!, s5 = scale[5]!, s6 = scale[6]!, s7 = scale[7]!;
    const top = TEXTURE_BINS - 1;
    const bin = (v: number, k: number) => {
      const b = Math.floor(v * k);
      return b > top ? top : b;
    };
    const g0 = c * TEXTURE_ORIENTATIONS * TEXTURE_BINS; // histogram offset of this channel's first orientation
    for (let i = 0; i < n; i++) {
      const x = gx[i]!, y = gy[i]!;
      const d1 = h * (x + y), d3 = h * (y - x);
      const o = (i * channels + c) * TEXTURE_ORIENTATIONS;
      bins[o] = g0 + (x > 0 ? bin(x, s0) : 0);
      bins[o + 1] = g0 + TEXTURE_BINS + (x < 0 ? bin(-x, s1) : 0);
      bins[o + 2] = g0 + 2 * TEXTURE_BINS + (d1 > 0 ? bin(d1, s2) : 0);
      bins[o + 3] = g0 + 3 * TEXTURE_BINS + (d1 < 0 ? bin(-d1, s3) : 0);
      bins[o + 4] = g0 + 4 * TEXTURE_BINS + (y > 0 ? bin(y, s4) : 0);
      bins[o + 5] = g0 + 5 * TEXTURE_BINS + (y < 0 ? bin(-y, s5) : 0);
      bins[o + 6] = g0 + 6 * TEXTURE_BINS + (d3 > 0 ? bin(d3, s6) : 0);
      bins[o + 7] = g0 + 7 * TEXTURE_BINS + (d3 < 0 ? bin(-d3, s7) : 0);
    }
  }
  return { bins, channels };
}
