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
import { boxesOverlap, greyOut, restoreRect, type PixelTensor } from '../core/occlusion.js';
import { betweenBatches } from './occlusion.js';
import { WARP_BOXES, WARP_IMAGE } from '../onnx/in-graph-roi.js';
import type { Tensor } from '../runtime/session.js';
import type { ModelManifest, RcnnSpec } from '../model/manifest-schema.js';
import type { LoadedModel } from '../model/package.js';
import type { OcclusionScorer, PipelineRunner, RunOptions } from './pipeline-runner.js';
import { postprocessDetections, softmax, type RawDetections } from '../core/postprocess.js';
import { graphOutput, regionHeadGraphs, regionsOf, runHead, withProvenance, type RegionHeadGraphs } from './stages.js';
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
    const proposed = regionsOf(image, this.spec.proposals, options);
    const regions = proposed.boxes;
    clock.lap('proposals');

    const pixels = normalizedPixels(image, this.manifest.input);
    const n = regions.length / 4;
    const classes = this.manifest.classes.length;
    const regionsPerBatch = this.regionsPerBatch();
    const probs = new Float32Array(n * classes), deltas = new Float32Array(n * 4 * classes);
    for (let start = 0; start < n; start += regionsPerBatch) {
      options.signal?.throwIfAborted();
      const count = Math.min(regionsPerBatch, n - start);
      const batch = regions.subarray(4 * start, 4 * (start + count));
      const outputs = await this.backboneOnCrops(pixels, batch, clock);
      clock.lap('backbone');
      const p = await this.cropPredictions(outputs, count);
      probs.set(p.probs, start * classes);
      deltas.set(p.deltas, start * 4 * classes);
      clock.lap('head');
    }

    // R-CNN works in original pixels throughout: its regions are warped from the image itself.
    const result = withProvenance(postprocessDetections(probs, deltas, regions, image, this.graphs.postprocess.for(options)), options, regions, proposed.sourceOf);
    clock.lap('postprocess');
    return result;
  }

  /** Regions per backbone run: the package's batchSize counts mirror images too. */
  private regionsPerBatch(): number {
    return this.spec.mirror === true ? Math.max(1, Math.floor(this.spec.batchSize / 2)) : this.spec.batchSize;
  }

  /**
   * The backbone's outputs on the regions' crops (and, mirroring, their
   * mirror images after them): warped here and fed as a batch, or, with
   * roiPlacement 'graph', warped inside the backbone's graph from the image
   * (onnx/in-graph-roi.ts withWarp; the warp's time is then the backbone's).
   */
  private async backboneOnCrops(pixels: FeatureMap, regions: Float32Array, clock: Stopwatch): Promise<Record<string, Tensor>> {
    const count = regions.length / 4;
    if (this.graphs.roiGraph) {
      return this.graphs.roiGraph.run({
        [WARP_IMAGE]: { data: pixels.data, dims: [1, pixels.height, pixels.width, pixels.channels] },
        [WARP_BOXES]: { data: contextBoxes(regions, this.spec.warp), dims: [count, 4] },
      });
    }
    const warped = warpRegions(pixels, regions, this.spec.warp);
    clock.lap('warp');
    return this.backboneOnWarped(warped, count);
  }

  /** The backbone's outputs on `count` warped crops (N x 3 x h x w), and their mirror images after them where the package mirrors. */
  private backboneOnWarped(warped: Float32Array, count: number): Promise<Record<string, Tensor>> {
    const [wh, ww] = this.spec.warp.size;
    const mirror = this.spec.mirror === true;
    const crops = mirror ? withMirroredCrops(warped, ww) : warped;
    return this.graphs.backbone.run({ [this.manifest.backbone.input]: { data: crops, dims: [mirror ? 2 * count : count, 3, wh, ww] } });
  }

  /** The head's class probabilities (count x C) and box deltas (count x 4C) for `count` crops' backbone outputs, mirror images averaged in. */
  private async cropPredictions(outputs: Record<string, Tensor>, count: number): Promise<{ probs: Float32Array; deltas: Float32Array }> {
    const mirror = this.spec.mirror === true;
    const runs = mirror ? 2 * count : count;
    const classes = this.manifest.classes.length;
    const features = graphOutput(this.graphs.backbone, outputs, this.graphs.featureOutput, [runs, null, null, null]);
    const out = await runHead(this.graphs.head, this.spec.head, features.data, [...features.dims], classes);
    const p = softmax(out.logits, runs, classes);
    if (mirror) averageMirrored(p, out.deltas, count, classes);
    return { probs: p.subarray(0, count * classes), deltas: out.deltas.subarray(0, count * 4 * classes) };
  }

  /**
   * R-CNN reads the image only through each box's warped crop, so a patch
   * changes a box's score only where it touches the box's crop (its context
   * box, one pixel wider for the bilinear samples): only those crops run,
   * each greyed by its patch, batchSize at a time; every other patch leaves
   * the score as it is.
   */
  occlusion(image: RgbImage, boxes: Float32Array, classIds: Int32Array): OcclusionScorer {
    const pixels = normalizedPixels(image, this.manifest.input);
    const reach = contextBoxes(boxes, this.spec.warp).map((v, i) => (i % 4 < 2 ? v - 1 : v + 1));
    const k = classIds.length;
    const touching = (patches: Float32Array) => {
      const pairs: [number, number][] = [];
      for (let p = 0; p < patches.length / 4; p++) for (let b = 0; b < k; b++) if (boxesOverlap(patches, p, reach, b)) pairs.push([p, b]);
      return pairs;
    };
    const mirror = this.spec.mirror === true;
    const classes = this.manifest.classes.length;
    const scoreCrops = async (warped: Float32Array, count: number, ids: Int32Array) => {
      const { probs } = await this.cropPredictions(await this.backboneOnWarped(warped, count), count);
      return Float32Array.from({ length: count }, (_, i) => probs[i * classes + ids[i]!]!);
    };
    return {
      passes: (patches) => touching(patches).length * (mirror ? 2 : 1),
      score: async (patches, signal) => {
        const baseline = await scoreCrops(warpRegions(pixels, boxes, this.spec.warp), k, classIds);
        const occluded = new Float32Array((patches.length / 4) * k);
        for (let p = 0; p < patches.length / 4; p++) occluded.set(baseline, p * k);
        const pairs = touching(patches);
        const scratch: PixelTensor = { data: Float32Array.from(pixels.data), layout: 'hwc', channels: 3, height: pixels.height, width: pixels.width };
        const per = this.regionsPerBatch();
        const [wh, ww] = this.spec.warp.size;
        const cropSize = 3 * wh * ww;
        let batches = 0;
        for (let start = 0; start < pairs.length; start += per) {
          await betweenBatches(signal);
          const batch = pairs.slice(start, start + per);
          const warped = new Float32Array(batch.length * cropSize);
          batch.forEach(([p, b], i) => {
            const patch = patches.subarray(4 * p, 4 * p + 4);
            greyOut(scratch, patch);
            warped.set(warpRegions({ ...scratch }, boxes.subarray(4 * b, 4 * b + 4), this.spec.warp), i * cropSize);
            restoreRect(scratch, pixels.data, patch);
          });
          const scores = await scoreCrops(warped, batch.length, Int32Array.from(batch, ([, b]) => classIds[b]!));
          batch.forEach(([p, b], i) => (occluded[p * k + b] = scores[i]!));
          batches++;
        }
        return { baseline, occluded, batches };
      },
    };
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
