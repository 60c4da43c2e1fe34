/**
 * Multi-scale testing: one image run at several sizes, each scale trusted
 * for the object sizes it sees well, the detections merged.
 *
 * The Fast R-CNN paper (section 5.2) tests on an image pyramid and takes
 * each region from the scale at which it is closest to the network's
 * training size; SNIP (Singh & Davis 2018) does the same at the level of
 * detections, with a "valid range" of object sizes per scale. Here: at each
 * scale, the detections whose size (the square root of the box's area, in
 * that scale's input pixels) is in [minObjectSize, maxObjectSize), from the
 * image and, where the scale says `flip`, from its mirror image too; then
 * the union of all passes, per-class NMS and the top k, as detectron2's
 * test-time augmentation merges its passes (`GeneralizedRCNNWithTTA`).
 */

import { gatherBoxes } from '../../core/boxes.js';
import { batchedNms } from '../../core/nms.js';
import type { TestScale } from '../../model/manifest-schema.js';
import type { RawDetections } from '../../core/postprocess.js';

/**
 * The detections of one scale within its object sizes.
 * @param d detections in this scale's network-input pixels (where the sizes are measured).
 */
export function withinObjectSizes(d: RawDetections, scale: TestScale): RawDetections {
  const lo = scale.minObjectSize ?? 0, hi = scale.maxObjectSize ?? Infinity;
  const keep: number[] = [];
  for (let i = 0; i < d.scores.length; i++) {
    const b = 4 * i;
    const side = Math.sqrt((d.boxes[b + 2]! - d.boxes[b]!) * (d.boxes[b + 3]! - d.boxes[b + 1]!));
    if (side >= lo && side < hi) keep.push(i);
  }
  return select(d, keep);
}

/**
 * The union of several scales' detections, NMSed per class, best first.
 * @param limit at most this many detections.
 * @returns `regions` is the sum of the scales' regions, and `sources` index them in pass order.
 */
export function mergeScales(parts: readonly RawDetections[], nmsThreshold: number, limit: number): RawDetections {
  const n = parts.reduce((sum, p) => sum + p.scores.length, 0);
  const union: RawDetections = { boxes: new Float32Array(4 * n), scores: new Float32Array(n), classIds: new Int32Array(n), regions: 0, sources: new Int32Array(n), provenance: parts.some((p) => p.provenance) ? [] : undefined };
  let o = 0;
  for (const p of parts) {
    union.boxes.set(p.boxes, 4 * o);
    union.scores.set(p.scores, o);
    union.classIds.set(p.classIds, o);
    for (let i = 0; i < p.sources.length; i++) union.sources[o + i] = p.sources[i]! + union.regions;
    if (p.provenance) union.provenance!.push(...p.provenance);
    union.regions += p.regions;
    o += p.scores.length;
  }
  return select(union, batchedNms(union.boxes, union.scores, union.classIds, nmsThreshold).subarray(0, limit));
}

/** The detections at `keep`, in that order. */
function select(d: RawDetections, keep: ArrayLike<number>): RawDetections {
  return {
    boxes: gatherBoxes(d.boxes, keep),
    scores: Float32Array.from(keep, (i) => d.scores[i]!),
    classIds: Int32Array.from(keep, (i) => d.classIds[i]!),
    regions: d.regions,
    sources: Int32Array.from(keep, (i) => d.sources[i]!),
    ...(d.provenance && { provenance: Array.from(keep, (i) => d.provenance![i]!) }),
  };
}
