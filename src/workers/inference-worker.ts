/**
 * A piscina worker: runs detection and region proposals off the event loop
 * (ONNX Runtime's session.run and selective search block the thread they run
 * on). Loaded models are cached per thread. Failures a caller can act on come
 * back as `{ error: { code, message } }` so their codes survive the thread
 * boundary; anything else is thrown and becomes a 500.
 */

import { Detector, type DetectionResult, type DetectOptions, type ExplainOptions, type ExplainResult, type FeatureViewResult, type RpnProposalResult } from '../detector.js';
import type { OptionsOf } from '../options.js';
import { DetectError } from '../errors.js';
import type { DecodeLimits } from '../image/decode.js';
import type { Cancellation } from '../core/cancellation.js';
import { DEFAULT_PROPOSAL_MAX_PIXELS, RegionProposer, type ProposalResult, type ProposeOptions } from '../proposals.js';
import type { Device, DeviceFallback } from '../runtime/device.js';
import type { RoiPlacement } from '../model/package.js';

export interface WorkerSettings {
  device: Device;
  intraOpThreads: number;
  limits: DecodeLimits;
  /**
   * Selective search's pixel limit, under limits.maxPixels (default
   * DEFAULT_PROPOSAL_MAX_PIXELS), for POST /v1/proposals and for the rcnn and
   * fast-rcnn pipelines: it runs at the image's own size, its time and memory
   * grow with the pixels, and a deadline stops its grouping (every 256 merges) but not its segmentation.
   */
  proposalMaxPixels?: number;
  /** Concurrent tasks of this worker run each graph as one batch of at most this many (Detector's maxBatch); with the pool's tasksPerWorker. */
  maxBatch?: number;
  /** Where the RoI ops run (Detector's roiPlacement). */
  roiPlacement?: RoiPlacement;
  /** A device that cannot be used: run on the CPU (a warning in the reply) or refuse (Detector's deviceFallback). */
  deviceFallback?: DeviceFallback;
  /** Expose the backbones' layers for feature views (Detector's featureLayers). */
  featureLayers?: boolean;
}

/** A model's first-layer filters, as Detector.filters gives them. */
export type FiltersResult = ReturnType<Detector['filters']>;

export type InferenceTask =
  | {
      kind: 'detect';
      modelDir: string;
      bytes: Uint8Array;
      options: DetectOptions;
      settings: WorkerSettings;
      /** Epoch ms after which the caller has given up: the run stops at its next stage (R-CNN: batch). */
      deadlineAt?: number;
      /** Shared with the pool: 1 once it is shutting down, and the run stops at its next stage too. */
      stop?: Int32Array;
    }
  | {
      kind: 'explain';
      modelDir: string;
      bytes: Uint8Array;
      options: ExplainOptions;
      settings: WorkerSettings;
      /** As a detect task's: the occlusion stops between its batches. */
      deadlineAt?: number;
      stop?: Int32Array;
    }
  | {
      kind: 'proposals';
      bytes: Uint8Array;
      options: ProposeOptions;
      settings: WorkerSettings;
      /** As a detect task's: selective search's grouping stops at its next check. */
      deadlineAt?: number;
      stop?: Int32Array;
    }
  | { kind: 'rpn'; modelDir: string; bytes: Uint8Array; options: { maxProposals?: number }; settings: WorkerSettings }
  | { kind: 'features'; modelDir: string; bytes: Uint8Array; options: Omit<OptionsOf<'features'>, 'model'>; settings: WorkerSettings }
  | { kind: 'filters'; modelDir: string; settings: WorkerSettings };

/** A task's answer, and the warnings this worker gave since its last answer (a device fallback as a model loads). */
export type InferenceReply<T> = ({ result: T } | { error: { code: string; message: string } }) & { warnings?: string[] };

/** Warnings not yet handed back with an answer. */
const warnings: string[] = [];

const detectors = new Map<string, Promise<Detector>>();
let proposer: RegionProposer | undefined;

function detectorFor(modelDir: string, settings: WorkerSettings): Promise<Detector> {
  let d = detectors.get(modelDir);
  if (!d) {
    d = Detector.load(modelDir, {
      device: settings.device,
      intraOpThreads: settings.intraOpThreads,
      maxBatch: settings.maxBatch,
      roiPlacement: settings.roiPlacement,
      deviceFallback: settings.deviceFallback,
      featureLayers: settings.featureLayers,
      onWarning: (m) => warnings.push(m),
      limits: settings.limits,
      proposalMaxPixels: proposalMaxPixels(settings),
    });
    d.catch(() => detectors.delete(modelDir));
    detectors.set(modelDir, d);
  }
  return d;
}

/** The lower of selective search's own limit and the images'. */
function proposalMaxPixels(settings: WorkerSettings): number {
  return Math.min(settings.limits.maxPixels, settings.proposalMaxPixels ?? DEFAULT_PROPOSAL_MAX_PIXELS);
}

/**
 * The checks a task makes as it goes (between stages, and inside selective
 * search's grouping): its caller's deadline and
 * the pool's shutdown flag, read directly (this thread's timers may not run
 * while it works, so no timer-driven AbortSignal).
 */
function cancellation(task: Extract<InferenceTask, { kind: 'detect' | 'explain' | 'proposals' }>): Cancellation | undefined {
  const { deadlineAt, stop } = task;
  if (deadlineAt === undefined && stop === undefined) return undefined;
  return {
    throwIfAborted() {
      if (stop !== undefined && Atomics.load(stop, 0) === 1) throw new Error('stopped: the pool is shutting down');
      if (deadlineAt !== undefined && Date.now() > deadlineAt) throw new Error('stopped: past the caller\'s deadline');
    },
  };
}

export default async function run(task: InferenceTask): Promise<InferenceReply<DetectionResult | ExplainResult | FeatureViewResult | FiltersResult | ProposalResult | RpnProposalResult>> {
  const reply = await answer(task);
  return warnings.length ? { ...reply, warnings: warnings.splice(0) } : reply;
}

async function answer(task: InferenceTask): Promise<InferenceReply<DetectionResult | ExplainResult | FeatureViewResult | FiltersResult | ProposalResult | RpnProposalResult>> {
  try {
    if (task.kind === 'features') return { result: await (await detectorFor(task.modelDir, task.settings)).features(task.bytes, task.options) };
    if (task.kind === 'filters') return { result: (await detectorFor(task.modelDir, task.settings)).filters() };
    if (task.kind === 'rpn') return { result: await (await detectorFor(task.modelDir, task.settings)).rpnProposals(task.bytes, task.options) };
    if (task.kind === 'detect') {
      const detector = await detectorFor(task.modelDir, task.settings);
      return { result: await detector.detect(task.bytes, { ...task.options, signal: cancellation(task) }) };
    }
    if (task.kind === 'explain') {
      const detector = await detectorFor(task.modelDir, task.settings);
      return { result: await detector.explain(task.bytes, { ...task.options, signal: cancellation(task) }) };
    }
    // Strategies run on this worker's thread: the pool is the parallelism.
    proposer ??= new RegionProposer({ workers: 0, limits: { ...task.settings.limits, maxPixels: proposalMaxPixels(task.settings) } });
    return { result: await proposer.propose(task.bytes, task.options, cancellation(task)) };
  } catch (err) {
    if (err instanceof DetectError) return { error: { code: err.code, message: err.message } };
    throw err;
  }
}
