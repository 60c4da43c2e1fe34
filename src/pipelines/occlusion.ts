/**
 * Occlusion sensitivity of detections (Zeiler & Fergus 2014, section 4.2,
 * for a detector): each detection's box is held fixed and re-scored for its
 * class through its pipeline's own backbone, RoI op and head while a grey
 * patch covers one grid position of the image after another. A large drop
 * marks a part of the image the score rests on.
 *
 * A pipeline gives an OcclusionScorer (`PipelineRunner.occlusion`): Fast and
 * Faster R-CNN run whole occluded images through the backbone, several at a
 * time, and pool the fixed boxes from each (WholeImageScorer); R-CNN warps
 * only the crops a patch touches (rcnn.ts). The RoI ops run on the host
 * whatever the package's roiPlacement: the same ops the reference tests hold.
 */

import type { Cancellation } from '../core/cancellation.js';
import { greyOut } from '../core/occlusion.js';
import { resizeBoxes } from '../core/boxes.js';
import { softmax } from '../core/postprocess.js';
import type { RcnnInput } from '../core/rcnn-transform.js';
import type { FeatureMap } from '../core/roi/feature-map.js';
import { inferFeatureScale } from '../core/roi/level-mapper.js';
import type { RegionPooler, RoiOp } from '../core/roi/pool-regions.js';
import type { HeadSpec } from '../model/manifest-schema.js';
import type { GraphSession } from '../runtime/session.js';
import { graphOutput, runHead } from './stages.js';
import type { OcclusionScorer } from './pipeline-runner.js';

/**
 * Between two batches: a turn of the event loop (so that a signal handler or
 * a timer that cancels can run: ONNX Runtime's runs hold the thread), then
 * the cancellation's check.
 */
export async function betweenBatches(signal: Cancellation | undefined): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  signal?.throwIfAborted();
}

/** The most occluded images one backbone run takes, and the most input bytes it may hold. */
const OCCLUSION_BATCH = Object.freeze({ images: 8, bytes: 64 * 1024 * 1024 });

/** What a whole-image pipeline scores fixed boxes with. */
export interface WholeImageHead {
  backbone: GraphSession;
  /** The backbone's input name. */
  input: string;
  /** The backbone outputs the RoI op reads, one per level, NHWC. */
  features: readonly string[];
  /** The pipeline's RoI op for the levels' scales. */
  roiOp(scales: number[]): RoiOp & { outputSize: readonly [number, number] };
  pooler: RegionPooler;
  head: GraphSession;
  headSpec: HeadSpec;
  /** K + 1, with the background. */
  classes: number;
}

/**
 * Fast and Faster R-CNN: the network input greyed patch by patch, batches of
 * occluded images through the backbone, the fixed boxes pooled from each and
 * scored by the head in one run per batch.
 */
export class WholeImageScorer implements OcclusionScorer {
  /** The boxes in network-input pixels. */
  private readonly rois: Float32Array;

  /**
   * @param boxes K*4 xyxy in original pixels.
   * @param classIds K: the class each box is scored for.
   */
  constructor(
    private readonly net: WholeImageHead,
    private readonly image: RcnnInput,
    boxes: Float32Array,
    private readonly classIds: Int32Array,
  ) {
    this.rois = resizeBoxes(boxes, { width: image.originalWidth, height: image.originalHeight }, image);
  }

  passes(patches: Float32Array): number {
    return patches.length / 4;
  }

  /** Images per backbone run: 1 where the graph fixes its batch axis, else within OCCLUSION_BATCH. */
  private batchSize(): number {
    const batchAxis = this.net.backbone.inputShapes[this.net.input]?.[0];
    if (typeof batchAxis === 'number' && batchAxis > 0) return 1;
    return Math.max(1, Math.min(OCCLUSION_BATCH.images, Math.floor(OCCLUSION_BATCH.bytes / (4 * this.image.tensor.length))));
  }

  async score(patches: Float32Array, signal?: Cancellation): Promise<{ baseline: Float32Array; occluded: Float32Array; batches: number }> {
    const { image } = this;
    const k = this.classIds.length;
    const baseline = await this.scoreImages(image.tensor, 1);
    const count = patches.length / 4;
    const occluded = new Float32Array(count * k);
    // The patches in network-input pixels.
    const rects = resizeBoxes(patches, { width: image.originalWidth, height: image.originalHeight }, image);
    const perBatch = this.batchSize();
    const plane = image.tensor.length;
    let batches = 0;
    for (let start = 0; start < count; start += perBatch) {
      await betweenBatches(signal);
      const n = Math.min(perBatch, count - start);
      const batch = new Float32Array(n * plane);
      for (let b = 0; b < n; b++) {
        const one = batch.subarray(b * plane, (b + 1) * plane);
        one.set(image.tensor);
        greyOut({ data: one, layout: 'chw', channels: 3, height: image.paddedHeight, width: image.paddedWidth }, rects.subarray(4 * (start + b), 4 * (start + b + 1)));
      }
      occluded.set(await this.scoreImages(batch, n), start * k);
      batches++;
    }
    return { baseline, occluded, batches };
  }

  /** The boxes' scores on `n` network inputs (n x 3 x H x W): n x K. */
  private async scoreImages(tensors: Float32Array, n: number): Promise<Float32Array> {
    const { net, image, rois, classIds } = this;
    const k = classIds.length;
    const out = await net.backbone.run({ [net.input]: { data: tensors, dims: [n, 3, image.paddedHeight, image.paddedWidth] } });
    const levels = net.features.map((name) => graphOutput(net.backbone, out, name, [n, null, null, null]));
    const scales = levels.map((t) => inferFeatureScale(t.dims[1]!, image.height));
    const op = net.roiOp(scales);
    const [oh, ow] = op.outputSize;
    const channels = levels[0]!.dims[3]!;
    const perImage = k * channels * oh * ow;
    const pooled = new Float32Array(n * perImage);
    for (let b = 0; b < n; b++) {
      const maps: FeatureMap[] = levels.map((t) => {
        const [, height, width, c] = t.dims as [number, number, number, number];
        return { data: t.data.subarray(b * height * width * c, (b + 1) * height * width * c), height, width, channels: c };
      });
      pooled.set(await net.pooler.pool(maps, rois, op), b * perImage);
    }
    const { logits } = await runHead(net.head, net.headSpec, pooled, [n * k, channels, oh, ow], net.classes);
    return classScores(softmax(logits, n * k, net.classes), net.classes, classIds);
  }
}

/**
 * Row r's probability of its box's class, rows in blocks of K (one block per image or crop set).
 * @param probs R x C, R a multiple of K.
 */
function classScores(probs: Float32Array, classes: number, classIds: Int32Array): Float32Array {
  const rows = probs.length / classes;
  return Float32Array.from({ length: rows }, (_, r) => probs[r * classes + classIds[r % classIds.length]!]!);
}
