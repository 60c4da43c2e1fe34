/**
 * R-CNN (Girshick et al. 2014): every region is cropped with context, warped
 * to the network's input size and run through the backbone on its own; a
 * classifier and a class-specific box regressor read each crop's features.
 *
 *   regions -> crop with context -> warp -> backbone (in batches) -> head -> post-process
 *
 * Crops go through the backbone `batchSize` at a time, so memory is bounded
 * by the batch, not by the number of regions; an abort between batches stops
 * the work and leaves nothing behind (every buffer is local to the call).
 */

import type { RgbImage } from '../image/decode.js';
import { normalizedPixels } from '../image/rcnn-transform.js';
import { warpRegions } from '../image/warp-regions.js';
import type { ModelManifest, RcnnSpec } from '../model/manifest-schema.js';
import type { LoadedModel } from '../model/package.js';
import type { PipelineRunner, RunOptions } from './pipeline-runner.js';
import { postprocessDetections, type RawDetections } from './postprocess.js';
import { regionHeadGraphs, regionsOf, runHead, type RegionHeadGraphs } from './stages.js';
import type { Stopwatch } from './stopwatch.js';

export class Rcnn implements PipelineRunner {
  private readonly spec: RcnnSpec;
  private readonly manifest: ModelManifest;
  private readonly graphs: RegionHeadGraphs;

  constructor(model: LoadedModel) {
    const spec = model.manifest.pipelines.rcnn;
    if (!spec) throw new RangeError(`model ${model.manifest.name} has no rcnn pipeline`);
    this.spec = spec;
    this.manifest = model.manifest;
    this.graphs = regionHeadGraphs(model, spec, spec.feature);
  }

  async run(image: RgbImage, options: RunOptions, clock: Stopwatch): Promise<RawDetections> {
    const regions = regionsOf(image, this.spec.proposals, options);
    clock.lap('proposals');

    const pixels = normalizedPixels(image, this.manifest.input);
    const n = regions.length / 4;
    const [wh, ww] = this.spec.warp.size;
    let logits = new Float32Array(0), deltas = new Float32Array(0);
    const bb = this.manifest.backbone;
    for (let start = 0; start < n; start += this.spec.batchSize) {
      options.signal?.throwIfAborted();
      const count = Math.min(this.spec.batchSize, n - start);
      const crops = warpRegions(pixels, regions.subarray(4 * start, 4 * (start + count)), this.spec.warp);
      clock.lap('warp');
      const features = (await this.graphs.backbone.run({ [bb.input]: { data: crops, dims: [count, 3, wh, ww] } }))[this.graphs.featureOutput]!;
      clock.lap('backbone');
      const out = await runHead(this.graphs.head, this.spec.head, features.data, [...features.dims]);
      if (start === 0) {
        logits = new Float32Array((n * out.logits.length) / count);
        deltas = new Float32Array((n * out.deltas.length) / count);
      }
      logits.set(out.logits, (start * out.logits.length) / count);
      deltas.set(out.deltas, (start * out.deltas.length) / count);
      clock.lap('head');
    }

    const size = { height: image.height, width: image.width };
    const result = postprocessDetections(logits, deltas, regions, size, size, this.graphs.postprocess.for(options));
    clock.lap('postprocess');
    return result;
  }
}
