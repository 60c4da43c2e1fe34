/**
 * RoIAlign's channel loop (roi-align.ts, averageBins, is its caller and its
 * TypeScript twin), in AssemblyScript with 128-bit SIMD, compiled by
 * `npm run build:wasm`. One bin: the sum over its cells of each cell's
 * weight times its run of channels, divided by the sample count.
 *
 * The TypeScript loop keeps eight float64 sums per pass over the cells; this
 * keeps sixteen, two to a register: each value read as float32, widened to
 * float64 (exact), multiplied by the cell's float64 weight and added, cell
 * after cell in the same order, then divided and narrowed to float32 with
 * the same rounding. So the output is the TypeScript loop's, bit for bit.
 *
 * Everything is in the caller's memory, as byte offsets: `cells` holds n
 * int32 byte offsets (each cell's first channel at this pass's channel 0),
 * `weights` n float64 weights; channel c of the bin goes to out + c * stride.
 */

/** Channels per pass; the channel count must be a multiple (simd-bins.ts CHANNELS_PER_PASS). */
const PASS = 16;

/** Two float32s from memory as two doubles. */
@inline function load2(at: usize, offset: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(at + offset));
}

/** Channels c and c + 1 of the bin: sum / divisor, each rounded to float32, `stride` bytes apart. */
@inline function store2(at: usize, stride: usize, sum: v128, divisor: v128): void {
  const v = f32x4.demote_f64x2_zero(f64x2.div(sum, divisor));
  store<f32>(at, f32x4.extract_lane(v, 0));
  store<f32>(at + stride, f32x4.extract_lane(v, 1));
}

export function bins(cells: usize, n: i32, weights: usize, channels: i32, out: usize, stride: i32, count: f64): void {
  const divisor = f64x2.splat(count);
  const step = <usize>stride;
  for (let c = 0; c < channels; c += PASS) {
    let s0 = f64x2.splat(0), s1 = f64x2.splat(0), s2 = f64x2.splat(0), s3 = f64x2.splat(0);
    let s4 = f64x2.splat(0), s5 = f64x2.splat(0), s6 = f64x2.splat(0), s7 = f64x2.splat(0);
    for (let t = 0; t < n; t++) {
      const w = f64x2.splat(load<f64>(weights + (<usize>t << 3)));
      const p = <usize>load<i32>(cells + (<usize>t << 2)) + (<usize>c << 2);
      s0 = f64x2.add(s0, f64x2.mul(load2(p, 0), w));
      s1 = f64x2.add(s1, f64x2.mul(load2(p, 8), w));
      s2 = f64x2.add(s2, f64x2.mul(load2(p, 16), w));
      s3 = f64x2.add(s3, f64x2.mul(load2(p, 24), w));
      s4 = f64x2.add(s4, f64x2.mul(load2(p, 32), w));
      s5 = f64x2.add(s5, f64x2.mul(load2(p, 40), w));
      s6 = f64x2.add(s6, f64x2.mul(load2(p, 48), w));
      s7 = f64x2.add(s7, f64x2.mul(load2(p, 56), w));
    }
    const o = out + <usize>c * step;
    store2(o, step, s0, divisor);
    store2(o + 2 * step, step, s1, divisor);
    store2(o + 4 * step, step, s2, divisor);
    store2(o + 6 * step, step, s3, divisor);
    store2(o + 8 * step, step, s4, divisor);
    store2(o + 10 * step, step, s5, divisor);
    store2(o + 12 * step, step, s6, divisor);
    store2(o + 14 * step, step, s7, divisor);
  }
}
