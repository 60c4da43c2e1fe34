/**
 * Faster R-CNN (Ren et al. 2015) as torchvision's `GeneralizedRCNN` runs it:
 *
 *   preprocess -> backbone -> RPN head -> proposals -> RoI pooling -> box head -> post-process
 *
 * The graphs with weights run in ONNX Runtime; everything between them is the
 * TypeScript in src/core.
 */

import { BoxCoder } from '../../core/box-coder.js';
import type { FeatureMap } from '../../core/roi/feature-map.js';
import { inferFeatureScale } from '../../core/roi/level-mapper.js';
import { multiScaleRoiAlign } from '../../core/roi/multi-scale-roi-align.js';
import { roiPool } from '../../core/roi/roi-pool.js';
import type { RgbImage } from '../../image/decode.js';
import { rcnnTransform } from '../../image/rcnn-transform.js';
import type { FasterRcnnSpec, ModelManifest } from '../../model/manifest-schema.js';
import type { LoadedModel } from '../../model/package.js';
import type { GraphSession, Tensor } from '../../runtime/session.js';
import { postprocessDetections, type PostprocessSettings, type RawDetections } from '../postprocess.js';
import type { PipelineRunner, RunOptions } from '../pipeline-runner.js';
import type { Stopwatch } from '../stopwatch.js';
import { ProposalGenerator } from './rpn.js';


/** A backbone output, [1, H, W, C] (NHWC), as a feature map. */
function featureMap(t: Tensor, what: string): FeatureMap {
  if (t.dims.length !== 4 || t.dims[0] !== 1) throw new RangeError(`${what}: expected a [1, H, W, C] tensor, got [${t.dims.join(', ')}]`);
  return { data: t.data, height: t.dims[1]!, width: t.dims[2]!, channels: t.dims[3]! };
}

export class FasterRcnn implements PipelineRunner {
  private readonly spec: FasterRcnnSpec;
  private readonly manifest: ModelManifest;
  private readonly backbone: GraphSession;
  private readonly rpnHead: GraphSession;
  private readonly boxHead: GraphSession;
  private readonly proposals: ProposalGenerator;
  private readonly postprocess: PostprocessSettings;
  /** Backbone output name of each feature name. */
  private readonly featureOutput: Map<string, string>;

  constructor(model: LoadedModel) {
    const spec = model.manifest.pipelines['faster-rcnn'];
    if (!spec) throw new RangeError(`model ${model.manifest.name} has no faster-rcnn pipeline`);
    this.spec = spec;
    this.manifest = model.manifest;
    this.backbone = model.graphs.get(model.manifest.backbone.file)!;
    this.rpnHead = model.graphs.get(spec.rpn.head.file)!;
    this.boxHead = model.graphs.get(spec.boxHead.file)!;
    this.featureOutput = new Map(model.manifest.backbone.features.map((f) => [f.name, f.output]));
    const rpn = spec.rpn;
    this.proposals = new ProposalGenerator({
      anchors: rpn.anchors,
      coder: new BoxCoder(rpn.boxCoder),
      preNmsTopN: rpn.preNmsTopN,
      postNmsTopN: rpn.postNmsTopN,
      nmsThreshold: rpn.nmsThreshold,
      minSize: rpn.minSize,
      scoreThreshold: rpn.scoreThreshold,
    });
    const pp = spec.postprocess;
    this.postprocess = {
      coder: new BoxCoder(spec.boxCoder),
      scoreThreshold: pp.scoreThreshold,
      nmsThreshold: pp.nmsThreshold,
      detectionsPerImage: pp.detectionsPerImage,
      minSize: pp.minSize,
    };
  }

  /** Detect on upright RGB pixels; stage times (ms) are added to `clock`. */
  async run(image: RgbImage, options: RunOptions, clock: Stopwatch): Promise<RawDetections> {
    const input = rcnnTransform(image, this.manifest.input);
    clock.lap('preprocess');

    const bb = this.manifest.backbone;
    const features = await this.backbone.run({ [bb.input]: { data: input.tensor, dims: [1, 3, input.paddedHeight, input.paddedWidth] } });
    clock.lap('backbone');

    const rpn = this.spec.rpn;
    const headIn: Record<string, Tensor> = {};
    rpn.features.forEach((name, l) => (headIn[rpn.head.inputs[l]!] = features[this.featureOutput.get(name)!]!));
    const headOut = await this.rpnHead.run(headIn);
    const levels = rpn.head.objectness.map((objectnessName, l) => {
      const obj = headOut[objectnessName]!;
      return { objectness: obj.data, deltas: headOut[rpn.head.deltas[l]!]!.data, height: obj.dims[2]!, width: obj.dims[3]! };
    });
    const proposals = this.proposals.propose(levels, input, { height: input.paddedHeight, width: input.paddedWidth });
    clock.lap('rpn');

    const roi = this.spec.roiOp;
    const maps = roi.features.map((name) => featureMap(features[this.featureOutput.get(name)!]!, `feature ${name}`));
    // Scales as torchvision infers them: feature height / resized image height, to a power of two.
    const scales = maps.map((m) => inferFeatureScale(m.height, input.height));
    const [oh, ow] = roi.outputSize;
    const pooled =
      roi.type === 'roi-align'
        ? multiScaleRoiAlign(maps, proposals.boxes, {
            scales,
            outputSize: [oh, ow],
            samplingRatio: roi.samplingRatio ?? 2,
            aligned: roi.aligned ?? false,
            canonicalScale: roi.canonicalScale,
            canonicalLevel: roi.canonicalLevel,
          })
        : roiPool(maps[0]!, proposals.boxes, { outputSize: [oh, ow], spatialScale: scales[0]! });
    clock.lap('roi');

    const rois = proposals.boxes.length / 4;
    let logits: Float32Array = new Float32Array(0);
    let deltas: Float32Array = new Float32Array(0);
    if (rois > 0) {
      const bh = this.spec.boxHead;
      const out = await this.boxHead.run({ [bh.input]: { data: pooled, dims: [rois, maps[0]!.channels, oh, ow] } });
      logits = out[bh.classLogits]!.data;
      deltas = out[bh.boxDeltas]!.data;
    }
    clock.lap('boxHead');

    const settings: PostprocessSettings = {
      ...this.postprocess,
      scoreThreshold: options.scoreThreshold ?? this.postprocess.scoreThreshold,
      nmsThreshold: options.nmsThreshold ?? this.postprocess.nmsThreshold,
      detectionsPerImage: options.maxDetections ?? this.postprocess.detectionsPerImage,
    };
    const result = postprocessDetections(logits, deltas, proposals.boxes, input, { height: input.originalHeight, width: input.originalWidth }, settings);
    clock.lap('postprocess');
    return result;
  }
}
