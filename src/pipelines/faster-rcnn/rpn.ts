/**
 * Region Proposal Network post-processing (Ren et al. 2015, section 3.1), in
 * torchvision's order (`RegionProposalNetwork.filter_proposals`):
 *
 *   per level: top preNmsTopN anchors by objectness logit, decode their deltas
 *   -> sigmoid -> clip to the image -> drop boxes under minSize -> drop scores
 *   under scoreThreshold -> NMS per level -> postNmsTopN over all levels.
 *
 * Decoding only the selected anchors gives the same boxes as decoding all of
 * them first, as the reference does, for a fraction of the work.
 */

import { cellAnchorsFor, gridAnchors, type AnchorSpec } from '../../core/anchors.js';
import { BoxCoder } from '../../core/box-coder.js';
import { clipBoxes, gatherBoxes, removeSmallBoxes } from '../../core/boxes.js';
import { batchedNms } from '../../core/nms.js';
import { topK } from '../../core/topk.js';

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

export interface Proposals {
  /** K*4 xyxy in network-input pixels, by decreasing objectness. */
  boxes: Float32Array;
  /** K objectness probabilities. */
  scores: Float32Array;
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
   */
  propose(levels: readonly RpnLevelOutput[], image: { height: number; width: number }, padded: { height: number; width: number }): Proposals {
    const s = this.settings;
    if (levels.length !== this.cellAnchors.length) {
      throw new RangeError(`RPN has ${this.cellAnchors.length} anchor levels but the head returned ${levels.length}`);
    }
    const boxesPerLevel: Float32Array[] = [];
    const logitsPerLevel: Float32Array[] = [];
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
      boxesPerLevel.push(s.coder.decode(selDeltas, gatherBoxes(anchors, top)));
      logitsPerLevel.push(selLogits);
    }

    // Concatenate the levels, then filter as the reference does.
    const total = logitsPerLevel.reduce((n, x) => n + x.length, 0);
    const boxes = new Float32Array(4 * total);
    const scores = new Float32Array(total);
    const levelOf = new Int32Array(total);
    let o = 0;
    for (let l = 0; l < levels.length; l++) {
      boxes.set(boxesPerLevel[l]!, 4 * o);
      const lg = logitsPerLevel[l]!;
      for (let j = 0; j < lg.length; j++) {
        scores[o + j] = f32(1 / (1 + Math.exp(-lg[j]!)));
        levelOf[o + j] = l;
      }
      o += lg.length;
    }
    clipBoxes(boxes, image.width, image.height, boxes);
    const big = removeSmallBoxes(boxes, s.minSize);
    const kept: number[] = [];
    for (const i of big) if (scores[i]! >= s.scoreThreshold) kept.push(i);
    const keptBoxes = gatherBoxes(boxes, kept);
    const keptScores = Float32Array.from(kept, (i) => scores[i]!);
    const keptLevels = Int32Array.from(kept, (i) => levelOf[i]!);
    const survivors = batchedNms(keptBoxes, keptScores, keptLevels, s.nmsThreshold).subarray(0, s.postNmsTopN);
    return { boxes: gatherBoxes(keptBoxes, survivors), scores: Float32Array.from(survivors, (i) => keptScores[i]!) };
  }
}
