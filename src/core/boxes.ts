/**
 * Axis-aligned boxes packed in flat typed arrays.
 *
 * Every array here holds N boxes as N*4 numbers. Unless a function says
 * otherwise the format is `xyxy`: (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2,
 * in pixels of whatever image the caller works in, continuous coordinates
 * (a box covering pixel columns 0..9 is x1 = 0, x2 = 10; no "+1" widths, as
 * torchvision and detectron2; py-faster-rcnn's "+1" convention lives only in
 * the box coder and its anchor generator, where it is named).
 */

/** Packed boxes: N*4 numbers. */
export type BoxArray = Float32Array | Float64Array;

/** The three box encodings the project speaks. */
export type BoxFormat = 'xyxy' | 'xywh' | 'cxcywh';
export const BOX_FORMATS: readonly BoxFormat[] = Object.freeze(['xyxy', 'xywh', 'cxcywh']);

/** Number of boxes in a packed array; throws when the length is not a multiple of 4. */
export function boxCount(boxes: ArrayLike<number>): number {
  if (boxes.length % 4 !== 0) {
    throw new RangeError(`packed boxes need a length that is a multiple of 4, got ${boxes.length}`);
  }
  return boxes.length / 4;
}

/**
 * Area of each box.
 * @param boxes N*4 xyxy.
 * @returns Float32Array of N areas, (x2 - x1) * (y2 - y1), in squared input units.
 */
export function boxArea(boxes: BoxArray): Float32Array {
  const n = boxCount(boxes);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const o = 4 * i;
    out[i] = (boxes[o + 2]! - boxes[o]!) * (boxes[o + 3]! - boxes[o + 1]!);
  }
  return out;
}

/**
 * Pairwise intersection over union, as `torchvision.ops.box_iou`.
 * @param a N*4 xyxy.
 * @param b M*4 xyxy.
 * @returns Float32Array of N*M, row-major: out[i*M + j] = IoU(a_i, b_j), in [0, 1].
 *   A pair whose union is empty (two degenerate boxes) has IoU 0.
 */
export function boxIou(a: BoxArray, b: BoxArray): Float32Array {
  const n = boxCount(a);
  const m = boxCount(b);
  const areaA = boxArea(a);
  const areaB = boxArea(b);
  const out = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    const ax1 = a[4 * i]!, ay1 = a[4 * i + 1]!, ax2 = a[4 * i + 2]!, ay2 = a[4 * i + 3]!;
    const aa = areaA[i]!;
    for (let j = 0; j < m; j++) {
      const o = 4 * j;
      const w = Math.min(ax2, b[o + 2]!) - Math.max(ax1, b[o]!);
      const h = Math.min(ay2, b[o + 3]!) - Math.max(ay1, b[o + 1]!);
      if (w <= 0 || h <= 0) continue;
      const inter = w * h;
      const union = aa + areaB[j]! - inter;
      out[i * m + j] = union > 0 ? inter / union : 0;
    }
  }
  return out;
}

/**
 * Clamp boxes to an image, as `torchvision.ops.clip_boxes_to_image`:
 * x to [0, width], y to [0, height].
 * @param boxes N*4 xyxy in pixels.
 * @param width image width in pixels.
 * @param height image height in pixels.
 * @param out destination, N*4; may be `boxes` itself to clip in place.
 */
export function clipBoxes<T extends BoxArray>(boxes: BoxArray, width: number, height: number, out: T): T;
export function clipBoxes(boxes: BoxArray, width: number, height: number): Float32Array;
export function clipBoxes(boxes: BoxArray, width: number, height: number, out?: BoxArray): BoxArray {
  const dst = out ?? new Float32Array(boxes.length);
  for (let o = 0; o < boxes.length; o += 4) {
    dst[o] = Math.min(Math.max(boxes[o]!, 0), width);
    dst[o + 1] = Math.min(Math.max(boxes[o + 1]!, 0), height);
    dst[o + 2] = Math.min(Math.max(boxes[o + 2]!, 0), width);
    dst[o + 3] = Math.min(Math.max(boxes[o + 3]!, 0), height);
  }
  return dst;
}

/**
 * Indices of the boxes whose width and height are both at least `minSize`,
 * as `torchvision.ops.remove_small_boxes`.
 * @param boxes N*4 xyxy.
 * @param minSize minimum side, in the boxes' units.
 * @returns Int32Array of kept indices, ascending.
 */
export function removeSmallBoxes(boxes: BoxArray, minSize: number): Int32Array {
  const n = boxCount(boxes);
  const keep = new Int32Array(n);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const o = 4 * i;
    if (boxes[o + 2]! - boxes[o]! >= minSize && boxes[o + 3]! - boxes[o + 1]! >= minSize) keep[k++] = i;
  }
  return keep.slice(0, k);
}

/**
 * Convert packed boxes between formats.
 *   xyxy:   (x1, y1, x2, y2)
 *   xywh:   (x1, y1, width, height)          (COCO's bbox)
 *   cxcywh: (centre x, centre y, width, height)
 * @returns a new Float64Array of N*4 in `to` format (exact for the arithmetic involved).
 */
export function convertBoxes(boxes: ArrayLike<number>, from: BoxFormat, to: BoxFormat): Float64Array {
  const n = boxCount(boxes);
  const out = new Float64Array(n * 4);
  for (let o = 0; o < 4 * n; o += 4) {
    let x1: number, y1: number, x2: number, y2: number;
    const p = boxes[o]!, q = boxes[o + 1]!, r = boxes[o + 2]!, s = boxes[o + 3]!;
    if (from === 'xyxy') {
      x1 = p; y1 = q; x2 = r; y2 = s;
    } else if (from === 'xywh') {
      x1 = p; y1 = q; x2 = p + r; y2 = q + s;
    } else {
      x1 = p - r / 2; y1 = q - s / 2; x2 = p + r / 2; y2 = q + s / 2;
    }
    if (to === 'xyxy') {
      out[o] = x1; out[o + 1] = y1; out[o + 2] = x2; out[o + 3] = y2;
    } else if (to === 'xywh') {
      out[o] = x1; out[o + 1] = y1; out[o + 2] = x2 - x1; out[o + 3] = y2 - y1;
    } else {
      out[o] = (x1 + x2) / 2; out[o + 1] = (y1 + y2) / 2; out[o + 2] = x2 - x1; out[o + 3] = y2 - y1;
    }
  }
  return out;
}

/**
 * Gather rows of packed boxes.
 * @param boxes N*4.
 * @param indices K indices into [0, N).
 * @returns Float32Array of K*4.
 */
export function gatherBoxes(boxes: BoxArray, indices: ArrayLike<number>): Float32Array {
  const out = new Float32Array(indices.length * 4);
  for (let k = 0; k < indices.length; k++) {
    const o = 4 * indices[k]!;
    out[4 * k] = boxes[o]!;
    out[4 * k + 1] = boxes[o + 1]!;
    out[4 * k + 2] = boxes[o + 2]!;
    out[4 * k + 3] = boxes[o + 3]!;
  }
  return out;
}

/**
 * Boxes from an image of size `from` to the same image resized to `to`, as
 * torchvision's resize_boxes: one float32 ratio per axis, to / from.
 * @returns Float32Array of the scaled boxes.
 */
export function resizeBoxes(boxes: BoxArray, from: { width: number; height: number }, to: { width: number; height: number }): Float32Array {
  const rx = Math.fround(to.width / from.width), ry = Math.fround(to.height / from.height);
  const out = new Float32Array(boxes.length);
  for (let i = 0; i < boxes.length; i += 4) {
    out[i] = boxes[i]! * rx;
    out[i + 1] = boxes[i + 1]! * ry;
    out[i + 2] = boxes[i + 2]! * rx;
    out[i + 3] = boxes[i + 3]! * ry;
  }
  return out;
}

/**
 * Mirror xyxy boxes left to right in an image `width` wide, as boxes found on
 * the flipped image map back: x1' = width - x2, x2' = width - x1.
 */
export function flipBoxes(boxes: BoxArray, width: number): Float32Array {
  const out = new Float32Array(boxes.length);
  for (let i = 0; i < boxes.length; i += 4) {
    out[i] = width - boxes[i + 2]!;
    out[i + 1] = boxes[i + 1]!;
    out[i + 2] = width - boxes[i]!;
    out[i + 3] = boxes[i + 3]!;
  }
  return out;
}
