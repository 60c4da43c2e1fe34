/**
 * A float RGB canvas (0..255, interleaved) for the synthetic dataset: shapes
 * painted with anti-aliased coverage, then the camera's effects (lighting,
 * blur, noise) over the whole frame.
 */

import type { Random } from '../core/random.js';

export type Rgb = [number, number, number];

/** Pixel colour of a painted shape at image point (x, y) and shape point (u, v) in [-1, 1]. */
export type Paint = (x: number, y: number, u: number, v: number) => Rgb;

/** Where a shape lies: centre, half extents before rotation, rotation (radians). */
export interface Placement {
  cx: number;
  cy: number;
  halfWidth: number;
  halfHeight: number;
  angle: number;
}

/** Inside test in the shape's own frame, u and v in [-1, 1]. */
export type InsideTest = (u: number, v: number) => boolean;

/** The pixels a shape touches (by index, row-major) and the fraction of each it covers. */
export interface Coverage {
  pixels: Int32Array;
  alpha: Float32Array;
}

/** Sub-pixel sample offsets (a 3x3 grid): coverage in ninths, tested only where the pixel's corners disagree. */
const SAMPLES = [1 / 6, 1 / 2, 5 / 6];

/** Anti-aliased coverage of a placed shape on a width x height grid. */
export function coverage(inside: InsideTest, at: Placement, width: number, height: number): Coverage {
  const cos = Math.cos(at.angle), sin = Math.sin(at.angle);
  const reach = Math.hypot(at.halfWidth, at.halfHeight);
  const x0 = Math.max(0, Math.floor(at.cx - reach)), x1 = Math.min(width - 1, Math.ceil(at.cx + reach));
  const y0 = Math.max(0, Math.floor(at.cy - reach)), y1 = Math.min(height - 1, Math.ceil(at.cy + reach));
  const test = (px: number, py: number) => {
    const dx = px - at.cx, dy = py - at.cy;
    return inside((dx * cos + dy * sin) / at.halfWidth, (dy * cos - dx * sin) / at.halfHeight);
  };
  // Inside tests at the pixel corners, one row of corners at a time.
  const cols = x1 - x0 + 2;
  let above = new Uint8Array(cols), below = new Uint8Array(cols);
  for (let c = 0; c < cols; c++) above[c] = test(x0 + c, y0) ? 1 : 0;
  const pixels: number[] = [], alpha: number[] = [];
  for (let y = y0; y <= y1; y++) {
    for (let c = 0; c < cols; c++) below[c] = test(x0 + c, y + 1) ? 1 : 0;
    for (let x = x0; x <= x1; x++) {
      const c = x - x0;
      const corners = above[c]! + above[c + 1]! + below[c]! + below[c + 1]!;
      let a: number;
      if (corners === 4 && test(x + 0.5, y + 0.5)) a = 1;
      else if (corners === 0 && !test(x + 0.5, y + 0.5)) a = 0;
      else {
        let hits = 0;
        for (const sy of SAMPLES) for (const sx of SAMPLES) if (test(x + sx, y + sy)) hits++;
        a = hits / 9;
      }
      if (a > 0) {
        pixels.push(y * width + x);
        alpha.push(a);
      }
    }
    [above, below] = [below, above];
  }
  return { pixels: Int32Array.from(pixels), alpha: Float32Array.from(alpha) };
}

export class Canvas {
  readonly data: Float32Array;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = new Float32Array(width * height * 3);
  }

  /** Fill every pixel from `colourAt(x, y)`. */
  fill(colourAt: (x: number, y: number) => Rgb): void {
    const { width, height, data } = this;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const c = colourAt(x, y);
        const o = 3 * (y * width + x);
        data[o] = c[0];
        data[o + 1] = c[1];
        data[o + 2] = c[2];
      }
    }
  }

  /** Paint the pixels of `shape` (from `coverage`), blending by their coverage. */
  paint(shape: Coverage, at: Placement, paint: Paint): void {
    const cos = Math.cos(at.angle), sin = Math.sin(at.angle);
    for (let j = 0; j < shape.pixels.length; j++) {
      const i = shape.pixels[j]!, alpha = shape.alpha[j]!;
      const x = i % this.width, y = (i - x) / this.width;
      const dx = x + 0.5 - at.cx, dy = y + 0.5 - at.cy;
      const c = paint(x, y, (dx * cos + dy * sin) / at.halfWidth, (dy * cos - dx * sin) / at.halfHeight);
      const o = 3 * i;
      for (let k = 0; k < 3; k++) this.data[o + k] = alpha * c[k]! + (1 - alpha) * this.data[o + k]!;
    }
  }

  /** Separable Gaussian blur, edges clamped. */
  blur(sigma: number): void {
    const radius = Math.ceil(3 * sigma);
    const kernel = new Float32Array(2 * radius + 1);
    let sum = 0;
    for (let i = -radius; i <= radius; i++) sum += kernel[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
    for (let i = 0; i < kernel.length; i++) kernel[i]! /= sum;
    const { width, height } = this;
    const pass = (src: Float32Array, dst: Float32Array, horizontal: boolean) => {
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          let r = 0, g = 0, b = 0;
          for (let i = -radius; i <= radius; i++) {
            const sx = horizontal ? Math.min(width - 1, Math.max(0, x + i)) : x;
            const sy = horizontal ? y : Math.min(height - 1, Math.max(0, y + i));
            const o = 3 * (sy * width + sx), w = kernel[i + radius]!;
            r += w * src[o]!;
            g += w * src[o + 1]!;
            b += w * src[o + 2]!;
          }
          const o = 3 * (y * width + x);
          dst[o] = r;
          dst[o + 1] = g;
          dst[o + 2] = b;
        }
      }
    };
    const tmp = new Float32Array(this.data.length);
    pass(this.data, tmp, true);
    pass(tmp, this.data, false);
  }

  /** Lighting: a gain that varies linearly across the frame, a colour cast, a gamma (through a 1024-step table). */
  light(gainAt: (x: number, y: number) => number, cast: Rgb, gamma: number): void {
    const { width, height, data } = this;
    const steps = 1024;
    const curve = Float32Array.from({ length: steps + 2 }, (_, i) => 255 * Math.pow(Math.min(1, i / steps), gamma));
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const g = gainAt(x, y), o = 3 * (y * width + x);
        for (let k = 0; k < 3; k++) {
          const t = Math.min(steps, Math.max(0, (data[o + k]! * g * cast[k]! * steps) / 255));
          const i = Math.floor(t);
          data[o + k] = curve[i]! + (t - i) * (curve[i + 1]! - curve[i]!);
        }
      }
    }
  }

  /** Additive Gaussian sensor noise. */
  addNoise(sigma: number, rng: Random): void {
    for (let i = 0; i < this.data.length; i++) this.data[i]! += sigma * rng.normal();
  }

  /** Rounded and clamped to 8 bits. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.data.length);
    for (let i = 0; i < out.length; i++) out[i] = Math.min(255, Math.max(0, Math.round(this.data[i]!)));
    return out;
  }
}
