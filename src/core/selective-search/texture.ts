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
import { KernelLayout } from './kernels.js';

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
 * Quantised orientation responses of every channel, computed by the
 * textureCodes kernel (assembly/texture.ts): per channel, the plane in
 * float32 (texture needs no more, and half the memory traffic is faster),
 * gx = the derivative along rows then the Gaussian along columns, gy the
 * converse, both 7 taps with borders replicated; each direction's positive
 * and negative halves scaled by their maximum over the image to 10 bins.
 * @param image channels in [0, 1].
 */
export function textureBins(image: ChannelImage): TextureBins {
  const { width, height, channels } = image;
  const n = width * height;
  const layout = new KernelLayout();
  const data = layout.reserve(8 * image.data.length);
  const codes = layout.reserve(n * channels * TEXTURE_DIRECTIONS);
  const g = layout.reserve(8 * TAPS), dg = layout.reserve(8 * TAPS);
  const [plane, rowsD, rowsG, gx, gy] = [layout.reserve(4 * n), layout.reserve(4 * n), layout.reserve(4 * n), layout.reserve(4 * n), layout.reserve(4 * n)];
  const instance = layout.instantiate(`texture of ${width}x${height}x${channels}`);
  try {
    instance.f64(data, image.data.length).set(image.data);
    instance.f64(g, TAPS).set(gaussianKernel(SIGMA, RADIUS / SIGMA));
    instance.f64(dg, TAPS).set(gaussianDerivativeKernel());
    instance.kernels.textureCodes(data, width, height, channels, codes, g, dg, plane, rowsD, rowsG, gx, gy);
    return { codes: instance.u8(codes, n * channels * TEXTURE_DIRECTIONS).slice(), channels };
  } finally {
    instance.release();
  }
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
