import type { Cancellation } from '../core/cancellation.js';
import type { Mode } from '../core/selective-search/selective-search.js';
import type { RgbImage } from '../core/image.js';
import type { RawDetections } from '../core/postprocess.js';
import type { Stopwatch } from './stopwatch.js';

/** The R-CNN generations, oldest first. */
export const PIPELINES = Object.freeze(['rcnn', 'fast-rcnn', 'faster-rcnn'] as const);
export type PipelineName = (typeof PIPELINES)[number];

/** 'multi': a model's test scales (faster-rcnn), where it has them; 'single': its input size. */
export const SCALE_MODES = Object.freeze(['single', 'multi'] as const);
export type ScaleMode = (typeof SCALE_MODES)[number];

/** Per-request overrides of a model's defaults, checked and named as in src/options.ts. */
export interface RunOptions {
  /** Overrides postprocess.scoreThreshold. */
  scoreThreshold?: number;
  /** Overrides postprocess.nmsThreshold. */
  iouThreshold?: number;
  /** Overrides postprocess.detectionsPerImage. */
  maxDetections?: number;
  /** Regions xyxy in original pixels, for the pipelines that take proposals; default: the model's selective search. */
  proposals?: Float32Array;
  /** rcnn, fast-rcnn: selective search's strategy set instead of the model's proposals.mode. */
  mode?: Mode;
  /** Regions proposed: instead of the model's proposals.maxProposals (rcnn, fast-rcnn) or rpn.postNmsTopN (faster-rcnn). */
  maxProposals?: number;
  /** faster-rcnn: 'single' runs at the model's input size only, not at its test scales. */
  scales?: ScaleMode;
  /** Attach each detection's provenance (core/provenance.ts); off, nothing is built. */
  provenance?: boolean;
  /** Stops a run between stages (R-CNN: between batches; selective search: every few thousand merges) by throwing; an AbortSignal is one. */
  signal?: Cancellation;
}

/** Fixed boxes, scored for their classes on an image and on its occluded copies. */
export interface OcclusionScorer {
  /** Backbone passes that scoring under these patches costs: one per occluded image, or (R-CNN) per occluded crop, mirror images included. */
  passes(patches: Float32Array): number;
  /**
   * Each box's probability for its class.
   * @param patches P*4 xyxy in original pixels.
   * @param signal checked between batches: its throw stops the work.
   * @returns K scores on the image as it is, P x K with each patch greyed in turn, and the backbone batches run.
   */
  score(patches: Float32Array, signal?: Cancellation): Promise<{ baseline: Float32Array; occluded: Float32Array; batches: number }>;
}

/** One R-CNN generation bound to a loaded model: upright RGB pixels in, detections in original pixels out. */
export interface PipelineRunner {
  /** Stage times (ms) are added to `clock`. */
  run(image: RgbImage, options: RunOptions, clock: Stopwatch): Promise<RawDetections>;
  /**
   * Fixed boxes scored for their classes on the image and on occluded copies
   * of it, through this pipeline's backbone, RoI op and head, at the model's
   * input size (pipelines/occlusion.ts).
   * @param boxes K*4 xyxy in original pixels.
   */
  occlusion(image: RgbImage, boxes: Float32Array, classIds: Int32Array): OcclusionScorer;
}
