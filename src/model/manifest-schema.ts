/**
 * model.json: the contract of a model package (README, "Models"), declared
 * once. Each part is a TypeBox schema: at run time plain JSON Schema, which
 * Ajv checks at load (manifest.ts, errors naming the field and the value);
 * at compile time its TypeScript type (`Static`), so the schema and the
 * types the pipelines read cannot drift. Every number a pipeline uses comes
 * from here.
 *
 * It expresses torchvision's FasterRCNN (FPN levels, MultiScaleRoIAlign,
 * per-level RPN top-n), the original single-level py-faster-rcnn (one
 * stride-16 map, `generate_anchors`, RoIPool, "+1" box coder), Fast R-CNN
 * (proposals + RoI max pooling on one map) and R-CNN (warped regions through
 * the backbone + a classifier and box regressor).
 */

import { Type, type Static, type TProperties } from '@sinclair/typebox';
import type { AnchorSpec } from '../core/anchors.js';
import type { PostprocessSettings } from '../core/postprocess.js';
import type { InputConvention } from '../core/rcnn-transform.js';
import { CALIBRATION_METHODS } from '../core/quantize.js';
import { MODES } from '../core/selective-search/selective-search.js';

const PositiveInt = Type.Integer({ minimum: 1 });
const Unit = Type.Number({ minimum: 0, maximum: 1 });
const NonNegative = Type.Number({ minimum: 0 });
const Positive = Type.Number({ exclusiveMinimum: 0 });
const Name = Type.String({ minLength: 1 });
const Names = Type.Array(Name, { minItems: 1 });
const OnnxFile = Type.String({ pattern: '^[^/\\\\]+\\.onnx$' });
const Size2 = Type.Tuple([PositiveInt, PositiveInt]);

/** A closed object: a field the contract does not know is an error. */
const Strict = <T extends TProperties>(properties: T, options: { minProperties?: number } = {}) => Type.Object(properties, { additionalProperties: false, ...options });

/** One of fixed values, as JSON Schema's enum (so that Ajv's error lists the allowed ones). */
const OneOf = <const T extends readonly (string | number)[]>(values: T) => Type.Unsafe<T[number]>({ enum: [...values] });

export const BoxCoderSpec = Strict({
  weights: Type.Tuple([Positive, Positive, Positive, Positive]),
  clamp: Type.Optional(Positive),
  pixelOffset: Type.Optional(OneOf([0, 1] as const)),
});
export type BoxCoderSpec = Static<typeof BoxCoderSpec>;

/** A graph from pooled (or per-crop) features to class logits [R, K+1] and class-specific deltas [R, 4(K+1)]. */
export const HeadSpec = Strict({ file: OnnxFile, input: Name, classLogits: Name, boxDeltas: Name });
export type HeadSpec = Static<typeof HeadSpec>;

export const PostprocessSpec = Strict({
  /** Keep class scores strictly above this. */
  scoreThreshold: Unit,
  /** Per-class NMS IoU threshold (a request's iouThreshold overrides it). */
  nmsThreshold: Unit,
  /** Keep at most this many detections (a request's maxDetections overrides it). */
  detectionsPerImage: PositiveInt,
  /** Detections narrower or shorter than this (network-input pixels) are dropped. */
  minSize: NonNegative,
  /**
   * Box voting after NMS (Gidaris & Komodakis 2015): each detection's box
   * becomes the score-weighted mean of the candidates of its class that
   * overlap it by at least this IoU. Absent: off.
   */
  boxVoting: Type.Optional(Unit),
});
export type PostprocessSpec = Static<typeof PostprocessSpec>;

/** Where Fast R-CNN and R-CNN get their regions when the caller passes none. */
export const ProposalSpec = Strict({
  method: Type.Literal('selective-search'),
  mode: OneOf(MODES),
  /** Proposals kept per image, best first (a request's maxProposals overrides it). */
  maxProposals: PositiveInt,
  /** Proposals narrower or shorter than this (original-image pixels) are dropped. */
  minSize: NonNegative,
  /** Ranking seed. */
  seed: Type.Integer({ minimum: 0 }),
});
export type ProposalSpec = Static<typeof ProposalSpec>;

const PositiveList = Type.Array(Positive, { minItems: 1 });
const Anchors = Type.Union([
  Strict({ generator: Type.Literal('torchvision'), sizes: Type.Array(PositiveList, { minItems: 1 }), aspectRatios: Type.Array(PositiveList, { minItems: 1 }) }),
  Strict({ generator: Type.Literal('py-faster-rcnn'), baseSize: PositiveInt, ratios: PositiveList, scales: PositiveList }),
]);

/** One scale of multi-scale testing. */
export const TestScale = Strict({
  /** The short side and the cap on the long side, as `input`'s. */
  minSize: PositiveInt,
  maxSize: PositiveInt,
  /**
   * Keep a detection at this scale when its size, the square root of its
   * box's area in this scale's input pixels, is in [minObjectSize,
   * maxObjectSize) (SNIP's valid range, Singh & Davis 2018). Default: all.
   */
  minObjectSize: Type.Optional(NonNegative),
  maxObjectSize: Type.Optional(Positive),
  /** Also run the image mirrored left to right at this scale (detectron2's test-time flip). */
  flip: Type.Optional(Type.Boolean()),
});
export type TestScale = Static<typeof TestScale>;

export const RcnnSpec = Strict({
  proposals: ProposalSpec,
  /**
   * Each region, grown so that `context` pixels of the warped crop lie
   * around it, is resampled to `size` (bilinear, samplingRatio^2 samples per
   * output pixel, zero = the mean colour outside the image).
   */
  warp: Strict({ size: Size2, context: NonNegative, samplingRatio: PositiveInt }),
  /** The backbone output the head reads for each crop. */
  feature: Name,
  /** Crops per backbone run: memory stays bounded whatever the proposal count. */
  batchSize: PositiveInt,
  /**
   * Also run each crop mirrored left to right and average the two
   * predictions: class probabilities, and box deltas with the mirrored
   * crop's dx negated (AlexNet's test-time reflections). Twice the backbone
   * runs; a batch then holds batchSize / 2 regions.
   */
  mirror: Type.Optional(Type.Boolean()),
  head: HeadSpec,
  boxCoder: BoxCoderSpec,
  postprocess: PostprocessSpec,
});
export type RcnnSpec = Static<typeof RcnnSpec>;

export const FastRcnnSpec = Strict({
  proposals: ProposalSpec,
  /** RoI max pooling on one backbone map; the spatial scale is inferred from its size, as torchvision does. */
  roiPool: Strict({ feature: Name, outputSize: Size2 }),
  head: HeadSpec,
  boxCoder: BoxCoderSpec,
  postprocess: PostprocessSpec,
});
export type FastRcnnSpec = Static<typeof FastRcnnSpec>;

export const FasterRcnnSpec = Strict({
  rpn: Strict({
    head: Strict({ file: OnnxFile, inputs: Names, objectness: Names, deltas: Names }),
    /** Backbone feature names the RPN reads, one per anchor level. */
    features: Names,
    anchors: Anchors,
    boxCoder: BoxCoderSpec,
    /** Highest-scoring anchors kept per level before NMS. */
    preNmsTopN: PositiveInt,
    /** Proposals kept per image after NMS (a request's maxProposals overrides it). */
    postNmsTopN: PositiveInt,
    nmsThreshold: Unit,
    /** Proposals narrower or shorter than this (network-input pixels) are dropped. */
    minSize: NonNegative,
    /** Proposals whose objectness probability is below this are dropped. */
    scoreThreshold: Unit,
  }),
  roiOp: Strict({
    type: OneOf(['roi-align', 'roi-pool'] as const),
    /** Backbone feature names pooled from, finest first. */
    features: Names,
    outputSize: Size2,
    samplingRatio: Type.Optional(Type.Integer({ minimum: 0 })),
    aligned: Type.Optional(Type.Boolean()),
    canonicalScale: Type.Optional(Positive),
    canonicalLevel: Type.Optional(Type.Integer()),
  }),
  boxHead: HeadSpec,
  boxCoder: BoxCoderSpec,
  postprocess: PostprocessSpec,
  /**
   * Multi-scale testing: the image runs at each of these sizes, each keeps
   * the detections of the object sizes it sees well, and the union is NMSed
   * per class (src/pipelines/faster-rcnn/test-scales.ts). Absent: one scale,
   * `input`'s.
   */
  testScales: Type.Optional(Type.Array(TestScale, { minItems: 1, maxItems: 8 })),
});
export type FasterRcnnSpec = Static<typeof FasterRcnnSpec>;

const Triple = Type.Tuple([Type.Number(), Type.Number(), Type.Number()]);

/** The numeric precisions a package's graphs come in. */
export const PRECISIONS = ['fp32', 'fp16', 'int8'] as const;
export type Precision = (typeof PRECISIONS)[number];

/**
 * How a package's int8 graphs were made (`rcnn-serve models quantize`):
 * the calibration, and per graph what runs in int8, what stays float and
 * why, and each quantized tensor's calibrated range. With `precision: fp32`
 * the int8 graphs are built from the fp32 ones and these ranges at load
 * (both precisions, one set of weights); with `precision: int8` the stored
 * graphs are the QDQ ones and this records how they were made.
 */
export const QuantizationSpec = Strict({
  /** QDQ: uint8 activations per tensor, int8 weights symmetric per output channel, int32 biases. */
  scheme: Type.Literal('qdq-u8s8'),
  calibration: Strict({
    method: OneOf(CALIBRATION_METHODS),
    /** The percentile method's share of |x| kept, in percent. */
    percentile: Type.Optional(Type.Number({ exclusiveMinimum: 50, maximum: 100 })),
    /** What the images were (a folder or manifest's name, never a machine's path). */
    images: Type.String(),
    count: PositiveInt,
    /** SHA-256 of the images' bytes in the order they ran: the same images give the same ranges. */
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    pipelines: Type.Array(OneOf(['rcnn', 'fast-rcnn', 'faster-rcnn'] as const), { minItems: 1 }),
  }),
  graphs: Type.Record(
    OnnxFile,
    Strict({
      int8Nodes: Type.Array(Name),
      floatNodes: Type.Array(Strict({ node: Name, op: Name, reason: Type.String() })),
      /** Calibrated [min, max] of each tensor quantized per tensor. */
      ranges: Type.Record(Type.String(), Type.Tuple([Type.Number(), Type.Number()])),
    }),
  ),
});
export type QuantizationSpec = Static<typeof QuantizationSpec>;

export const MANIFEST_SCHEMA = Type.Object(
  {
    format: Type.Literal('rcnn-serve/model'),
    version: Type.Literal(1),
    name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' }),
    description: Type.Optional(Type.String()),
    source: Type.Optional(Type.Unsafe<Record<string, unknown>>({ type: 'object' })),
    /** Class names by class id; id 0 is the background. */
    classes: Type.Array(Type.String(), { minItems: 2 }),
    input: Strict({
      /** Channel order the network was trained on. */
      channelOrder: OneOf(['RGB', 'BGR'] as const),
      /** 1: pixels scaled to [0, 1] (torchvision); 255: raw 0..255 (detectron2, Caffe). */
      pixelRange: OneOf([1, 255] as const),
      /** Per channel, in the network's channel order and pixel range. */
      mean: Triple,
      std: Type.Tuple([Positive, Positive, Positive]),
      /** Target short side, in pixels. */
      minSize: PositiveInt,
      /** Cap on the long side, in pixels. */
      maxSize: PositiveInt,
      /** Pad height and width up to a multiple of this (32 for FPN backbones). */
      sizeDivisible: PositiveInt,
    }),
    /** Features leave the backbone channels-last: [1, h, w, C]. */
    backbone: Strict({
      file: OnnxFile,
      input: Name,
      featureLayout: Type.Literal('NHWC'),
      features: Type.Array(Strict({ name: Name, output: Name }), { minItems: 1 }),
    }),
    /**
     * The whole classification network the backbone was cut from (e.g. AlexNet
     * on ImageNet), for layer tables only: never run.
     */
    classifier: Type.Optional(Strict({ file: OnnxFile, input: Name, inputSize: Type.Tuple([PositiveInt, PositiveInt, PositiveInt]) })),
    pipelines: Strict(
      { rcnn: Type.Optional(RcnnSpec), 'fast-rcnn': Type.Optional(FastRcnnSpec), 'faster-rcnn': Type.Optional(FasterRcnnSpec) },
      { minProperties: 1 },
    ),
    /** The precision of the stored graphs (default fp32). */
    precision: Type.Optional(OneOf(PRECISIONS)),
    quantization: Type.Optional(QuantizationSpec),
  },
  { $id: 'https://rcnn-serve/model.schema.json', additionalProperties: false },
);
export type ModelManifest = Static<typeof MANIFEST_SCHEMA>;

// The core's parameter types are what the contract hands them: its values fit them, field for field (a field added
// to one and not the other fails the typecheck here).
type Fits<A, B> = [A] extends [B] ? ([keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false) : false;
type Holds<T extends true> = T;
export type ContractFitsCore = [
  Holds<Fits<ModelManifest['input'], InputConvention>>,
  Holds<Fits<Static<typeof Anchors>, AnchorSpec>>,
  Holds<Fits<PostprocessSpec, Omit<PostprocessSettings, 'coder'>>>,
];
