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
import { flipBoxes, gatherBoxes, resizeBoxes } from '../../core/boxes.js';
import { anchorShape } from '../../core/anchors.js';
import { boxAt, type Provenance } from '../../core/provenance.js';
import { inferFeatureScale } from '../../core/roi/level-mapper.js';
import { SERIAL_POOLER, type RegionPooler, type RoiOp } from '../../core/roi/pool-regions.js';
import type { FeatureMap } from '../../core/roi/feature-map.js';
import type { RgbImage } from '../../core/image.js';
import { flipHorizontal } from '../../core/flip.js';
import { rcnnTransform, type InputConvention, type RcnnInput } from '../../core/rcnn-transform.js';
import type { FasterRcnnSpec, ModelManifest, TestScale } from '../../model/manifest-schema.js';
import type { LoadedModel } from '../../model/package.js';
import type { GraphSession, Tensor } from '../../runtime/session.js';
import { postprocessDetections, softmax, type PostprocessSettings, type RawDetections } from '../../core/postprocess.js';
import { featureMap, graphOutput, inOriginalPixels, PostprocessDefaults, runHead, runPooledHead } from '../stages.js';
import type { OcclusionScorer, PipelineRunner, RunOptions } from '../pipeline-runner.js';
import type { Stopwatch } from '../stopwatch.js';
import { ProposalGenerator, type ProposalOrigins, type Proposals } from '../../core/rpn.js';
import { mergeScales, withinObjectSizes } from './test-scales.js';
import { WholeImageScorer, type WholeImageHead } from '../occlusion.js';

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
      return this.detectAt(image, this.manifest.input, { flip: false }, options, settings, clock);
    }
    const parts: RawDetections[] = [];
    let mirrored: RgbImage | undefined;
    for (const scale of scales) {
      const convention = { ...this.manifest.input, minSize: scale.minSize, maxSize: scale.maxSize };
      for (const flip of scale.flip ? [false, true] : [false]) {
        options.signal?.throwIfAborted();
        const view = flip ? (mirrored ??= flipHorizontal(image)) : image;
        parts.push(await this.detectAt(view, convention, { flip, scale }, options, settings, clock));
      }
    }
    const merged = mergeScales(parts, settings.nmsThreshold, settings.detectionsPerImage);
    clock.lap('merge');
    return merged;
  }

  /**
   * Detect at one input size, on the image or (flip) its mirror image:
   * detections in original-image pixels, upright; at a test scale, those
   * within its object sizes (measured in its input pixels).
   */
  private async detectAt(image: RgbImage, convention: InputConvention, pass: { flip: boolean; scale?: TestScale }, options: RunOptions, settings: PostprocessSettings, clock: Stopwatch): Promise<RawDetections> {
    const flip = pass.flip;
    const { input, features, proposals } = await this.propose(image, clock, convention, options.maxProposals);

    const roi = this.spec.roiOp;
    const maps = roi.features.map((name) => featureMap(this.backbone, features, this.featureOutput.get(name)!));
    // Scales as torchvision infers them: feature height / resized image height, to a power of two.
    const scales = maps.map((m) => inferFeatureScale(m.height, input.height));
    const { logits, deltas } = await this.boxHeadOn(maps, scales, proposals.boxes, clock);
    clock.lap('head');

    const all = postprocessDetections(softmax(logits, proposals.boxes.length / 4, this.manifest.classes.length), deltas, proposals.boxes, input, settings);
    const found = pass.scale ? withinObjectSizes(all, pass.scale) : all;
    const detections = inOriginalPixels(found, input);
    if (flip) detections.boxes = flipBoxes(detections.boxes, image.width);
    clock.lap('postprocess');
    return options.provenance ? { ...detections, provenance: this.provenance(found.sources, proposals, input, convention, flip) } : detections;
  }

  /**
   * Each detection's proposal, anchor and objectness, in original-image
   * pixels (mirrored back from a flipped pass, its dx negated to match).
   * @param sources the proposal each detection came from.
   */
  private provenance(sources: Int32Array, proposals: Proposals & { origins: ProposalOrigins }, input: RcnnInput, convention: InputConvention, flip: boolean): Provenance[] {
    const original = { width: input.originalWidth, height: input.originalHeight };
    const upright = (boxes: Float32Array) => {
      const b = resizeBoxes(boxes, input, original);
      return flip ? flipBoxes(b, original.width) : b;
    };
    const o = proposals.origins;
    const regions = upright(gatherBoxes(proposals.boxes, sources));
    const anchors = upright(gatherBoxes(o.anchorBoxes, sources));
    return Array.from(sources, (r, i) => {
      const level = o.level[r]!;
      const perCell = this.proposals.anchorsPerLocation(level);
      const cell = Math.floor(o.anchor[r]! / perCell);
      const width = o.grids[level]!.width;
      const [dx, dy, dw, dh] = boxAt(o.deltas, r);
      return {
        region: boxAt(regions, i),
        rank: r,
        source: {
          method: 'rpn',
          objectness: proposals.scores[r]!,
          anchor: { level, ...anchorShape(this.spec.rpn.anchors, level, o.anchor[r]! % perCell), cell: [cell % width, Math.floor(cell / width)], box: boxAt(anchors, i) },
          deltas: [flip ? -dx : dx, dy, dw, dh],
        },
        scale: { minSize: convention.minSize, maxSize: convention.maxSize, flip },
      };
    });
  }

  /** The host's RoI op over maps of these scales: RoIAlign over the levels, or RoI max pooling of the first. */
  private roiOpFor(scales: number[]): RoiOp & { outputSize: [number, number] } {
    const roi = this.spec.roiOp;
    const outputSize: [number, number] = [roi.outputSize[0], roi.outputSize[1]];
    return roi.type === 'roi-align'
      ? { type: 'roi-align', scales, outputSize, samplingRatio: roi.samplingRatio ?? 2, aligned: roi.aligned ?? false, canonicalScale: roi.canonicalScale, canonicalLevel: roi.canonicalLevel }
      : { type: 'roi-pool', outputSize, spatialScale: scales[0]! };
  }

  occlusion(image: RgbImage, boxes: Float32Array, classIds: Int32Array): OcclusionScorer {
    const net: WholeImageHead = {
      backbone: this.backbone,
      input: this.manifest.backbone.input,
      features: this.spec.roiOp.features.map((name) => this.featureOutput.get(name)!),
      roiOp: (scales) => this.roiOpFor(scales),
      pooler: this.pooler,
      head: this.boxHead,
      headSpec: this.spec.boxHead,
      classes: this.manifest.classes.length,
    };
    return new WholeImageScorer(net, rcnnTransform(image, this.manifest.input), boxes, classIds);
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
    const pooled = await this.pooler.pool(maps, rois, this.roiOpFor(scales));
    clock.lap('roi');
    return runHead(this.boxHead, this.spec.boxHead, pooled, [rois.length / 4, maps[0]!.channels, oh, ow], classes);
  }
}
