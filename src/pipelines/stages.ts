/**
 * Steps the three pipelines share: reading a backbone map, getting regions
 * (selective search or the caller's), running a box head, and the
 * per-request overrides of post-processing.
 */

import { BoxCoder, type BoxCoderOptions } from '../core/box-coder.js';
import { clipBoxes } from '../core/boxes.js';
import type { FeatureMap } from '../core/roi/feature-map.js';
import { selectiveSearch } from '../core/selective-search/selective-search.js';
import type { RgbImage } from '../image/decode.js';
import type { BoxCoderSpec, HeadSpec, PostprocessSpec, ProposalSpec } from '../model/manifest-schema.js';
import type { LoadedModel } from '../model/package.js';
import type { GraphSession, Tensor } from '../runtime/session.js';
import type { RunOptions } from './pipeline-runner.js';
import type { PostprocessSettings } from './postprocess.js';

/** A backbone output, [1, H, W, C] (NHWC), as a feature map. */
export function featureMap(t: Tensor, what: string): FeatureMap {
  if (t.dims.length !== 4 || t.dims[0] !== 1) throw new RangeError(`${what}: expected a [1, H, W, C] tensor, got [${t.dims.join(', ')}]`);
  return { data: t.data, height: t.dims[1]!, width: t.dims[2]!, channels: t.dims[3]! };
}

/**
 * The regions of an image, xyxy in original pixels: the caller's (clipped to
 * the image) or selective search's, best first.
 */
export function regionsOf(image: RgbImage, spec: ProposalSpec, options: RunOptions): Float32Array {
  if (options.proposals) return clipBoxes(options.proposals, image.width, image.height);
  return selectiveSearch(image, { mode: options.proposalMode ?? spec.mode, seed: spec.seed, maxBoxes: options.maxProposals ?? spec.maxProposals, minBoxSize: spec.minSize });
}

/** Run a box head on R pooled (or per-crop) features of shape `dims`. */
export async function runHead(graph: GraphSession, spec: HeadSpec, features: Float32Array, dims: number[]): Promise<{ logits: Float32Array; deltas: Float32Array }> {
  if (dims[0] === 0) return { logits: new Float32Array(0), deltas: new Float32Array(0) };
  const out = await graph.run({ [spec.input]: { data: features, dims } });
  return { logits: out[spec.classLogits]!.data, deltas: out[spec.boxDeltas]!.data };
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
      nmsThreshold: options.nmsThreshold ?? this.base.nmsThreshold,
      detectionsPerImage: options.maxDetections ?? this.base.detectionsPerImage,
    };
  }
}

/** The graphs and settings a region-head pipeline (rcnn, fast-rcnn) runs with. */
export interface RegionHeadGraphs {
  backbone: GraphSession;
  head: GraphSession;
  /** The backbone output the head reads. */
  featureOutput: string;
  postprocess: PostprocessDefaults;
}

export function regionHeadGraphs(model: LoadedModel, spec: { head: HeadSpec; boxCoder: BoxCoderSpec; postprocess: PostprocessSpec }, feature: string): RegionHeadGraphs {
  const bb = model.manifest.backbone;
  return {
    backbone: model.graphs.get(bb.file)!,
    head: model.graphs.get(spec.head.file)!,
    featureOutput: bb.features.find((f) => f.name === feature)!.output,
    postprocess: new PostprocessDefaults(spec.boxCoder, spec.postprocess),
  };
}
