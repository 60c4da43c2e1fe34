/**
 * R-CNN's region warping (Girshick et al. 2014, appendix A): each region is
 * grown about its centre so that, once resampled to the network's input
 * size, `context` pixels of image surround it on every side; anything past
 * the image border is the mean colour (zero after normalisation). The
 * resampling is bilinear with samplingRatio^2 samples averaged per output
 * pixel: torchvision's roi_align(aligned=True) on the normalised image, which
 * is what the training recipe calls.
 */

import type { BoxArray } from './boxes.js';
import type { FeatureMap } from './roi/feature-map.js';
import { roiAlign } from './roi/roi-align.js';

export interface WarpSpec {
  /** Output [height, width]. */
  size: readonly [number, number];
  /** Pixels of context around the region in the warped crop. */
  context: number;
  samplingRatio: number;
}

/** The regions grown so that the warp leaves `context` pixels around them. */
export function contextBoxes(boxes: BoxArray, warp: WarpSpec): Float32Array {
  const [oh, ow] = warp.size;
  const gx = ow / (ow - 2 * warp.context), gy = oh / (oh - 2 * warp.context);
  const out = new Float32Array(boxes.length);
  for (let i = 0; i < boxes.length; i += 4) {
    const cx = (boxes[i]! + boxes[i + 2]!) / 2, cy = (boxes[i + 1]! + boxes[i + 3]!) / 2;
    const hw = ((boxes[i + 2]! - boxes[i]!) / 2) * gx, hh = ((boxes[i + 3]! - boxes[i + 1]!) / 2) * gy;
    out[i] = cx - hw;
    out[i + 1] = cy - hh;
    out[i + 2] = cx + hw;
    out[i + 3] = cy + hh;
  }
  return out;
}

/**
 * @param image the normalised image, channels-last.
 * @param boxes regions xyxy in image pixels.
 * @returns crops N x C x height x width (NCHW: a network input batch).
 */
export function warpRegions(image: FeatureMap, boxes: BoxArray, warp: WarpSpec): Float32Array {
  return roiAlign(image, contextBoxes(boxes, warp), { outputSize: warp.size, spatialScale: 1, samplingRatio: warp.samplingRatio, aligned: true });
}
