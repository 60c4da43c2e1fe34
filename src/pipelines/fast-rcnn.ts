/**
 * Fast R-CNN (Girshick 2015): the backbone runs once per image, and each
 * region is RoI max-pooled from its feature map:
 *
 *   regions (selective search, or the caller's) -> preprocess -> backbone ->
 *   RoIPool -> head -> post-process
 *
 * A cancellation (options.signal) is checked after the regions and after the backbone.
 */

import { resizeBoxes } from '../core/boxes.js';
import { inferFeatureScale } from '../core/roi/level-mapper.js';
import { SERIAL_POOLER, type RegionPooler } from '../core/roi/pool-regions.js';
import type { RgbImage } from '../core/image.js';
import { rcnnTransform } from '../core/rcnn-transform.js';
import type { FastRcnnSpec, ModelManifest } from '../model/manifest-schema.js';
import type { LoadedModel } from '../model/package.js';
import type { OcclusionScorer, PipelineRunner, RunOptions } from './pipeline-runner.js';
import { postprocessDetections, softmax, type RawDetections } from '../core/postprocess.js';
import { featureMap, inOriginalPixels, regionHeadGraphs, regionsOf, runHead, runPooledHead, withProvenance, type RegionHeadGraphs } from './stages.js';
import type { Stopwatch } from './stopwatch.js';
import { WholeImageScorer, type WholeImageHead } from './occlusion.js';

export class FastRcnn implements PipelineRunner {
  private readonly spec: FastRcnnSpec;
  private readonly manifest: ModelManifest;
  private readonly graphs: RegionHeadGraphs;

  /** @param pooler runs the RoI max pooling (on several threads: src/workers/roi-threads.ts). */
  constructor(
    model: LoadedModel,
    private readonly pooler: RegionPooler = SERIAL_POOLER,
  ) {
    const spec = model.manifest.pipelines['fast-rcnn'];
    if (!spec) throw new RangeError(`model ${model.manifest.name} has no fast-rcnn pipeline`);
    this.spec = spec;
    this.manifest = model.manifest;
    this.graphs = regionHeadGraphs(model, 'fast-rcnn', spec, spec.roiPool.feature);
  }

  async run(image: RgbImage, options: RunOptions, clock: Stopwatch): Promise<RawDetections> {
    const regions = regionsOf(image, this.spec.proposals, options);
    clock.lap('proposals');
    options.signal?.throwIfAborted();

    const input = rcnnTransform(image, this.manifest.input);
    const boxes = resizeBoxes(regions.boxes, { width: input.originalWidth, height: input.originalHeight }, input);
    clock.lap('preprocess');

    const bb = this.manifest.backbone;
    const features = await this.graphs.backbone.run({ [bb.input]: { data: input.tensor, dims: [1, 3, input.paddedHeight, input.paddedWidth] } });
    const map = featureMap(this.graphs.backbone, features, this.graphs.featureOutput);
    clock.lap('backbone');
    options.signal?.throwIfAborted();

    const [oh, ow] = this.spec.roiPool.outputSize;
    const scale = inferFeatureScale(map.height, input.height);
    const classes = this.manifest.classes.length;
    let head: { logits: Float32Array; deltas: Float32Array };
    if (this.graphs.roiGraph) {
      // RoI max pooling inside the head's graph (roiPlacement 'graph'): its time is the head's.
      head = await runPooledHead(this.graphs.roiGraph, this.spec.head, [map], [scale], boxes, classes);
    } else {
      const pooled = await this.pooler.pool([map], boxes, { type: 'roi-pool', outputSize: [oh, ow], spatialScale: scale });
      clock.lap('roi');
      head = await runHead(this.graphs.head, this.spec.head, pooled, [boxes.length / 4, map.channels, oh, ow], classes);
    }
    const { logits, deltas } = head;
    clock.lap('head');

    const detections = postprocessDetections(softmax(logits, boxes.length / 4, classes), deltas, boxes, input, this.graphs.postprocess.for(options));
    const result = withProvenance(inOriginalPixels(detections, input), options, regions.boxes, regions.sourceOf);
    clock.lap('postprocess');
    return result;
  }

  occlusion(image: RgbImage, boxes: Float32Array, classIds: Int32Array): OcclusionScorer {
    const outputSize = this.spec.roiPool.outputSize;
    const net: WholeImageHead = {
      backbone: this.graphs.backbone,
      input: this.manifest.backbone.input,
      features: [this.graphs.featureOutput],
      roiOp: (scales) => ({ type: 'roi-pool', outputSize, spatialScale: scales[0]! }),
      pooler: this.pooler,
      head: this.graphs.head,
      headSpec: this.spec.head,
      classes: this.manifest.classes.length,
    };
    return new WholeImageScorer(net, rcnnTransform(image, this.manifest.input), boxes, classIds);
  }
}
