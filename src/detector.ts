/**
 * The library entry point: load a model package, detect on images, close.
 * The CLI, the server and the batch client all go through it. Nothing here
 * reads the environment or prints; warnings go to `onWarning`.
 */

import { DetectError } from './errors.js';
import { DEFAULT_DECODE_LIMITS, decodeImage, readImageFile, type DecodeLimits } from './image/decode.js';
import { loadModel, modelName, resolveModelDir, type LoadedModel } from './model/package.js';
import { FasterRcnn } from './pipelines/faster-rcnn/faster-rcnn.js';
import type { PipelineRunner } from './pipelines/pipeline-runner.js';
import { Stopwatch } from './pipelines/stopwatch.js';
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
  /** Milliseconds per stage, and `total` from input bytes to detections. */
  timings: Record<string, number>;
}

export interface DetectorOptions {
  /** 'cpu' (default) or 'cuda'; CUDA falls back to the CPU with a warning. */
  device?: Device | string;
  /** ONNX Runtime intra-op threads; 0 (default) = ONNX Runtime's choice. */
  intraOpThreads?: number;
  /** Byte and pixel limits on inputs. */
  limits?: Partial<DecodeLimits>;
  /** Folder of packages that bare model names resolve in (default: the shipped models/). */
  modelsDir?: string;
  onWarning?: (message: string) => void;
}

export interface DetectOptions {
  /** Default: the model's first pipeline. */
  pipeline?: PipelineName | string;
  /** Keep detections scoring strictly above this, in [0, 1]. */
  scoreThreshold?: number;
  /** Per-class NMS IoU threshold, in [0, 1]. */
  iouThreshold?: number;
  /** Keep at most this many detections, 1..10000. */
  maxDetections?: number;
}

function checkRange(name: string, v: number | undefined, lo: number, hi: number, integer = false): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (integer && !Number.isInteger(v))) {
    throw new DetectError('INVALID_OPTION', `${name} is ${JSON.stringify(v)}; allowed: ${integer ? 'an integer' : 'a number'} from ${lo} to ${hi}`);
  }
}

export class Detector {
  private readonly runners: Partial<Record<PipelineName, PipelineRunner>> = {};
  private readonly limits: DecodeLimits;
  /** The pipelines this model has heads for, oldest generation first. */
  readonly pipelines: readonly PipelineName[];

  private constructor(
    readonly model: LoadedModel,
    limits: DecodeLimits,
  ) {
    this.limits = limits;
    if (model.manifest.pipelines['faster-rcnn']) this.runners['faster-rcnn'] = new FasterRcnn(model);
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
    const dir = await resolveModelDir(model, options.modelsDir);
    const loaded = await loadModel(dir, { device, intraOpThreads: options.intraOpThreads ?? 0, onFallback: options.onWarning });
    return new Detector(loaded, { ...DEFAULT_DECODE_LIMITS, ...options.limits });
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
    const pipeline = (options.pipeline ?? this.pipelines[0]) as PipelineName;
    if (!(PIPELINES as readonly string[]).includes(pipeline)) {
      throw new DetectError('INVALID_OPTION', `pipeline ${JSON.stringify(pipeline)} is unknown; allowed: ${PIPELINES.join(', ')}`);
    }
    const runner = this.runners[pipeline];
    if (!runner) throw new DetectError('UNSUPPORTED_PIPELINE', `model ${this.name} has no ${pipeline} heads; it serves: ${this.pipelines.join(', ')}`);
    checkRange('scoreThreshold', options.scoreThreshold, 0, 1);
    checkRange('iouThreshold', options.iouThreshold, 0, 1);
    checkRange('maxDetections', options.maxDetections, 1, 10000, true);

    const bytes = typeof input === 'string' ? await readImageFile(input) : input;
    const image = await decodeImage(bytes, this.limits);
    clock.lap('decode');
    const raw = await runner.run(image, { scoreThreshold: options.scoreThreshold, nmsThreshold: options.iouThreshold, maxDetections: options.maxDetections }, clock);
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
    return { model: this.name, pipeline, image: { width: image.width, height: image.height }, detections, timings: clock.timings() };
  }

  async close(): Promise<void> {
    await this.model.close();
  }
}
