/**
 * RoIAlign over a feature pyramid, as torchvision's `MultiScaleRoIAlign`:
 * each RoI is pooled from the one level `mapRoisToLevels` assigns it; with a
 * single level every RoI reads that level.
 */

import { boxCount, gatherBoxes, type BoxArray } from '../boxes.js';
import type { FeatureMap } from './feature-map.js';
import { roisByLevel } from './level-mapper.js';
import { roiAlignInto, type RoiAlignOptions } from './roi-align.js';

export interface MultiScaleRoiAlignOptions extends Omit<RoiAlignOptions, 'spatialScale'> {
  /** Feature cells per input pixel of each level, e.g. [1/4, 1/8, 1/16, 1/32]. */
  scales: readonly number[];
  /** Default 224. */
  canonicalScale?: number;
  /** Default 4. */
  canonicalLevel?: number;
}

/**
 * @param levels the pooled maps, finest first, all with the same channel count.
 * @param rois K*4 xyxy in input pixels.
 * @returns Float32Array of K x C x outputH x outputW, in RoI order.
 */
export function multiScaleRoiAlign(levels: readonly FeatureMap[], rois: BoxArray, options: MultiScaleRoiAlignOptions): Float32Array {
  const out = new Float32Array(boxCount(rois) * (levels[0]?.channels ?? 0) * options.outputSize[0] * options.outputSize[1]);
  multiScaleRoiAlignInto(levels, rois, options, out);
  return out;
}

/** Multi-scale RoIAlign into `out`, RoI r's C x outputH x outputW block at slot `first + r`. */
export function multiScaleRoiAlignInto(levels: readonly FeatureMap[], rois: BoxArray, options: MultiScaleRoiAlignOptions, out: Float32Array, first = 0): void {
  const { scales, canonicalScale, canonicalLevel, ...align } = options;
  if (levels.length === 0 || levels.length !== scales.length) {
    throw new RangeError(`multi-scale RoIAlign needs one scale per level (${levels.length} levels, ${scales.length} scales)`);
  }
  const slotsOf = (members: ArrayLike<number>) => (first === 0 ? members : Int32Array.from(members, (m) => first + m));
  if (levels.length === 1) {
    roiAlignInto(levels[0]!, rois, { ...align, spatialScale: scales[0]! }, out, first === 0 ? undefined : Int32Array.from({ length: boxCount(rois) }, (_, r) => first + r));
    return;
  }
  const channels = levels[0]!.channels;
  if (levels.some((level) => level.channels !== channels)) {
    throw new RangeError(`multi-scale RoIAlign needs the same channel count on every level (${levels.map((level) => level.channels).join(', ')})`);
  }
  roisByLevel(rois, scales, { canonicalScale, canonicalLevel }).forEach((members, l) => {
    // Each level's RoIs are pooled straight into their own places in the output.
    if (members.length > 0) roiAlignInto(levels[l]!, gatherBoxes(rois, members), { ...align, spatialScale: scales[l]! }, out, slotsOf(members));
  });
}
