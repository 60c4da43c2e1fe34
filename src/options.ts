/**
 * Every request option, declared once: its public name (the same in the
 * library, the query string, the CLI as kebab-case flags, and the batch
 * client), type, range, default and doc line, and which pipelines or
 * proposal methods take it. The library's validation, the server's
 * querystring schemas, the CLI's flags and --help, and the batch client's
 * options are derived from here (the CLI's in cli/flags.ts);
 * test/unit/options.test.ts holds
 * openapi.yaml's parameters to it.
 *
 * Adding an option: an entry in OPTIONS, its name in the OPERATIONS that
 * take it, and the code that uses it. Nothing else.
 */

import { BOX_FORMATS } from './core/boxes.js';
import { MODES } from './core/selective-search/selective-search.js';
import { DetectError } from './errors.js';
import { PRECISIONS } from './model/manifest-schema.js';
import { DEFAULT_MODEL } from './model/package.js';
import { PIPELINES, SCALE_MODES, type PipelineName } from './pipelines/pipeline-runner.js';

/** How POST /v1/proposals and `rcnn-serve proposals` find regions. */
export const PROPOSAL_METHODS = Object.freeze(['selective-search', 'rpn'] as const);
export type ProposalMethod = (typeof PROPOSAL_METHODS)[number];

export const RENDER_FORMATS = Object.freeze(['png', 'jpeg'] as const);

/**
 * Explain's budget of backbone passes per request: the default covers a
 * 512 x 512 image (the default model's input size) at patch 32 and stride 16
 * (31 x 31 = 961 positions), about 25 s of backbone on this project's 2-core
 * machine, within the server's default 30 s deadline; the maximum bounds what
 * any one request may ask for.
 */
export const EXPLAIN_DEFAULT_PASSES = 1024;
export const EXPLAIN_MAX_PASSES = 16384;
/** Detections explained by one request at most (their maps share the backbone passes). */
export const EXPLAIN_MAX_TARGETS = 20;

/**
 * The score threshold where a person looks at the detections: the CLI's detect, POST /v1/detect
 * and /v1/render, the demo page, the batch client. A model's own postprocess.scoreThreshold
 * (torchvision's box_score_thresh, 0.05) is the evaluation threshold: AP counts low-scoring
 * detections, so the library and the paths whose results feed an evaluation (detect
 * --coco-results, batch --coco) keep it; drawn, it is a mass of boxes (43 to 100 per photo with
 * the default model). 0.5 is detectron2's demo default (--confidence-threshold).
 */
export const DISPLAY_SCORE_THRESHOLD = 0.5;

export interface OptionSpec {
  type: 'number' | 'integer' | 'string' | 'boolean';
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  enum?: readonly string[];
  /** A fixed default; where the default comes from the model or the server, `defaultFrom` says so instead. */
  default?: number | string | boolean;
  defaultFrom?: string;
  /** The CLI flag's placeholder, e.g. "N" in "--max-detections N". */
  arg?: string;
  /** One line: what it does. */
  doc: string;
  /** Detection: only these pipelines take it, and what the others do instead. */
  pipelines?: readonly PipelineName[];
  /** Proposals: only these methods take it. */
  methods?: readonly ProposalMethod[];
  /** What the pipelines or methods that do not take it do instead ("proposes with its RPN"). */
  otherwise?: string;
}

export const OPTIONS = {
  model: { type: 'string', minLength: 1, maxLength: 200, arg: 'NAME', doc: 'model package by name (the CLI also takes a folder)', defaultFrom: `${DEFAULT_MODEL}; a server's: its first`, methods: ['rpn'], otherwise: 'needs no model' },
  pipeline: { type: 'string', enum: PIPELINES, arg: 'NAME', doc: 'the R-CNN generation to run', defaultFrom: 'the newest the model has' },
  scoreThreshold: { type: 'number', minimum: 0, maximum: 1, arg: 'S', doc: 'keep detections scoring above S', defaultFrom: "the model's postprocess.scoreThreshold" },
  iouThreshold: { type: 'number', minimum: 0, maximum: 1, arg: 'T', doc: 'per-class NMS IoU threshold', defaultFrom: "the model's postprocess.nmsThreshold" },
  maxDetections: { type: 'integer', minimum: 1, maximum: 10000, arg: 'N', doc: 'at most N detections per image', defaultFrom: "the model's postprocess.detectionsPerImage" },
  mode: {
    type: 'string',
    enum: MODES,
    arg: 'M',
    doc: "selective search's strategy set",
    defaultFrom: "the model's proposals.mode",
    pipelines: ['rcnn', 'fast-rcnn'],
    methods: ['selective-search'],
    otherwise: 'proposes with its RPN',
  },
  maxProposals: {
    type: 'integer',
    minimum: 1,
    maximum: 100000,
    arg: 'N',
    doc: 'at most N region proposals, best first',
    defaultFrom: "the model's proposals.maxProposals, or rpn.postNmsTopN for faster-rcnn",
  },
  scales: {
    type: 'string',
    enum: SCALE_MODES,
    arg: 'single|multi',
    doc: "multi runs the image at each of the model's test scales and merges the detections; single at its input size, faster",
    defaultFrom: 'multi where the model has test scales',
    pipelines: ['faster-rcnn'],
    otherwise: "runs at the model's input size",
  },
  precision: {
    type: 'string',
    enum: PRECISIONS,
    arg: 'P',
    doc: 'run the fp32 graphs, or the fp16 or int8 ones where the model has them (int8: faster on CPUs, README "int8"; fp16: for GPUs, README "GPU")',
    defaultFrom: "the model's first: fp32 where it has fp32 graphs",
  },
  provenance: {
    type: 'boolean',
    default: false,
    doc: 'each detection says where it came from: its region before box regression, the rank of that region, and the selective-search strategy and hierarchy level, the caller\'s index, or the RPN anchor, objectness and test scale',
  },
  detection: { type: 'integer', minimum: 0, maximum: 9999, arg: 'I', doc: 'explain the detection at index I of the detect result (by decreasing score)' },
  top: { type: 'integer', minimum: 1, maximum: EXPLAIN_MAX_TARGETS, arg: 'K', doc: 'explain the K best detections', defaultFrom: '1, where neither detection nor box is given' },
  box: { type: 'string', maxLength: 200, arg: 'X1,Y1,X2,Y2', doc: 'explain this box (original-image pixels) for the class named by label, instead of a detection' },
  label: { type: 'string', minLength: 1, maxLength: 200, arg: 'NAME', doc: 'the class a box is scored for' },
  patch: { type: 'integer', minimum: 2, maximum: 4096, default: 32, arg: 'PX', doc: 'side of the grey square, in original-image pixels' },
  stride: { type: 'integer', minimum: 1, maximum: 4096, default: 32, arg: 'PX', doc: 'step between patch positions, in original-image pixels (16 with a 32 patch: the paper-like half overlap, four times the passes)' },
  maxPasses: {
    type: 'integer',
    minimum: 1,
    maximum: EXPLAIN_MAX_PASSES,
    default: EXPLAIN_DEFAULT_PASSES,
    arg: 'N',
    doc: 'budget of backbone passes (occluded images; R-CNN: occluded crops); a grid that needs more is refused before any runs',
  },
  heatmap: { type: 'boolean', default: false, doc: 'answer with the heat map of the first explained detection over the image (PNG) instead of JSON' },
  layer: { type: 'string', minLength: 1, maxLength: 300, arg: 'NAME', doc: "a backbone layer's name, as GET /v1/models/{name} lists its featureLayers (and models inspect its layers)" },
  channels: { type: 'integer', minimum: 1, maximum: 64, default: 8, arg: 'K', doc: 'the K channels whose activations are strongest (by their maximum over the image)' },
  arrays: { type: 'boolean', default: false, doc: 'answer with the maps as JSON arrays (at the layer\'s own resolution) instead of PNG tiles' },
  classes: { type: 'string', maxLength: 10000, arg: 'LIST', doc: 'comma-separated labels to keep' },
  boxFormat: { type: 'string', enum: BOX_FORMATS, default: 'xyxy', doc: 'box coordinates: corners, corner and size, or centre and size' },
  normalized: { type: 'boolean', default: false, doc: 'boxes divided by the image width and height' },
  format: { type: 'string', enum: RENDER_FORMATS, default: 'png', doc: 'the drawn image as PNG or JPEG' },
  method: { type: 'string', enum: PROPOSAL_METHODS, default: 'selective-search', arg: 'M', doc: "selective search, or a Faster R-CNN model's RPN" },
  minSize: { type: 'number', minimum: 0, maximum: 100000, default: 0, arg: 'N', doc: 'drop proposals narrower or shorter than N pixels', methods: ['selective-search'], otherwise: 'keeps its own minimum' },
  seed: { type: 'integer', minimum: 0, maximum: 4294967295, default: 0, arg: 'S', doc: 'ranking seed: the same image, options and seed give the same proposals', methods: ['selective-search'], otherwise: 'is deterministic' },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

/** What an operation's spec may change of an option's: the default and doc where they differ there. */
type OptionOverride = Partial<Pick<OptionSpec, 'default' | 'defaultFrom' | 'doc'>>;

/** The options of a detection run, whatever its output. */
const RUN = { model: {}, pipeline: {}, scoreThreshold: {}, iouThreshold: {}, maxDetections: {}, mode: {}, maxProposals: {}, scales: {}, precision: {} } as const;

const DETECT = { ...RUN, provenance: {} } as const;

/** Which detections an explanation explains, and its occlusion grid. */
const EXPLAIN = { detection: {}, top: {}, box: {}, label: {}, patch: {}, stride: {}, maxPasses: {} } as const;

/** Where detections are shown, the display threshold is the default. */
const SHOWN = { scoreThreshold: { default: DISPLAY_SCORE_THRESHOLD, defaultFrom: undefined } } as const;

/**
 * The options each entry point takes, in --help order. `detect` is the
 * library's (Detector.detect); `cliDetect` the CLI's detect and the batch
 * client's, which show detections unless they write COCO results; the HTTP
 * routes add response shaping.
 */
export const OPERATIONS = {
  detect: DETECT,
  cliDetect: {
    ...DETECT,
    scoreThreshold: { defaultFrom: `${DISPLAY_SCORE_THRESHOLD}; with --coco-results (detect) or --coco (batch), the model's postprocess.scoreThreshold, for AP` },
  },
  httpDetect: { ...DETECT, ...SHOWN, classes: {}, boxFormat: {}, normalized: {} },
  render: { ...RUN, ...SHOWN, classes: {}, format: {} },
  explain: { ...RUN, ...EXPLAIN },
  cliExplain: { ...RUN, ...SHOWN, ...EXPLAIN },
  httpExplain: { ...RUN, ...SHOWN, ...EXPLAIN, heatmap: {} },
  features: { model: {}, layer: {}, channels: {} },
  httpFeatures: { model: {}, layer: {}, channels: {}, arrays: {} },
  proposals: {
    method: {},
    model: { doc: "the model whose RPN proposes" },
    mode: { default: 'fast', defaultFrom: undefined },
    maxProposals: { defaultFrom: "all (selective search), the model's rpn.postNmsTopN (rpn)" },
    minSize: {},
    seed: {},
  },
} as const satisfies Record<string, Partial<Record<OptionName, OptionOverride>>>;

export type Operation = keyof typeof OPERATIONS;

type ValueOf<S> = S extends { enum: readonly (infer E)[] } ? E : S extends { type: 'boolean' } ? boolean : S extends { type: 'string' } ? string : number;

/** The options an operation takes, typed from the table. */
export type OptionsOf<Op extends Operation> = { [K in keyof (typeof OPERATIONS)[Op] & OptionName]?: ValueOf<(typeof OPTIONS)[K]> };

/** An operation's options with their specs, the operation's overrides applied, in order. */
export function optionsOf(op: Operation): [OptionName, OptionSpec][] {
  return Object.entries(OPERATIONS[op]).map(([name, override]) => [name as OptionName, { ...OPTIONS[name as OptionName], ...(override as OptionOverride) }]);
}

/** The options of `op` that `values` (a query, parsed flags, a wider options object) sets. */
export function pickOptions<Op extends Operation>(op: Op, values: Readonly<Record<string, unknown>>): OptionsOf<Op> {
  return Object.fromEntries(Object.keys(OPERATIONS[op]).flatMap((k) => (values[k] === undefined ? [] : [[k, values[k]]]))) as OptionsOf<Op>;
}

/** What an option allows, in words: its values, or its type and range. */
export function allowedValues(spec: OptionSpec): string {
  if (spec.enum) return spec.enum.join(', ');
  if (spec.type === 'boolean') return 'true or false';
  if (spec.type === 'string') return `a string of ${spec.minLength ?? 0} to ${spec.maxLength} characters`;
  return `${spec.type === 'integer' ? 'an integer' : 'a number'} from ${spec.minimum} to ${spec.maximum}`;
}

/** @throws DetectError INVALID_OPTION naming the option, the value and what is allowed. */
export function checkOption(name: string, spec: OptionSpec, v: unknown): void {
  if (spec.enum) {
    if (typeof v !== 'string' || !spec.enum.includes(v)) throw new DetectError('INVALID_OPTION', `${name} ${JSON.stringify(v)} is unknown; allowed: ${allowedValues(spec)}`);
    return;
  }
  const ok =
    spec.type === 'boolean'
      ? typeof v === 'boolean'
      : spec.type === 'string'
        ? typeof v === 'string' && v.length >= (spec.minLength ?? 0) && v.length <= spec.maxLength!
        : typeof v === 'number' && Number.isFinite(v) && v >= spec.minimum! && v <= spec.maximum! && (spec.type === 'number' || Number.isInteger(v));
  if (!ok) throw new DetectError('INVALID_OPTION', `${name} is ${JSON.stringify(v)}; allowed: ${allowedValues(spec)}`);
}

const article = (word: string) => (/^[aeiour]/.test(word) ? 'an' : 'a');

/**
 * Check every option of `op` that `options` sets: its value, and that the
 * pipeline (detection) or method (proposals) it runs takes it.
 * @throws DetectError INVALID_OPTION
 */
export function checkOptions(op: Operation, options: Readonly<Record<string, unknown>>, runs: { pipeline?: PipelineName; method?: ProposalMethod } = {}): void {
  const specs = optionsOf(op).filter(([name]) => options[name] !== undefined);
  for (const [name, spec] of specs) checkOption(name, spec, options[name]);
  // Then that the runner takes each: the message names who does, and what the runner does instead.
  const runner = runs.pipeline ?? runs.method;
  for (const [name, spec] of specs) {
    const takers: readonly string[] | undefined = runs.pipeline ? spec.pipelines : spec.methods;
    if (takers && runner && !takers.includes(runner)) {
      throw new DetectError('INVALID_OPTION', `${name} is ${article(takers[0]!)} ${takers.join(', ')} option; ${runner} ${spec.otherwise}`);
    }
  }
}

/** The JSON Schema of an operation's query string (fastify validates and coerces with it). */
export function querystringSchema(op: Operation) {
  const properties: Record<string, object> = {};
  for (const [name, spec] of optionsOf(op)) {
    const { type, minimum, maximum, minLength, maxLength } = spec;
    properties[name] = {
      type: spec.enum ? 'string' : type,
      ...(spec.enum && { enum: [...spec.enum] }),
      ...(minimum !== undefined && { minimum }),
      ...(maximum !== undefined && { maximum }),
      ...(minLength !== undefined && { minLength }),
      ...(maxLength !== undefined && { maxLength }),
    };
  }
  return { type: 'object', additionalProperties: false, properties } as const;
}
