/**
 * FPN level assignment (Lin et al. 2017, eq. 1), as torchvision's
 * `MultiScaleRoIAlign`: an RoI of w x h input pixels is pooled from level
 *
 *   k = floor(k0 + log2(sqrt(w * h) / 224) + 1e-6), clamped to [kMin, kMax],
 *
 * with k0 = 4 (canonical level) and 224 (canonical scale, the ImageNet crop):
 * a 224 x 224 RoI reads level 4 (stride 16), a 112 x 112 one level 3. The
 * 1e-6 keeps exact powers of two on the upper level despite rounding in log2.
 * Computed in float32 steps, as the reference.
 */

import { boxCount, type BoxArray } from '../boxes.js';
import { roundHalfEven } from '../rounding.js';

const f32 = Math.fround;
const EPS = f32(1e-6);

export interface LevelMapping {
  /** Level of the first pooled map (2 for a stride-4 P2). */
  kMin: number;
  /** Level of the last pooled map (5 for P5). */
  kMax: number;
  /** Default 224. */
  canonicalScale?: number;
  /** Default 4. */
  canonicalLevel?: number;
}

/**
 * Level of each RoI, as an index into the pooled maps (0 = kMin).
 * @param rois K*4 xyxy in input pixels.
 * @returns Int32Array of K values in [0, kMax - kMin].
 */
export function mapRoisToLevels(rois: BoxArray, mapping: LevelMapping): Int32Array {
  const { kMin, kMax, canonicalScale = 224, canonicalLevel = 4 } = mapping;
  const n = boxCount(rois);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const o = 4 * i;
    const area = f32(f32(rois[o + 2]! - rois[o]!) * f32(rois[o + 3]! - rois[o + 1]!));
    const s = f32(Math.sqrt(area));
    const level = Math.floor(f32(f32(canonicalLevel + f32(Math.log2(f32(s / canonicalScale)))) + EPS));
    out[i] = Math.min(Math.max(level, kMin), kMax) - kMin;
  }
  return out;
}

/**
 * The RoIs each pooled map reads, as `MultiScaleRoIAlign` assigns them: for
 * one map, all; for a pyramid (scales finest first, e.g. [1/4, ..., 1/32]),
 * by `mapRoisToLevels`. Indices in RoI order within each level.
 */
export function roisByLevel(rois: BoxArray, scales: readonly number[], mapping: Pick<LevelMapping, 'canonicalScale' | 'canonicalLevel'> = {}): number[][] {
  const n = boxCount(rois);
  if (scales.length === 1) return [Array.from({ length: n }, (_, i) => i)];
  const assigned = mapRoisToLevels(rois, { ...mapping, kMin: -Math.log2(scales[0]!), kMax: -Math.log2(scales[scales.length - 1]!) });
  const members: number[][] = scales.map(() => []);
  for (let i = 0; i < n; i++) members[assigned[i]!]!.push(i);
  return members;
}

/**
 * Scale of a feature map relative to its image, as torchvision's
 * `_infer_scale`: the ratio of heights rounded to the nearest power of two.
 * @param featureHeight rows of the feature map.
 * @param imageHeight rows of the (resized, unpadded) image.
 * @returns e.g. 0.25 for a stride-4 map.
 */
export function inferFeatureScale(featureHeight: number, imageHeight: number): number {
  return 2 ** roundHalfEven(f32(Math.log2(f32(featureHeight / imageHeight))));
}
