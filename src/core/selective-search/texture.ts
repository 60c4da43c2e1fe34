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
 *
 * A pixel's response along a direction is either positive or negative, so
 * one of the direction's two halves always gets bin 0: each pixel stores one
 * code per direction (the half and bin its response falls in), and the other
 * half's bin 0 is added per region (see addImplicitZeroBins), which halves
 * the histogram work.
 */

import type { ChannelImage } from './colour-spaces.js';
import { gaussianKernel } from './gaussian.js';

/** Derivative directions: 0, 45, 90 and 135 degrees. */
export const TEXTURE_DIRECTIONS = 4;
/** The positive and negative half of each direction. */
export const TEXTURE_ORIENTATIONS = 2 * TEXTURE_DIRECTIONS;
export const TEXTURE_BINS = 10;
/** Kernel radius in sigmas: 3 (7 taps at sigma 1) keeps 99.7% of the Gaussian's mass. */
const TRUNCATE = 3;

/**
 * Per pixel, for each channel c and direction a, the index into a region's
 * texture histogram of the half its response falls in:
 * (c * 8 + 2a + negative) * 10 + bin, at most 239 for three channels. A zero
 * response is coded as the positive half's bin 0.
 * Uint8Array of H*W*C*4, pixel-major.
 */
export interface TextureBins {
  codes: Uint8Array;
  channels: number;
}

/** Derivative of a Gaussian, sampled, as a convolution kernel: a rising edge responds positively. */
function gaussianDerivativeKernel(sigma: number): Float64Array {
  const g = gaussianKernel(sigma, TRUNCATE);
  const r = (g.length - 1) / 2;
  // Convolution flips the kernel, so store -d/dx G(x) = x / sigma^2 G(x) reversed: (r - i) / sigma^2 G.
  return g.map((v, i) => ((r - i) / (sigma * sigma)) * v);
}

/**
 * Convolve every row of a plane with two kernels of the same length at once,
 * borders replicated: out[x] = sum_k kernel[k] * src[x + r - k], k ascending
 * (descending near the borders, as first written: the sums' rounding, and so
 * the proposals, stay the same).
 */
function convolveRows2(src: Float32Array, outA: Float32Array, outB: Float32Array, width: number, height: number, ka: Float64Array, kb: Float64Array): void {
  const len = ka.length;
  const r = (len - 1) >> 1;
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
        for (let k = len - 1; k >= 0; k--) {
          const xi = x + r - k;
          const v = src[row + (xi < 0 ? 0 : xi >= width ? width - 1 : xi)]!;
          a += ka[k]! * v;
          b += kb[k]! * v;
        }
      }
      outA[row + x] = a;
      outB[row + x] = b;
    }
  }
}

/**
 * Convolve every column of a plane with a 1-D kernel, borders replicated:
 * out[y] = sum_k kernel[len - 1 - k] * src[y - r + k], k ascending, summed
 * a whole row at a time (in float64, then stored as float32) so that every
 * read is sequential.
 */
function convolveColumns(src: Float32Array, dst: Float32Array, width: number, height: number, kernel: Float64Array, acc: Float64Array): void {
  const len = kernel.length;
  const r = (len - 1) >> 1;
  for (let y = 0; y < height; y++) {
    acc.fill(0, 0, width);
    for (let k = 0; k < len; k++) {
      const w = kernel[len - 1 - k]!;
      const from = Math.min(height - 1, Math.max(0, y - r + k)) * width;
      for (let x = 0; x < width; x++) acc[x] += w * src[from + x]!;
    }
    const to = y * width;
    for (let x = 0; x < width; x++) dst[to + x] = acc[x]!;
  }
}

/**
 * The largest positive and negative response of each direction:
 * out[2a] and out[2a + 1] for a = 0 (x), 1 (45 degrees), 2 (y), 3 (135 degrees).
 */
function halfMaxima(gx: Float32Array, gy: Float32Array, out: Float64Array): void {
  const h = Math.SQRT1_2;
  let p0 = 0, n0 = 0, p1 = 0, n1 = 0, p2 = 0, n2 = 0, p3 = 0, n3 = 0;
  for (let i = 0; i < gx.length; i++) {
    const x = gx[i]!, y = gy[i]!;
    const d1 = h * (x + y), d3 = h * (y - x);
    if (x > p0) p0 = x; else if (-x > n0) n0 = -x;
    if (d1 > p1) p1 = d1; else if (-d1 > n1) n1 = -d1;
    if (y > p2) p2 = y; else if (-y > n2) n2 = -y;
    if (d3 > p3) p3 = d3; else if (-d3 > n3) n3 = -d3;
  }
  out[0] = p0; out[1] = n0; out[2] = p1; out[3] = n1; out[4] = p2; out[5] = n2; out[6] = p3; out[7] = n3;
}

/** The code of a response d along one direction: `first` is the histogram index of its positive half's bin 0. */
function code(d: number, first: number, positiveScale: number, negativeScale: number): number {
  const top = TEXTURE_BINS - 1;
  if (d >= 0) {
    const b = Math.floor(d * positiveScale);
    return first + (b > top ? top : b);
  }
  const b = Math.floor(-d * negativeScale);
  return first + TEXTURE_BINS + (b > top ? top : b);
}

/** One channel's four codes per pixel, into codes[(i * channels + c) * 4 + a]. */
function writeCodes(gx: Float32Array, gy: Float32Array, scale: Float64Array, codes: Uint8Array, c: number, channels: number): void {
  const h = Math.SQRT1_2;
  const first = c * TEXTURE_ORIENTATIONS * TEXTURE_BINS;
  const s0 = scale[0]!, s1 = scale[1]!, s2 = scale[2]!, s3 = scale[3]!, s4 = scale[4]!, s5 = scale[5]!, s6 = scale[6]!, s7 = scale[7]!;
  const stride = channels * TEXTURE_DIRECTIONS;
  for (let i = 0, o = c * TEXTURE_DIRECTIONS; i < gx.length; i++, o += stride) {
    const x = gx[i]!, y = gy[i]!;
    codes[o] = code(x, first, s0, s1);
    codes[o + 1] = code(h * (x + y), first + 2 * TEXTURE_BINS, s2, s3);
    codes[o + 2] = code(y, first + 4 * TEXTURE_BINS, s4, s5);
    codes[o + 3] = code(h * (y - x), first + 6 * TEXTURE_BINS, s6, s7);
  }
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
  const codes = new Uint8Array(n * channels * TEXTURE_DIRECTIONS);
  // float32 planes: texture needs no more, and half the memory traffic is faster.
  const plane = new Float32Array(n), rowsD = new Float32Array(n), rowsG = new Float32Array(n);
  const gx = new Float32Array(n), gy = new Float32Array(n);
  const acc = new Float64Array(width);
  const maxima = new Float64Array(TEXTURE_ORIENTATIONS);
  const scale = new Float64Array(TEXTURE_ORIENTATIONS);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < n; i++) plane[i] = image.data[i * channels + c]!;
    convolveRows2(plane, rowsD, rowsG, width, height, dg, g);
    convolveColumns(rowsD, gx, width, height, g, acc);
    convolveColumns(rowsG, gy, width, height, dg, acc);
    halfMaxima(gx, gy, maxima);
    for (let o = 0; o < TEXTURE_ORIENTATIONS; o++) scale[o] = maxima[o]! > 0 ? TEXTURE_BINS / maxima[o]! : 0;
    writeCodes(gx, gy, scale, codes, c, channels);
  }
  return { codes, channels };
}

/**
 * Complete a region's histogram counts from codes: each pixel counted once
 * per direction, in one half; the other half's bin 0 gets the rest of the
 * region's pixels.
 * @param counts channels * 8 * 10 counts of one region, updated in place.
 */
export function addImplicitZeroBins(counts: Uint32Array, at: number, channels: number): void {
  for (let d = 0; d < channels * TEXTURE_DIRECTIONS; d++) {
    const positive = at + 2 * d * TEXTURE_BINS, negative = positive + TEXTURE_BINS;
    let inPositive = 0, inNegative = 0;
    for (let b = 0; b < TEXTURE_BINS; b++) {
      inPositive += counts[positive + b]!;
      inNegative += counts[negative + b]!;
    }
    counts[positive] += inNegative;
    counts[negative] += inPositive;
  }
}
