/**
 * The post-processing all three R-CNN generations share, torchvision's
 * `RoIHeads.postprocess_detections`, in network-input pixels:
 *
 *   class probabilities (softmax of a head's logits, or R-CNN's averaged
 *   probabilities) -> class-specific decode against the proposals -> clip ->
 *   drop the background column -> score > threshold -> drop boxes under
 *   minSize -> NMS per class -> top k -> [box voting].
 *
 * The pipeline then scales the boxes to original-image pixels once, at its
 * end (`transform.postprocess`'s `resize_boxes`), after any filtering that
 * belongs to the input's scale (multi-scale testing's object sizes).
 */

import type { BoxCoder } from './box-coder.js';
import { clipBoxes, gatherBoxes } from './boxes.js';
import { batchedNms } from './nms.js';
import { voteBoxes } from './box-voting.js';
import type { Provenance } from './provenance.js';

const f32 = Math.fround;

export interface PostprocessSettings {
  coder: BoxCoder;
  /** Keep class scores strictly above this. */
  scoreThreshold: number;
  /** IoU above which a lower-scored box of the same class is dropped. */
  nmsThreshold: number;
  /** Keep at most this many detections. */
  detectionsPerImage: number;
  /** Drop boxes narrower or shorter than this, in network-input pixels. */
  minSize: number;
  /** IoU of box voting after NMS (`box-voting.ts`); absent: no voting. */
  boxVoting?: number;
}

export interface RawDetections {
  /** N*4 xyxy: network-input pixels out of postprocessDetections, original-image pixels out of a pipeline. */
  boxes: Float32Array;
  scores: Float32Array;
  /** Class ids, background = 0 excluded. */
  classIds: Int32Array;
  /** Regions the head scored. */
  regions: number;
  /** The region each detection's box was regressed from: its index among the `regions` (across a multi-scale run's passes, in pass order). */
  sources: Int32Array;
  /** Each detection's provenance, where the run was asked for it. */
  provenance?: Provenance[];
}

/** Row-wise softmax of R x C logits, float32 as the reference. */
export function softmax(logits: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, logits[o + c]!);
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += out[o + c] = f32(Math.exp(logits[o + c]! - max));
    for (let c = 0; c < cols; c++) out[o + c] = out[o + c]! / sum;
  }
  return out;
}

/**
 * @param probs R x C class probabilities, C = K + 1 with background at 0 (rows sum to 1).
 * @param deltas R x 4C class-specific box deltas.
 * @param proposals R*4 xyxy in network-input pixels.
 * @param image resized (unpadded) input size: boxes are clipped to it.
 * @returns detections xyxy in network-input pixels, best first.
 */
export function postprocessDetections(probs: Float32Array, deltas: Float32Array, proposals: Float32Array, image: { height: number; width: number }, s: PostprocessSettings): RawDetections {
  const rows = proposals.length / 4;
  const cols = rows === 0 ? 0 : probs.length / rows;
  const decoded = clipBoxes(s.coder.decode(deltas, proposals), image.width, image.height);

  // Candidates: every (proposal, foreground class) above the threshold and not tiny.
  const candBoxes: number[] = [];
  const candScores: number[] = [];
  const candClasses: number[] = [];
  const candRows: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 1; c < cols; c++) {
      const score = probs[r * cols + c]!;
      if (!(score > s.scoreThreshold)) continue;
      const o = 4 * (r * cols + c);
      const x1 = decoded[o]!, y1 = decoded[o + 1]!, x2 = decoded[o + 2]!, y2 = decoded[o + 3]!;
      if (x2 - x1 < s.minSize || y2 - y1 < s.minSize) continue;
      candBoxes.push(x1, y1, x2, y2);
      candScores.push(score);
      candClasses.push(c);
      candRows.push(r);
    }
  }
  const boxes = Float32Array.from(candBoxes);
  const keep = batchedNms(boxes, candScores, candClasses, s.nmsThreshold).subarray(0, s.detectionsPerImage);
  const kept = s.boxVoting === undefined ? gatherBoxes(boxes, keep) : voteBoxes(boxes, candScores, candClasses, keep, s.boxVoting);

  return {
    boxes: kept,
    scores: Float32Array.from(keep, (i) => candScores[i]!),
    classIds: Int32Array.from(keep, (i) => candClasses[i]!),
    regions: rows,
    sources: Int32Array.from(keep, (i) => candRows[i]!),
  };
}
