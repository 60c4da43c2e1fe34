/**
 * Greedy non-maximum suppression, as `torchvision.ops.nms` / `batched_nms`.
 *
 * Tie-break: boxes are visited by decreasing score; equal scores are visited
 * in increasing input index (a stable sort), so of two identical boxes with
 * the same score the one that comes first in the input is kept. torchvision's
 * CPU kernel sorts stably too; its docs still call ties undefined, so parity
 * tests build inputs without exact ties.
 */

import { boxCount, type BoxArray } from './boxes.js';

/**
 * Indices of `scores` sorted by decreasing score, ties by increasing index.
 * @param scores N scores; NaN sorts last.
 * @returns Int32Array of N indices.
 */
export function argsortDescending(scores: ArrayLike<number>): Int32Array {
  const n = scores.length;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  // Typed-array sort with a comparator is stable (ES2019) and avoids boxing.
  order.sort((a, b) => {
    const sa = scores[a]!, sb = scores[b]!;
    if (sa > sb) return -1;
    if (sa < sb) return 1;
    if (sa === sb) return a - b;
    return Number.isNaN(sa) ? (Number.isNaN(sb) ? a - b : 1) : -1;
  });
  return order;
}

/**
 * Greedy NMS: visit boxes by decreasing score (tie-break above); keep a box
 * and suppress every later box whose IoU with it is strictly greater than
 * `iouThreshold`.
 * @param boxes N*4 xyxy.
 * @param scores N scores.
 * @param iouThreshold IoU above which a lower-scored box is discarded.
 * @returns Int32Array of kept indices into the input, by decreasing score.
 */
export function nms(boxes: BoxArray, scores: ArrayLike<number>, iouThreshold: number): Int32Array {
  const n = boxCount(boxes);
  if (scores.length !== n) throw new RangeError(`nms needs one score per box (${scores.length} scores, ${n} boxes)`);
  if (n === 0) return new Int32Array(0);
  const order = argsortDescending(scores);

  // Copy the boxes into visiting order so the inner loop streams memory.
  const x1 = new Float64Array(n), y1 = new Float64Array(n), x2 = new Float64Array(n), y2 = new Float64Array(n);
  const area = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    const o = 4 * order[r]!;
    x1[r] = boxes[o]!; y1[r] = boxes[o + 1]!; x2[r] = boxes[o + 2]!; y2[r] = boxes[o + 3]!;
    area[r] = (x2[r]! - x1[r]!) * (y2[r]! - y1[r]!);
  }

  // `alive` lists the ranks not yet suppressed; it is compacted as the loop
  // goes, so each kept box only looks at boxes still in play.
  const alive = new Int32Array(n);
  for (let r = 0; r < n; r++) alive[r] = r;
  let aliveCount = n;
  const keep = new Int32Array(n);
  let kept = 0;
  let head = 0;
  while (head < aliveCount) {
    const i = alive[head]!;
    keep[kept++] = order[i]!;
    const ix1 = x1[i]!, iy1 = y1[i]!, ix2 = x2[i]!, iy2 = y2[i]!, iarea = area[i]!;
    let write = head + 1;
    for (let read = head + 1; read < aliveCount; read++) {
      const j = alive[read]!;
      const w = Math.min(ix2, x2[j]!) - Math.max(ix1, x1[j]!);
      const h = Math.min(iy2, y2[j]!) - Math.max(iy1, y1[j]!);
      if (w > 0 && h > 0) {
        const inter = w * h;
        // torchvision: ovr = inter / (iarea + area_j - inter); suppress if ovr > threshold.
        if (inter / (iarea + area[j]! - inter) > iouThreshold) continue;
      }
      alive[write++] = j;
    }
    aliveCount = write;
    head++;
  }
  return keep.slice(0, kept);
}

/**
 * NMS applied independently per category, as `torchvision.ops.batched_nms`:
 * boxes of different categories never suppress each other.
 * @param boxes N*4 xyxy.
 * @param scores N scores.
 * @param categories N integer category ids (class labels, or FPN levels in an RPN).
 * @param iouThreshold as `nms`.
 * @returns Int32Array of kept indices into the input, by decreasing score (ties: increasing index).
 */
export function batchedNms(
  boxes: BoxArray,
  scores: ArrayLike<number>,
  categories: ArrayLike<number>,
  iouThreshold: number,
): Int32Array {
  const n = boxCount(boxes);
  if (scores.length !== n || categories.length !== n) {
    throw new RangeError(`batchedNms needs one score and one category per box (${n} boxes, ${scores.length} scores, ${categories.length} categories)`);
  }
  // Group the indices by category, keeping input order inside each group.
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const c = categories[i]!;
    let g = groups.get(c);
    if (g === undefined) groups.set(c, (g = []));
    g.push(i);
  }
  const keptAll: number[] = [];
  for (const members of groups.values()) {
    const sub = new Float64Array(4 * members.length);
    const subScores = new Float64Array(members.length);
    for (let k = 0; k < members.length; k++) {
      const o = 4 * members[k]!;
      sub[4 * k] = boxes[o]!; sub[4 * k + 1] = boxes[o + 1]!; sub[4 * k + 2] = boxes[o + 2]!; sub[4 * k + 3] = boxes[o + 3]!;
      subScores[k] = scores[members[k]!]!;
    }
    for (const k of nms(sub, subScores, iouThreshold)) keptAll.push(members[k]!);
  }
  const kept = Int32Array.from(keptAll);
  // Re-sort by score; the stable tie-break on input index needs the indices ascending first.
  kept.sort();
  const keptScores = new Float64Array(kept.length);
  for (let k = 0; k < kept.length; k++) keptScores[k] = scores[kept[k]!]!;
  const order = argsortDescending(keptScores);
  const out = new Int32Array(kept.length);
  for (let k = 0; k < kept.length; k++) out[k] = kept[order[k]!]!;
  return out;
}
