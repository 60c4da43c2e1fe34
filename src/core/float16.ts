/**
 * IEEE 754 half precision (binary16) as bits in a Uint16Array: what ONNX's
 * FLOAT16 tensors hold. Node 20 has no Float16Array, so the conversion is
 * done on the float32 bits: round to nearest, ties to even, as numpy's
 * `astype(float16)` and CUDA's `__float2half_rn` do.
 */

/** The largest finite half: 65504. */
export const FLOAT16_MAX = 65504;
const MAX_FINITE_BITS = 0x7bff;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * The half nearest to `x` (ties to even). A finite value beyond ±65504 is
 * clamped to ±65504 rather than made infinite: a weight that large is a
 * graph's constant (a mask's fill value, say), where the largest half keeps
 * the meaning and infinity would turn 0 * w into NaN. NaN stays NaN.
 */
export function toHalfBits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | MAX_FINITE_BITS;
  if (e <= 0) {
    // A subnormal half (or zero): the implicit bit joins the mantissa, shifted down to 2^-24 units.
    if (e < -10) return sign;
    const m = mantissa | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const half = 1 << (shift - 1);
    const rest = m & ((half << 1) - 1);
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return sign | Math.min(h, MAX_FINITE_BITS);
}

/** The value of a half's bits (exact: every half is a float32). */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Halves of float32 values, and how many were clamped to ±65504. */
export function toHalf(values: Float32Array): { bits: Uint16Array; clamped: number } {
  const bits = new Uint16Array(values.length);
  let clamped = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Math.abs(v) > FLOAT16_MAX && Number.isFinite(v)) clamped++;
    bits[i] = toHalfBits(v);
  }
  return { bits, clamped };
}
