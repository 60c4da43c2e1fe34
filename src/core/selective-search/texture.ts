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
/** The derivatives' scale, the paper's. */
const SIGMA = 1;
/** Kernel radius: 3 sigmas (7 taps) keep 99.7% of the Gaussian's mass. */
const RADIUS = 3 * SIGMA;
const TAPS = 2 * RADIUS + 1;

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
function gaussianDerivativeKernel(): Float64Array {
  // Convolution flips the kernel, so store -d/dx G(x) = x / sigma^2 G(x) reversed: (r - i) / sigma^2 G.
  return gaussianKernel(SIGMA, RADIUS / SIGMA).map((v, i) => ((RADIUS - i) / (SIGMA * SIGMA)) * v);
}

/**
 * Convolve every row of a plane with two 7-tap kernels at once, borders
 * replicated: out[x] = sum_k kernel[k] * src[x + 3 - k], k ascending
 * (descending near the borders, as first written: the sums' rounding, and so
 * the proposals, stay the same).
 */
function convolveRows2(src: Float32Array, outA: Float32Array, outB: Float32Array, width: number, height: number, ka: Float64Array, kb: Float64Array): void {
  const a0 = ka[0]!, a1 = ka[1]!, a2 = ka[2]!, a3 = ka[3]!, a4 = ka[4]!, a5 = ka[5]!, a6 = ka[6]!;
  const b0 = kb[0]!, b1 = kb[1]!, b2 = kb[2]!, b3 = kb[3]!, b4 = kb[4]!, b5 = kb[5]!, b6 = kb[6]!;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const i = row + x;
      if (x >= RADIUS && x + RADIUS < width) {
        const s0 = src[i + 3]!, s1 = src[i + 2]!, s2 = src[i + 1]!, s3 = src[i]!, s4 = src[i - 1]!, s5 = src[i - 2]!, s6 = src[i - 3]!;
        outA[i] = a0 * s0 + a1 * s1 + a2 * s2 + a3 * s3 + a4 * s4 + a5 * s5 + a6 * s6;
        outB[i] = b0 * s0 + b1 * s1 + b2 * s2 + b3 * s3 + b4 * s4 + b5 * s5 + b6 * s6;
      } else {
        let a = 0, b = 0;
        for (let k = TAPS - 1; k >= 0; k--) {
          const xi = x + RADIUS - k;
          const v = src[row + (xi < 0 ? 0 : xi >= width ? width - 1 : xi)]!;
          a += ka[k]! * v;
          b += kb[k]! * v;
        }
        outA[i] = a;
        outB[i] = b;
      }
    }
  }
}

/**
 * Convolve every column of a plane with a 7-tap kernel, borders replicated:
 * out[y] = sum_k kernel[6 - k] * src[y - 3 + k], k ascending.
 */
function convolveColumns(src: Float32Array, dst: Float32Array, width: number, height: number, kernel: Float64Array): void {
  const k0 = kernel[6]!, k1 = kernel[5]!, k2 = kernel[4]!, k3 = kernel[3]!, k4 = kernel[2]!, k5 = kernel[1]!, k6 = kernel[0]!;
  const rowAt = (y: number) => (y < 0 ? 0 : y >= height ? height - 1 : y) * width;
  for (let y = 0; y < height; y++) {
    const r0 = rowAt(y - 3), r1 = rowAt(y - 2), r2 = rowAt(y - 1), r3 = y * width, r4 = rowAt(y + 1), r5 = rowAt(y + 2), r6 = rowAt(y + 3);
    for (let x = 0; x < width; x++) {
      dst[r3 + x] = k0 * src[r0 + x]! + k1 * src[r1 + x]! + k2 * src[r2 + x]! + k3 * src[r3 + x]! + k4 * src[r4 + x]! + k5 * src[r5 + x]! + k6 * src[r6 + x]!;
    }
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

/**
 * The code of a response d along one direction: `first` is the histogram
 * index of its positive half's bin 0, `scale` holds the positive and
 * negative halves' scales at [at] and [at + 1]. Written without branches on
 * the sign, which textures flip at random.
 */
function code(d: number, first: number, scale: Float64Array, at: number): number {
  const negative = +(d < 0);
  const b = Math.floor(Math.abs(d) * scale[at + negative]!);
  return first + negative * TEXTURE_BINS + Math.min(b, TEXTURE_BINS - 1);
}

/** One channel's four codes per pixel, into codes[(i * channels + c) * 4 + a]. */
function writeCodes(gx: Float32Array, gy: Float32Array, scale: Float64Array, codes: Uint8Array, c: number, channels: number): void {
  const h = Math.SQRT1_2;
  const first = c * TEXTURE_ORIENTATIONS * TEXTURE_BINS;
  const stride = channels * TEXTURE_DIRECTIONS;
  for (let i = 0, o = c * TEXTURE_DIRECTIONS; i < gx.length; i++, o += stride) {
    const x = gx[i]!, y = gy[i]!;
    codes[o] = code(x, first, scale, 0);
    codes[o + 1] = code(h * (x + y), first + 2 * TEXTURE_BINS, scale, 2);
    codes[o + 2] = code(y, first + 4 * TEXTURE_BINS, scale, 4);
    codes[o + 3] = code(h * (y - x), first + 6 * TEXTURE_BINS, scale, 6);
  }
}

/**
 * Quantised orientation responses of every channel.
 * @param image channels in [0, 1].
 */
export function textureBins(image: ChannelImage): TextureBins {
  const { width, height, channels } = image;
  const n = width * height;
  const g = gaussianKernel(SIGMA, RADIUS / SIGMA);
  const dg = gaussianDerivativeKernel();
  const codes = new Uint8Array(n * channels * TEXTURE_DIRECTIONS);
  // float32 planes: texture needs no more, and half the memory traffic is faster.
  const plane = new Float32Array(n), rowsD = new Float32Array(n), rowsG = new Float32Array(n);
  const gx = new Float32Array(n), gy = new Float32Array(n);
  const maxima = new Float64Array(TEXTURE_ORIENTATIONS);
  const scale = new Float64Array(TEXTURE_ORIENTATIONS);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < n; i++) plane[i] = image.data[i * channels + c]!;
    convolveRows2(plane, rowsD, rowsG, width, height, dg, g);
    convolveColumns(rowsD, gx, width, height, g);
    convolveColumns(rowsG, gy, width, height, dg);
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
    counts[positive]! += inNegative;
    counts[negative]! += inPositive;
  }
}
