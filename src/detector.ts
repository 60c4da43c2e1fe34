/**
 * The library entry point: load a model package, detect on images, close.
 * The CLI, the server and the batch client all go through it. Nothing here
 * reads the environment or prints; warnings go to `onWarning`.
 */

import { MODES, type Mode } from './core/selective-search/selective-search.js';
import { DetectError } from './errors.js';
import { DEFAULT_DECODE_LIMITS, decodeImage, readImageFile, type DecodeLimits } from './image/decode.js';
import { loadModel, modelName, resolveModelDir, type LoadedModel } from './model/package.js';
import { FasterRcnn } from './pipelines/faster-rcnn/faster-rcnn.js';
import { FastRcnn } from './pipelines/fast-rcnn.js';
import { Rcnn } from './pipelines/rcnn.js';
import type { Cancellation } from './core/cancellation.js';
import { SCALE_MODES, type PipelineRunner, type ScaleMode } from './pipelines/pipeline-runner.js';
import { Stopwatch } from './pipelines/stopwatch.js';
import { DEFAULT_PROPOSAL_MAX_PIXELS } from './proposals.js';
import { parseDevice, type Device } from './runtime/session.js';

/** The R-CNN generations, oldest first. */
export const PIPELINES = Object.freeze(['rcnn', 'fast-rcnn', 'faster-rcnn'] as const);
export type PipelineName = (typeof PIPELINES)[number];

export interface Detection {
  /** (x1, y1, x2, y2) in original-image pixels, after EXIF rotation. */
  box: [number, number, number, number];
  /** Class name from the package. */
  label: string;
  /** Class index as the model's framework numbers it (torchvision: 0 is the background). */
  classId: number;
  /** Class probability in (0, 1]. */
  score: number;
}

export interface DetectionResult {
  model: string;
  pipeline: PipelineName;
  image: { width: number; height: number };
  /** By decreasing score. */
  detections: Detection[];
  /** Regions the heads scored: selective search's, the caller's, or the RPN's proposals. */
  regions: number;
  /** Milliseconds per stage, and `total` from input bytes to detections. */
  timings: Record<string, number>;
}

/** The RPN's proposals of a Faster R-CNN model. */
export interface RpnProposalResult {
  model: string;
  method: 'rpn';
  image: { width: number; height: number };
  /** (x1, y1, x2, y2) in original-image pixels, after EXIF rotation, by decreasing objectness. */
  proposals: [number, number, number, number][];
  /** Objectness probability of each proposal. */
  scores: number[];
  timings: Record<string, number>;
}

export interface DetectorOptions {
  /** 'cpu' (default) or 'cuda'; CUDA falls back to the CPU with a warning. */
  device?: Device | string;
  /** ONNX Runtime intra-op threads; 0 (default) = ONNX Runtime's choice. */
  intraOpThreads?: number;
  /** Byte and pixel limits on inputs. */
  limits?: Partial<DecodeLimits>;
  /**
   * rcnn and fast-rcnn: the largest image selective search runs on, in pixels
   * (default DEFAULT_PROPOSAL_MAX_PIXELS); a larger one is refused with
   * IMAGE_TOO_LARGE unless the caller gives its own proposals. Selective
   * search runs at the image's own size, its time and memory grow with the
   * pixels, and no deadline can stop it.
   */
  proposalMaxPixels?: number;
  /** Folder of packages that bare model names resolve in (default: the shipped models/). */
  modelsDir?: string;
  onWarning?: (message: string) => void;
}

export interface DetectOptions {
  /** Default: the newest generation the model has heads for (faster-rcnn, else fast-rcnn, else rcnn). */
  pipeline?: PipelineName | string;
  /** Keep detections scoring strictly above this, in [0, 1]. */
  scoreThreshold?: number;
  /** Per-class NMS IoU threshold, in [0, 1]. */
  iouThreshold?: number;
  /** Keep at most this many detections, 1..10000. */
  maxDetections?: number;
  /**
   * Regions for rcnn and fast-rcnn instead of the model's selective search:
   * (x1, y1, x2, y2) in original-image pixels, at most 10000; clipped to the image.
   */
  proposals?: readonly (readonly number[])[];
  /** rcnn, fast-rcnn: selective search's mode and proposal count instead of the model's. */
  proposalMode?: Mode | string;
  maxProposals?: number;
  /**
   * faster-rcnn: 'multi' (the default where the model has test scales) runs
   * the image at each of them and merges the detections; 'single' at the
   * model's input size only, faster.
   */
  scales?: ScaleMode | string;
  /** Aborts a run between stages (R-CNN: between batches): an AbortSignal, or anything whose throwIfAborted() throws to stop. */
  signal?: Cancellation;
}

/** At most this many caller regions per image. */
export const MAX_CALLER_PROPOSALS = 10000;

/** Validate caller regions into a flat xyxy array. */
function callerProposals(boxes: unknown, pipeline: PipelineName): Float32Array {
  if (pipeline === 'faster-rcnn') throw new DetectError('INVALID_OPTION', 'proposals are for the rcnn and fast-rcnn pipelines; faster-rcnn proposes its own with its RPN');
  if (!Array.isArray(boxes) || boxes.length > MAX_CALLER_PROPOSALS) {
    throw new DetectError('INVALID_OPTION', `proposals must be an array of at most ${MAX_CALLER_PROPOSALS} boxes [x1, y1, x2, y2]`);
  }
  const out = new Float32Array(4 * boxes.length);
  boxes.forEach((b: unknown, i) => {
    if (!Array.isArray(b) || b.length !== 4 || !b.every((v) => typeof v === 'number' && Number.isFinite(v)) || !(b[2] > b[0] && b[3] > b[1])) {
      throw new DetectError('INVALID_OPTION', `proposal ${i} is ${JSON.stringify(b)}; each must be [x1, y1, x2, y2], finite numbers in pixels with x2 > x1 and y2 > y1`);
    }
    out.set(b as number[], 4 * i);
  });
  return out;
}

function checkRange(name: string, v: number | undefined, lo: number, hi: number, integer = false): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (integer && !Number.isInteger(v))) {
    throw new DetectError('INVALID_OPTION', `${name} is ${JSON.stringify(v)}; allowed: ${integer ? 'an integer' : 'a number'} from ${lo} to ${hi}`);
  }
}

export class Detector {
  private readonly runners: Partial<Record<PipelineName, PipelineRunner>> = {};
  /** The faster-rcnn runner, typed as such: its RPN serves rpnProposals(). */
  private readonly rpn: FasterRcnn | undefined;
  /** The pipelines this model has heads for, oldest generation first. */
  readonly pipelines: readonly PipelineName[];

  private constructor(
    readonly model: LoadedModel,
    private readonly limits: DecodeLimits,
    private readonly proposalMaxPixels: number,
  ) {
    const p = model.manifest.pipelines;
    if (p.rcnn) this.runners.rcnn = new Rcnn(model);
    if (p['fast-rcnn']) this.runners['fast-rcnn'] = new FastRcnn(model);
    if (p['faster-rcnn']) this.runners['faster-rcnn'] = this.rpn = new FasterRcnn(model);
    this.pipelines = PIPELINES.filter((name) => this.runners[name] !== undefined);
  }

  /**
   * Load a package by name (under `modelsDir`) or folder path.
   * @throws DetectError MODEL_NOT_FOUND, INVALID_MODEL or INVALID_DEVICE.
   */
  static async load(model: string, options: DetectorOptions = {}): Promise<Detector> {
    const device = parseDevice(options.device ?? 'cpu');
    checkRange('intraOpThreads', options.intraOpThreads, 0, 1024, true);
    checkRange('limits.maxPixels', options.limits?.maxPixels, 1, 1e10, true);
    checkRange('limits.maxBytes', options.limits?.maxBytes, 1, 2 ** 31, true);
    checkRange('proposalMaxPixels', options.proposalMaxPixels, 1, 1e10, true);
    const dir = await resolveModelDir(model, options.modelsDir);
    const loaded = await loadModel(dir, { device, intraOpThreads: options.intraOpThreads ?? 0, onFallback: options.onWarning });
    return new Detector(loaded, { ...DEFAULT_DECODE_LIMITS, ...options.limits }, options.proposalMaxPixels ?? DEFAULT_PROPOSAL_MAX_PIXELS);
  }

  get name(): string {
    return modelName(this.model);
  }

  /** Class names by class id. */
  get classes(): readonly string[] {
    return this.model.manifest.classes;
  }

  /**
   * Detect objects in an encoded image (bytes) or an image file (path).
   * @throws DetectError for unreadable files, bad images, bad options or an unsupported pipeline.
   */
  async detect(input: Uint8Array | string, options: DetectOptions = {}): Promise<DetectionResult> {
    const clock = new Stopwatch();
    const pipeline = (options.pipeline ?? this.pipelines[this.pipelines.length - 1]) as PipelineName;
    if (!(PIPELINES as readonly string[]).includes(pipeline)) {
      throw new DetectError('INVALID_OPTION', `pipeline ${JSON.stringify(pipeline)} is unknown; allowed: ${PIPELINES.join(', ')}`);
    }
    const runner = this.runners[pipeline];
    if (!runner) throw new DetectError('UNSUPPORTED_PIPELINE', `model ${this.name} has no ${pipeline} heads; it serves: ${this.pipelines.join(', ')}`);
    checkRange('scoreThreshold', options.scoreThreshold, 0, 1);
    checkRange('iouThreshold', options.iouThreshold, 0, 1);
    checkRange('maxDetections', options.maxDetections, 1, 10000, true);
    const proposals = options.proposals === undefined ? undefined : callerProposals(options.proposals, pipeline);
    checkRange('maxProposals', options.maxProposals, 1, 100000, true);
    if (options.proposalMode !== undefined && !(MODES as readonly string[]).includes(options.proposalMode)) {
      throw new DetectError('INVALID_OPTION', `proposalMode ${JSON.stringify(options.proposalMode)} is unknown; allowed: ${MODES.join(', ')}`);
    }
    if (pipeline === 'faster-rcnn' && (options.proposalMode !== undefined || options.maxProposals !== undefined)) {
      throw new DetectError('INVALID_OPTION', 'proposalMode and maxProposals set selective search for rcnn and fast-rcnn; faster-rcnn proposes with its RPN');
    }
    this.checkScales(options.scales, pipeline);

    const image = await this.decode(input);
    if (pipeline !== 'faster-rcnn' && proposals === undefined && image.width * image.height > this.proposalMaxPixels) {
      throw new DetectError(
        'IMAGE_TOO_LARGE',
        `the image is ${image.width}x${image.height} = ${image.width * image.height} pixels; ${pipeline} runs selective search on at most ${this.proposalMaxPixels}: ` +
          'send a smaller image, your own proposals, or use faster-rcnn',
      );
    }
    clock.lap('decode');
    const raw = await runner.run(
      image,
      {
        scoreThreshold: options.scoreThreshold,
        nmsThreshold: options.iouThreshold,
        maxDetections: options.maxDetections,
        proposals,
        proposalMode: options.proposalMode as Mode | undefined,
        maxProposals: options.maxProposals,
        scales: options.scales as ScaleMode | undefined,
        signal: options.signal,
      },
      clock,
    );
    const classes = this.classes;
    const detections: Detection[] = [];
    for (let i = 0; i < raw.scores.length; i++) {
      const id = raw.classIds[i]!;
      detections.push({
        box: [raw.boxes[4 * i]!, raw.boxes[4 * i + 1]!, raw.boxes[4 * i + 2]!, raw.boxes[4 * i + 3]!],
        label: classes[id] ?? String(id),
        classId: id,
        score: raw.scores[i]!,
      });
    }
    return { model: this.name, pipeline, image: { width: image.width, height: image.height }, detections, regions: raw.regions, timings: clock.timings() };
  }

  private checkScales(scales: string | undefined, pipeline: PipelineName): void {
    if (scales === undefined) return;
    if (!(SCALE_MODES as readonly string[]).includes(scales)) {
      throw new DetectError('INVALID_OPTION', `scales ${JSON.stringify(scales)} is unknown; allowed: ${SCALE_MODES.join(', ')}`);
    }
    if (pipeline !== 'faster-rcnn') throw new DetectError('INVALID_OPTION', `scales is a faster-rcnn option; ${pipeline} runs at the model's input size`);
    if (scales === 'multi' && !this.model.manifest.pipelines['faster-rcnn']?.testScales) {
      throw new DetectError('INVALID_OPTION', `model ${this.name} has no test scales (pipelines.faster-rcnn.testScales); allowed: single`);
    }
  }

  /**
   * The region proposals of the model's RPN (its faster-rcnn pipeline), before any box head.
   * @throws DetectError UNSUPPORTED_PIPELINE when the model has no RPN, and as detect() for bad input.
   */
  async rpnProposals(input: Uint8Array | string, options: { maxProposals?: number } = {}): Promise<RpnProposalResult> {
    const clock = new Stopwatch();
    const runner = this.rpn;
    if (!runner) throw new DetectError('UNSUPPORTED_PIPELINE', `model ${this.name} has no RPN (no faster-rcnn heads); it serves: ${this.pipelines.join(', ')}`);
    checkRange('maxProposals', options.maxProposals, 1, 100000, true);
    const image = await this.decode(input);
    clock.lap('decode');
    const { boxes, scores } = await runner.regionProposals(image, clock);
    const n = Math.min(scores.length, options.maxProposals ?? Infinity);
    const proposals: [number, number, number, number][] = [];
    for (let i = 0; i < n; i++) proposals.push([boxes[4 * i]!, boxes[4 * i + 1]!, boxes[4 * i + 2]!, boxes[4 * i + 3]!]);
    return { model: this.name, method: 'rpn', image: { width: image.width, height: image.height }, proposals, scores: Array.from(scores.subarray(0, n)), timings: clock.timings() };
  }

  /** Read (a path) and decode an image within the detector's limits. */
  private async decode(input: Uint8Array | string) {
    return decodeImage(typeof input === 'string' ? await readImageFile(input) : input, this.limits);
  }

  async close(): Promise<void> {
    await this.model.close();
  }
}
