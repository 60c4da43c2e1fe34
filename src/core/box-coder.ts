/**
 * The R-CNN box parameterisation (Girshick et al. 2014, appendix C), as
 * torchvision's `BoxCoder` and detectron2's `Box2BoxTransform`:
 *
 *   dx = wx * (gx - px) / pw        dw = ww * log(gw / pw)
 *   dy = wy * (gy - py) / ph        dh = wh * log(gh / ph)
 *
 * with (px, py, pw, ph) the reference box's centre and size and (gx, gy, gw, gh)
 * the target's. Decoding clamps dw and dh at `clamp` before exp().
 */

import { boxCount, type BoxArray } from './boxes.js';

const f32 = Math.fround;

/**
 * Default dw/dh clamp: log(1000 / 16). No delta may turn a 16 px box into one
 * over 1000 px; it keeps exp() finite on untrained or adversarial deltas.
 */
export const BBOX_XFORM_CLIP = Math.log(1000 / 16);

export interface BoxCoderOptions {
  /** (wx, wy, ww, wh). RPNs use (1, 1, 1, 1); Fast/Faster R-CNN box heads (10, 10, 5, 5). */
  weights: readonly [number, number, number, number];
  /** Upper bound on dw and dh before exp(); default log(1000/16). */
  clamp?: number;
  /**
   * 0 (torchvision, detectron2): width = x2 - x1.
   * 1 (py-faster-rcnn, the Caffe originals): width = x2 - x1 + 1 and the decoded
   * x2 = cx + w/2 - 1.
   */
  pixelOffset?: 0 | 1;
}

/** A box coder bound to its weights; methods are pure. */
export class BoxCoder {
  readonly weights: readonly [number, number, number, number];
  readonly clamp: number;
  readonly pixelOffset: 0 | 1;

  constructor(options: BoxCoderOptions) {
    const { weights, clamp = BBOX_XFORM_CLIP, pixelOffset = 0 } = options;
    if (weights.length !== 4 || weights.some((w) => !(w > 0) || !Number.isFinite(w))) {
      throw new RangeError(`box coder weights must be 4 positive finite numbers, got [${weights.join(', ')}]`);
    }
    this.weights = weights;
    this.clamp = clamp;
    this.pixelOffset = pixelOffset;
  }

  /**
   * Deltas that turn each reference box into its target.
   * @param targets N*4 xyxy (ground truth).
   * @param references N*4 xyxy (anchors or proposals), positive sizes.
   * @returns Float32Array N*4 of (dx, dy, dw, dh), weighted.
   */
  encode(targets: BoxArray, references: BoxArray): Float32Array {
    const n = boxCount(references);
    if (boxCount(targets) !== n) throw new RangeError(`encode needs as many targets as references (${boxCount(targets)} vs ${n})`);
    const [wx, wy, ww, wh] = this.weights.map(f32) as [number, number, number, number];
    const off = this.pixelOffset;
    const out = new Float32Array(4 * n);
    for (let o = 0; o < 4 * n; o += 4) {
      const pw = f32(f32(references[o + 2]! - references[o]!) + off);
      const ph = f32(f32(references[o + 3]! - references[o + 1]!) + off);
      const px = f32(references[o]! + f32(0.5 * pw));
      const py = f32(references[o + 1]! + f32(0.5 * ph));
      const gw = f32(f32(targets[o + 2]! - targets[o]!) + off);
      const gh = f32(f32(targets[o + 3]! - targets[o + 1]!) + off);
      const gx = f32(targets[o]! + f32(0.5 * gw));
      const gy = f32(targets[o + 1]! + f32(0.5 * gh));
      out[o] = f32(wx * f32(gx - px)) / pw;
      out[o + 1] = f32(wy * f32(gy - py)) / ph;
      out[o + 2] = ww * f32(Math.log(f32(gw / pw)));
      out[o + 3] = wh * f32(Math.log(f32(gh / ph)));
    }
    return out;
  }

  /**
   * Apply deltas to reference boxes. Class-agnostic (K = 1) or class-specific
   * (K > 1: K groups of 4 deltas per reference box, as a box head predicts).
   * @param deltas N*K*4, (dx, dy, dw, dh) per class, weighted.
   * @param references N*4 xyxy.
   * @returns Float32Array N*K*4 xyxy: out[(i*K + k)*4 ...] is class k's box for reference i.
   */
  decode(deltas: ArrayLike<number>, references: BoxArray): Float32Array {
    const n = boxCount(references);
    if (n === 0) return new Float32Array(0);
    if (deltas.length % (4 * n) !== 0) {
      throw new RangeError(`decode needs N*K*4 deltas for N=${n} references, got ${deltas.length}`);
    }
    const k = deltas.length / (4 * n);
    const [wx, wy, ww, wh] = this.weights.map(f32) as [number, number, number, number];
    const clamp = f32(this.clamp);
    const off = this.pixelOffset;
    const out = new Float32Array(deltas.length);
    // float32 at every step, as the reference computes on float32 tensors:
    // coordinates of a few hundred pixels minus half-widths of the same size
    // cancel, and float64 here would differ from it by a float32 ulp of the operands.
    for (let i = 0; i < n; i++) {
      const r = 4 * i;
      const pw = f32(f32(references[r + 2]! - references[r]!) + off);
      const ph = f32(f32(references[r + 3]! - references[r + 1]!) + off);
      const px = f32(references[r]! + f32(0.5 * pw));
      const py = f32(references[r + 1]! + f32(0.5 * ph));
      for (let c = 0; c < k; c++) {
        const o = 4 * (i * k + c);
        const dx = f32(deltas[o]! / wx);
        const dy = f32(deltas[o + 1]! / wy);
        const dw = Math.min(f32(deltas[o + 2]! / ww), clamp);
        const dh = Math.min(f32(deltas[o + 3]! / wh), clamp);
        const cx = f32(f32(dx * pw) + px);
        const cy = f32(f32(dy * ph) + py);
        const halfW = f32(0.5 * f32(f32(Math.exp(dw)) * pw));
        const halfH = f32(0.5 * f32(f32(Math.exp(dh)) * ph));
        out[o] = cx - halfW;
        out[o + 1] = cy - halfH;
        out[o + 2] = f32(cx + halfW) - off;
        out[o + 3] = f32(cy + halfH) - off;
      }
    }
    return out;
  }
}
