/**
 * One RoI operation, described as data: what a pipeline pools its regions
 * with, whichever thread runs it (src/workers/roi-threads.ts splits the
 * regions over several).
 */

import { boxCount, type BoxArray } from '../boxes.js';
import type { FeatureMap } from './feature-map.js';
import { multiScaleRoiAlignInto, type MultiScaleRoiAlignOptions } from './multi-scale-roi-align.js';
import { roiPoolInto, type RoiPoolOptions } from './roi-pool.js';

export type RoiOp = ({ type: 'roi-align' } & MultiScaleRoiAlignOptions) | ({ type: 'roi-pool' } & RoiPoolOptions);

/**
 * @param levels the feature maps, finest first (RoI max pooling reads the first).
 * @param rois K*4 xyxy in input pixels.
 * @param out where to write, RoI r at slot `first + r` (a new array by default).
 * @returns `out`: K x C x outputH x outputW, in RoI order.
 */
export function poolRegions(levels: readonly FeatureMap[], rois: BoxArray, op: RoiOp, out?: Float32Array, first = 0): Float32Array {
  const target = out ?? new Float32Array(boxCount(rois) * levels[0]!.channels * op.outputSize[0] * op.outputSize[1]);
  if (op.type === 'roi-pool') roiPoolInto(levels[0]!, rois, op, target, first);
  else multiScaleRoiAlignInto(levels, rois, op, target, first);
  return target;
}

/** Who pools a pipeline's regions: this thread (SERIAL_POOLER), or several (src/workers/roi-threads.ts). */
export interface RegionPooler {
  pool(levels: readonly FeatureMap[], rois: BoxArray, op: RoiOp): Promise<Float32Array>;
}

export const SERIAL_POOLER: RegionPooler = { pool: async (levels, rois, op) => poolRegions(levels, rois, op) };
