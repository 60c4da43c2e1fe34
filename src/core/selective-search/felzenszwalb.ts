/**
 * Efficient graph-based image segmentation (Felzenszwalb & Huttenlocher,
 * IJCV 2004), as `skimage.segmentation.felzenszwalb`:
 *
 *   1. smooth each channel with a Gaussian (sigma; scipy's 'reflect' border,
 *      kernel radius round(4 sigma));
 *   2. an 8-connected grid graph; an edge's weight is the Euclidean distance
 *      between its pixels' smoothed colours;
 *   3. visit edges by increasing weight; merge the two components when the
 *      weight is below both internal differences Int(C) + k / |C| (k = scale,
 *      with pixel values in [0, 1], k is divided by 255 as skimage does);
 *   4. a second pass over the same order merges any component smaller than
 *      minSize with its neighbour.
 *
 * The union-find is skimage's (the smaller root wins, paths compressed on
 * join), and labels are numbered in raster order of each region's first
 * pixel, so labels coincide with skimage's where the segmentation does.
 * Equal edge weights are visited in edge order (a stable sort); numpy's
 * argsort leaves their order unspecified.
 *
 * Time O(n log n) at worst (a linear radix sort of 4n edges, comparison
 * sorts only inside runs of equal float32 weights); the sorted graph keeps
 * about 48 bytes per pixel (weights 32, sorted edges 16), and sorting needs
 * about 64 more while it runs.
 */

import { gaussianKernel, smoothChannels } from './gaussian.js';

export interface FelzenszwalbOptions {
  /** Observation scale k: larger gives larger regions (skimage's `scale`). */
  scale: number;
  /** Gaussian smoothing before building the graph, in pixels (0.8 in the paper). */
  sigma: number;
  /** Components smaller than this are merged into a neighbour, in pixels. */
  minSize: number;
}

export interface Segmentation {
  /** Region label of each pixel, row-major, 0..count-1. */
  labels: Int32Array;
  count: number;
  width: number;
  height: number;
}

/** The smoothed image's 8-connected graph, edges sorted by weight: independent of k and minSize. */
export interface SortedGraph {
  width: number;
  height: number;
  /** Edges by increasing weight, each packed as (p << 2) | direction (see gridEdges). */
  packed: Uint32Array;
  /** Edge weights, indexed by the packed edge (4 slots per pixel, some unused). */
  weight: Float64Array;
}

/**
 * Steps 1 and 2: smooth, build the grid graph, sort its edges. Strategies
 * that segment one image at several scales k share this.
 * @param image H*W*C values, HWC, in [0, 1] (skimage's img_as_float of 8-bit input).
 */
export function sortedGraph(image: Float64Array, width: number, height: number, channels: number, sigma: number): SortedGraph {
  if (image.length !== width * height * channels) {
    throw new RangeError(`felzenszwalb: ${width}x${height}x${channels} needs ${width * height * channels} values, got ${image.length}`);
  }
  const smooth = sigma > 0 && width * height > 0 ? smoothChannels(image, width, height, channels, gaussianKernel(sigma)) : image;
  const { packed, weight } = gridEdges(smooth, width, height, channels);
  return { width, height, packed: sortByWeight(weight, packed), weight };
}

/** Steps 3 and 4 on a sorted graph, then the labels. */
export function segmentGraph(graph: SortedGraph, scale: number, minSize: number): Segmentation {
  const { width, height } = graph;
  const n = width * height;
  if (n === 0) return { labels: new Int32Array(0), count: 0, width, height };
  const { forest, size } = joinByThreshold(graph, scale / 255);
  mergeSmall(graph, forest, size, minSize);
  const { labels, count } = labelRegions(forest);
  return { labels, count, width, height };
}

/** Endpoint offsets of an edge by direction: right, down, down-right, up-right (see gridEdges). */
function endpointOffsets(width: number): Int32Array {
  return Int32Array.of(1, width, width + 1, width - 1);
}

/**
 * Step 3: the union-find as skimage's _ccomp (forest[i] <= i; a root points
 * to itself), visiting edges by weight and joining two components when the
 * edge is lighter than both thresholds Int(C) + k / |C|.
 */
function joinByThreshold(graph: SortedGraph, k: number): { forest: Int32Array; size: Int32Array } {
  const { width, height, packed, weight } = graph;
  const n = width * height;
  const offset = endpointOffsets(width);
  const forest = new Int32Array(n);
  for (let i = 0; i < n; i++) forest[i] = i;
  const size = new Int32Array(n).fill(1);
  // Each root's Int(C) + k / |C|, rounded to float32 as skimage keeps it; kept up to date on
  // every join (Int(C) is the weight of the edge that made C), so an edge costs no division.
  const threshold = new Float32Array(n).fill(k);
  const m = packed.length;
  for (let e = 0; e < m; e++) {
    const q = packed[e]!;
    const p = q >>> 2;
    const r0 = findRoot(forest, p + offset[q & 3]!);
    const r1 = findRoot(forest, p);
    if (r0 === r1) continue;
    const w = weight[q]!;
    const t0 = threshold[r0]!, t1 = threshold[r1]!;
    if (w < (t0 < t1 ? t0 : t1)) {
      const root = joinTrees(forest, r0, r1);
      const joined = size[r0]! + size[r1]!;
      size[root] = joined;
      threshold[root] = w + k / joined;
    }
  }
  return { forest, size };
}

/**
 * Step 4: a second pass over the same order joins any component still
 * under minSize with its neighbour. Once none is left the rest of the pass
 * changes nothing. Components only grow, so a pixel that starts this pass
 * in a big one stays in a big one, and an edge between two such pixels is
 * skipped without looking up its roots.
 */
function mergeSmall(graph: SortedGraph, forest: Int32Array, size: Int32Array, minSize: number): void {
  const { width, packed } = graph;
  const n = forest.length;
  let small = 0;
  for (let i = 0; i < n; i++) if (forest[i] === i && size[i]! < minSize) small++;
  if (small === 0) return;
  const startsSmall = new Uint8Array(n);
  for (let i = 0; i < n; i++) startsSmall[i] = size[findRoot(forest, i)]! < minSize ? 1 : 0;
  const offset = endpointOffsets(width);
  const m = packed.length;
  for (let e = 0; e < m && small > 0; e++) {
    const q = packed[e]!;
    const p = q >>> 2;
    const p2 = p + offset[q & 3]!;
    if (startsSmall[p] === 0 && startsSmall[p2] === 0) continue;
    const r0 = findRoot(forest, p2);
    const r1 = findRoot(forest, p);
    if (r0 === r1) continue;
    const s0 = size[r0]!, s1 = size[r1]!;
    if (s0 < minSize || s1 < minSize) {
      const root = joinTrees(forest, r0, r1);
      size[root] = s0 + s1;
      small -= (s0 < minSize ? 1 : 0) + (s1 < minSize ? 1 : 0) - (s0 + s1 < minSize ? 1 : 0);
    }
  }
}

/** Roots are each region's smallest pixel index: number the regions in raster order. */
function labelRegions(forest: Int32Array): { labels: Int32Array; count: number } {
  const n = forest.length;
  const labels = new Int32Array(n);
  const labelOfRoot = new Int32Array(n).fill(-1);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const r = findRoot(forest, i);
    if (labelOfRoot[r] === -1) labelOfRoot[r] = count++;
    labels[i] = labelOfRoot[r]!;
  }
  return { labels, count };
}

/**
 * Segment a multi-channel image.
 * @param image H*W*C values, HWC, in [0, 1] (skimage's img_as_float of 8-bit input).
 */
export function felzenszwalb(image: Float64Array, width: number, height: number, channels: number, options: FelzenszwalbOptions): Segmentation {
  return segmentGraph(sortedGraph(image, width, height, channels, options.sigma), options.scale, options.minSize);
}

/**
 * Root of a node's tree, halving the path on the way (each visited node is
 * pointed at its grandparent). skimage's find_root does not compress; the
 * roots, and so the segmentation, are the same either way (a parent always
 * has a smaller index, and a set's root is its smallest), but without it the
 * chains grow long: this made the whole segmentation several times faster.
 */
function findRoot(forest: Int32Array, node: number): number {
  let x = node;
  let parent = forest[x]!;
  while (parent < x) {
    const grand = forest[parent]!;
    forest[x] = grand;
    x = parent;
    parent = grand;
  }
  return x;
}

function setRoot(forest: Int32Array, node: number, root: number): void {
  let n = node;
  while (forest[n]! < n) {
    const next = forest[n]!;
    forest[n] = root;
    n = next;
  }
  forest[n] = root;
}

/** Join the trees of two roots under the smaller; returns the new root. */
function joinTrees(forest: Int32Array, r0: number, r1: number): number {
  const root = Math.min(r0, r1);
  setRoot(forest, r0, root);
  setRoot(forest, r1, root);
  return root;
}

/**
 * The 8-connected grid graph in skimage's edge order: right, down,
 * down-right, up-right neighbours, each row-major. An edge is packed as
 * (p << 2) | direction, its endpoints p and p + (1, W, W + 1, W - 1)[direction].
 * @returns the packed edges, and their Euclidean colour distances indexed by the packed edge.
 */
function gridEdges(img: Float64Array, width: number, height: number, channels: number): { packed: Uint32Array; weight: Float64Array } {
  const m = height * (width - 1) + (height - 1) * width + 2 * (height - 1) * (width - 1);
  const packed = new Uint32Array(m);
  const weight = new Float64Array(4 * width * height);
  let e = 0;
  // One pass per direction (skimage's order): edges from p to p + step, for the anchors p of rows y0..y1 and columns x0..x1.
  const direction = (dir: number, step: number, y0: number, y1: number, x0: number, x1: number) => {
    for (let y = y0; y < y1; y++) {
      for (let p = y * width + x0, end = y * width + x1; p < end; p++) {
        const a = p * channels, b = (p + step) * channels;
        let s: number;
        if (channels === 3) {
          // Every colour space but I and H: written out, the same sum in the same order as the loop.
          const d0 = img[b]! - img[a]!, d1 = img[b + 1]! - img[a + 1]!, d2 = img[b + 2]! - img[a + 2]!;
          s = d0 * d0 + d1 * d1 + d2 * d2;
        } else {
          s = 0;
          for (let c = 0; c < channels; c++) {
            const d = img[b + c]! - img[a + c]!;
            s += d * d;
          }
        }
        const code = (p << 2) | dir;
        packed[e++] = code;
        weight[code] = Math.sqrt(s);
      }
    }
  };
  direction(0, 1, 0, height, 0, width - 1);
  direction(1, width, 0, height - 1, 0, width);
  direction(2, width + 1, 0, height - 1, 0, width - 1);
  // skimage's up-right edge joins (y, x + 1) and (y + 1, x): anchored at p = (y, x + 1), the other end is p + W - 1.
  direction(3, width - 1, 0, height - 1, 1, width);
  return { packed, weight };
}

/**
 * Stable sort of items by non-negative double weights.
 *
 * An LSD radix sort keyed by the float32 image of each weight (three passes
 * of 11 bits; for x >= 0 the IEEE bits order as unsigned integers, and
 * rounding to float32 is monotone), then each run of equal float32 keys
 * sorted by the exact double (sortRun), so this is a stable sort by the
 * doubles; the doubles are read once in item order, and again only inside
 * runs. 2048 buckets per pass keep the scatter within the caches.
 * @param weight the weight of item i at weight[i].
 * @param items the items, in the order ties keep.
 * @returns a new array: the items by increasing weight.
 */
export function sortByWeight(weight: Float64Array, items: Uint32Array): Uint32Array {
  const n = items.length;
  const f32 = new Float32Array(n);
  for (let i = 0; i < n; i++) f32[i] = weight[items[i]!]!;
  let digits = new Uint32Array(f32.buffer);
  let order = Uint32Array.from(items);
  let digits2 = new Uint32Array(n), order2 = new Uint32Array(n);
  const BITS = 11, BUCKETS = 1 << BITS, MASK = BUCKETS - 1;
  const counts = new Uint32Array(3 * BUCKETS);
  for (let i = 0; i < n; i++) {
    const d = digits[i]!;
    counts[d & MASK]!++;
    counts[BUCKETS + ((d >>> BITS) & MASK)]!++;
    counts[2 * BUCKETS + (d >>> (2 * BITS))]!++;
  }
  for (let pass = 0; pass < 3; pass++) {
    const shift = pass * BITS, base = pass * BUCKETS;
    if (n === 0 || counts[base + ((digits[0]! >>> shift) & MASK)] === n) continue;
    let sum = 0;
    for (let d = base; d < base + BUCKETS; d++) {
      const c = counts[d]!;
      counts[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const d = digits[i]!;
      const at = counts[base + ((d >>> shift) & MASK)]!++;
      digits2[at] = d;
      order2[at] = order[i]!;
    }
    [digits, digits2] = [digits2, digits];
    [order, order2] = [order2, order];
  }
  // Within runs of equal float32 keys, order by the double, stably.
  for (let start = 0; start < n; ) {
    let end = start + 1;
    while (end < n && digits[end] === digits[start]) end++;
    if (end - start > 1) sortRun(order, start, end, weight);
    start = end;
  }
  return order;
}

/**
 * Stable sort of order[start..end) by weight: insertion for the short runs
 * that photos give, a comparison sort for long ones (a smooth gradient can
 * put most of an image's edges in one float32 value), so time stays
 * O(n log n) whatever the image; a run of equal doubles (a flat area) is
 * left as it is.
 */
function sortRun(order: Uint32Array, start: number, end: number, weight: Float64Array): void {
  if (end - start <= 32) {
    for (let i = start + 1; i < end; i++) {
      const item = order[i]!, v = weight[item]!;
      let j = i - 1;
      while (j >= start && weight[order[j]!]! > v) {
        order[j + 1] = order[j]!;
        j--;
      }
      order[j + 1] = item;
    }
    return;
  }
  const first = weight[order[start]!]!;
  let same = start + 1;
  while (same < end && weight[order[same]!] === first) same++;
  if (same === end) return; // all equal (a flat area): already in order
  const run = Array.from(order.subarray(start, end));
  const positions = run.map((_, i) => i).sort((a, b) => weight[run[a]!]! - weight[run[b]!]! || a - b);
  for (let i = 0; i < positions.length; i++) order[start + i] = run[positions[i]!]!;
}
