/**
 * Top-k selection without sorting everything: an RPN level of a 800 x 1067
 * image has 160 000 anchors of which 1000 are kept.
 */

import { argsortDescending } from './nms.js';

/**
 * Indices of the k largest scores, by decreasing score, ties by increasing
 * index (as a stable sort would give; torch.topk leaves ties unspecified).
 * @param scores N scores (no NaN).
 * @param k how many; min(k, N) are returned.
 * @returns Int32Array of min(k, N) indices.
 */
export function topK(scores: ArrayLike<number>, k: number): Int32Array {
  const n = scores.length;
  if (k >= n) return argsortDescending(scores);
  if (k <= 0) return new Int32Array(0);
  const threshold = kthLargest(Float64Array.from(scores), k);
  // Everything above the threshold, then ties at it in index order, up to k.
  const picked = new Int32Array(k);
  let m = 0;
  for (let i = 0; i < n; i++) if (scores[i]! > threshold) picked[m++] = i;
  for (let i = 0; i < n && m < k; i++) if (scores[i] === threshold) picked[m++] = i;
  const values = new Float64Array(k);
  for (let j = 0; j < k; j++) values[j] = scores[picked[j]!]!;
  const order = argsortDescending(values);
  const out = new Int32Array(k);
  for (let j = 0; j < k; j++) out[j] = picked[order[j]!]!;
  return out;
}

/** The k-th largest value (1-based) by quickselect; reorders `a`. */
function kthLargest(a: Float64Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  const target = k - 1; // position in descending order
  while (lo < hi) {
    // Median of three as pivot.
    const mid = (lo + hi) >> 1;
    const x = a[lo]!, y = a[mid]!, z = a[hi]!;
    const pivot = x > y ? (y > z ? y : x > z ? z : x) : x > z ? x : y > z ? z : y;
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return a[target]!;
  }
  return a[target]!;
}
