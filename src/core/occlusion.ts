/**
 * Occlusion sensitivity (Zeiler & Fergus 2014, section 4.2): slide a grey
 * square over the image and watch a score fall. The geometry of the grid,
 * the greying of a network input, and the per-pixel map of the drops.
 *
 * The grey is the model's mean pixel, which normalisation maps to 0: a patch
 * is greyed by zeroing it in the normalised network input (all channels).
 */

/** Patch positions over an image: columns and rows of top-left corners, in original pixels. */
export interface OcclusionGrid {
  patch: number;
  stride: number;
  /** Left edges, one per column: 0, stride, 2 stride, ..., the last one at width - patch so that the grid covers the image. */
  xs: number[];
  /** Top edges, one per row. */
  ys: number[];
}

/** Offsets 0, stride, ... with the last at `length - patch` (where the stride does not land there). */
function offsets(length: number, patch: number, stride: number): number[] {
  const out: number[] = [];
  for (let o = 0; o + patch < length; o += stride) out.push(o);
  out.push(length - patch);
  return out;
}

/**
 * The grid of `patch` x `patch` squares every `stride` pixels over a
 * width x height image.
 * @throws RangeError when the patch is larger than the image or the sizes are not positive integers.
 */
export function occlusionGrid(width: number, height: number, patch: number, stride: number): OcclusionGrid {
  if (!(Number.isInteger(patch) && Number.isInteger(stride) && patch >= 1 && stride >= 1)) throw new RangeError(`patch ${patch} and stride ${stride} must be positive integers`);
  if (patch > width || patch > height) throw new RangeError(`a ${patch}-pixel patch does not fit in a ${width}x${height} image`);
  return { patch, stride, xs: offsets(width, patch, stride), ys: offsets(height, patch, stride) };
}

/** The grid's squares, P*4 xyxy in original pixels, row by row. */
export function gridPatches(grid: OcclusionGrid): Float32Array {
  const out = new Float32Array(4 * grid.xs.length * grid.ys.length);
  let o = 0;
  for (const y of grid.ys) {
    for (const x of grid.xs) {
      out[o++] = x;
      out[o++] = y;
      out[o++] = x + grid.patch;
      out[o++] = y + grid.patch;
    }
  }
  return out;
}

/** A tensor of one image's pixels: C x H x W (a network input) or H x W x C (R-CNN's pixels). */
export interface PixelTensor {
  data: Float32Array;
  layout: 'chw' | 'hwc';
  channels: number;
  height: number;
  width: number;
}

/**
 * Each row span of a rectangle in a tensor's data: the pixels whose centres
 * lie inside [x1, x2) x [y1, y2), in the tensor's pixels.
 */
function* rectSpans(t: PixelTensor, rect: ArrayLike<number>): Generator<[number, number]> {
  const { channels: c, height: h, width: w } = t;
  const c0 = Math.max(0, Math.round(rect[0]!)), c1 = Math.min(w, Math.round(rect[2]!));
  const r0 = Math.max(0, Math.round(rect[1]!)), r1 = Math.min(h, Math.round(rect[3]!));
  if (c1 <= c0 || r1 <= r0) return;
  if (t.layout === 'hwc') {
    for (let y = r0; y < r1; y++) yield [(y * w + c0) * c, (y * w + c1) * c];
    return;
  }
  for (let ch = 0; ch < c; ch++) for (let y = r0; y < r1; y++) yield [(ch * h + y) * w + c0, (ch * h + y) * w + c1];
}

/** Grey (zero) a rectangle of a normalised tensor, every channel. */
export function greyOut(t: PixelTensor, rect: ArrayLike<number>): void {
  for (const [from, to] of rectSpans(t, rect)) t.data.fill(0, from, to);
}

/** Put a rectangle of `from`'s pixels back into `t` (same shape): undoes greyOut. */
export function restoreRect(t: PixelTensor, from: Float32Array, rect: ArrayLike<number>): void {
  for (const [start, end] of rectSpans(t, rect)) t.data.set(from.subarray(start, end), start);
}

/** Whether two xyxy boxes overlap with a positive area. */
export function boxesOverlap(a: ArrayLike<number>, ai: number, b: ArrayLike<number>, bi: number): boolean {
  return Math.min(a[4 * ai + 2]!, b[4 * bi + 2]!) > Math.max(a[4 * ai]!, b[4 * bi]!) && Math.min(a[4 * ai + 3]!, b[4 * bi + 3]!) > Math.max(a[4 * ai + 1]!, b[4 * bi + 1]!);
}

/**
 * The drop at every pixel of the image scaled by `scale`: the mean of the
 * drops of the patches that cover it (0 where none does), row-major.
 * @param drops one per patch, in gridPatches' order.
 * @returns the map and its size: round(width x scale) x round(height x scale).
 */
export function pixelDrops(grid: OcclusionGrid, drops: ArrayLike<number>, width: number, height: number, scale = 1): { data: Float32Array; width: number; height: number } {
  const w = Math.max(1, Math.round(width * scale)), h = Math.max(1, Math.round(height * scale));
  const sum = new Float32Array(w * h);
  const count = new Uint16Array(w * h);
  let p = 0;
  for (const y0 of grid.ys) {
    for (const x0 of grid.xs) {
      const d = drops[p++]!;
      const c0 = Math.floor(x0 * scale), c1 = Math.min(w, Math.ceil((x0 + grid.patch) * scale));
      for (let y = Math.floor(y0 * scale); y < Math.min(h, Math.ceil((y0 + grid.patch) * scale)); y++) {
        for (let i = y * w + c0, end = y * w + c1; i < end; i++) {
          sum[i] = sum[i]! + d;
          count[i] = count[i]! + 1;
        }
      }
    }
  }
  for (let i = 0; i < sum.length; i++) sum[i] = count[i] ? sum[i]! / count[i]! : 0;
  return { data: sum, width: w, height: h };
}
