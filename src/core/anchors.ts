/**
 * Anchor boxes: the reference boxes an RPN scores and regresses
 * (Ren et al. 2015, section 3.1.1). Two generators, each reproducing its
 * reference to the last bit:
 *
 * - torchvision's `AnchorGenerator` (also detectron2's with offset 0): cell
 *   anchors centred on (0, 0), computed in float32 and rounded half to even;
 *   one set of sizes per feature level.
 * - py-faster-rcnn's `generate_anchors`: 9 anchors around the 16 x 16 cell
 *   (0, 0, 15, 15) with the Caffe "+1" widths and its own rounding.
 *
 * Both are tiled the same way: shifts are `arange(W) * stride` (no half-stride
 * offset), and the output is location-major, then anchor: row (y * W + x) * A + a,
 * which is the order an RPN head's [A, H, W] output takes after
 * torchvision's permute-and-flatten.
 */

import { roundHalfEven } from './rounding.js';

const f32 = Math.fround;

/**
 * Cell anchors of one level, as `AnchorGenerator.generate_anchors`.
 * @param sizes anchor sizes in input pixels (the square root of the area), e.g. [32].
 * @param aspectRatios height / width ratios, e.g. [0.5, 1, 2].
 * @returns Float32Array of A*4 xyxy, A = ratios x sizes, ratio-major
 *   (all sizes of ratio 0 first), centred on (0, 0).
 */
export function torchvisionCellAnchors(sizes: readonly number[], aspectRatios: readonly number[]): Float32Array {
  const out = new Float32Array(sizes.length * aspectRatios.length * 4);
  let o = 0;
  for (const ratio of aspectRatios) {
    const hRatio = f32(Math.sqrt(f32(ratio)));
    const wRatio = f32(1 / hRatio);
    for (const size of sizes) {
      const ws = f32(wRatio * f32(size));
      const hs = f32(hRatio * f32(size));
      out[o++] = roundHalfEven(-ws / 2);
      out[o++] = roundHalfEven(-hs / 2);
      out[o++] = roundHalfEven(ws / 2);
      out[o++] = roundHalfEven(hs / 2);
    }
  }
  return out;
}

/**
 * The original Faster R-CNN anchors, as py-faster-rcnn's `generate_anchors`.
 * @param baseSize side of the reference cell, 16 for a stride-16 conv5.
 * @param ratios height / width ratios, [0.5, 1, 2].
 * @param scales multiples of the base size, [8, 16, 32].
 * @returns Float32Array of A*4 xyxy (inclusive pixel corners, the "+1" convention),
 *   A = ratios x scales, ratio-major. With the defaults the first row is
 *   (-84, -40, 99, 55): ratio 0.5 -> w = round(sqrt(256 / 0.5)) = 23, h = round(23 * 0.5) = 12,
 *   scaled by 8 -> 184 x 96 around the centre 7.5 -> 7.5 -+ 91.5, 7.5 -+ 47.5.
 */
export function pyFasterRcnnCellAnchors(
  baseSize = 16,
  ratios: readonly number[] = [0.5, 1, 2],
  scales: readonly number[] = [8, 16, 32],
): Float32Array {
  const out = new Float32Array(ratios.length * scales.length * 4);
  const w0 = baseSize; // base anchor (0, 0, base-1, base-1): w = x2 - x1 + 1
  const ctr = 0.5 * (baseSize - 1);
  let o = 0;
  for (const ratio of ratios) {
    const ws = roundHalfEven(Math.sqrt((w0 * w0) / ratio));
    const hs = roundHalfEven(ws * ratio);
    for (const scale of scales) {
      const w = ws * scale;
      const h = hs * scale;
      out[o++] = ctr - 0.5 * (w - 1);
      out[o++] = ctr - 0.5 * (h - 1);
      out[o++] = ctr + 0.5 * (w - 1);
      out[o++] = ctr + 0.5 * (h - 1);
    }
  }
  return out;
}

/**
 * Tile cell anchors over a feature map.
 * @param cellAnchors A*4 xyxy around (0, 0).
 * @param gridHeight feature-map rows H.
 * @param gridWidth feature-map columns W.
 * @param strideY input pixels per feature row.
 * @param strideX input pixels per feature column.
 * @returns Float32Array of H*W*A*4 xyxy in input pixels, row (y * W + x) * A + a.
 */
export function gridAnchors(
  cellAnchors: Float32Array,
  gridHeight: number,
  gridWidth: number,
  strideY: number,
  strideX: number,
): Float32Array {
  const a = cellAnchors.length / 4;
  const out = new Float32Array(gridHeight * gridWidth * a * 4);
  let o = 0;
  for (let y = 0; y < gridHeight; y++) {
    const sy = y * strideY;
    for (let x = 0; x < gridWidth; x++) {
      const sx = x * strideX;
      for (let k = 0; k < 4 * a; k += 4) {
        out[o++] = sx + cellAnchors[k]!;
        out[o++] = sy + cellAnchors[k + 1]!;
        out[o++] = sx + cellAnchors[k + 2]!;
        out[o++] = sy + cellAnchors[k + 3]!;
      }
    }
  }
  return out;
}

/** Anchor settings of a model: one entry per feature level the RPN sees. */
export type AnchorSpec =
  | { generator: 'torchvision'; sizes: readonly (readonly number[])[]; aspectRatios: readonly (readonly number[])[] }
  | { generator: 'py-faster-rcnn'; baseSize: number; ratios: readonly number[]; scales: readonly number[] };

/**
 * Cell anchors for each level of a spec.
 * @returns one Float32Array of A_l*4 per level (py-faster-rcnn has one level).
 */
export function cellAnchorsFor(spec: AnchorSpec): Float32Array[] {
  if (spec.generator === 'py-faster-rcnn') return [pyFasterRcnnCellAnchors(spec.baseSize, spec.ratios, spec.scales)];
  if (spec.sizes.length !== spec.aspectRatios.length) {
    throw new RangeError(`anchor sizes (${spec.sizes.length} levels) and aspect ratios (${spec.aspectRatios.length} levels) must have one entry per level`);
  }
  return spec.sizes.map((sizes, l) => torchvisionCellAnchors(sizes, spec.aspectRatios[l]!));
}

/**
 * The size and aspect ratio of anchor `a` of a level (the order of
 * cellAnchorsFor: ratio-major, then sizes).
 * @returns size in input pixels (the square root of the area; py-faster-rcnn's: baseSize x scale), and the ratio height / width.
 */
export function anchorShape(spec: AnchorSpec, level: number, a: number): { size: number; aspectRatio: number } {
  const [sizes, ratios] = spec.generator === 'py-faster-rcnn' ? [spec.scales.map((s) => s * spec.baseSize), spec.ratios] : [spec.sizes[level]!, spec.aspectRatios[level]!];
  return { size: sizes[a % sizes.length]!, aspectRatio: ratios[Math.floor(a / sizes.length)]! };
}
