/**
 * Selective search (Uijlings et al., IJCV 2013): diversified hierarchical
 * grouping over colour spaces, segmentation scales k and similarity sets, and
 * the paper's ranking.
 *
 * Ranking (section 3.4): within one hierarchy the region formed last (the
 * whole image) has position 1, the one before it 2, and so on down to the
 * initial regions; each position is multiplied by a random number in [0, 1);
 * all hierarchies' regions are sorted by that value, ascending, and repeated
 * boxes dropped. The random numbers come from a PRNG seeded by (seed,
 * strategy index), so the same image, options and seed always give the same
 * proposals, however strategies are spread over threads.
 */

import type { Cancellation } from '../cancellation.js';
import type { RgbImage } from '../image.js';
import { channelCount, convertColour, type ColourSpace } from './colour-spaces.js';
import { SortedGraph } from './felzenszwalb.js';
import { colourBins, groupRegions, regionFeatures, type Hierarchy, type Similarities } from './grouping.js';
import { withKernelMemory } from './kernels.js';
import { textureBins } from './texture.js';
import { mulberry32 } from '../random.js';

export interface Strategy {
  colourSpace: ColourSpace;
  /** Felzenszwalb scale k. */
  k: number;
  similarities: Similarities;
}

export const MODES = Object.freeze(['single', 'fast', 'quality', 'opencv-fast', 'opencv-quality'] as const);
export type Mode = (typeof MODES)[number];

const CTSF: Similarities = { colour: true, texture: true, size: true, fill: true };
const TSF: Similarities = { colour: false, texture: true, size: true, fill: true };
const F: Similarities = { colour: false, texture: false, size: false, fill: true };
const S: Similarities = { colour: false, texture: false, size: true, fill: false };

function product(spaces: ColourSpace[], ks: number[], sims: Similarities[]): Strategy[] {
  return spaces.flatMap((colourSpace) => ks.flatMap((k) => sims.map((similarities) => ({ colourSpace, k, similarities }))));
}

/**
 * Strategy sets. The paper's (section 5.2): single = HSV, k 100, C+T+S+F;
 * fast = {HSV, Lab} x {C+T+S+F, T+S+F} x k {50, 100} (8 hierarchies);
 * quality = {HSV, Lab, rgI, H, I} x {C+T+S+F, T+S+F, F, S} x k {50, 100, 150, 300} (80).
 * OpenCV ximgproc's: fast = {HSV, Lab} x k {150, 300, 450} x {C+T+S+F, T+S+F} (12);
 * quality = {HSV, Lab, I, H, rgI} x k {150, 300, 450, 600, 750} x {C+T+S+F, T+S+F, F, S} (100).
 */
export function strategiesFor(mode: Mode): Strategy[] {
  switch (mode) {
    case 'single':
      return product(['HSV'], [100], [CTSF]);
    case 'fast':
      return product(['HSV', 'Lab'], [50, 100], [CTSF, TSF]);
    case 'quality':
      return product(['HSV', 'Lab', 'rgI', 'H', 'I'], [50, 100, 150, 300], [CTSF, TSF, F, S]);
    case 'opencv-fast':
      return product(['HSV', 'Lab'], [150, 300, 450], [CTSF, TSF]);
    case 'opencv-quality':
      return product(['HSV', 'Lab', 'I', 'H', 'rgI'], [150, 300, 450, 600, 750], [CTSF, TSF, F, S]);
  }
}

/** Segmentation settings: the paper uses sigma 0.8 and a minimum region size of k; OpenCV 0.8 and 100. */
export function segmentationFor(mode: Mode, k: number): { sigma: number; minComponentSize: number } {
  return { sigma: 0.8, minComponentSize: mode.startsWith('opencv') ? 100 : k };
}

/**
 * Run strategies on an image; strategies sharing a colour space and k share
 * one segmentation and its region features.
 * @param indices which of `strategies` to run (all by default).
 * @param signal checked as each grouping goes; its throw stops the run.
 * @returns one hierarchy per index, in the order of `indices`.
 */
export function runStrategies(
  image: RgbImage,
  strategies: readonly Strategy[],
  mode: Mode,
  indices: readonly number[] = strategies.map((_, i) => i),
  signal?: Cancellation,
): Hierarchy[] {
  const out = new Map<number, Hierarchy>();
  const byImage = new Map<ColourSpace, number[]>();
  for (const i of indices) {
    const s = strategies[i]!;
    const list = byImage.get(s.colourSpace) ?? [];
    list.push(i);
    byImage.set(s.colourSpace, list);
  }
  // The kernels' memory serves every colour space's texture and graph in turn (kernels.ts).
  withKernelMemory(() => {
    for (const [space, members] of byImage) {
      const converted = convertColour(image.data, image.width, image.height, space);
      const texture = textureBins(converted);
      const colours = colourBins(converted);
      // The sorted graph depends on the image and sigma only: one per colour space and sigma.
      const graphs = new Map<number, SortedGraph>();
      const byK = new Map<number, number[]>();
      for (const i of members) byK.set(strategies[i]!.k, [...(byK.get(strategies[i]!.k) ?? []), i]);
      for (const [k, group] of byK) {
        const { sigma, minComponentSize } = segmentationFor(mode, k);
        let graph = graphs.get(sigma);
        if (!graph) graphs.set(sigma, (graph = SortedGraph.build(converted.data, image.width, image.height, channelCount(space), sigma)));
        const features = regionFeatures(graph.segment(k, minComponentSize), colours, converted.channels, texture);
        for (const i of group) out.set(i, groupRegions(features, strategies[i]!.similarities, signal));
      }
      for (const graph of graphs.values()) graph.release();
    }
  });
  return indices.map((i) => out.get(i)!);
}

export interface RankOptions {
  seed: number;
  /** Keep at most this many proposals. */
  maxProposals?: number;
  /** Drop boxes narrower or shorter than this, in pixels. */
  minSize?: number;
}

/** Ranked proposals, and where each came from. */
export interface RankedRegions {
  /** K*4 xyxy in pixels, best first. */
  boxes: Float32Array;
  /** K: the index (in the strategy set) of the strategy whose hierarchy formed the region first in the ranking. */
  strategy: Int32Array;
  /** K: 0 for a region of that strategy's initial segmentation, m for the region its m-th merge formed. */
  level: Int32Array;
  /** K: the merges of that hierarchy (its initial regions less one): `level` runs to this. */
  merges: Int32Array;
}

/**
 * Rank the regions of all hierarchies as the paper, drop duplicates (a box
 * two hierarchies formed keeps the origin ranked first).
 * @param hierarchies one per strategy, in strategy order.
 */
export function rankRegions(hierarchies: readonly Pick<Hierarchy, 'boxes'>[], options: RankOptions): RankedRegions {
  let total = 0;
  for (const h of hierarchies) total += h.boxes.length / 4;
  const value = new Float64Array(total);
  const strategyOf = new Int32Array(total);
  const positionOf = new Int32Array(total);
  let o = 0;
  hierarchies.forEach((h, s) => {
    const rand = mulberry32(Math.imul(options.seed >>> 0, 0x9e3779b1) ^ (s + 1) * 0x85ebca6b);
    const n = h.boxes.length / 4;
    for (let p = 0; p < n; p++, o++) {
      value[o] = (n - p) * rand();
      strategyOf[o] = s;
      positionOf[o] = p;
    }
  });
  const order = Int32Array.from({ length: total }, (_, i) => i).sort((x, y) => value[x]! - value[y]! || strategyOf[x]! - strategyOf[y]! || positionOf[x]! - positionOf[y]!);
  const seen = new Set<string>();
  const out: number[] = [];
  const kept: number[] = [];
  const maxProposals = options.maxProposals ?? Infinity;
  const minSide = options.minSize ?? 0;
  for (const i of order) {
    if (kept.length >= maxProposals) break;
    const b = hierarchies[strategyOf[i]!]!.boxes;
    const q = 4 * positionOf[i]!;
    const x1 = b[q]!, y1 = b[q + 1]!, x2 = b[q + 2]!, y2 = b[q + 3]!;
    if (x2 - x1 < minSide || y2 - y1 < minSide) continue;
    const key = `${x1},${y1},${x2},${y2}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(x1, y1, x2, y2);
    kept.push(i);
  }
  // A hierarchy of n boxes holds R = (n + 1) / 2 initial regions, then the R - 1 merges' regions.
  const mergesOf = (i: number) => (hierarchies[strategyOf[i]!]!.boxes.length / 4 - 1) / 2;
  return {
    boxes: Float32Array.from(out),
    strategy: Int32Array.from(kept, (i) => strategyOf[i]!),
    level: Int32Array.from(kept, (i) => Math.max(0, positionOf[i]! - mergesOf(i))),
    merges: Int32Array.from(kept, mergesOf),
  };
}

/** rankRegions' boxes alone: K*4 xyxy in pixels, best first. */
export function rankProposals(hierarchies: readonly Pick<Hierarchy, 'boxes'>[], options: RankOptions): Float32Array {
  return rankRegions(hierarchies, options).boxes;
}

export interface SelectiveSearchOptions extends RankOptions {
  mode: Mode;
  /** Checked as the grouping goes (every GROUPING_CHECK_EVERY merges): its throw stops the search. */
  signal?: Cancellation;
}

/** Selective search on one image, serially: the ranked regions and their origins. */
export function selectiveSearchRegions(image: RgbImage, options: SelectiveSearchOptions): RankedRegions {
  const strategies = strategiesFor(options.mode);
  return rankRegions(runStrategies(image, strategies, options.mode, undefined, options.signal), options);
}

/** Selective search on one image, serially: K*4 xyxy in pixels, best first. */
export function selectiveSearch(image: RgbImage, options: SelectiveSearchOptions): Float32Array {
  return selectiveSearchRegions(image, options).boxes;
}
