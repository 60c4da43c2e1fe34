/**
 * A piscina worker: runs detection and region proposals off the event loop
 * (ONNX Runtime's session.run and selective search block the thread they run
 * on). Loaded models are cached per thread. Failures a caller can act on come
 * back as `{ error: { code, message } }` so their codes survive the thread
 * boundary; anything else is thrown and becomes a 500.
 */

import { Detector, type DetectionResult, type DetectOptions, type RpnProposalResult } from '../detector.js';
import { DetectError } from '../errors.js';
import type { DecodeLimits } from '../image/decode.js';
import { DEFAULT_PROPOSAL_MAX_PIXELS, RegionProposer, type ProposalResult, type ProposeOptions } from '../proposals.js';
import type { Device } from '../runtime/session.js';

export interface WorkerSettings {
  device: Device;
  intraOpThreads: number;
  limits: DecodeLimits;
  /**
   * Selective search's pixel limit, under limits.maxPixels (default
   * DEFAULT_PROPOSAL_MAX_PIXELS), for POST /v1/proposals and for the rcnn and
   * fast-rcnn pipelines: it runs at the image's own size, its time and memory
   * grow with the pixels, and a deadline cannot stop it.
   */
  proposalMaxPixels?: number;
}

export type InferenceTask =
  | {
      kind: 'detect';
      modelDir: string;
      bytes: Uint8Array;
      options: DetectOptions;
      settings: WorkerSettings;
      /** Epoch ms after which the caller has given up: a long run (R-CNN) stops at its next batch. */
      deadlineAt?: number;
    }
  | { kind: 'proposals'; bytes: Uint8Array; options: ProposeOptions; settings: WorkerSettings }
  | { kind: 'rpn'; modelDir: string; bytes: Uint8Array; options: { maxProposals?: number }; settings: WorkerSettings };

export type InferenceReply<T> = { result: T } | { error: { code: string; message: string } };

const detectors = new Map<string, Promise<Detector>>();
let proposer: RegionProposer | undefined;

function detectorFor(modelDir: string, settings: WorkerSettings): Promise<Detector> {
  let d = detectors.get(modelDir);
  if (!d) {
    d = Detector.load(modelDir, { device: settings.device, intraOpThreads: settings.intraOpThreads, limits: settings.limits, proposalMaxPixels: proposalMaxPixels(settings) });
    d.catch(() => detectors.delete(modelDir));
    detectors.set(modelDir, d);
  }
  return d;
}

/** The lower of selective search's own limit and the images'. */
function proposalMaxPixels(settings: WorkerSettings): number {
  return Math.min(settings.limits.maxPixels, settings.proposalMaxPixels ?? DEFAULT_PROPOSAL_MAX_PIXELS);
}

export default async function run(task: InferenceTask): Promise<InferenceReply<DetectionResult | ProposalResult | RpnProposalResult>> {
  try {
    if (task.kind === 'rpn') return { result: await (await detectorFor(task.modelDir, task.settings)).rpnProposals(task.bytes, task.options) };
    if (task.kind === 'detect') {
      const detector = await detectorFor(task.modelDir, task.settings);
      const signal = task.deadlineAt === undefined ? undefined : AbortSignal.timeout(Math.max(0, task.deadlineAt - Date.now()));
      return { result: await detector.detect(task.bytes, { ...task.options, signal }) };
    }
    // Strategies run on this worker's thread: the pool is the parallelism.
    proposer ??= new RegionProposer({ workers: 0, limits: { ...task.settings.limits, maxPixels: proposalMaxPixels(task.settings) } });
    return { result: await proposer.propose(task.bytes, task.options) };
  } catch (err) {
    if (err instanceof DetectError) return { error: { code: err.code, message: err.message } };
    throw err;
  }
}
