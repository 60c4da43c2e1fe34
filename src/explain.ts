/**
 * Why the detector said so: occlusion-sensitivity maps of chosen detections
 * (Zeiler & Fergus 2014, section 4.2). The grid, the budget of backbone
 * passes, the scoring through the pipeline (pipelines/occlusion.ts) and the
 * maps' summary; Detector.explain chooses the detections and calls it.
 */

import type { Cancellation } from './core/cancellation.js';
import type { RgbImage } from './core/image.js';
import { gridPatches, occlusionGrid, type OcclusionGrid } from './core/occlusion.js';
import type { Provenance, Xyxy } from './core/provenance.js';
import { DetectError } from './errors.js';
import { EXPLAIN_DEFAULT_PASSES, EXPLAIN_MAX_PASSES, OPTIONS } from './options.js';
import type { PipelineRunner } from './pipelines/pipeline-runner.js';

/** A box to explain, and the class it is scored for. */
export interface ExplainTarget {
  box: Xyxy;
  label: string;
  classId: number;
  /** Where it comes from: its index in the detect result, or `caller` for a box the request gave. */
  from: number | 'caller';
  /** The detection's own score (detections only). */
  score?: number;
  provenance?: Provenance;
}

export interface OcclusionMap {
  target: ExplainTarget;
  /** The fixed box's score for its class on the image as it is, at the model's input size. */
  baseline: number;
  /** Its score with each patch greyed: rows x columns, row by row. */
  scores: number[];
  /** baseline - score per patch: positive where greying the patch lowered the score. */
  drops: number[];
  /** The patch whose greying lowered the score most: its square, in original-image pixels, and the drop. */
  peak: { box: Xyxy; drop: number };
}

export interface OcclusionResult {
  grid: { patch: number; stride: number; columns: number; rows: number; xs: number[]; ys: number[] };
  maps: OcclusionMap[];
  /** What it cost: backbone passes (occluded images, or R-CNN's crops), the runs they took, and milliseconds. */
  cost: { passes: number; batches: number; ms: number };
}

export interface OcclusionSettings {
  patch?: number;
  stride?: number;
  maxPasses?: number;
  signal?: Cancellation;
}

/**
 * The grid the settings ask for over the image.
 * @throws DetectError INVALID_OPTION for a patch larger than the image.
 */
export function gridFor(image: { width: number; height: number }, s: OcclusionSettings): OcclusionGrid {
  const patch = s.patch ?? (OPTIONS.patch.default as number);
  const stride = s.stride ?? (OPTIONS.stride.default as number);
  const side = Math.min(image.width, image.height);
  if (patch > side) throw new DetectError('INVALID_OPTION', `patch ${patch} is larger than the ${image.width}x${image.height} image; allowed: 2 to ${side} (its shorter side)`);
  return occlusionGrid(image.width, image.height, patch, stride);
}

/** The smallest stride at which a grid over the image has at most `budget` positions (for the refusal's advice). */
function strideWithin(image: { width: number; height: number }, patch: number, budget: number): number {
  for (let stride = 1; stride < Math.max(image.width, image.height); stride++) {
    const g = occlusionGrid(image.width, image.height, patch, stride);
    if (g.xs.length * g.ys.length <= budget) return stride;
  }
  return Math.max(image.width, image.height);
}

/**
 * Occlusion maps of the targets through one pipeline: the budget checked
 * before any pass runs, then every patch position scored for every target
 * (they share the backbone passes).
 * @throws DetectError INVALID_OPTION when the grid needs more passes than the budget, saying what fits.
 */
export async function occlusionMaps(runner: PipelineRunner, image: RgbImage, targets: readonly ExplainTarget[], s: OcclusionSettings): Promise<OcclusionResult> {
  const started = performance.now();
  const grid = gridFor(image, s);
  const budget = s.maxPasses ?? EXPLAIN_DEFAULT_PASSES;
  const patches = gridPatches(grid);
  const boxes = Float32Array.from(targets.flatMap((t) => t.box));
  const scorer = runner.occlusion(image, boxes, Int32Array.from(targets, (t) => t.classId));
  const passes = scorer.passes(patches);
  if (passes > budget) {
    const positions = grid.xs.length * grid.ys.length;
    throw new DetectError(
      'INVALID_OPTION',
      `a ${grid.patch}-pixel patch every ${grid.stride} pixels over the ${image.width}x${image.height} image is ${grid.xs.length}x${grid.ys.length} = ${positions} positions, ` +
        `${passes} backbone passes for ${targets.length} detection(s), over the budget maxPasses ${budget}; ` +
        `use stride ${strideWithin(image, grid.patch, Math.floor((budget * positions) / passes))} or more, fewer detections, or maxPasses up to ${EXPLAIN_MAX_PASSES}`,
    );
  }
  const { baseline, occluded, batches } = await scorer.score(patches, s.signal);
  const k = targets.length;
  const maps = targets.map((target, t): OcclusionMap => {
    const scores = Array.from({ length: patches.length / 4 }, (_, p) => occluded[p * k + t]!);
    const drops = scores.map((v) => baseline[t]! - v);
    let best = 0;
    drops.forEach((d, p) => (d > drops[best]! ? (best = p) : 0));
    const peakBox: Xyxy = [patches[4 * best]!, patches[4 * best + 1]!, patches[4 * best + 2]!, patches[4 * best + 3]!];
    return { target, baseline: baseline[t]!, scores, drops, peak: { box: peakBox, drop: drops[best] ?? 0 } };
  });
  return {
    grid: { patch: grid.patch, stride: grid.stride, columns: grid.xs.length, rows: grid.ys.length, xs: grid.xs, ys: grid.ys },
    maps,
    cost: { passes, batches, ms: Math.round((performance.now() - started) * 100) / 100 },
  };
}

/**
 * A box given as "x1,y1,x2,y2" in original-image pixels, clipped to the
 * image (as the caller's proposals are).
 * @throws DetectError INVALID_OPTION for what is not a box, or a box with nothing inside the image.
 */
export function parseBox(text: string, image: { width: number; height: number }): Xyxy {
  const v = text.split(',').map((x) => Number(x.trim()));
  if (v.length !== 4 || !v.every(Number.isFinite) || !(v[2]! > v[0]! && v[3]! > v[1]!)) {
    throw new DetectError('INVALID_OPTION', `box ${JSON.stringify(text)} is not a box; allowed: "x1,y1,x2,y2", four numbers in original-image pixels with x2 > x1 and y2 > y1`);
  }
  const clip = (x: number, max: number) => Math.min(max, Math.max(0, x));
  const box: Xyxy = [clip(v[0]!, image.width), clip(v[1]!, image.height), clip(v[2]!, image.width), clip(v[3]!, image.height)];
  if (!(box[2] > box[0] && box[3] > box[1])) throw new DetectError('INVALID_OPTION', `box ${JSON.stringify(text)} lies outside the ${image.width}x${image.height} image`);
  return box;
}
