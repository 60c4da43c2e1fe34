/**
 * How well region proposals cover the ground truth: recall at IoU 0.5 and
 * 0.7 (the fraction of objects some proposal overlaps that much), ABO (the
 * mean over objects of the best IoU) and MABO (Uijlings et al.: the mean
 * over classes of each class's average best overlap).
 */

import { boxIou } from '../core/boxes.js';

export interface ProposalQuality {
  recall50: number;
  recall70: number;
  abo: number;
  mabo: number;
  /** Mean proposals per image that were scored. */
  proposalsPerImage: number;
  objects: number;
}

export interface ImageProposals {
  /** Ground-truth boxes xyxy and their class ids. */
  truth: { boxes: number[][]; classes: number[] };
  /** Proposals xyxy, best first. */
  proposals: number[][];
}

/** @param maxProposals score the first n proposals of each image, or of image i the first maxProposals[i] (default: all). */
export function proposalQuality(images: readonly ImageProposals[], maxProposals: number | readonly number[] = Infinity): ProposalQuality {
  let objects = 0, r50 = 0, r70 = 0, sum = 0, count = 0;
  const byClass = new Map<number, { sum: number; n: number }>();
  for (const [i, { truth, proposals }] of images.entries()) {
    const props = proposals.slice(0, typeof maxProposals === 'number' ? maxProposals : maxProposals[i]);
    count += props.length;
    const m = props.length;
    const iou = m && truth.boxes.length ? boxIou(Float64Array.from(truth.boxes.flat()), Float64Array.from(props.flat())) : new Float32Array(0);
    truth.boxes.forEach((_, g) => {
      let best = 0;
      for (let j = 0; j < m; j++) best = Math.max(best, iou[g * m + j]!);
      objects++;
      sum += best;
      if (best >= 0.5) r50++;
      if (best >= 0.7) r70++;
      const c = byClass.get(truth.classes[g]!) ?? { sum: 0, n: 0 };
      c.sum += best;
      c.n++;
      byClass.set(truth.classes[g]!, c);
    });
  }
  const classAbo = [...byClass.values()].map((c) => c.sum / c.n);
  return {
    recall50: objects ? r50 / objects : 0,
    recall70: objects ? r70 / objects : 0,
    abo: objects ? sum / objects : 0,
    mabo: classAbo.length ? classAbo.reduce((s, v) => s + v, 0) / classAbo.length : 0,
    proposalsPerImage: images.length ? count / images.length : 0,
    objects,
  };
}
