/**
 * R-CNN (Girshick et al. 2014): every region is cropped with context, warped
 * to the network's input size and run through the backbone on its own; a
 * classifier and a class-specific box regressor read each crop's features.
 *
 *   regions -> crop with context -> warp -> backbone (in batches) -> head -> post-process
 *
 * With the package's `mirror`, each crop also runs mirrored left to right and
 * the two predictions are averaged, as AlexNet (R-CNN's network) averaged its
 * softmax over reflected crops at test time: the class probabilities, and the
 * box deltas with the mirrored crop's dx negated (its x axis runs the other
 * way). Crops go through the backbone `batchSize` at a time (mirrored ones
 * included), so memory is bounded by the batch, not by the number of
 * regions; an abort between batches stops the work and leaves nothing behind
 * (every buffer is local to the call). With roiPlacement 'graph' the warp
 * (and the mirror images) run inside the backbone's graph.
 */

import type { RgbImage } from '../core/image.js';
import { withMirroredCrops } from '../core/flip.js';
import { normalizedPixels } from '../core/rcnn-transform.js';
import type { FeatureMap } from '../core/roi/feature-map.js';
import { contextBoxes, warpRegions } from '../core/warp-regions.js';
import { WARP_BOXES, WARP_IMAGE } from '../onnx/in-graph-roi.js';
import type { Tensor } from '../runtime/session.js';
import type { ModelManifest, RcnnSpec } from '../model/manifest-schema.js';
import type { LoadedModel } from '../model/package.js';
import type { PipelineRunner, RunOptions } from './pipeline-runner.js';
import { postprocessDetections, softmax, type RawDetections } from '../core/postprocess.js';
import { graphOutput, regionHeadGraphs, regionsOf, runHead, type RegionHeadGraphs } from './stages.js';
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
    this.graphs = regionHeadGraphs(model, 'rcnn', spec, spec.feature);
  }

  async run(image: RgbImage, options: RunOptions, clock: Stopwatch): Promise<RawDetections> {
    const regions = regionsOf(image, this.spec.proposals, options);
    clock.lap('proposals');

    const pixels = normalizedPixels(image, this.manifest.input);
    const n = regions.length / 4;
    const mirror = this.spec.mirror === true;
    const regionsPerBatch = mirror ? Math.max(1, Math.floor(this.spec.batchSize / 2)) : this.spec.batchSize;
    let probs = new Float32Array(0), deltas = new Float32Array(0);
    for (let start = 0; start < n; start += regionsPerBatch) {
      options.signal?.throwIfAborted();
      const count = Math.min(regionsPerBatch, n - start);
      const batch = regions.subarray(4 * start, 4 * (start + count));
      const runs = mirror ? 2 * count : count;
      const outputs = await this.backboneOnCrops(pixels, batch, mirror, clock);
      const features = graphOutput(this.graphs.backbone, outputs, this.graphs.featureOutput, [runs, null, null, null]);
      clock.lap('backbone');
      const out = await runHead(this.graphs.head, this.spec.head, features.data, [...features.dims], this.manifest.classes.length);
      const classes = out.logits.length / runs;
      const p = softmax(out.logits, runs, classes);
      if (mirror) averageMirrored(p, out.deltas, count, classes);
      if (start === 0) {
        probs = new Float32Array(n * classes);
        deltas = new Float32Array(n * 4 * classes);
      }
      probs.set(p.subarray(0, count * classes), start * classes);
      deltas.set(out.deltas.subarray(0, count * 4 * classes), start * 4 * classes);
      clock.lap('head');
    }

    // R-CNN works in original pixels throughout: its regions are warped from the image itself.
    const result = postprocessDetections(probs, deltas, regions, image, this.graphs.postprocess.for(options));
    clock.lap('postprocess');
    return result;
  }

  /**
   * The backbone's outputs on the regions' crops (and, mirroring, their
   * mirror images after them): warped here and fed as a batch, or, with
   * roiPlacement 'graph', warped inside the backbone's graph from the image
   * (onnx/in-graph-roi.ts withWarp; the warp's time is then the backbone's).
   */
  private async backboneOnCrops(pixels: FeatureMap, regions: Float32Array, mirror: boolean, clock: Stopwatch): Promise<Record<string, Tensor>> {
    const count = regions.length / 4;
    if (this.graphs.roiGraph) {
      return this.graphs.roiGraph.run({
        [WARP_IMAGE]: { data: pixels.data, dims: [1, pixels.height, pixels.width, pixels.channels] },
        [WARP_BOXES]: { data: contextBoxes(regions, this.spec.warp), dims: [count, 4] },
      });
    }
    const [wh, ww] = this.spec.warp.size;
    const warped = warpRegions(pixels, regions, this.spec.warp);
    const crops = mirror ? withMirroredCrops(warped, ww) : warped;
    clock.lap('warp');
    return this.graphs.backbone.run({ [this.manifest.backbone.input]: { data: crops, dims: [mirror ? 2 * count : count, 3, wh, ww] } });
  }
}

/**
 * Average, in place into the first `count` rows, each crop's prediction with
 * its mirror image's (rows count..2count-1): probabilities as they are, box
 * deltas with the mirrored dx negated.
 */
function averageMirrored(probs: Float32Array, deltas: Float32Array, count: number, classes: number): void {
  const half = count * classes;
  for (let i = 0; i < half; i++) probs[i] = (probs[i]! + probs[half + i]!) / 2;
  for (let i = 0; i < 4 * half; i++) {
    const mirrored = i % 4 === 0 ? -deltas[4 * half + i]! : deltas[4 * half + i]!;
    deltas[i] = (deltas[i]! + mirrored) / 2;
  }
}
