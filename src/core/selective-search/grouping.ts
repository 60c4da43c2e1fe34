/**
 * Hierarchical grouping (Uijlings et al. 2013, algorithm 1): start from a
 * segmentation, repeatedly merge the most similar pair of adjacent regions
 * until one region remains; every region ever formed is a proposal.
 *
 * Similarities (section 3.2), each in [0, 1], summed over the enabled ones:
 *   colour   sum_k min(c_i^k, c_j^k), 25 bins per channel, L1-normalised
 *   texture  sum_k min(t_i^k, t_j^k), 8 orientations x 10 bins per channel, L1-normalised
 *   size     1 - (|r_i| + |r_j|) / |image|
 *   fill     1 - (|BB_ij| - |r_i| - |r_j|) / |image|
 * A merged region's histograms are the size-weighted average of its parts'
 * (not recomputed from pixels), its box the union of theirs.
 *
 * Adjacency is 8-connected, as the segmentation's graph. The most similar pair
 * comes from a max-heap with lazy deletion (OpenCV re-sorts every pair after
 * each merge); ties go to the pair with the smaller region ids, so the result
 * is fully determined by the input.
 */

import type { Cancellation } from '../cancellation.js';
import type { Segmentation } from './felzenszwalb.js';
import { addImplicitZeroBins, TEXTURE_BINS, TEXTURE_DIRECTIONS, TEXTURE_ORIENTATIONS, type TextureBins } from './texture.js';
import type { ChannelImage } from './colour-spaces.js';

export const COLOUR_BINS = 25;

export interface Similarities {
  colour: boolean;
  texture: boolean;
  size: boolean;
  fill: boolean;
}

/** Per-region statistics of one segmentation, shared by the strategies that group it. */
export interface RegionFeatures {
  count: number;
  imageSize: number;
  size: Float64Array;
  /** x0, y0, x1, y1 per region, inclusive pixel coordinates. */
  bbox: Int32Array;
  /** count x colourLength, each row sums to 1. */
  colour: Float32Array;
  colourLength: number;
  /** count x textureLength, each row sums to 1. */
  texture: Float32Array;
  textureLength: number;
  /** Pairs (a < b) of adjacent regions, flattened. */
  adjacency: Int32Array;
}

/**
 * The colour histogram bin (0..24) of every pixel and channel.
 * @returns Uint8Array of H*W*C.
 */
export function colourBins(image: ChannelImage): Uint8Array {
  const out = new Uint8Array(image.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.min(COLOUR_BINS - 1, Math.floor(image.data[i]! * COLOUR_BINS));
  return out;
}

/**
 * Histograms, sizes, boxes and adjacency of each region.
 * @param colourBins colourBins() of the colour space the strategy groups in.
 * @param texture its quantised texture responses.
 */
export function regionFeatures(seg: Segmentation, colourBins: Uint8Array, channels: number, texture: TextureBins): RegionFeatures {
  const { labels, count, width, height } = seg;
  const n = width * height;
  const c = channels;
  const colourLength = c * COLOUR_BINS;
  const textureLength = c * TEXTURE_ORIENTATIONS * TEXTURE_BINS;
  const size = new Float64Array(count);
  const bbox = new Int32Array(4 * count);
  for (let r = 0; r < count; r++) {
    bbox[4 * r] = width;
    bbox[4 * r + 1] = height;
    bbox[4 * r + 2] = -1;
    bbox[4 * r + 3] = -1;
  }
  // Integer counts first, normalised once at the end.
  const colourCounts = new Uint32Array(count * colourLength);
  const textureCounts = new Uint32Array(count * textureLength);
  const codes = texture.codes;
  const perPixel = c * TEXTURE_DIRECTIONS;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const r = labels[i]!;
      size[r]!++;
      const b = 4 * r;
      if (x < bbox[b]!) bbox[b] = x;
      if (y < bbox[b + 1]!) bbox[b + 1] = y;
      if (x > bbox[b + 2]!) bbox[b + 2] = x;
      if (y > bbox[b + 3]!) bbox[b + 3] = y;
      const co = r * colourLength;
      for (let ch = 0; ch < c; ch++) colourCounts[co + ch * COLOUR_BINS + colourBins[i * c + ch]!]!++;
      // The texture codes of pixel i are already indices into a region's histogram.
      const to = r * textureLength;
      const tb = i * perPixel;
      for (let g = 0; g < perPixel; g++) textureCounts[to + codes[tb + g]!]!++;
    }
  }
  // L1 normalisation: every pixel adds one count per channel (and per orientation).
  const colour = new Float32Array(count * colourLength);
  const tex = new Float32Array(count * textureLength);
  for (let r = 0; r < count; r++) {
    addImplicitZeroBins(textureCounts, r * textureLength, c);
    const cn = 1 / (size[r]! * c);
    for (let k = 0; k < colourLength; k++) colour[r * colourLength + k] = colourCounts[r * colourLength + k]! * cn;
    const tn = cn / TEXTURE_ORIENTATIONS;
    for (let k = 0; k < textureLength; k++) tex[r * textureLength + k] = textureCounts[r * textureLength + k]! * tn;
  }
  return { count, imageSize: n, size, bbox, colour, colourLength, texture: tex, textureLength, adjacency: adjacentPairs(seg) };
}

/** Pairs of 8-adjacent regions, a < b, sorted, each once. */
function adjacentPairs(seg: Segmentation): Int32Array {
  const { labels, width, height, count } = seg;
  // A boundary repeats its pair pixel after pixel: a small direct-mapped table of the pairs
  // added last skips most repeats before the sort (about 3x faster on photos).
  const RECENT = 1024;
  const recent = new Float64Array(RECENT).fill(-1);
  let codes = new Float64Array(1024);
  let length = 0;
  const add = (p: number, q: number) => {
    if (p === q) return;
    const code = p < q ? p * count + q : q * count + p;
    const slot = code % RECENT;
    if (recent[slot] === code) return;
    recent[slot] = code;
    if (length === codes.length) {
      const grown = new Float64Array(2 * length);
      grown.set(codes);
      codes = grown;
    }
    codes[length++] = code;
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const l = labels[y * width + x]!;
      if (x + 1 < width) add(l, labels[y * width + x + 1]!);
      if (y + 1 < height) {
        add(l, labels[(y + 1) * width + x]!);
        if (x + 1 < width) add(l, labels[(y + 1) * width + x + 1]!);
        if (x > 0) add(l, labels[(y + 1) * width + x - 1]!);
      }
    }
  }
  const sorted = codes.subarray(0, length).sort();
  const out = new Int32Array(2 * length);
  let pairs = 0;
  for (let i = 0; i < length; i++) {
    if (i > 0 && sorted[i] === sorted[i - 1]) continue;
    out[2 * pairs] = Math.floor(sorted[i]! / count);
    out[2 * pairs + 1] = sorted[i]! % count;
    pairs++;
  }
  return out.slice(0, 2 * pairs);
}

/** A hierarchy: every region's box (xyxy, exclusive x2/y2, in pixels) in creation order, and what each merge joined. */
export interface Hierarchy {
  /** (2R - 1)*4: the R initial regions, then each merge's region. */
  boxes: Int32Array;
  /** (R - 1)*2: the two regions (a < b) that merge m joined into region R + m. */
  merges: Int32Array;
}

/**
 * Merges between two checks of groupRegions' signal. A merge costs up to the
 * new region's neighbour count in similarities: on an image with one region
 * around tens of thousands of islands, that is seconds per thousand merges,
 * and the grouping, minutes (measured: islandsImage(1000) in the tests' helpers,
 * 4062 regions, 8.7 s for one strategy).
 */
export const GROUPING_CHECK_EVERY = 256;

/**
 * Group a segmentation's regions until one remains.
 * @param features from regionFeatures; not modified.
 * @param signal checked every GROUPING_CHECK_EVERY merges; its throw stops the grouping.
 */
export function groupRegions(features: RegionFeatures, sim: Similarities, signal?: Cancellation): Hierarchy {
  const r0 = features.count;
  const total = Math.max(2 * r0 - 1, r0);
  const { colourLength: cl, textureLength: tl, imageSize } = features;
  const size = new Float64Array(total);
  size.set(features.size);
  const bbox = new Int32Array(4 * total);
  bbox.set(features.bbox);
  const colour = sim.colour ? new Float32Array(total * cl) : new Float32Array(0);
  if (sim.colour) colour.set(features.colour);
  const texture = sim.texture ? new Float32Array(total * tl) : new Float32Array(0);
  if (sim.texture) texture.set(features.texture);
  const alive = new Uint8Array(total);
  alive.fill(1, 0, r0);
  const mergedInto = new Int32Array(total).fill(-1);
  const neighbours: number[][] = Array.from({ length: r0 }, () => []);
  const adj = features.adjacency;
  for (let k = 0; k < adj.length; k += 2) {
    neighbours[adj[k]!]!.push(adj[k + 1]!);
    neighbours[adj[k + 1]!]!.push(adj[k]!);
  }

  const similarity = (a: number, b: number): number => {
    let s = 0;
    if (sim.colour) s += histogramIntersection(colour, a * cl, b * cl, cl);
    if (sim.texture) s += histogramIntersection(texture, a * tl, b * tl, tl);
    if (sim.size) s += 1 - (size[a]! + size[b]!) / imageSize;
    if (sim.fill) {
      const w = Math.max(bbox[4 * a + 2]!, bbox[4 * b + 2]!) - Math.min(bbox[4 * a]!, bbox[4 * b]!) + 1;
      const h = Math.max(bbox[4 * a + 3]!, bbox[4 * b + 3]!) - Math.min(bbox[4 * a + 1]!, bbox[4 * b + 1]!) + 1;
      s += 1 - (w * h - size[a]! - size[b]!) / imageSize;
    }
    return s;
  };

  const heap = new PairHeap(adj.length);
  for (let k = 0; k < adj.length; k += 2) heap.push(similarity(adj[k]!, adj[k + 1]!), adj[k]!, adj[k + 1]!);

  /** The region r now belongs to (alive), with the path from r shortened on the way. */
  const find = (r: number): number => {
    let root = r;
    while (mergedInto[root]! >= 0) root = mergedInto[root]!;
    while (mergedInto[r]! >= 0) {
      const up = mergedInto[r]!;
      mergedInto[r] = root;
      r = up;
    }
    return root;
  };
  /** Marks regions already listed by the liveNeighbours call whose number they hold. */
  const stamp = new Int32Array(total).fill(-1);
  let call = 0;
  /** The alive regions next to any of `from`, once each, without `self`. */
  const liveNeighbours = (self: number, from: number[]): number[] => {
    const out: number[] = [];
    const mark = call++;
    stamp[self] = mark;
    for (const f of from) {
      for (const entry of neighbours[f]!) {
        const nb = find(entry);
        if (stamp[nb] === mark) continue;
        stamp[nb] = mark;
        out.push(nb);
      }
    }
    return out;
  };
  /** Each region's neighbour-list length when it was last resolved. */
  const listSize = new Int32Array(total);
  for (let r = 0; r < r0; r++) listSize[r] = neighbours[r]!.length;
  const merges = new Int32Array(2 * (total - r0));
  let next = r0;
  while (heap.length > 0) {
    const [a, b] = heap.pop();
    if (!alive[a] || !alive[b]) continue;
    const t = next++;
    if ((t - r0) % GROUPING_CHECK_EVERY === GROUPING_CHECK_EVERY - 1) signal?.throwIfAborted();
    merges[2 * (t - r0)] = a;
    merges[2 * (t - r0) + 1] = b;
    const sa = size[a]!, sb = size[b]!;
    size[t] = sa + sb;
    for (let q = 0; q < 2; q++) {
      bbox[4 * t + q] = Math.min(bbox[4 * a + q]!, bbox[4 * b + q]!);
      bbox[4 * t + 2 + q] = Math.max(bbox[4 * a + 2 + q]!, bbox[4 * b + 2 + q]!);
    }
    const wa = sa / (sa + sb), wb = sb / (sa + sb);
    if (sim.colour) for (let k = 0; k < cl; k++) colour[t * cl + k] = wa * colour[a * cl + k]! + wb * colour[b * cl + k]!;
    if (sim.texture) for (let k = 0; k < tl; k++) texture[t * tl + k] = wa * texture[a * tl + k]! + wb * texture[b * tl + k]!;
    alive[a] = alive[b] = 0;
    alive[t] = 1;
    mergedInto[a] = mergedInto[b] = t;

    // Neighbours of t: those of a and b, each resolved to the region it now belongs to.
    const merged = liveNeighbours(t, [a, b]);
    neighbours[a] = neighbours[b] = [];
    neighbours.push(merged);
    listSize[t] = merged.length;
    for (const nb of merged) {
      const list = neighbours[nb]!;
      list.push(t);
      // Entries for regions merged away stay in a list until it doubles; then it is resolved again.
      if (list.length >= 2 * listSize[nb]! + 8) {
        neighbours[nb] = liveNeighbours(nb, [nb]);
        listSize[nb] = neighbours[nb]!.length;
      }
      heap.push(similarity(t, nb), Math.min(t, nb), Math.max(t, nb));
    }
    // Pairs with a merged-away region stay in the heap until it holds twice the adjacency; then they go.
    if (heap.length >= adj.length) heap.retain((p, q) => alive[p] === 1 && alive[q] === 1);
  }

  const boxes = new Int32Array(4 * next);
  for (let r = 0; r < next; r++) {
    boxes[4 * r] = bbox[4 * r]!;
    boxes[4 * r + 1] = bbox[4 * r + 1]!;
    boxes[4 * r + 2] = bbox[4 * r + 2]! + 1;
    boxes[4 * r + 3] = bbox[4 * r + 3]! + 1;
  }
  return { boxes, merges: merges.subarray(0, 2 * (next - r0)) };
}

function histogramIntersection(h: Float32Array, a: number, b: number, len: number): number {
  let s = 0;
  for (let k = 0; k < len; k++) {
    const x = h[a + k]!, y = h[b + k]!;
    s += x < y ? x : y;
  }
  return s;
}

/**
 * Max-heap of (similarity, a, b) in typed arrays; among equal similarities the
 * pair with the smaller a, then the smaller b, comes first.
 */
class PairHeap {
  private sim: Float64Array;
  private a: Int32Array;
  private b: Int32Array;
  length = 0;

  constructor(capacity: number) {
    const c = Math.max(16, capacity);
    this.sim = new Float64Array(c);
    this.a = new Int32Array(c);
    this.b = new Int32Array(c);
  }

  private before(i: number, j: number): boolean {
    const si = this.sim[i]!, sj = this.sim[j]!;
    if (si !== sj) return si > sj;
    if (this.a[i] !== this.a[j]) return this.a[i]! < this.a[j]!;
    return this.b[i]! < this.b[j]!;
  }

  private swap(i: number, j: number): void {
    const s = this.sim[i]!, a = this.a[i]!, b = this.b[i]!;
    this.sim[i] = this.sim[j]!; this.a[i] = this.a[j]!; this.b[i] = this.b[j]!;
    this.sim[j] = s; this.a[j] = a; this.b[j] = b;
  }

  push(sim: number, a: number, b: number): void {
    if (this.length === this.sim.length) {
      const grow = <T extends Float64Array | Int32Array>(x: T): T => {
        const y = new (x.constructor as new (n: number) => T)(x.length * 2);
        y.set(x);
        return y;
      };
      this.sim = grow(this.sim);
      this.a = grow(this.a);
      this.b = grow(this.b);
    }
    let i = this.length++;
    this.sim[i] = sim;
    this.a[i] = a;
    this.b[i] = b;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Keep only the pairs `keep` accepts, and restore the heap order (Floyd's bottom-up build). */
  retain(keep: (a: number, b: number) => boolean): void {
    let n = 0;
    for (let i = 0; i < this.length; i++) {
      if (!keep(this.a[i]!, this.b[i]!)) continue;
      this.sim[n] = this.sim[i]!;
      this.a[n] = this.a[i]!;
      this.b[n] = this.b[i]!;
      n++;
    }
    this.length = n;
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i, n);
  }

  pop(): [number, number] {
    const top: [number, number] = [this.a[0]!, this.b[0]!];
    const last = --this.length;
    if (last > 0) {
      this.sim[0] = this.sim[last]!;
      this.a[0] = this.a[last]!;
      this.b[0] = this.b[last]!;
      this.siftDown(0, last);
    }
    return top;
  }

  private siftDown(i: number, n: number): void {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < n && this.before(l, m)) m = l;
      if (r < n && this.before(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}
