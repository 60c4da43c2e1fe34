/**
 * Faster R-CNN (Ren et al. 2015) as torchvision's `GeneralizedRCNN` runs it:
 *
 *   preprocess -> backbone -> RPN head -> proposals -> RoI pooling -> box head -> post-process
 *
 * at one scale, or at each of the package's test scales, merged
 * (test-scales.ts).
 *
 * The graphs with weights run in ONNX Runtime; everything between them is the
 * TypeScript in src/core.
 */

import { BoxCoder } from '../../core/box-coder.js';
import { flipBoxes, resizeBoxes } from '../../core/boxes.js';
import { inferFeatureScale } from '../../core/roi/level-mapper.js';
import { SERIAL_POOLER, type RegionPooler, type RoiOp } from '../../core/roi/pool-regions.js';
import type { FeatureMap } from '../../core/roi/feature-map.js';
import type { RgbImage } from '../../core/image.js';
import { flipHorizontal } from '../../core/flip.js';
import { rcnnTransform, type InputConvention } from '../../core/rcnn-transform.js';
import type { FasterRcnnSpec, ModelManifest } from '../../model/manifest-schema.js';
import type { LoadedModel } from '../../model/package.js';
import type { GraphSession, Tensor } from '../../runtime/session.js';
import { postprocessDetections, softmax, type PostprocessSettings, type RawDetections } from '../../core/postprocess.js';
import { featureMap, graphOutput, inOriginalPixels, PostprocessDefaults, runHead, runPooledHead } from '../stages.js';
import type { PipelineRunner, RunOptions } from '../pipeline-runner.js';
import type { Stopwatch } from '../stopwatch.js';
import { ProposalGenerator } from '../../core/rpn.js';
import { mergeScales, withinObjectSizes } from './test-scales.js';

export class FasterRcnn implements PipelineRunner {
  private readonly spec: FasterRcnnSpec;
  private readonly manifest: ModelManifest;
  private readonly backbone: GraphSession;
  private readonly rpnHead: GraphSession;
  private readonly boxHead: GraphSession;
  /** The box head with RoIAlign inside, where the package was loaded with roiPlacement 'graph'. */
  private readonly pooledHead: GraphSession | undefined;
  private readonly proposals: ProposalGenerator;
  private readonly postprocess: PostprocessDefaults;
  /** Backbone output name of each feature name. */
  private readonly featureOutput: Map<string, string>;

  /** @param pooler runs the RoI op (on several threads: src/workers/roi-threads.ts). */
  constructor(
    model: LoadedModel,
    private readonly pooler: RegionPooler = SERIAL_POOLER,
  ) {
    const spec = model.manifest.pipelines['faster-rcnn'];
    if (!spec) throw new RangeError(`model ${model.manifest.name} has no faster-rcnn pipeline`);
    this.spec = spec;
    this.manifest = model.manifest;
    this.backbone = model.graphs.get(model.manifest.backbone.file)!;
    this.rpnHead = model.graphs.get(spec.rpn.head.file)!;
    this.boxHead = model.graphs.get(spec.boxHead.file)!;
    this.pooledHead = model.roiGraphs.get('faster-rcnn');
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
    this.postprocess = new PostprocessDefaults(spec.boxCoder, spec.postprocess);
  }

  /**
   * Preprocess, backbone and RPN: the proposals in network-input pixels, best first.
   * @param maxProposals kept after the RPN's NMS (default: the model's rpn.postNmsTopN).
   */
  private async propose(image: RgbImage, clock: Stopwatch, convention: InputConvention, maxProposals: number | undefined) {
    const input = rcnnTransform(image, convention);
    clock.lap('preprocess');

    const bb = this.manifest.backbone;
    const features = await this.backbone.run({ [bb.input]: { data: input.tensor, dims: [1, 3, input.paddedHeight, input.paddedWidth] } });
    clock.lap('backbone');

    const rpn = this.spec.rpn;
    const headIn: Record<string, Tensor> = {};
    rpn.features.forEach((name, l) => (headIn[rpn.head.inputs[l]!] = graphOutput(this.backbone, features, this.featureOutput.get(name)!, [1, null, null, null])));
    const headOut = await this.rpnHead.run(headIn);
    const levels = rpn.head.objectness.map((objectnessName, l) => {
      const a = this.proposals.anchorsPerLocation(l);
      const obj = graphOutput(this.rpnHead, headOut, objectnessName, [1, a, null, null]);
      const [height, width] = [obj.dims[2]!, obj.dims[3]!];
      return { objectness: obj.data, deltas: graphOutput(this.rpnHead, headOut, rpn.head.deltas[l]!, [1, 4 * a, height, width]).data, height, width };
    });
    const proposals = this.proposals.propose(levels, input, { height: input.paddedHeight, width: input.paddedWidth }, maxProposals);
    clock.lap('rpn');
    return { input, features, proposals };
  }

  /** The RPN's proposals in original-image pixels, best first, with their objectness. */
  async regionProposals(image: RgbImage, clock: Stopwatch, maxProposals?: number): Promise<{ boxes: Float32Array; scores: Float32Array }> {
    const { input, proposals } = await this.propose(image, clock, this.manifest.input, maxProposals);
    return { boxes: resizeBoxes(proposals.boxes, input, { width: input.originalWidth, height: input.originalHeight }), scores: proposals.scores };
  }

  /** Detect on upright RGB pixels; stage times (ms) are added to `clock`. */
  async run(image: RgbImage, options: RunOptions, clock: Stopwatch): Promise<RawDetections> {
    const settings = this.postprocess.for(options);
    const scales = this.spec.testScales;
    if (!scales || options.scales === 'single') {
      const { detections, input } = await this.detectAt(image, this.manifest.input, options, settings, clock);
      return inOriginalPixels(detections, input);
    }
    const parts: RawDetections[] = [];
    let mirrored: RgbImage | undefined;
    for (const scale of scales) {
      const convention = { ...this.manifest.input, minSize: scale.minSize, maxSize: scale.maxSize };
      for (const flip of scale.flip ? [false, true] : [false]) {
        options.signal?.throwIfAborted();
        const view = flip ? (mirrored ??= flipHorizontal(image)) : image;
        const { detections, input } = await this.detectAt(view, convention, options, settings, clock);
        const part = inOriginalPixels(withinObjectSizes(detections, scale), input);
        if (flip) part.boxes = flipBoxes(part.boxes, image.width);
        parts.push(part);
      }
    }
    const merged = mergeScales(parts, settings.nmsThreshold, settings.detectionsPerImage);
    clock.lap('merge');
    return merged;
  }

  /** Detect at one input size: detections in that input's pixels, and the input. */
  private async detectAt(image: RgbImage, convention: InputConvention, options: RunOptions, settings: PostprocessSettings, clock: Stopwatch) {
    const { input, features, proposals } = await this.propose(image, clock, convention, options.maxProposals);

    const roi = this.spec.roiOp;
    const maps = roi.features.map((name) => featureMap(this.backbone, features, this.featureOutput.get(name)!));
    // Scales as torchvision infers them: feature height / resized image height, to a power of two.
    const scales = maps.map((m) => inferFeatureScale(m.height, input.height));
    const { logits, deltas } = await this.boxHeadOn(maps, scales, proposals.boxes, clock);
    clock.lap('head');

    const detections = postprocessDetections(softmax(logits, proposals.boxes.length / 4, this.manifest.classes.length), deltas, proposals.boxes, input, settings);
    clock.lap('postprocess');
    return { detections, input };
  }

  /**
   * The box head's class logits and deltas for the proposals: the RoI op on
   * the host (then the head), or, with roiPlacement 'graph', inside the
   * head's graph (its time is then the head's). RoI max pooling reads the
   * first map only.
   */
  private async boxHeadOn(maps: FeatureMap[], scales: number[], rois: Float32Array, clock: Stopwatch): Promise<{ logits: Float32Array; deltas: Float32Array }> {
    const roi = this.spec.roiOp;
    const classes = this.manifest.classes.length;
    if (this.pooledHead) {
      const levels = roi.type === 'roi-align' ? maps.length : 1;
      const mapping = roi.type === 'roi-align' ? { canonicalScale: roi.canonicalScale, canonicalLevel: roi.canonicalLevel } : {};
      return runPooledHead(this.pooledHead, this.spec.boxHead, maps.slice(0, levels), scales.slice(0, levels), rois, classes, mapping);
    }
    const [oh, ow] = roi.outputSize;
    const op: RoiOp =
      roi.type === 'roi-align'
        ? { type: 'roi-align', scales, outputSize: [oh, ow], samplingRatio: roi.samplingRatio ?? 2, aligned: roi.aligned ?? false, canonicalScale: roi.canonicalScale, canonicalLevel: roi.canonicalLevel }
        : { type: 'roi-pool', outputSize: [oh, ow], spatialScale: scales[0]! };
    const pooled = await this.pooler.pool(maps, rois, op);
    clock.lap('roi');
    return runHead(this.boxHead, this.spec.boxHead, pooled, [rois.length / 4, maps[0]!.channels, oh, ow], classes);
  }
}
