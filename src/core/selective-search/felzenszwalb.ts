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
 * Time O(n log n)-like (a linear radix sort of 4n edges), memory about 60
 * bytes per pixel.
 */

import { gaussianKernel, smoothChannels } from './gaussian.js';

const f32 = Math.fround;

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

/**
 * Segment a multi-channel image.
 * @param image H*W*C values, HWC, in [0, 1] (skimage's img_as_float of 8-bit input).
 */
export function felzenszwalb(image: Float64Array, width: number, height: number, channels: number, options: FelzenszwalbOptions): Segmentation {
  const n = width * height;
  if (image.length !== n * channels) throw new RangeError(`felzenszwalb: ${width}x${height}x${channels} needs ${n * channels} values, got ${image.length}`);
  if (n === 0) return { labels: new Int32Array(0), count: 0, width, height };
  const smooth = options.sigma > 0 ? smoothChannels(image, width, height, channels, gaussianKernel(options.sigma)) : image;
  const { a, b, cost } = gridEdges(smooth, width, height, channels);
  const order = radixArgsort(cost);
  const k = options.scale / 255;

  // Union-find as skimage's _ccomp: forest[i] <= i; a root points to itself.
  const forest = new Int32Array(n);
  for (let i = 0; i < n; i++) forest[i] = i;
  const size = new Int32Array(n).fill(1);
  const internal = new Float64Array(n);
  for (let e = 0; e < order.length; e++) {
    const edge = order[e]!;
    const r0 = findRoot(forest, a[edge]!);
    const r1 = findRoot(forest, b[edge]!);
    if (r0 === r1) continue;
    // skimage keeps these two in C floats.
    const inner0 = f32(internal[r0]! + k / size[r0]!);
    const inner1 = f32(internal[r1]! + k / size[r1]!);
    const w = cost[edge]!;
    if (w < Math.min(inner0, inner1)) {
      const root = joinTrees(forest, r0, r1);
      size[root] = size[r0]! + size[r1]!;
      internal[root] = w;
    }
  }
  for (let e = 0; e < order.length; e++) {
    const edge = order[e]!;
    const r0 = findRoot(forest, a[edge]!);
    const r1 = findRoot(forest, b[edge]!);
    if (r0 === r1) continue;
    if (size[r0]! < options.minSize || size[r1]! < options.minSize) {
      const root = joinTrees(forest, r0, r1);
      size[root] = size[r0]! + size[r1]!;
    }
  }

  // Roots are each region's smallest pixel index: number them in raster order.
  const labels = new Int32Array(n);
  const labelOfRoot = new Int32Array(n).fill(-1);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const r = findRoot(forest, i);
    if (labelOfRoot[r] === -1) labelOfRoot[r] = count++;
    labels[i] = labelOfRoot[r]!;
  }
  return { labels, count, width, height };
}

function findRoot(forest: Int32Array, node: number): number {
  let root = node;
  while (forest[root]! < root) root = forest[root]!;
  return root;
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
 * down-right, up-right neighbours, each row-major.
 * @returns endpoints a, b (pixel indices) and Euclidean colour distances.
 */
function gridEdges(img: Float64Array, width: number, height: number, channels: number): { a: Int32Array; b: Int32Array; cost: Float64Array } {
  const m = height * (width - 1) + (height - 1) * width + 2 * (height - 1) * (width - 1);
  const a = new Int32Array(m), b = new Int32Array(m);
  const cost = new Float64Array(m);
  let e = 0;
  const add = (p: number, q: number) => {
    let s = 0;
    for (let c = 0; c < channels; c++) {
      const d = img[p * channels + c]! - img[q * channels + c]!;
      s += d * d;
    }
    a[e] = p;
    b[e] = q;
    cost[e++] = Math.sqrt(s);
  };
  for (let y = 0; y < height; y++) for (let x = 0; x + 1 < width; x++) add(y * width + x + 1, y * width + x);
  for (let y = 0; y + 1 < height; y++) for (let x = 0; x < width; x++) add((y + 1) * width + x, y * width + x);
  for (let y = 0; y + 1 < height; y++) for (let x = 0; x + 1 < width; x++) add((y + 1) * width + x + 1, y * width + x);
  for (let y = 0; y + 1 < height; y++) for (let x = 0; x + 1 < width; x++) add(y * width + x + 1, (y + 1) * width + x);
  return { a, b, cost };
}

/**
 * Stable argsort of non-negative doubles by LSD radix sort on their bit
 * patterns (for x >= 0 the IEEE bits order as unsigned integers): four
 * passes of 16 bits, passes with a single digit value skipped.
 */
export function radixArgsort(keys: Float64Array): Uint32Array {
  const n = keys.length;
  const words = new Uint32Array(keys.buffer, keys.byteOffset, 2 * n); // little-endian: [lo, hi]
  let src = new Uint32Array(n);
  for (let i = 0; i < n; i++) src[i] = i;
  let dst = new Uint32Array(n);
  const count = new Uint32Array(65536);
  for (let pass = 0; pass < 4; pass++) {
    const word = pass >> 1;
    const shift = (pass & 1) * 16;
    count.fill(0);
    for (let i = 0; i < n; i++) count[(words[2 * i + word]! >>> shift) & 0xffff]!++;
    if (count[(words[word]! >>> shift) & 0xffff] === n) continue; // every key has this digit
    let sum = 0;
    for (let d = 0; d < 65536; d++) {
      const c = count[d]!;
      count[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const idx = src[i]!;
      dst[count[(words[2 * idx + word]! >>> shift) & 0xffff]!++] = idx;
    }
    [src, dst] = [dst, src];
  }
  return src;
}
