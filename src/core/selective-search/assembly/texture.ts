/**
 * The texture kernel of selective search (texture.ts is its caller and
 * documents the features), in AssemblyScript, compiled with the
 * segmentation's kernels by `npm run build:wasm`. It works on arrays the
 * caller placed in the module's memory, passed as byte offsets, and does the
 * TypeScript original's arithmetic operation for operation, so the codes
 * (and the proposals) are the same bit for bit.
 */

/** Kernel radius (sigma 1, 3 sigmas): 7 taps. */
const RADIUS = 3;
const TAPS = 2 * RADIUS + 1;
const DIRECTIONS = 4;
const BINS = 10;

@inline function f32At(base: usize, i: i32): f64 {
  return <f64>load<f32>(base + (<usize>i << 2));
}

@inline function setF32(base: usize, i: i32, v: f64): void {
  store<f32>(base + (<usize>i << 2), <f32>v);
}

/** Two float32s from memory as two doubles. */
@inline function load2(base: usize, i: i32): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(base + (<usize>i << 2)));
}

/** Two doubles into memory, each rounded to float32. */
@inline function store2(base: usize, i: i32, v: v128): void {
  v128.store64_lane(base + (<usize>i << 2), f32x4.demote_f64x2_zero(v), 0);
}

/** k0 s0 + k1 s1 + ... + k6 s6 in two lanes, summed left to right as the scalar loops do. */
@inline function dot7(k0: v128, k1: v128, k2: v128, k3: v128, k4: v128, k5: v128, k6: v128, s0: v128, s1: v128, s2: v128, s3: v128, s4: v128, s5: v128, s6: v128): v128 {
  let acc = f64x2.mul(k0, s0);
  acc = f64x2.add(acc, f64x2.mul(k1, s1));
  acc = f64x2.add(acc, f64x2.mul(k2, s2));
  acc = f64x2.add(acc, f64x2.mul(k3, s3));
  acc = f64x2.add(acc, f64x2.mul(k4, s4));
  acc = f64x2.add(acc, f64x2.mul(k5, s5));
  return f64x2.add(acc, f64x2.mul(k6, s6));
}

@inline function tap(kernel: usize, k: i32): f64 {
  return load<f64>(kernel + (<usize>k << 3));
}

/**
 * Convolve every row of a plane with two 7-tap kernels at once, borders
 * replicated: out[x] = sum_k kernel[k] * src[x + 3 - k], k ascending inside
 * the row, descending near its ends (the TypeScript's order, whose rounding
 * the proposals depend on).
 */
function convolveRows2(src: usize, outA: usize, outB: usize, width: i32, height: i32, ka: usize, kb: usize): void {
  const a0 = tap(ka, 0), a1 = tap(ka, 1), a2 = tap(ka, 2), a3 = tap(ka, 3), a4 = tap(ka, 4), a5 = tap(ka, 5), a6 = tap(ka, 6);
  const b0 = tap(kb, 0), b1 = tap(kb, 1), b2 = tap(kb, 2), b3 = tap(kb, 3), b4 = tap(kb, 4), b5 = tap(kb, 5), b6 = tap(kb, 6);
  const va0 = f64x2.splat(a0), va1 = f64x2.splat(a1), va2 = f64x2.splat(a2), va3 = f64x2.splat(a3), va4 = f64x2.splat(a4), va5 = f64x2.splat(a5), va6 = f64x2.splat(a6);
  const vb0 = f64x2.splat(b0), vb1 = f64x2.splat(b1), vb2 = f64x2.splat(b2), vb3 = f64x2.splat(b3), vb4 = f64x2.splat(b4), vb5 = f64x2.splat(b5), vb6 = f64x2.splat(b6);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    const inner1 = width - RADIUS;
    let x = RADIUS;
    for (; x + 2 <= inner1; x += 2) {
      const i = row + x;
      const s0 = load2(src, i + 3), s1 = load2(src, i + 2), s2 = load2(src, i + 1), s3 = load2(src, i), s4 = load2(src, i - 1), s5 = load2(src, i - 2), s6 = load2(src, i - 3);
      store2(outA, i, dot7(va0, va1, va2, va3, va4, va5, va6, s0, s1, s2, s3, s4, s5, s6));
      store2(outB, i, dot7(vb0, vb1, vb2, vb3, vb4, vb5, vb6, s0, s1, s2, s3, s4, s5, s6));
    }
    for (; x < inner1; x++) {
      const i = row + x;
      const s0 = f32At(src, i + 3), s1 = f32At(src, i + 2), s2 = f32At(src, i + 1), s3 = f32At(src, i), s4 = f32At(src, i - 1), s5 = f32At(src, i - 2), s6 = f32At(src, i - 3);
      setF32(outA, i, a0 * s0 + a1 * s1 + a2 * s2 + a3 * s3 + a4 * s4 + a5 * s5 + a6 * s6);
      setF32(outB, i, b0 * s0 + b1 * s1 + b2 * s2 + b3 * s3 + b4 * s4 + b5 * s5 + b6 * s6);
    }
    for (let x = 0; x < width; x++) {
      if (x >= RADIUS && x < inner1) continue;
      let a: f64 = 0, b: f64 = 0;
      for (let k = TAPS - 1; k >= 0; k--) {
        const xi = x + RADIUS - k;
        const v = f32At(src, row + (xi < 0 ? 0 : xi >= width ? width - 1 : xi));
        a += tap(ka, k) * v;
        b += tap(kb, k) * v;
      }
      setF32(outA, row + x, a);
      setF32(outB, row + x, b);
    }
  }
}

/**
 * Convolve every column of a plane with a 7-tap kernel, borders replicated:
 * out[y] = sum_k kernel[6 - k] * src[y - 3 + k], k ascending.
 */
function convolveColumns(src: usize, dst: usize, width: i32, height: i32, kernel: usize): void {
  const k0 = tap(kernel, 6), k1 = tap(kernel, 5), k2 = tap(kernel, 4), k3 = tap(kernel, 3), k4 = tap(kernel, 2), k5 = tap(kernel, 1), k6 = tap(kernel, 0);
  const v0 = f64x2.splat(k0), v1 = f64x2.splat(k1), v2 = f64x2.splat(k2), v3 = f64x2.splat(k3), v4 = f64x2.splat(k4), v5 = f64x2.splat(k5), v6 = f64x2.splat(k6);
  for (let y = 0; y < height; y++) {
    const r0 = clampRow(y - 3, height) * width, r1 = clampRow(y - 2, height) * width, r2 = clampRow(y - 1, height) * width, r3 = y * width;
    const r4 = clampRow(y + 1, height) * width, r5 = clampRow(y + 2, height) * width, r6 = clampRow(y + 3, height) * width;
    let x = 0;
    for (; x + 2 <= width; x += 2) {
      const s0 = load2(src, r0 + x), s1 = load2(src, r1 + x), s2 = load2(src, r2 + x), s3 = load2(src, r3 + x);
      const s4 = load2(src, r4 + x), s5 = load2(src, r5 + x), s6 = load2(src, r6 + x);
      store2(dst, r3 + x, dot7(v0, v1, v2, v3, v4, v5, v6, s0, s1, s2, s3, s4, s5, s6));
    }
    for (; x < width; x++) {
      setF32(dst, r3 + x, k0 * f32At(src, r0 + x) + k1 * f32At(src, r1 + x) + k2 * f32At(src, r2 + x) + k3 * f32At(src, r3 + x) + k4 * f32At(src, r4 + x) + k5 * f32At(src, r5 + x) + k6 * f32At(src, r6 + x));
    }
  }
}

@inline function clampRow(y: i32, height: i32): i32 {
  return y < 0 ? 0 : y >= height ? height - 1 : y;
}

/**
 * The code of a response d along one direction: the histogram index of the
 * half it falls in (`first` is its positive half's bin 0) and its bin, with
 * `positive` and `negative` the two halves' scales.
 */
@inline function code(d: f64, first: i32, positive: f64, negative: f64): u8 {
  const isNegative = d < 0;
  const b = Math.floor(Math.abs(d) * (isNegative ? negative : positive));
  return <u8>(first + (isNegative ? BINS : 0) + <i32>(b < BINS - 1 ? b : BINS - 1));
}

/**
 * One channel's responses, gx and gy, into its four codes per pixel at
 * codes[(i * channels + c) * 4 + a]: each direction's positive and negative
 * halves scaled by their maximum over the image to 10 bins.
 */
function writeCodes(gx: usize, gy: usize, n: i32, codes: usize, c: i32, channels: i32): void {
  const h = Math.SQRT1_2;
  let p0: f64 = 0, n0: f64 = 0, p1: f64 = 0, n1: f64 = 0, p2: f64 = 0, n2: f64 = 0, p3: f64 = 0, n3: f64 = 0;
  for (let i = 0; i < n; i++) {
    const x = f32At(gx, i), y = f32At(gy, i);
    const d1 = h * (x + y), d3 = h * (y - x);
    if (x > p0) p0 = x; else if (-x > n0) n0 = -x;
    if (d1 > p1) p1 = d1; else if (-d1 > n1) n1 = -d1;
    if (y > p2) p2 = y; else if (-y > n2) n2 = -y;
    if (d3 > p3) p3 = d3; else if (-d3 > n3) n3 = -d3;
  }
  const sp0 = scaleOf(p0), sn0 = scaleOf(n0), sp1 = scaleOf(p1), sn1 = scaleOf(n1);
  const sp2 = scaleOf(p2), sn2 = scaleOf(n2), sp3 = scaleOf(p3), sn3 = scaleOf(n3);
  const first = c * 2 * DIRECTIONS * BINS;
  const stride = <usize>(channels * DIRECTIONS);
  let o = codes + <usize>(c * DIRECTIONS);
  for (let i = 0; i < n; i++, o += stride) {
    const x = f32At(gx, i), y = f32At(gy, i);
    store<u8>(o, code(x, first, sp0, sn0));
    store<u8>(o + 1, code(h * (x + y), first + 2 * BINS, sp1, sn1));
    store<u8>(o + 2, code(y, first + 4 * BINS, sp2, sn2));
    store<u8>(o + 3, code(h * (y - x), first + 6 * BINS, sp3, sn3));
  }
}

@inline function scaleOf(maximum: f64): f64 {
  return maximum > 0 ? BINS / maximum : 0;
}

/**
 * Quantised orientation responses of every channel of an HWC image of
 * doubles: per channel, the plane in float32, its Gaussian derivatives gx
 * (derivative along rows, then Gaussian along columns) and gy (the
 * converse), and their codes.
 * @param g, dg the 7-tap Gaussian and derivative kernels, doubles.
 * @param plane, rowsD, rowsG, gx, gy buffers of width * height float32.
 */
export function textureCodes(image: usize, width: i32, height: i32, channels: i32, codes: usize, g: usize, dg: usize, plane: usize, rowsD: usize, rowsG: usize, gx: usize, gy: usize): void {
  const n = width * height;
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < n; i++) setF32(plane, i, load<f64>(image + (<usize>(i * channels + c) << 3)));
    convolveRows2(plane, rowsD, rowsG, width, height, dg, g);
    convolveColumns(rowsD, gx, width, height, g);
    convolveColumns(rowsG, gy, width, height, dg);
    writeCodes(gx, gy, n, codes, c, channels);
  }
}
