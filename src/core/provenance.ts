/**
 * Where a detection came from (`provenance` on request): the region its box
 * was regressed from, that region's rank among those the head scored, and
 * what proposed it: a selective-search hierarchy, the caller, or an RPN
 * anchor. Plain data, built only for the detections a request returns.
 */

export type Xyxy = [number, number, number, number];

/** A selective-search region: the strategy whose hierarchy formed it, and when. */
export interface SelectiveSearchSource {
  method: 'selective-search';
  colourSpace: string;
  /** Felzenszwalb's scale k of the initial segmentation. */
  k: number;
  /** The similarity set, as the paper writes it: C+T+S+F, T+S+F, F or S. */
  similarities: string;
  /** 0: a region of the initial segmentation; m: the region the m-th merge formed. */
  level: number;
  /** The hierarchy's merges: level `merges` is the whole image. */
  merges: number;
}

/** One of the caller's regions, by its index in the request's proposals. */
export interface CallerSource {
  method: 'caller';
  index: number;
}

/** An RPN proposal: the anchor, the deltas that moved it there, and its objectness. */
export interface AnchorSource {
  method: 'rpn';
  /** The objectness probability of the proposal. */
  objectness: number;
  anchor: {
    /** Anchor (feature) level, 0 first. */
    level: number;
    /** Square root of the anchor's area, in network-input pixels of its pass. */
    size: number;
    /** Height / width. */
    aspectRatio: number;
    /** The feature-map cell (x, y) the anchor sits on. */
    cell: [number, number];
    /** xyxy in original-image pixels. */
    box: Xyxy;
  };
  /**
   * (dx, dy, dw, dh) the RPN predicted: the RPN's box coder decodes them
   * against `anchor.box`, and clipping to the image gives `region`.
   */
  deltas: [number, number, number, number];
}

export type RegionSource = SelectiveSearchSource | CallerSource | AnchorSource;

export interface Provenance {
  /** The region, xyxy in original-image pixels, before box regression. */
  region: Xyxy;
  /** Its rank among the regions the head scored in its pass: 0 is the first (best-ranked) proposal. */
  rank: number;
  source: RegionSource;
  /** Faster R-CNN: the input size of the pass that found it, and whether that pass ran on the mirrored image. */
  scale?: { minSize: number; maxSize: number; flip: boolean };
}

/** The similarity set's name in the paper's letters. */
export function similarityName(s: { colour: boolean; texture: boolean; size: boolean; fill: boolean }): string {
  return [s.colour && 'C', s.texture && 'T', s.size && 'S', s.fill && 'F'].filter(Boolean).join('+');
}

/** Row i of a flat xyxy array. */
export function boxAt(boxes: ArrayLike<number>, i: number): Xyxy {
  return [boxes[4 * i]!, boxes[4 * i + 1]!, boxes[4 * i + 2]!, boxes[4 * i + 3]!];
}
