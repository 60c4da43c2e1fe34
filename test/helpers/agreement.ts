/**
 * How far two runs' detections agree: matched one to one, in the first run's
 * score order, to the unused detection of the same class with the highest
 * IoU, at least 0.5. For int8 against fp32 on the same weights: what int8
 * must keep is the fp32 network's own answer (with random weights there is
 * no ground truth to score AP against).
 */

import { boxIou } from '../../src/core/boxes.js';
import type { Detection } from '../../src/detector.js';

export interface Agreement {
  matched: number;
  /** Shares of each run's detections the other reproduces. */
  ofFirst: number;
  ofSecond: number;
}

export function detectionAgreement(first: readonly Detection[], second: readonly Detection[], minIou = 0.5): Agreement {
  const used = new Set<number>();
  let matched = 0;
  for (const d of first) {
    let best = -1, bestIou = minIou;
    second.forEach((e, j) => {
      if (used.has(j) || e.classId !== d.classId) return;
      const o = boxIou(Float32Array.from(d.box), Float32Array.from(e.box))[0]!;
      if (o >= bestIou) [best, bestIou] = [j, o];
    });
    if (best >= 0) {
      used.add(best);
      matched++;
    }
  }
  return { matched, ofFirst: first.length ? matched / first.length : 1, ofSecond: second.length ? matched / second.length : 1 };
}
