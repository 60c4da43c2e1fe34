/**
 * The library entry point: load a model package, detect on images, close.
 * The CLI, the server and the batch client all go through it. Nothing here
 * reads the environment or prints; warnings go to `onWarning`.
 */

import { availableParallelism } from 'node:os';
import { DetectError } from './errors.js';
import { DEFAULT_DECODE_LIMITS, decodeImage, readImageFile, type DecodeLimits } from './image/decode.js';
import { loadModel, modelName, resolveModelDir, ROI_PLACEMENTS, type BackboneViews, type GraphHooks, type LoadedModel, type RoiPlacement } from './model/package.js';
import { rcnnTransform } from './core/rcnn-transform.js';
import { strongestChannels, type ChannelView } from './core/activations.js';
import { checkPrecision, precisionsOf } from './model/manifest.js';
import type { Precision } from './model/manifest-schema.js';
import { FasterRcnn } from './pipelines/faster-rcnn/faster-rcnn.js';
import { FastRcnn } from './pipelines/fast-rcnn.js';
import { Rcnn } from './pipelines/rcnn.js';
import type { Cancellation } from './core/cancellation.js';
import type { Provenance } from './core/provenance.js';
import { PIPELINES, type PipelineName, type PipelineRunner, type RunOptions } from './pipelines/pipeline-runner.js';
import type { RgbImage } from './core/image.js';
import { gridFor, occlusionMaps, parseBox, type ExplainTarget, type OcclusionResult } from './explain.js';
import { didYouMean } from './suggest.js';
import { checkOption, checkOptions, OPTIONS, type OptionSpec, type OptionsOf } from './options.js';
import { Stopwatch } from './pipelines/stopwatch.js';
import { DEFAULT_PROPOSAL_MAX_PIXELS } from './proposals.js';
import { DEVICE_FALLBACKS, parseDevice, type Device, type DeviceFallback } from './runtime/device.js';
import { RoiThreads } from './workers/roi-threads.js';

export { PIPELINES, type PipelineName } from './pipelines/pipeline-runner.js';

export interface Detection {
  /** (x1, y1, x2, y2) in original-image pixels, after EXIF rotation. */
  box: [number, number, number, number];
  /** Class name from the package. */
  label: string;
  /** Class index as the model's framework numbers it (torchvision: 0 is the background). */
  classId: number;
  /** Class probability in (0, 1]. */
  score: number;
  /** Where it came from (core/provenance.ts), with the provenance option. */
  provenance?: Provenance;
}

export interface DetectionResult {
  model: string;
  pipeline: PipelineName;
  /** The precision of the graphs that ran. */
  precision: Precision;
  image: { width: number; height: number };
  /** By decreasing score. */
  detections: Detection[];
  /** Regions the heads scored: selective search's, the caller's, or the RPN's proposals. */
  regions: number;
  /** Milliseconds per stage, and `total` from input bytes to detections. */
  timings: Record<string, number>;
}

/** Occlusion maps of chosen detections (src/explain.ts). */
export interface ExplainResult extends OcclusionResult {
  model: string;
  pipeline: PipelineName;
  precision: Precision;
  image: { width: number; height: number };
  /** The detections the request's detect options found, where it chose among them (detection, top). */
  detections?: Detection[];
  timings: Record<string, number>;
}

/** An explanation's options: the detect run's, which detections, the grid and its budget, and a cancellation. */
export type ExplainOptions = Omit<OptionsOf<'explain'>, 'model'> & { signal?: Cancellation };

/** A backbone layer's strongest activation maps for an image. */
export interface FeatureViewResult {
  model: string;
  layer: { name: string; op: string };
  image: { width: number; height: number };
  /** [channels, height, width] of the layer for this image (its padding cropped off). */
  shape: [number, number, number];
  /** The strongest channels, strongest first: index, maximum and mean activation, and the map, row by row. */
  channels: ChannelView[];
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
  /** ONNX Runtime intra-op threads, and the RoI ops' (src/workers/roi-threads.ts); 0 (default) = ONNX Runtime's choice, one per core. */
  intraOpThreads?: number;
  /**
   * Concurrent detections run each graph as one batch of at most this many
   * calls (src/runtime/batching.ts: images of the same padded size, a head's
   * RoIs of any count); 1 (default): each alone. For GPUs; a CPU gains little.
   */
  maxBatch?: number;
  /**
   * Where the RoI ops run: 'host' (default), TypeScript on the feature
   * maps; 'graph', inside the graphs (Faster R-CNN's RoIAlign and Fast
   * R-CNN's RoI max pooling in the head, R-CNN's warps in the backbone), on
   * the graphs' device (docs/gpu.md, "Placements").
   */
  roiPlacement?: RoiPlacement;
  /** A device that cannot be used: 'cpu' (default), run there and tell onWarning; 'error', refuse with DEVICE_UNAVAILABLE. */
  deviceFallback?: DeviceFallback;
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
  /** Expose the backbone's layers for features() and filters() (model/package.ts featureLayers; no cost measurable end to end, docs/explain.md). */
  featureLayers?: boolean;
  /** Calibration's look inside the graphs (`rcnn-serve models quantize`); not for serving. */
  graphHooks?: GraphHooks;
}

type Runners = Partial<Record<PipelineName, PipelineRunner>>;

/** A run's pipeline and precision, and the runner that serves them. */
interface PipelineRun {
  pipeline: PipelineName;
  precision: Precision;
  runner: PipelineRunner;
}

function runnersOf(model: LoadedModel, roiThreads: RoiThreads): Runners {
  const p = model.manifest.pipelines;
  const runners: Runners = {};
  if (p.rcnn) runners.rcnn = new Rcnn(model);
  if (p['fast-rcnn']) runners['fast-rcnn'] = new FastRcnn(model, roiThreads);
  if (p['faster-rcnn']) runners['faster-rcnn'] = new FasterRcnn(model, roiThreads);
  return runners;
}

/**
 * A detection's options: those of OPTIONS (src/options.ts) that the detect
 * operation takes, less `model` (the detector is one model), plus the
 * caller's regions and a cancellation.
 */
export type DetectOptions = Omit<OptionsOf<'detect'>, 'model'> & {
  /**
   * Regions for rcnn and fast-rcnn instead of the model's selective search:
   * (x1, y1, x2, y2) in original-image pixels, at most 10000; clipped to the image.
   */
  proposals?: readonly (readonly number[])[];
  /** Aborts a run between stages (R-CNN: between batches): an AbortSignal, or anything whose throwIfAborted() throws to stop. */
  signal?: Cancellation;
};

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

/** The load options' ranges (the detector's, not a request's: they are not in OPTIONS). */
const LOAD_RANGES = {
  intraOpThreads: { type: 'integer', minimum: 0, maximum: 1024, doc: 'ONNX Runtime intra-op threads' },
  maxBatch: { type: 'integer', minimum: 1, maximum: 64, doc: 'calls of a graph run as one batch' },
  roiPlacement: { type: 'string', enum: ROI_PLACEMENTS, doc: 'where the RoI ops run' },
  deviceFallback: { type: 'string', enum: DEVICE_FALLBACKS, doc: 'what a device that cannot be used does' },
  'limits.maxPixels': { type: 'integer', minimum: 1, maximum: 1e10, doc: 'decoded pixels' },
  'limits.maxBytes': { type: 'integer', minimum: 1, maximum: 2 ** 31, doc: 'encoded bytes' },
  proposalMaxPixels: { type: 'integer', minimum: 1, maximum: 1e10, doc: "selective search's pixels" },
} as const satisfies Record<string, OptionSpec>;

export class Detector {
  private readonly runners: Runners;
  /** The other precisions' models and runners, opened at their first request. */
  private readonly others = new Map<Precision, Promise<{ model: LoadedModel; runners: Runners }>>();
  /** The faster-rcnn runner, typed as such: its RPN serves rpnProposals(). */
  private readonly rpn: FasterRcnn | undefined;
  /** The pipelines this model has heads for, oldest generation first. */
  readonly pipelines: readonly PipelineName[];
  /** The precisions this model runs in; the first is the default (precisionsOf). */
  readonly precisions: readonly Precision[];

  private constructor(
    readonly model: LoadedModel,
    private readonly limits: DecodeLimits,
    private readonly proposalMaxPixels: number,
    private readonly reopen: (precision: Precision) => Promise<LoadedModel>,
    /** The RoI ops' threads, shared by every precision's runners. */
    private readonly roiThreads: RoiThreads,
  ) {
    this.runners = runnersOf(model, roiThreads);
    this.rpn = this.runners['faster-rcnn'] as FasterRcnn | undefined;
    this.pipelines = PIPELINES.filter((name) => this.runners[name] !== undefined);
    this.precisions = precisionsOf(model.manifest);
  }

  /**
   * Load a package by name (under `modelsDir`) or folder path.
   * @throws DetectError MODEL_NOT_FOUND, INVALID_MODEL or INVALID_DEVICE.
   */
  static async load(model: string, options: DetectorOptions = {}): Promise<Detector> {
    const device = parseDevice(options.device ?? 'cpu');
    const values = { intraOpThreads: options.intraOpThreads, maxBatch: options.maxBatch, roiPlacement: options.roiPlacement, deviceFallback: options.deviceFallback, 'limits.maxPixels': options.limits?.maxPixels, 'limits.maxBytes': options.limits?.maxBytes, proposalMaxPixels: options.proposalMaxPixels };
    for (const [name, v] of Object.entries(values)) if (v !== undefined) checkOption(name, LOAD_RANGES[name as keyof typeof LOAD_RANGES], v);
    const dir = await resolveModelDir(model, options.modelsDir);
    const open = (precision?: Precision) =>
      loadModel(dir, { device, intraOpThreads: options.intraOpThreads ?? 0, maxBatch: options.maxBatch, roiPlacement: options.roiPlacement, deviceFallback: options.deviceFallback, onFallback: options.onWarning, hooks: options.graphHooks, precision, featureLayers: options.featureLayers });
    const loaded = await open();
    // The RoI ops use as many threads as ONNX Runtime does (its default, 0, is one per core).
    const roiThreads = new RoiThreads(options.intraOpThreads || availableParallelism());
    return new Detector(loaded, { ...DEFAULT_DECODE_LIMITS, ...options.limits }, options.proposalMaxPixels ?? DEFAULT_PROPOSAL_MAX_PIXELS, open, roiThreads);
  }

  /** The runners of a precision: the loaded one's, or another's, opened once at its first request. */
  private async runnersFor(precision: Precision): Promise<Runners> {
    if (precision === this.model.precision) return this.runners;
    checkPrecision(this.model.manifest, precision);
    let other = this.others.get(precision);
    if (!other) {
      other = this.reopen(precision).then((model) => ({ model, runners: runnersOf(model, this.roiThreads) }));
      other.catch(() => this.others.delete(precision));
      this.others.set(precision, other);
    }
    return (await other).runners;
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
    const run = await this.runFor('detect', options);
    const proposals = options.proposals === undefined ? undefined : callerProposals(options.proposals, run.pipeline);
    const image = await this.decode(input);
    clock.lap('decode');
    return this.detectOn(image, run, { ...options, proposals }, clock);
  }

  /**
   * The pipeline and precision a run asks for, their runner, and its options checked.
   * @throws DetectError UNSUPPORTED_PIPELINE, UNSUPPORTED_PRECISION, INVALID_OPTION
   */
  private async runFor(op: 'detect' | 'explain', options: Readonly<Record<string, unknown>> & Pick<DetectOptions, 'pipeline' | 'precision' | 'scales'>): Promise<PipelineRun> {
    const pipeline = options.pipeline ?? this.pipelines[this.pipelines.length - 1]!;
    checkOption('pipeline', OPTIONS.pipeline, pipeline);
    if (options.precision !== undefined) checkOption('precision', OPTIONS.precision, options.precision);
    const precision = options.precision ?? this.precisions[0]!;
    const runner = (await this.runnersFor(precision))[pipeline];
    if (!runner) throw new DetectError('UNSUPPORTED_PIPELINE', `model ${this.name} has no ${pipeline} heads; it serves: ${this.pipelines.join(', ')}`);
    checkOptions(op, options, { pipeline });
    if (options.scales === 'multi' && !this.model.manifest.pipelines['faster-rcnn']?.testScales) {
      throw new DetectError('INVALID_OPTION', `model ${this.name} has no test scales (pipelines.faster-rcnn.testScales); allowed: single`);
    }
    return { pipeline, precision, runner };
  }

  /** Detections on a decoded image. */
  private async detectOn(image: RgbImage, { pipeline, precision, runner }: PipelineRun, options: RunOptions, clock: Stopwatch): Promise<DetectionResult> {
    if (pipeline !== 'faster-rcnn' && options.proposals === undefined && image.width * image.height > this.proposalMaxPixels) {
      throw new DetectError(
        'IMAGE_TOO_LARGE',
        `the image is ${image.width}x${image.height} = ${image.width * image.height} pixels; ${pipeline} runs selective search on at most ${this.proposalMaxPixels}: ` +
          'send a smaller image, your own proposals, or use faster-rcnn',
      );
    }
    const raw = await runner.run(image, options, clock);
    const classes = this.classes;
    const detections: Detection[] = [];
    for (let i = 0; i < raw.scores.length; i++) {
      const id = raw.classIds[i]!;
      detections.push({
        box: [raw.boxes[4 * i]!, raw.boxes[4 * i + 1]!, raw.boxes[4 * i + 2]!, raw.boxes[4 * i + 3]!],
        label: classes[id] ?? String(id),
        classId: id,
        score: raw.scores[i]!,
        ...(raw.provenance && { provenance: raw.provenance[i]! }),
      });
    }
    return { model: this.name, pipeline, precision, image: { width: image.width, height: image.height }, detections, regions: raw.regions, timings: clock.timings() };
  }

  /**
   * Occlusion sensitivity (src/explain.ts): for the chosen detections (the
   * top k of a detect run with these options, the one at index `detection`,
   * or the caller's `box` for class `label`), each box is held fixed and
   * re-scored for its class with a grey patch over each grid position.
   * @throws DetectError INVALID_OPTION for a selection that does not fit (an index past the detections,
   * an unknown label, a patch larger than the image, a grid over the budget), and as detect().
   */
  async explain(input: Uint8Array | string, options: ExplainOptions = {}): Promise<ExplainResult> {
    const clock = new Stopwatch();
    const run = await this.runFor('explain', options);
    const chosen = ['detection', 'top', 'box'].filter((k) => options[k as keyof ExplainOptions] !== undefined);
    if (chosen.length > 1) throw new DetectError('INVALID_OPTION', `${chosen.join(' and ')} each choose what to explain; give one of detection, top, or box with label`);
    if ((options.box === undefined) !== (options.label === undefined)) throw new DetectError('INVALID_OPTION', 'box and label go together: the box is scored for the class label names');
    const { detection, top, box, label, patch, stride, maxPasses, signal, ...detect } = options;
    const image = await this.decode(input);
    clock.lap('decode');
    let targets: ExplainTarget[];
    let detections: Detection[] | undefined;
    if (box !== undefined) {
      const classId = this.classes.indexOf(label!);
      if (classId < 1) throw new DetectError('INVALID_OPTION', `label ${JSON.stringify(label)} is not a class of model ${this.name}${didYouMean(label!, this.classes.slice(1))}; its classes: ${this.classes.slice(1).join(', ')}`);
      targets = [{ box: parseBox(box, image), label: label!, classId, from: 'caller' }];
    } else {
      gridFor(image, { patch, stride });
      detections = (await this.detectOn(image, run, { ...detect, provenance: true, signal }, clock)).detections;
      if (detection !== undefined && detection >= detections.length) {
        throw new DetectError('INVALID_OPTION', `detection ${detection} is out of range: the detect run found ${detections.length} detection(s)${detections.length ? `; allowed: 0 to ${detections.length - 1}` : ''}`);
      }
      const indices = detection !== undefined ? [detection] : detections.slice(0, top ?? 1).map((_, i) => i);
      targets = indices.map((i) => ({ box: detections![i]!.box, label: detections![i]!.label, classId: detections![i]!.classId, from: i, score: detections![i]!.score, provenance: detections![i]!.provenance }));
    }
    const occlusion = await occlusionMaps(run.runner, image, targets, { patch, stride, maxPasses, signal });
    clock.lap('occlusion');
    return { model: this.name, pipeline: run.pipeline, precision: run.precision, image: { width: image.width, height: image.height }, ...(detections && { detections }), ...occlusion, timings: clock.timings() };
  }

  /**
   * A backbone layer's activation maps for an image (Zeiler & Fergus 2014):
   * the `channels` whose maximum activation is largest, at the layer's own
   * resolution, the input's padding cropped off.
   * @throws DetectError FEATURE_VIEWS_OFF; INVALID_OPTION for a layer the backbone does not have (naming those it has); and as detect().
   */
  async features(input: Uint8Array | string, options: Omit<OptionsOf<'features'>, 'model'>): Promise<FeatureViewResult> {
    const clock = new Stopwatch();
    checkOptions('features', options);
    const views = this.views();
    const names = views.layers.map((l) => l.name);
    const layer = views.layers.find((l) => l.name === options.layer);
    if (!layer) throw new DetectError('INVALID_OPTION', `layer ${JSON.stringify(options.layer ?? '')} is not a viewable layer of ${this.name}'s backbone${didYouMean(options.layer ?? '', names)}; allowed: ${names.join(', ')}`);
    const image = await this.decode(input);
    clock.lap('decode');
    const x = rcnnTransform(image, this.model.manifest.input);
    const out = await views.graph.run({ [this.model.manifest.backbone.input]: { data: x.tensor, dims: [1, 3, x.paddedHeight, x.paddedWidth] } }, [layer.output]);
    clock.lap('backbone');
    const t = out[layer.output];
    if (!t || t.dims.length !== 4) throw new DetectError('INVALID_MODEL', `layer ${layer.name} of ${this.name} gives ${t ? `dims [${t.dims.join(', ')}]` : 'nothing'}; feature views read [1, C, H, W]`);
    const [, c, h, w] = t.dims as [number, number, number, number];
    // The part of the map over the image, not its padding.
    const rows = Math.max(1, Math.min(h, Math.round((h * x.height) / x.paddedHeight))), cols = Math.max(1, Math.min(w, Math.round((w * x.width) / x.paddedWidth)));
    const channels = strongestChannels(t.data, c, h, w, rows, cols, options.channels ?? (OPTIONS.channels.default as number));
    clock.lap('views');
    return { model: this.name, layer: { name: layer.name, op: layer.op }, image: { width: image.width, height: image.height }, shape: [c, rows, cols], channels, timings: clock.timings() };
  }

  /**
   * The backbone's first convolution's filters, [out, in, kh, kw] (int8 ones dequantized), and the model's channel order.
   * @throws DetectError FEATURE_VIEWS_OFF; INVALID_MODEL where its weights are computed in the graph.
   */
  filters(): { dims: [number, number, number, number]; data: Float32Array; channelOrder: 'RGB' | 'BGR' } {
    const filters = this.views().filters;
    if (!filters) throw new DetectError('INVALID_MODEL', `${this.name}'s backbone computes its first convolution's weights (no float32 or int8 initializer holds them): no filters to show`);
    return { ...filters, channelOrder: this.model.manifest.input.channelOrder };
  }

  private views(): BackboneViews {
    if (!this.model.features) throw new DetectError('FEATURE_VIEWS_OFF', `model ${this.name} was loaded without feature views; load it with featureLayers (the server: FEATURE_VIEWS=on)`);
    return this.model.features;
  }

  /**
   * The region proposals of the model's RPN (its faster-rcnn pipeline), before any box head.
   * @throws DetectError UNSUPPORTED_PIPELINE when the model has no RPN, and as detect() for bad input.
   */
  async rpnProposals(input: Uint8Array | string, options: Pick<OptionsOf<'proposals'>, 'maxProposals'> = {}): Promise<RpnProposalResult> {
    const clock = new Stopwatch();
    const runner = this.rpn;
    if (!runner) throw new DetectError('UNSUPPORTED_PIPELINE', `model ${this.name} has no RPN (no faster-rcnn heads); it serves: ${this.pipelines.join(', ')}`);
    checkOptions('proposals', options, { method: 'rpn' });
    const image = await this.decode(input);
    clock.lap('decode');
    const { boxes, scores } = await runner.regionProposals(image, clock, options.maxProposals);
    const proposals: [number, number, number, number][] = [];
    for (let i = 0; i < scores.length; i++) proposals.push([boxes[4 * i]!, boxes[4 * i + 1]!, boxes[4 * i + 2]!, boxes[4 * i + 3]!]);
    return { model: this.name, method: 'rpn', image: { width: image.width, height: image.height }, proposals, scores: Array.from(scores), timings: clock.timings() };
  }

  /** Read (a path) and decode an image within the detector's limits. */
  private async decode(input: Uint8Array | string) {
    return decodeImage(typeof input === 'string' ? await readImageFile(input) : input, this.limits);
  }

  async close(): Promise<void> {
    const others = await Promise.allSettled(this.others.values());
    this.others.clear();
    await Promise.all([this.model.close(), this.roiThreads.close(), ...others.flatMap((o) => (o.status === 'fulfilled' ? [o.value.model.close()] : []))]);
  }
}
