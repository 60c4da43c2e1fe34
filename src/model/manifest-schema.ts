/**
 * model.json: the contract of a model package (DESIGN.md). Every number a
 * pipeline uses comes from here; the JSON Schema below is checked at load and
 * its errors name the field and the value.
 *
 * It expresses torchvision's FasterRCNN (FPN levels, MultiScaleRoIAlign,
 * per-level RPN top-n), the original single-level py-faster-rcnn (one
 * stride-16 map, `generate_anchors`, RoIPool, "+1" box coder), Fast R-CNN
 * (proposals + RoI max pooling on one map) and R-CNN (warped regions through
 * the backbone + a classifier and box regressor).
 */

import type { AnchorSpec } from '../core/anchors.js';
import { MODES, type Mode } from '../core/selective-search/selective-search.js';
import type { InputConvention } from '../core/rcnn-transform.js';

export interface BoxCoderSpec {
  weights: [number, number, number, number];
  clamp?: number;
  pixelOffset?: 0 | 1;
}

export interface FasterRcnnSpec {
  rpn: {
    head: { file: string; inputs: string[]; objectness: string[]; deltas: string[] };
    /** Backbone feature names the RPN reads, one per anchor level. */
    features: string[];
    anchors: AnchorSpec;
    boxCoder: BoxCoderSpec;
    /** Highest-scoring anchors kept per level before NMS. */
    preNmsTopN: number;
    /** Proposals kept per image after NMS. */
    postNmsTopN: number;
    nmsThreshold: number;
    /** Proposals narrower or shorter than this (network-input pixels) are dropped. */
    minSize: number;
    /** Proposals whose objectness probability is below this are dropped. */
    scoreThreshold: number;
  };
  roiOp: {
    type: 'roi-align' | 'roi-pool';
    /** Backbone feature names pooled from, finest first. */
    features: string[];
    outputSize: [number, number];
    samplingRatio?: number;
    aligned?: boolean;
    canonicalScale?: number;
    canonicalLevel?: number;
  };
  boxHead: HeadSpec;
  boxCoder: BoxCoderSpec;
  postprocess: PostprocessSpec;
  /**
   * Multi-scale testing: the image runs at each of these sizes, each keeps
   * the detections of the object sizes it sees well, and the union is NMSed
   * per class (src/pipelines/faster-rcnn/test-scales.ts). Absent: one scale,
   * `input`'s.
   */
  testScales?: TestScale[];
}

/** One scale of multi-scale testing. */
export interface TestScale {
  /** The short side and the cap on the long side, as `input`'s. */
  minSize: number;
  maxSize: number;
  /**
   * Keep a detection at this scale when its size, the square root of its
   * box's area in this scale's input pixels, is in [minObjectSize,
   * maxObjectSize) (SNIP's valid range, Singh & Davis 2018). Default: all.
   */
  minObjectSize?: number;
  maxObjectSize?: number;
  /** Also run the image mirrored left to right at this scale (detectron2's test-time flip). */
  flip?: boolean;
}

/** A graph from pooled (or per-crop) features to class logits [R, K+1] and class-specific deltas [R, 4(K+1)]. */
export interface HeadSpec {
  file: string;
  input: string;
  classLogits: string;
  boxDeltas: string;
}

/** Where Fast R-CNN and R-CNN get their regions when the caller passes none. */
export interface ProposalSpec {
  method: 'selective-search';
  mode: Mode;
  /** Proposals kept per image, best first. */
  maxProposals: number;
  /** Proposals narrower or shorter than this (original-image pixels) are dropped. */
  minSize: number;
  /** Ranking seed. */
  seed: number;
}

export interface FastRcnnSpec {
  proposals: ProposalSpec;
  /** RoI max pooling on one backbone map; the spatial scale is inferred from its size, as torchvision does. */
  roiPool: { feature: string; outputSize: [number, number] };
  head: HeadSpec;
  boxCoder: BoxCoderSpec;
  postprocess: PostprocessSpec;
}

export interface RcnnSpec {
  proposals: ProposalSpec;
  /**
   * Each region, grown so that `context` pixels of the warped crop lie
   * around it, is resampled to `size` (bilinear, samplingRatio^2 samples per
   * output pixel, zero = the mean colour outside the image).
   */
  warp: { size: [number, number]; context: number; samplingRatio: number };
  /** The backbone output the head reads for each crop. */
  feature: string;
  /** Crops per backbone run: memory stays bounded whatever the proposal count. */
  batchSize: number;
  /**
   * Also run each crop mirrored left to right and average the two
   * predictions: class probabilities, and box deltas with the mirrored
   * crop's dx negated (AlexNet's test-time reflections). Twice the backbone
   * runs; a batch then holds batchSize / 2 regions.
   */
  mirror?: boolean;
  head: HeadSpec;
  boxCoder: BoxCoderSpec;
  postprocess: PostprocessSpec;
}

export interface PostprocessSpec {
  scoreThreshold: number;
  nmsThreshold: number;
  detectionsPerImage: number;
  /** Detections narrower or shorter than this (network-input pixels) are dropped. */
  minSize: number;
  /**
   * Box voting after NMS (Gidaris & Komodakis 2015): each detection's box
   * becomes the score-weighted mean of the candidates of its class that
   * overlap it by at least this IoU. Absent: off.
   */
  boxVoting?: number;
}

export interface ModelManifest {
  format: 'rcnn-serve/model';
  version: 1;
  name: string;
  description?: string;
  source?: Record<string, unknown>;
  /** Class names by class id; id 0 is the background. */
  classes: string[];
  input: InputConvention;
  /** Features leave the backbone channels-last: [1, h, w, C]. */
  backbone: { file: string; input: string; featureLayout: 'NHWC'; features: { name: string; output: string }[] };
  pipelines: { rcnn?: RcnnSpec; 'fast-rcnn'?: FastRcnnSpec; 'faster-rcnn'?: FasterRcnnSpec };
  /**
   * The whole classification network the backbone was cut from (e.g. AlexNet
   * on ImageNet), for layer tables only: never run.
   */
  classifier?: { file: string; input: string; inputSize: [number, number, number] };
}

const positiveInt = { type: 'integer', minimum: 1 } as const;
const unit = { type: 'number', minimum: 0, maximum: 1 } as const;
const nonNegative = { type: 'number', minimum: 0 } as const;
const name = { type: 'string', minLength: 1 } as const;
const names = { type: 'array', items: name, minItems: 1 } as const;
const onnxFile = { type: 'string', pattern: '^[^/\\\\]+\\.onnx$' } as const;
const triple = { type: 'array', items: { type: 'number' }, minItems: 3, maxItems: 3 } as const;
const strict = { additionalProperties: false } as const;

const boxCoder = {
  type: 'object', ...strict,
  required: ['weights'],
  properties: {
    weights: { type: 'array', items: { type: 'number', exclusiveMinimum: 0 }, minItems: 4, maxItems: 4 },
    clamp: { type: 'number', exclusiveMinimum: 0 },
    pixelOffset: { enum: [0, 1] },
  },
} as const;

const head = {
  type: 'object', ...strict,
  required: ['file', 'input', 'classLogits', 'boxDeltas'],
  properties: { file: onnxFile, input: name, classLogits: name, boxDeltas: name },
} as const;

const postprocess = {
  type: 'object', ...strict,
  required: ['scoreThreshold', 'nmsThreshold', 'detectionsPerImage', 'minSize'],
  properties: { scoreThreshold: unit, nmsThreshold: unit, detectionsPerImage: positiveInt, minSize: nonNegative, boxVoting: unit },
} as const;

const proposals = {
  type: 'object', ...strict,
  required: ['method', 'mode', 'maxProposals', 'minSize', 'seed'],
  properties: {
    method: { const: 'selective-search' },
    mode: { enum: MODES },
    maxProposals: positiveInt,
    minSize: nonNegative,
    seed: { type: 'integer', minimum: 0 },
  },
} as const;

const outputSize = { type: 'array', items: positiveInt, minItems: 2, maxItems: 2 } as const;

const anchors = {
  oneOf: [
    {
      type: 'object', ...strict,
      required: ['generator', 'sizes', 'aspectRatios'],
      properties: {
        generator: { const: 'torchvision' },
        sizes: { type: 'array', minItems: 1, items: { type: 'array', minItems: 1, items: { type: 'number', exclusiveMinimum: 0 } } },
        aspectRatios: { type: 'array', minItems: 1, items: { type: 'array', minItems: 1, items: { type: 'number', exclusiveMinimum: 0 } } },
      },
    },
    {
      type: 'object', ...strict,
      required: ['generator', 'baseSize', 'ratios', 'scales'],
      properties: {
        generator: { const: 'py-faster-rcnn' },
        baseSize: positiveInt,
        ratios: { type: 'array', minItems: 1, items: { type: 'number', exclusiveMinimum: 0 } },
        scales: { type: 'array', minItems: 1, items: { type: 'number', exclusiveMinimum: 0 } },
      },
    },
  ],
} as const;

export const MANIFEST_SCHEMA = {
  $id: 'https://rcnn-serve/model.schema.json',
  type: 'object', ...strict,
  required: ['format', 'version', 'name', 'classes', 'input', 'backbone', 'pipelines'],
  properties: {
    format: { const: 'rcnn-serve/model' },
    version: { const: 1 },
    name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' },
    description: { type: 'string' },
    source: { type: 'object' },
    classes: { type: 'array', items: { type: 'string' }, minItems: 2 },
    input: {
      type: 'object', ...strict,
      required: ['channelOrder', 'pixelRange', 'mean', 'std', 'minSize', 'maxSize', 'sizeDivisible'],
      properties: {
        channelOrder: { enum: ['RGB', 'BGR'] },
        pixelRange: { enum: [1, 255] },
        mean: triple,
        std: { ...triple, items: { type: 'number', exclusiveMinimum: 0 } },
        minSize: positiveInt,
        maxSize: positiveInt,
        sizeDivisible: positiveInt,
      },
    },
    backbone: {
      type: 'object', ...strict,
      required: ['file', 'input', 'featureLayout', 'features'],
      properties: {
        file: onnxFile,
        input: name,
        featureLayout: { const: 'NHWC' },
        features: { type: 'array', minItems: 1, items: { type: 'object', ...strict, required: ['name', 'output'], properties: { name, output: name } } },
      },
    },
    classifier: {
      type: 'object', ...strict,
      required: ['file', 'input', 'inputSize'],
      properties: { file: onnxFile, input: name, inputSize: { type: 'array', items: positiveInt, minItems: 3, maxItems: 3 } },
    },
    pipelines: {
      type: 'object', ...strict,
      minProperties: 1,
      properties: {
        rcnn: {
          type: 'object', ...strict,
          required: ['proposals', 'warp', 'feature', 'batchSize', 'head', 'boxCoder', 'postprocess'],
          properties: {
            proposals,
            warp: {
              type: 'object', ...strict,
              required: ['size', 'context', 'samplingRatio'],
              properties: { size: outputSize, context: nonNegative, samplingRatio: positiveInt },
            },
            feature: name,
            batchSize: positiveInt,
            mirror: { type: 'boolean' },
            head,
            boxCoder,
            postprocess,
          },
        },
        'fast-rcnn': {
          type: 'object', ...strict,
          required: ['proposals', 'roiPool', 'head', 'boxCoder', 'postprocess'],
          properties: {
            proposals,
            roiPool: { type: 'object', ...strict, required: ['feature', 'outputSize'], properties: { feature: name, outputSize } },
            head,
            boxCoder,
            postprocess,
          },
        },
        'faster-rcnn': {
          type: 'object', ...strict,
          required: ['rpn', 'roiOp', 'boxHead', 'boxCoder', 'postprocess'],
          properties: {
            rpn: {
              type: 'object', ...strict,
              required: ['head', 'features', 'anchors', 'boxCoder', 'preNmsTopN', 'postNmsTopN', 'nmsThreshold', 'minSize', 'scoreThreshold'],
              properties: {
                head: {
                  type: 'object', ...strict,
                  required: ['file', 'inputs', 'objectness', 'deltas'],
                  properties: { file: onnxFile, inputs: names, objectness: names, deltas: names },
                },
                features: names,
                anchors,
                boxCoder,
                preNmsTopN: positiveInt,
                postNmsTopN: positiveInt,
                nmsThreshold: unit,
                minSize: nonNegative,
                scoreThreshold: unit,
              },
            },
            roiOp: {
              type: 'object', ...strict,
              required: ['type', 'features', 'outputSize'],
              properties: {
                type: { enum: ['roi-align', 'roi-pool'] },
                features: names,
                outputSize,
                samplingRatio: { type: 'integer', minimum: 0 },
                aligned: { type: 'boolean' },
                canonicalScale: { type: 'number', exclusiveMinimum: 0 },
                canonicalLevel: { type: 'integer' },
              },
            },
            boxHead: head,
            boxCoder,
            postprocess,
            testScales: {
              type: 'array', minItems: 1, maxItems: 8,
              items: {
                type: 'object', ...strict,
                required: ['minSize', 'maxSize'],
                properties: { minSize: positiveInt, maxSize: positiveInt, minObjectSize: nonNegative, maxObjectSize: { type: 'number', exclusiveMinimum: 0 }, flip: { type: 'boolean' } },
              },
            },
          },
        },
      },
    },
  },
} as const;
