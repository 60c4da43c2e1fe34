/**
 * Steps the three pipelines share: reading a backbone map, getting regions
 * (selective search or the caller's), running a box head, and the
 * per-request overrides of post-processing.
 */

import { BoxCoder, type BoxCoderOptions } from '../core/box-coder.js';
import { clipBoxes, gatherBoxes, resizeBoxes } from '../core/boxes.js';
import type { FeatureMap } from '../core/roi/feature-map.js';
import { roisByLevel } from '../core/roi/level-mapper.js';
import { roiBoxesInput, roiFeatureInput } from '../onnx/in-graph-roi.js';
import { selectiveSearchRegions, strategiesFor } from '../core/selective-search/selective-search.js';
import { boxAt, similarityName, type RegionSource } from '../core/provenance.js';
import { DetectError } from '../errors.js';
import type { RgbImage } from '../core/image.js';
import type { BoxCoderSpec, HeadSpec, PostprocessSpec, ProposalSpec } from '../model/manifest-schema.js';
import type { LoadedModel } from '../model/package.js';
import type { GraphSession, Tensor } from '../runtime/session.js';
import type { RunOptions } from './pipeline-runner.js';
import type { PostprocessSettings, RawDetections } from '../core/postprocess.js';
import type { RcnnInput } from '../core/rcnn-transform.js';

/**
 * A graph's output, checked against the dims the pipeline reads (null: any
 * size, at least 1), so that a package whose graphs do not fit its manifest
 * fails with a stable code instead of reading past the end of an array.
 * @throws DetectError INVALID_MODEL naming the graph, the output, its dims and those expected.
 */
export function graphOutput(graph: GraphSession, outputs: Record<string, Tensor>, name: string, expected: readonly (number | null)[]): Tensor {
  const t = outputs[name];
  if (!t) throw new DetectError('INVALID_MODEL', `graph ${graph.name} has no output ${JSON.stringify(name)}; it has: ${Object.keys(outputs).join(', ')}`);
  if (t.dims.length !== expected.length || expected.some((d, i) => (d === null ? t.dims[i]! < 1 : t.dims[i] !== d))) {
    const want = expected.map((d) => (d === null ? '*' : String(d))).join(', ');
    throw new DetectError('INVALID_MODEL', `graph ${graph.name} output ${JSON.stringify(name)} has dims [${t.dims.join(', ')}]; the pipeline reads [${want}]`);
  }
  return t;
}

/** A backbone output, [1, H, W, C] (NHWC), as a feature map. */
export function featureMap(graph: GraphSession, outputs: Record<string, Tensor>, name: string): FeatureMap {
  const t = graphOutput(graph, outputs, name, [1, null, null, null]);
  return { data: t.data, height: t.dims[1]!, width: t.dims[2]!, channels: t.dims[3]! };
}

/** The regions a region-head pipeline scores, and what proposed each. */
export interface Regions {
  /** K*4 xyxy in original pixels, best first. */
  boxes: Float32Array;
  sourceOf(i: number): RegionSource;
}

/** The regions of an image: the caller's (clipped to the image) or selective search's, best first. */
export function regionsOf(image: RgbImage, spec: ProposalSpec, options: RunOptions): Regions {
  if (options.proposals) return { boxes: clipBoxes(options.proposals, image.width, image.height), sourceOf: (index) => ({ method: 'caller', index }) };
  const mode = options.mode ?? spec.mode;
  const ranked = selectiveSearchRegions(image, { mode, seed: spec.seed, maxProposals: options.maxProposals ?? spec.maxProposals, minSize: spec.minSize, signal: options.signal });
  const strategies = strategiesFor(mode);
  return {
    boxes: ranked.boxes,
    sourceOf(i) {
      const s = strategies[ranked.strategy[i]!]!;
      return { method: 'selective-search', colourSpace: s.colourSpace, k: s.k, similarities: similarityName(s.similarities), level: ranked.level[i]!, merges: ranked.merges[i]! };
    },
  };
}

/**
 * The detections with their provenance where the run asks for it (and
 * untouched, at no cost, where it does not).
 * @param regions the regions the head scored, xyxy in original pixels.
 */
export function withProvenance(d: RawDetections, options: RunOptions, regions: Float32Array, sourceOf: (i: number) => RegionSource): RawDetections {
  if (!options.provenance) return d;
  return { ...d, provenance: Array.from(d.sources, (r) => ({ region: boxAt(regions, r), rank: r, source: sourceOf(r) })) };
}

/**
 * Run a box head on R pooled (or per-crop) features of shape `dims`.
 * @param classes K + 1, the model's classes with the background.
 * @returns logits R x (K+1) and class-specific deltas R x 4(K+1).
 */
export async function runHead(graph: GraphSession, spec: HeadSpec, features: Float32Array, dims: number[], classes: number): Promise<{ logits: Float32Array; deltas: Float32Array }> {
  const r = dims[0]!;
  if (r === 0) return { logits: new Float32Array(0), deltas: new Float32Array(0) };
  const out = await graph.run({ [spec.input]: { data: features, dims } });
  return { logits: graphOutput(graph, out, spec.classLogits, [r, classes]).data, deltas: graphOutput(graph, out, spec.boxDeltas, [r, 4 * classes]).data };
}

/**
 * A head whose graph pools its own RoIs (onnx/in-graph-roi.ts, roiPlacement
 * 'graph'): each level's map and the RoIs it reads (torchvision's level
 * rule), scaled to that map's cells, go in; the results come back level by
 * level and are put back in RoI order.
 * @param rois K*4 xyxy in input pixels.
 */
export async function runPooledHead(
  head: GraphSession,
  spec: HeadSpec,
  maps: readonly FeatureMap[],
  scales: readonly number[],
  rois: Float32Array,
  classes: number,
  mapping: { canonicalScale?: number; canonicalLevel?: number } = {},
): Promise<{ logits: Float32Array; deltas: Float32Array }> {
  const count = rois.length / 4;
  if (count === 0) return { logits: new Float32Array(0), deltas: new Float32Array(0) };
  const byLevel = roisByLevel(rois, scales, mapping);
  const feeds: Record<string, Tensor> = {};
  byLevel.forEach((members, l) => {
    const m = maps[l]!;
    feeds[roiFeatureInput(l)] = { data: m.data, dims: [1, m.height, m.width, m.channels] };
    const boxes = gatherBoxes(rois, members);
    for (let i = 0; i < boxes.length; i++) boxes[i] = Math.fround(boxes[i]! * scales[l]!);
    feeds[roiBoxesInput(l)] = { data: boxes, dims: [members.length, 4] };
  });
  const out = await head.run(feeds);
  const levelLogits = graphOutput(head, out, spec.classLogits, [count, classes]).data;
  const levelDeltas = graphOutput(head, out, spec.boxDeltas, [count, 4 * classes]).data;
  const logits = new Float32Array(count * classes);
  const deltas = new Float32Array(count * 4 * classes);
  byLevel.flat().forEach((i, row) => {
    logits.set(levelLogits.subarray(row * classes, (row + 1) * classes), i * classes);
    deltas.set(levelDeltas.subarray(row * 4 * classes, (row + 1) * 4 * classes), i * 4 * classes);
  });
  return { logits, deltas };
}

/** Detections in network-input pixels scaled once to the original image's: a pipeline's last step (torchvision's transform.postprocess). */
export function inOriginalPixels(d: RawDetections, input: RcnnInput): RawDetections {
  return { ...d, boxes: resizeBoxes(d.boxes, input, { width: input.originalWidth, height: input.originalHeight }) };
}

/** A package's post-processing, with the request's overrides. */
export class PostprocessDefaults {
  private readonly base: PostprocessSettings;

  constructor(coder: BoxCoderOptions, pp: PostprocessSpec) {
    this.base = { coder: new BoxCoder(coder), ...pp };
  }

  for(options: RunOptions): PostprocessSettings {
    return {
      ...this.base,
      scoreThreshold: options.scoreThreshold ?? this.base.scoreThreshold,
      nmsThreshold: options.iouThreshold ?? this.base.nmsThreshold,
      detectionsPerImage: options.maxDetections ?? this.base.detectionsPerImage,
    };
  }
}

/** The graphs and settings a region-head pipeline (rcnn, fast-rcnn) runs with. */
export interface RegionHeadGraphs {
  backbone: GraphSession;
  head: GraphSession;
  /** With roiPlacement 'graph': Fast R-CNN's head pooling its RoIs, R-CNN's backbone warping its crops. */
  roiGraph: GraphSession | undefined;
  /** The backbone output the head reads. */
  featureOutput: string;
  postprocess: PostprocessDefaults;
}

export function regionHeadGraphs(model: LoadedModel, pipeline: 'rcnn' | 'fast-rcnn', spec: { head: HeadSpec; boxCoder: BoxCoderSpec; postprocess: PostprocessSpec }, feature: string): RegionHeadGraphs {
  const bb = model.manifest.backbone;
  return {
    backbone: model.graphs.get(bb.file)!,
    head: model.graphs.get(spec.head.file)!,
    roiGraph: model.roiGraphs.get(pipeline),
    featureOutput: bb.features.find((f) => f.name === feature)!.output,
    postprocess: new PostprocessDefaults(spec.boxCoder, spec.postprocess),
  };
}
