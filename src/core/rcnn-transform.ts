/**
 * Preprocessing as torchvision's `GeneralizedRCNNTransform` (batch of one):
 *
 *   1. pixels -> float, scaled to [0, pixelRange], channel order as the model wants;
 *   2. normalise per channel: (x - mean) / std;
 *   3. resize by s = min(minSize / short side, maxSize / long side) to
 *      floor(h * s) x floor(w * s) (at least 1 x 1), bilinear with align_corners = false, the
 *      source step being in / out (torch's recompute_scale_factor = True);
 *   4. pad with zeros at the bottom and right to a multiple of sizeDivisible.
 *
 * Arithmetic follows torch's float32 and double steps, so the tensor agrees
 * with torch's to about one float32 ulp.
 */

import type { RgbImage } from './image.js';

const f32 = Math.fround;

export interface InputConvention {
  /** Channel order the network was trained on. */
  channelOrder: 'RGB' | 'BGR';
  /** 1: pixels scaled to [0, 1] (torchvision); 255: raw 0..255 (detectron2, Caffe). */
  pixelRange: 1 | 255;
  /** Per channel, in the network's channel order and pixel range. */
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  /** Target short side, in pixels. */
  minSize: number;
  /** Cap on the long side, in pixels. */
  maxSize: number;
  /** Pad height and width up to a multiple of this (32 for FPN backbones). */
  sizeDivisible: number;
}

/** A network input: CHW float32, padded; plus the sizes needed to map boxes back. */
export interface RcnnInput {
  /** 3 x paddedHeight x paddedWidth. */
  tensor: Float32Array;
  paddedHeight: number;
  paddedWidth: number;
  /** Size after resizing, before padding: boxes are clipped to it. */
  height: number;
  width: number;
  originalHeight: number;
  originalWidth: number;
}

/**
 * The resize factor and output size of step 3.
 * @returns scale (float32, as torch computes it) and the resized height and width.
 */
export function resizedSize(height: number, width: number, minSize: number, maxSize: number): { scale: number; height: number; width: number } {
  const short = Math.min(height, width);
  const long = Math.max(height, width);
  // torch evaluates `scalar / tensor` as reciprocal(tensor) * scalar in float32, which is
  // not the correctly rounded quotient: 320 / 400 gives 0.79999995, so 400 rows resize to 319.
  const scale = Math.min(f32(f32(1 / short) * minSize), f32(f32(1 / long) * maxSize));
  // At least one pixel a side. Where the long side is over maxSize times the short one (640 for the
  // default model: a 641 x 1 strip), floor() gives the short side 0 and torch's interpolate refuses
  // the empty output; here it stays one pixel, and padding brings it to sizeDivisible. Every size
  // torch accepts is unchanged.
  return { scale, height: Math.max(1, Math.floor(height * scale)), width: Math.max(1, Math.floor(width * scale)) };
}

/**
 * Run steps 1-4 on an RGB image. Steps 1-2 are a per-value table, applied as
 * the resize reads each source pixel: the same numbers as normalising first,
 * without a float copy of the full-resolution image (480 MB at 40 MP).
 */
export function rcnnTransform(image: RgbImage, convention: InputConvention): RcnnInput {
  const { width: w, height: h } = image;
  const size = resizedSize(h, w, convention.minSize, convention.maxSize);
  const div = convention.sizeDivisible;
  const paddedHeight = Math.ceil(size.height / div) * div;
  const paddedWidth = Math.ceil(size.width / div) * div;
  const tensor = new Float32Array(3 * paddedHeight * paddedWidth);
  const ys = linearTaps(h, size.height);
  const xs = linearTaps(w, size.width);
  const src = image.data;
  for (let ch = 0; ch < 3; ch++) {
    const lut = normalisationTable(convention, ch);
    const from = convention.channelOrder === 'RGB' ? ch : 2 - ch;
    const plane = ch * paddedHeight * paddedWidth;
    for (let y = 0; y < size.height; y++) {
      const r0 = ys.i0[y]! * w, r1 = ys.i1[y]! * w;
      const wy0 = ys.l0[y]!, wy1 = ys.l1[y]!;
      const o = plane + y * paddedWidth;
      for (let x = 0; x < size.width; x++) {
        const x0 = xs.i0[x]!, x1 = xs.i1[x]!;
        const wx0 = xs.l0[x]!, wx1 = xs.l1[x]!;
        const a = lut[src[3 * (r0 + x0) + from]!]!, b = lut[src[3 * (r0 + x1) + from]!]!;
        const c = lut[src[3 * (r1 + x0) + from]!]!, d = lut[src[3 * (r1 + x1) + from]!]!;
        tensor[o + x] = wy0 * (wx0 * a + wx1 * b) + wy1 * (wx0 * c + wx1 * d);
      }
    }
  }
  return { tensor, paddedHeight, paddedWidth, height: size.height, width: size.width, originalHeight: h, originalWidth: w };
}

/**
 * Steps 1 and 2 only, at the original size, channels-last (H x W x 3, the
 * network's channel order): the image R-CNN warps its regions from.
 */
export function normalizedPixels(image: RgbImage, convention: InputConvention): { data: Float32Array; height: number; width: number; channels: 3 } {
  const n = image.width * image.height;
  const data = new Float32Array(3 * n);
  for (let ch = 0; ch < 3; ch++) {
    const lut = normalisationTable(convention, ch);
    const from = convention.channelOrder === 'RGB' ? ch : 2 - ch;
    for (let i = 0; i < n; i++) data[3 * i + ch] = lut[image.data[3 * i + from]!]!;
  }
  return { data, height: image.height, width: image.width, channels: 3 };
}

/** Steps 1 and 2 for channel `ch` (network order): the normalised float32 value of each of the 256 pixel values. */
function normalisationTable(c: InputConvention, ch: number): Float32Array {
  const mean = f32(c.mean[ch]!);
  const std = f32(c.std[ch]!);
  const lut = new Float32Array(256);
  for (let p = 0; p < 256; p++) {
    const x = c.pixelRange === 1 ? f32(p / 255) : p;
    lut[p] = f32(f32(x - mean) / std);
  }
  return lut;
}

/**
 * Source index and weights of torch's bilinear (align_corners = false) along
 * one axis. The step in / out is rounded to float32, but the source coordinate
 * step * (d + 0.5) - 0.5 is computed in double (in ATen, an int64 index plus
 * 0.5 promotes it), and only the weight is rounded to float32: measured
 * against torch with one-hot inputs, this reproduces its weights exactly.
 */
function linearTaps(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; l0: Float32Array; l1: Float32Array } {
  const scale = f32(inSize / outSize);
  const i0 = new Int32Array(outSize), i1 = new Int32Array(outSize);
  const l0 = new Float32Array(outSize), l1 = new Float32Array(outSize);
  for (let d = 0; d < outSize; d++) {
    const src = Math.max(scale * (d + 0.5) - 0.5, 0);
    const lo = Math.min(Math.floor(src), inSize - 1);
    const lambda = Math.min(Math.max(f32(src - lo), 0), 1);
    i0[d] = lo;
    i1[d] = lo < inSize - 1 ? lo + 1 : lo;
    l1[d] = lambda;
    l0[d] = f32(1 - lambda);
  }
  return { i0, i1, l0, l1 };
}
