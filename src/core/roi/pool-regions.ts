/**
 * One RoI operation, described as data: what a pipeline pools its regions
 * with, whichever thread runs it (src/workers/roi-threads.ts splits the
 * regions over several).
 */

import type { BoxArray } from '../boxes.js';
import type { FeatureMap } from './feature-map.js';
import { multiScaleRoiAlign, type MultiScaleRoiAlignOptions } from './multi-scale-roi-align.js';
import { roiPool, type RoiPoolOptions } from './roi-pool.js';

export type RoiOp = ({ type: 'roi-align' } & MultiScaleRoiAlignOptions) | ({ type: 'roi-pool' } & RoiPoolOptions);

/**
 * @param levels the feature maps, finest first (RoI max pooling reads the first).
 * @param rois K*4 xyxy in input pixels.
 * @returns Float32Array of K x C x outputH x outputW, in RoI order.
 */
export function poolRegions(levels: readonly FeatureMap[], rois: BoxArray, op: RoiOp): Float32Array {
  if (op.type === 'roi-pool') return roiPool(levels[0]!, rois, op);
  return multiScaleRoiAlign(levels, rois, op);
}

/** Who pools a pipeline's regions: this thread (SERIAL_POOLER), or several (src/workers/roi-threads.ts). */
export interface RegionPooler {
  pool(levels: readonly FeatureMap[], rois: BoxArray, op: RoiOp): Promise<Float32Array>;
}

export const SERIAL_POOLER: RegionPooler = { pool: async (levels, rois, op) => poolRegions(levels, rois, op) };
