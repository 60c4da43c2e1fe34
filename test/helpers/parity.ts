import { boxIou } from '../../src/core/boxes.js';

export interface RefDetection {
  box: number[];
  classId: number;
  score: number;
}

/**
 * Share of `a`'s detections that have a partner in `b`: same class, IoU >= minIou
 * (or, with maxCoordDiff, every coordinate within that many pixels: a box a
 * tenth of a pixel high has an IoU that float rounding swings) and |score
 * difference| <= maxScoreDiff. Partners are matched one to one, greedily by score.
 */
export function matchedFraction(a: RefDetection[], b: RefDetection[], minIou = 0.99, maxScoreDiff = 1e-3, maxCoordDiff = 0): number {
  if (a.length === 0) return b.length === 0 ? 1 : 0;
  const used = new Set<number>();
  let matched = 0;
  for (const d of a) {
    let best = -1;
    let bestIou = minIou;
    b.forEach((e, j) => {
      if (used.has(j) || e.classId !== d.classId || Math.abs(e.score - d.score) > maxScoreDiff) return;
      const close = maxCoordDiff > 0 && d.box.every((v, k) => Math.abs(v - e.box[k]!) <= maxCoordDiff);
      const iou = close ? 1 : boxIou(Float64Array.from(d.box), Float64Array.from(e.box))[0]!;
      if (iou >= bestIou) {
        bestIou = iou;
        best = j;
      }
    });
    if (best >= 0) {
      used.add(best);
      matched++;
    }
  }
  return matched / a.length;
}
