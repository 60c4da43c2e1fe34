/**
 * COCO box detection metrics, by pycocotools' COCOeval definition (iouType
 * 'bbox'): IoU thresholds 0.50:0.05:0.95, 101-point interpolated precision,
 * area ranges all / small (< 32^2) / medium / large (> 96^2) on the ground
 * truth's `area`, maxDets 1 / 10 / 100, crowd boxes matched by
 * intersection over the detection's area and ignored. Ties are broken as
 * pycocotools' stable mergesorts do, so the numbers agree with it.
 */

import type { CocoAnnotation, CocoDataset, CocoResult } from '../dataset/coco.js';

/** numpy's linspace(.5, .95, 10), bit for bit: a match at IoU exactly 0.85 or 0.9 depends on it. */
export const IOU_THRESHOLDS = Object.freeze(Array.from({ length: 10 }, (_, i) => (i === 9 ? 0.95 : i * ((0.95 - 0.5) / 9) + 0.5)));
/** numpy's linspace(0, 1, 101). */
const RECALL_THRESHOLDS = Array.from({ length: 101 }, (_, i) => (i === 100 ? 1 : i * (1 / 100)));
export const AREA_RANGES = Object.freeze({ all: [0, 1e10], small: [0, 32 ** 2], medium: [32 ** 2, 96 ** 2], large: [96 ** 2, 1e10] } as const);
type AreaName = keyof typeof AREA_RANGES;
const AREAS = Object.keys(AREA_RANGES) as AreaName[];
const MAX_DETS = [1, 10, 100] as const;

export interface CocoMetrics {
  /** AP at IoU 0.50:0.95, all areas, 100 detections. */
  ap: number;
  ap50: number;
  ap75: number;
  apSmall: number;
  apMedium: number;
  apLarge: number;
  ar1: number;
  ar10: number;
  ar100: number;
  arSmall: number;
  arMedium: number;
  arLarge: number;
  /** AP@[.5:.95] and AP50 per category name (-1 where the category has no ground truth). */
  perClass: Record<string, { ap: number; ap50: number }>;
}

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

interface Det extends Box {
  id: number;
  score: number;
  area: number;
}

interface Gt extends Box {
  id: number;
  area: number;
  crowd: boolean;
}

/** pycocotools' maskUtils.iou on boxes: a crowd ground truth divides by the detection's area. */
function boxIou(d: Box, g: Box, crowd: boolean): number {
  const w = Math.min(d.x + d.w, g.x + g.w) - Math.max(d.x, g.x);
  if (w <= 0) return 0;
  const h = Math.min(d.y + d.h, g.y + g.h) - Math.max(d.y, g.y);
  if (h <= 0) return 0;
  const inter = w * h;
  return inter / (crowd ? d.w * d.h : d.w * d.h + g.w * g.h - inter);
}

/** Indices sorted by key, ascending, stable (numpy's mergesort). */
function stableOrder(n: number, key: (i: number) => number): number[] {
  return Array.from({ length: n }, (_, i) => i).sort((a, b) => key(a) - key(b) || a - b);
}

/** One image x category x area range x maxDet, as COCOeval.evaluateImg. */
interface ImageEval {
  /** [threshold][detection]: matched ground-truth id, 0 when none. */
  dtMatches: number[][];
  dtScores: number[];
  gtIgnore: boolean[];
  /** [threshold][detection] */
  dtIgnore: boolean[][];
}

function evaluateImage(gts: Gt[], dts: Det[], ious: number[][], area: readonly [number, number], maxDet: number): ImageEval | undefined {
  if (gts.length === 0 && dts.length === 0) return undefined;
  const ignoredGt = gts.map((g) => g.crowd || g.area < area[0] || g.area > area[1]);
  const gtOrder = stableOrder(gts.length, (i) => (ignoredGt[i] ? 1 : 0));
  const gt = gtOrder.map((i) => gts[i]!);
  const gtIg = gtOrder.map((i) => ignoredGt[i]!);
  // dts arrive sorted by score (as computeIoU left them); ious rows follow them.
  const nd = Math.min(dts.length, maxDet);
  const T = IOU_THRESHOLDS.length;
  const gtm = Array.from({ length: T }, () => new Array<number>(gt.length).fill(0));
  const dtm = Array.from({ length: T }, () => new Array<number>(nd).fill(0));
  const dtIg = Array.from({ length: T }, () => new Array<boolean>(nd).fill(false));
  if (gt.length > 0) {
    IOU_THRESHOLDS.forEach((t, ti) => {
      for (let di = 0; di < nd; di++) {
        let best = Math.min(t, 1 - 1e-10);
        let m = -1;
        for (let gi = 0; gi < gt.length; gi++) {
          if (gtm[ti]![gi]! > 0 && !gt[gi]!.crowd) continue;
          if (m > -1 && !gtIg[m] && gtIg[gi]) break;
          const iou = ious[di]![gtOrder[gi]!]!;
          if (iou < best) continue;
          best = iou;
          m = gi;
        }
        if (m === -1) continue;
        dtIg[ti]![di] = gtIg[m]!;
        dtm[ti]![di] = gt[m]!.id;
        gtm[ti]![m] = dts[di]!.id;
      }
    });
  }
  // Unmatched detections outside the area range are ignored.
  for (let di = 0; di < nd; di++) {
    const a = dts[di]!.area;
    if (a < area[0] || a > area[1]) for (let ti = 0; ti < T; ti++) if (dtm[ti]![di] === 0) dtIg[ti]![di] = true;
  }
  return { dtMatches: dtm, dtScores: dts.slice(0, nd).map((d) => d.score), gtIgnore: gtIg, dtIgnore: dtIg };
}

/** First index i with sorted[i] >= v (numpy searchsorted, side 'left'). */
function searchLeft(sorted: number[], v: number): number {
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Precision at the 101 recall points and the final recall, per threshold (COCOeval.accumulate); undefined when no ground truth counts. */
function accumulate(evals: ImageEval[], maxDet: number): { precision: number[][]; recall: number[] } | undefined {
  const scores: number[] = [];
  const matched: number[][] = IOU_THRESHOLDS.map(() => []);
  const ignored: boolean[][] = IOU_THRESHOLDS.map(() => []);
  let npig = 0;
  for (const e of evals) {
    const n = Math.min(e.dtScores.length, maxDet);
    scores.push(...e.dtScores.slice(0, n));
    IOU_THRESHOLDS.forEach((_, t) => {
      matched[t]!.push(...e.dtMatches[t]!.slice(0, n));
      ignored[t]!.push(...e.dtIgnore[t]!.slice(0, n));
    });
    npig += e.gtIgnore.filter((g) => !g).length;
  }
  if (npig === 0) return undefined;
  const order = stableOrder(scores.length, (i) => -scores[i]!);
  const precision: number[][] = [];
  const recall: number[] = [];
  IOU_THRESHOLDS.forEach((_, t) => {
    const rc: number[] = [], pr: number[] = [];
    let tp = 0, fp = 0;
    for (const i of order) {
      if (ignored[t]![i]) {
        // pycocotools keeps ignored detections in the cumulative arrays with unchanged counts.
      } else if (matched[t]![i]! > 0) tp++;
      else fp++;
      rc.push(tp / npig);
      pr.push(tp / (tp + fp + Number.EPSILON));
    }
    recall.push(rc.length ? rc[rc.length - 1]! : 0);
    for (let i = pr.length - 1; i > 0; i--) if (pr[i]! > pr[i - 1]!) pr[i - 1] = pr[i]!;
    precision.push(RECALL_THRESHOLDS.map((r) => {
      const i = searchLeft(rc, r);
      return i < pr.length ? pr[i]! : 0;
    }));
  });
  return { precision, recall };
}

function mean(values: number[]): number {
  const valid = values.filter((v) => v > -1);
  return valid.length ? valid.reduce((s, v) => s + v, 0) / valid.length : -1;
}

/**
 * Evaluate detections against COCO ground truth.
 * @throws RangeError when a result names an image or category the ground truth lacks.
 */
export function evaluateCoco(truth: CocoDataset, results: readonly CocoResult[]): CocoMetrics {
  const imageIds = [...new Set(truth.images.map((im) => im.id))].sort((a, b) => a - b);
  const categories = [...truth.categories].sort((a, b) => a.id - b.id);
  const knownImages = new Set(imageIds);
  const knownCats = new Set(categories.map((c) => c.id));
  const key = (img: number, cat: number) => `${img}/${cat}`;
  const gts = new Map<string, Gt[]>();
  for (const a of truth.annotations as CocoAnnotation[]) {
    const [x, y, w, h] = a.bbox;
    const list = gts.get(key(a.image_id, a.category_id)) ?? [];
    list.push({ id: a.id, x, y, w, h, area: a.area, crowd: a.iscrowd === 1 });
    gts.set(key(a.image_id, a.category_id), list);
  }
  const dts = new Map<string, Det[]>();
  results.forEach((r, i) => {
    if (!knownImages.has(r.image_id)) throw new RangeError(`result ${i} has image_id ${r.image_id}, which is not in the ground truth`);
    if (!knownCats.has(r.category_id)) throw new RangeError(`result ${i} has category_id ${r.category_id}, which is not in the ground truth`);
    const [x, y, w, h] = r.bbox;
    const list = dts.get(key(r.image_id, r.category_id)) ?? [];
    list.push({ id: i + 1, x, y, w, h, area: w * h, score: r.score });
    dts.set(key(r.image_id, r.category_id), list);
  });

  // Per (category, area, maxDet): the evaluated images, then precision and recall.
  const maxAll = MAX_DETS[MAX_DETS.length - 1]!;
  const P = new Map<string, number[][]>(); // key cat/area/maxDet -> precision [t][r]
  const R = new Map<string, number[]>();
  for (const cat of categories) {
    const perImage = imageIds.map((img) => {
      const g = gts.get(key(img, cat.id)) ?? [];
      const d = dts.get(key(img, cat.id)) ?? [];
      const sorted = stableOrder(d.length, (i) => -d[i]!.score).slice(0, maxAll).map((i) => d[i]!);
      const ious = sorted.map((dt) => g.map((gt) => boxIou(dt, gt, gt.crowd)));
      return { g, d: sorted, ious };
    });
    for (const area of AREAS) {
      // Matched once with the most detections; fewer is a prefix (greedy matching in score order).
      const evals = perImage.map(({ g, d, ious }) => evaluateImage(g, d, ious, AREA_RANGES[area], maxAll)).filter((e): e is ImageEval => e !== undefined);
      for (const maxDet of MAX_DETS) {
        const acc = accumulate(evals, maxDet);
        if (acc) {
          P.set(`${cat.id}/${area}/${maxDet}`, acc.precision);
          R.set(`${cat.id}/${area}/${maxDet}`, acc.recall);
        }
      }
    }
  }

  const ap = (area: AreaName, iou?: number, cats = categories.map((c) => c.id)) => {
    const values: number[] = [];
    for (const c of cats) {
      const p = P.get(`${c}/${area}/${maxAll}`);
      IOU_THRESHOLDS.forEach((t, ti) => {
        if (iou !== undefined && Math.abs(t - iou) > 1e-9) return;
        if (p) values.push(...p[ti]!);
        else values.push(...RECALL_THRESHOLDS.map(() => -1));
      });
    }
    return mean(values);
  };
  const ar = (area: AreaName, maxDet: number) => {
    const values: number[] = [];
    for (const c of categories) values.push(...(R.get(`${c.id}/${area}/${maxDet}`) ?? IOU_THRESHOLDS.map(() => -1)));
    return mean(values);
  };
  const perClass: CocoMetrics['perClass'] = {};
  for (const c of categories) perClass[c.name] = { ap: ap('all', undefined, [c.id]), ap50: ap('all', 0.5, [c.id]) };
  return {
    ap: ap('all'), ap50: ap('all', 0.5), ap75: ap('all', 0.75),
    apSmall: ap('small'), apMedium: ap('medium'), apLarge: ap('large'),
    ar1: ar('all', 1), ar10: ar('all', 10), ar100: ar('all', 100),
    arSmall: ar('small', maxAll), arMedium: ar('medium', maxAll), arLarge: ar('large', maxAll),
    perClass,
  };
}
