/**
 * Box voting (Gidaris & Komodakis, "Object detection via a multi-region &
 * semantic segmentation-aware CNN model", ICCV 2015, section 6): NMS keeps
 * the best-scored box of each cluster and throws its neighbours away, though
 * they too say where the object is. Voting moves each kept box to the
 * score-weighted mean of the candidates of its class that overlap it by at
 * least `threshold` IoU (itself among them); scores are left as they are.
 *
 * The torch reference is `shapes_common.vote_boxes`.
 */

import type { BoxArray } from './boxes.js';

/**
 * @param candidates N*4 xyxy, every candidate that went into NMS.
 * @param scores their scores.
 * @param classes their class ids.
 * @param keep indices of the kept candidates, as NMS returned them.
 * @param threshold IoU at or above which a candidate of the same class votes.
 * @returns keep.length * 4 xyxy, the kept boxes after voting.
 */
export function voteBoxes(candidates: BoxArray, scores: ArrayLike<number>, classes: ArrayLike<number>, keep: ArrayLike<number>, threshold: number): Float32Array {
  const n = scores.length;
  const out = new Float32Array(4 * keep.length);
  for (let k = 0; k < keep.length; k++) {
    const i = keep[k]!;
    const ax1 = candidates[4 * i]!, ay1 = candidates[4 * i + 1]!, ax2 = candidates[4 * i + 2]!, ay2 = candidates[4 * i + 3]!;
    const areaA = (ax2 - ax1) * (ay2 - ay1);
    let x1 = 0, y1 = 0, x2 = 0, y2 = 0, total = 0;
    for (let j = 0; j < n; j++) {
      if (classes[j] !== classes[i]) continue;
      const bx1 = candidates[4 * j]!, by1 = candidates[4 * j + 1]!, bx2 = candidates[4 * j + 2]!, by2 = candidates[4 * j + 3]!;
      const w = Math.min(ax2, bx2) - Math.max(ax1, bx1);
      const h = Math.min(ay2, by2) - Math.max(ay1, by1);
      if (w <= 0 || h <= 0) continue;
      const inter = w * h;
      const iou = inter / (areaA + (bx2 - bx1) * (by2 - by1) - inter);
      if (!(iou >= threshold)) continue;
      const s = scores[j]!;
      x1 += s * bx1;
      y1 += s * by1;
      x2 += s * bx2;
      y2 += s * by2;
      total += s;
    }
    out[4 * k] = x1 / total;
    out[4 * k + 1] = y1 / total;
    out[4 * k + 2] = x2 / total;
    out[4 * k + 3] = y2 / total;
  }
  return out;
}
