/**
 * Region Proposal Network post-processing (Ren et al. 2015, section 3.1), in
 * torchvision's order (`RegionProposalNetwork.filter_proposals`):
 *
 *   per level: top preNmsTopN anchors by objectness logit, decode their deltas
 *   -> sigmoid -> clip to the image -> drop boxes under minSize -> drop scores
 *   under scoreThreshold -> NMS per level -> postNmsTopN over all levels.
 *
 * Decoding only the selected anchors gives the same boxes as decoding all of
 * them first, as the reference does, for a fraction of the work. Everything
 * after the per-level top-n is filterProposals, a function of its own.
 */

import { cellAnchorsFor, gridAnchors, type AnchorSpec } from './anchors.js';
import { BoxCoder } from './box-coder.js';
import { clipBoxes, gatherBoxes, removeSmallBoxes } from './boxes.js';
import { batchedNms } from './nms.js';
import { topK } from './topk.js';

const f32 = Math.fround;

/** One level of RPN head output, as the graph returns it (batch of one). */
export interface RpnLevelOutput {
  /** [A, H, W] objectness logits. */
  objectness: Float32Array;
  /** [4A, H, W] box deltas, anchor-major: channel 4a + j is coordinate j of anchor a. */
  deltas: Float32Array;
  height: number;
  width: number;
}

export interface RpnSettings {
  anchors: AnchorSpec;
  coder: BoxCoder;
  preNmsTopN: number;
  postNmsTopN: number;
  nmsThreshold: number;
  minSize: number;
  scoreThreshold: number;
}

/** filter_proposals' settings after its top-n. */
export type ProposalFilter = Pick<RpnSettings, 'postNmsTopN' | 'nmsThreshold' | 'minSize' | 'scoreThreshold'>;

export interface Proposals {
  /** K*4 xyxy in network-input pixels, by decreasing objectness. */
  boxes: Float32Array;
  /** K objectness probabilities. */
  scores: Float32Array;
}

/** Where each proposal came from: its anchor, and the deltas that moved it (the RPN's box coder decodes the one with the other). */
export interface ProposalOrigins {
  /** K anchor levels. */
  level: Int32Array;
  /** K: the anchor's row in its level's grid, (y * W + x) * A + a (anchors.ts gridAnchors). */
  anchor: Int32Array;
  /** K*4 the anchors, xyxy in network-input pixels. */
  anchorBoxes: Float32Array;
  /** K*4 the RPN's deltas (dx, dy, dw, dh) for them. */
  deltas: Float32Array;
  /** Each level's grid. */
  grids: { height: number; width: number }[];
}

/**
 * Turns RPN head outputs into proposals. Holds the cell anchors and a cache of
 * tiled anchors per grid, so repeated image sizes tile once.
 */
export class ProposalGenerator {
  private readonly cellAnchors: Float32Array[];
  private readonly tiled = new Map<string, Float32Array>();

  constructor(private readonly settings: RpnSettings) {
    this.cellAnchors = cellAnchorsFor(settings.anchors);
  }

  /** A: the anchors at each location of level l (sizes x aspect ratios). */
  anchorsPerLocation(level: number): number {
    return this.cellAnchors[level]!.length / 4;
  }

  /** Anchors of level l for a grid, as torchvision: stride = padded size // grid size per axis. */
  anchorsFor(level: number, gridH: number, gridW: number, paddedH: number, paddedW: number): Float32Array {
    const key = `${level}:${gridH}x${gridW}:${paddedH}x${paddedW}`;
    let a = this.tiled.get(key);
    if (!a) {
      a = gridAnchors(this.cellAnchors[level]!, gridH, gridW, Math.floor(paddedH / gridH), Math.floor(paddedW / gridW));
      if (this.tiled.size > 64) this.tiled.clear();
      this.tiled.set(key, a);
    }
    return a;
  }

  /**
   * @param levels RPN head outputs, one per anchor level.
   * @param image resized (unpadded) input size: proposals are clipped to it.
   * @param padded padded input size: anchor strides come from it.
   * @param postNmsTopN proposals kept after NMS, instead of the settings' (a request's maxProposals).
   */
  propose(levels: readonly RpnLevelOutput[], image: { height: number; width: number }, padded: { height: number; width: number }, postNmsTopN = this.settings.postNmsTopN): Proposals & { origins: ProposalOrigins } {
    const s = this.settings;
    if (levels.length !== this.cellAnchors.length) {
      throw new RangeError(`RPN has ${this.cellAnchors.length} anchor levels but the head returned ${levels.length}`);
    }
    const boxesPerLevel: Float32Array[] = [];
    const logitsPerLevel: Float32Array[] = [];
    const anchorsPerLevel: Int32Array[] = [];
    const anchorBoxesPerLevel: Float32Array[] = [];
    const deltasPerLevel: Float32Array[] = [];
    for (let l = 0; l < levels.length; l++) {
      const { objectness, deltas, height: h, width: w } = levels[l]!;
      const a = this.cellAnchors[l]!.length / 4;
      const hw = h * w;
      if (objectness.length !== a * hw || deltas.length !== 4 * a * hw) {
        throw new RangeError(`RPN level ${l}: expected ${a} anchors x ${h}x${w}, got ${objectness.length} objectness and ${deltas.length} delta values`);
      }
      // Flatten [A, H, W] to torchvision's (y, x, a) order.
      const logits = new Float32Array(a * hw);
      for (let k = 0; k < a; k++) for (let p = 0; p < hw; p++) logits[p * a + k] = objectness[k * hw + p]!;
      const top = topK(logits, s.preNmsTopN);
      const anchors = this.anchorsFor(l, h, w, padded.height, padded.width);
      const selDeltas = new Float32Array(4 * top.length);
      const selLogits = new Float32Array(top.length);
      for (let j = 0; j < top.length; j++) {
        const idx = top[j]!;
        const p = Math.floor(idx / a), k = idx - p * a;
        for (let c = 0; c < 4; c++) selDeltas[4 * j + c] = deltas[(4 * k + c) * hw + p]!;
        selLogits[j] = logits[idx]!;
      }
      const selAnchors = gatherBoxes(anchors, top);
      boxesPerLevel.push(s.coder.decode(selDeltas, selAnchors));
      logitsPerLevel.push(selLogits);
      anchorsPerLevel.push(Int32Array.from(top));
      anchorBoxesPerLevel.push(selAnchors);
      deltasPerLevel.push(selDeltas);
    }

    // Concatenate the levels, then filter as the reference does.
    const total = logitsPerLevel.reduce((n, x) => n + x.length, 0);
    const boxes = new Float32Array(4 * total);
    const logits = new Float32Array(total);
    const levelOf = new Int32Array(total);
    const anchorOf = new Int32Array(total);
    const anchorBoxes = new Float32Array(4 * total);
    const deltas = new Float32Array(4 * total);
    let o = 0;
    for (let l = 0; l < levels.length; l++) {
      boxes.set(boxesPerLevel[l]!, 4 * o);
      logits.set(logitsPerLevel[l]!, o);
      levelOf.fill(l, o, o + logitsPerLevel[l]!.length);
      anchorOf.set(anchorsPerLevel[l]!, o);
      anchorBoxes.set(anchorBoxesPerLevel[l]!, 4 * o);
      deltas.set(deltasPerLevel[l]!, 4 * o);
      o += logitsPerLevel[l]!.length;
    }
    const { kept, ...proposals } = filterProposals(boxes, logits, levelOf, image, { ...s, postNmsTopN });
    const origins: ProposalOrigins = {
      level: Int32Array.from(kept, (i) => levelOf[i]!),
      anchor: Int32Array.from(kept, (i) => anchorOf[i]!),
      anchorBoxes: gatherBoxes(anchorBoxes, kept),
      deltas: gatherBoxes(deltas, kept),
      grids: levels.map(({ height, width }) => ({ height, width })),
    };
    return { ...proposals, origins };
  }
}

/**
 * torchvision's `filter_proposals` after its per-level top-n: sigmoid of the
 * objectness -> clip to the image -> drop boxes under minSize on either side
 * -> drop scores under scoreThreshold -> NMS within each level -> the first
 * postNmsTopN by score.
 * @param boxes N*4 decoded xyxy in network-input pixels (not modified).
 * @param logits N objectness logits.
 * @param levelOf N anchor levels: NMS runs within each.
 * @param image resized (unpadded) input size: proposals are clipped to it.
 * @returns the proposals, and `kept`: the index in `boxes` of each.
 */
export function filterProposals(boxes: Float32Array, logits: Float32Array, levelOf: Int32Array, image: { height: number; width: number }, s: ProposalFilter): Proposals & { kept: Int32Array } {
  const clipped = clipBoxes(boxes, image.width, image.height);
  const kept: number[] = [];
  const scores = Float32Array.from(logits, (x) => f32(1 / (1 + Math.exp(-x))));
  for (const i of removeSmallBoxes(clipped, s.minSize)) if (scores[i]! >= s.scoreThreshold) kept.push(i);
  const keptBoxes = gatherBoxes(clipped, kept);
  const keptScores = Float32Array.from(kept, (i) => scores[i]!);
  const keptLevels = Int32Array.from(kept, (i) => levelOf[i]!);
  const survivors = batchedNms(keptBoxes, keptScores, keptLevels, s.nmsThreshold).subarray(0, s.postNmsTopN);
  return { boxes: gatherBoxes(keptBoxes, survivors), scores: Float32Array.from(survivors, (i) => keptScores[i]!), kept: Int32Array.from(survivors, (i) => kept[i]!) };
}
