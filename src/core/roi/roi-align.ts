/**
 * RoIAlign (He et al., Mask R-CNN 2017), as `torchvision.ops.roi_align`.
 *
 * Each RoI is divided into outputH x outputW bins; each bin is sampled on a
 * regular grid of gridH x gridW points, each point read by bilinear
 * interpolation of the four nearest feature cells, and the samples are
 * averaged (mode 'avg', torchvision) or maxed (mode 'max', the seed's RoIAlign
 * max: "bilinear samples on a regular grid in each bin, then the max").
 *
 * `aligned`: with aligned = false (torchvision's default, Mask R-CNN as
 * published) a box corner at pixel coordinate x maps to feature coordinate
 * x * scale, and RoIs are forced to at least 1 x 1 feature cell. With
 * aligned = true (detectron2's ROIAlignV2) it maps to x * scale - 0.5: the
 * centre of feature cell 0 sits at pixel 0.5 / scale, so subtracting half a
 * cell makes continuous coordinates line up with cell centres; no minimum size.
 *
 * ONNX's `RoiAlign` mode=max differs from the 'max' here: ONNX Runtime's CPU
 * kernel takes, at each sample point, the max of the four *weighted* corner
 * terms (w1*v1, ..., w4*v4) instead of their sum, then the max over samples;
 * that is not a bilinear sample, so its output is not the max of interpolated
 * values (see test/unit/core/roi-align.test.ts, which measures it).
 *
 * Arithmetic mirrors the reference's float32 steps (Math.fround), so the
 * sampling positions, including the out-of-range test, agree bit for bit.
 */

import { boxCount, type BoxArray } from '../boxes.js';
import { checkFeatureMap, type FeatureMap } from './feature-map.js';
import { CHANNELS_PER_PASS, SCRATCH_CELLS, simdBinsFor } from './simd-bins.js';

const f32 = Math.fround;

export interface RoiAlignOptions {
  /** Output bins [height, width], e.g. [7, 7]. */
  outputSize: readonly [number, number];
  /** Feature cells per input pixel, e.g. 1/16 for a stride-16 map. */
  spatialScale: number;
  /** Sample points per bin side; 0 = adaptive, ceil(roi side / output side). */
  samplingRatio: number;
  /** Half-pixel shift (see file comment). */
  aligned: boolean;
  /** 'avg' (torchvision) or 'max' (bilinear samples, then the max). */
  mode?: 'avg' | 'max';
}

/**
 * RoIAlign over one feature map.
 * @param feature H x W x C (channels-last).
 * @param rois K*4 xyxy in input pixels (the feature map's image).
 * @returns Float32Array of K x C x outputH x outputW.
 */
export function roiAlign(feature: FeatureMap, rois: BoxArray, options: RoiAlignOptions): Float32Array {
  const [outH, outW] = options.outputSize;
  const out = new Float32Array(boxCount(rois) * feature.channels * outH * outW);
  roiAlignInto(feature, rois, options, out);
  return out;
}

/**
 * RoIAlign into `out`, RoI r's C x outputH x outputW block at slot `slots[r]`
 * (at slot r without `slots`): how the pyramid's levels fill one output
 * without a copy.
 */
export function roiAlignInto(feature: FeatureMap, rois: BoxArray, options: RoiAlignOptions, out: Float32Array, slots?: ArrayLike<number>): void {
  const { data, channels, height, width } = checkFeatureMap(feature);
  const [outH, outW] = options.outputSize;
  const k = boxCount(rois);
  const bins = outH * outW;
  const isMax = options.mode === 'max';
  const scale = f32(options.spatialScale);
  const offset = options.aligned ? 0.5 : 0;
  const acc = new Float64Array(channels);

  // Per-RoI sample table, sized for the largest grid seen so far.
  let pos = new Int32Array(0);
  let wts = new Float32Array(0);

  for (let r = 0; r < k; r++) {
    const startW = f32(f32(rois[4 * r]! * scale) - offset);
    const startH = f32(f32(rois[4 * r + 1]! * scale) - offset);
    const endW = f32(f32(rois[4 * r + 2]! * scale) - offset);
    const endH = f32(f32(rois[4 * r + 3]! * scale) - offset);
    let roiW = f32(endW - startW);
    let roiH = f32(endH - startH);
    if (!options.aligned) {
      roiW = Math.max(roiW, 1);
      roiH = Math.max(roiH, 1);
    }
    const binH = f32(roiH / outH);
    const binW = f32(roiW / outW);
    const gridH = options.samplingRatio > 0 ? options.samplingRatio : Math.ceil(f32(roiH / outH));
    const gridW = options.samplingRatio > 0 ? options.samplingRatio : Math.ceil(f32(roiW / outW));
    const samples = gridH * gridW;
    const count = Math.max(samples, 1);
    // Sample coordinates are separable: rows depend on (ph, iy), columns on (pw, ix).
    const ys = axisTaps(outH, gridH, startH, binH, height);
    const xs = axisTaps(outW, gridW, startW, binW, width);
    const roiOut = (slots === undefined ? r : slots[r]!) * channels * bins;
    if (!isMax) {
      if (channels === 3) averageRgbBins(data, width, ys, xs, outH, outW, gridH, gridW, count, out, roiOut);
      else averageBins(data, width, channels, ys, xs, outH, outW, gridH, gridW, count, out, roiOut);
      continue;
    }

    // 'max': a sample table, for each bin `samples` entries of 4 taps (position, weight).
    const taps = bins * samples * 4;
    if (pos.length < taps) {
      pos = new Int32Array(taps);
      wts = new Float32Array(taps);
    }
    let t = 0;
    for (let ph = 0; ph < outH; ph++) {
      for (let pw = 0; pw < outW; pw++) {
        for (let iy = 0; iy < gridH; iy++) {
          const y = ph * gridH + iy;
          for (let ix = 0; ix < gridW; ix++, t += 4) {
            const x = pw * gridW + ix;
            if (!ys.valid[y] || !xs.valid[x]) {
              pos[t] = pos[t + 1] = pos[t + 2] = pos[t + 3] = 0;
              wts[t] = wts[t + 1] = wts[t + 2] = wts[t + 3] = 0;
              continue;
            }
            const r0 = ys.low[y]! * width, r1 = ys.high[y]! * width;
            const hy = ys.hw[y]!, ly = ys.lw[y]!, hx = xs.hw[x]!, lx = xs.lw[x]!;
            pos[t] = r0 + xs.low[x]!;
            pos[t + 1] = r0 + xs.high[x]!;
            pos[t + 2] = r1 + xs.low[x]!;
            pos[t + 3] = r1 + xs.high[x]!;
            wts[t] = hy * hx;
            wts[t + 1] = hy * lx;
            wts[t + 2] = ly * hx;
            wts[t + 3] = ly * lx;
          }
        }
      }
    }

    // Channels innermost: each tap reads a contiguous run of C values.
    let s = 0;
    for (let b = 0; b < bins; b++) {
      acc.fill(samples > 0 ? -Infinity : 0);
      for (let q = 0; q < samples; q++, s += 4) {
        const p1 = pos[s]! * channels, p2 = pos[s + 1]! * channels, p3 = pos[s + 2]! * channels, p4 = pos[s + 3]! * channels;
        const w1 = wts[s]!, w2 = wts[s + 1]!, w3 = wts[s + 2]!, w4 = wts[s + 3]!;
        for (let c = 0; c < channels; c++) {
          const v = w1 * data[p1 + c]! + w2 * data[p2 + c]! + w3 * data[p3 + c]! + w4 * data[p4 + c]!;
          if (v > acc[c]!) acc[c] = v;
        }
      }
      const o = roiOut + b;
      for (let c = 0; c < channels; c++) out[o + c * bins] = acc[c]!;
    }
  }
}

/**
 * The 'avg' bins of one RoI over a map of many channels (a backbone's).
 *
 * A bin's samples share feature cells: at 2 x 2 samples a bin reads 16 taps
 * but, over a feature pyramid's RoIs, about 10 distinct cells. So each cell's
 * weight is summed first, from the very float32 tap weights the reference
 * uses (f32(wy * wx)), and each cell's run of C channels is read once; the
 * sums run in float64, where every product of two float32 values is exact,
 * and agree with the tap-by-tap loop bit for bit (tested). The channel loop
 * keeps eight sums in registers instead of an accumulator array: 1.5x on its
 * own, measured.
 */
function averageBins(
  data: Float32Array, width: number, channels: number, ys: AxisTaps, xs: AxisTaps,
  outH: number, outW: number, gridH: number, gridW: number, count: number, out: Float32Array, roiOut: number,
): void {
  const bins = outH * outW;
  const rows = axisCells(ys, outH, gridH);
  const cols = axisCells(xs, outW, gridW);
  const cellWeight = new Float64Array(4 * gridH * gridW);
  // Where the maps live in a WebAssembly memory set up for it, the channel loop runs there (simd-bins.ts):
  // the cells as byte offsets into that memory, the RoI's output in its scratch area, copied out at the end.
  const simd = channels % CHANNELS_PER_PASS === 0 && cellWeight.length <= SCRATCH_CELLS ? simdBinsFor(data.buffer) : undefined;
  const usable = simd && simd.out.length >= channels * bins ? simd : undefined;
  const cellPos = usable ? usable.cells : new Int32Array(cellWeight.length);
  const weights = usable ? usable.weights : new Float64Array(cellWeight.length);
  const [posBase, posUnit] = usable ? [data.byteOffset, 4 * channels] : [0, channels];
  for (let ph = 0; ph < outH; ph++) {
    const r0 = rows.first[ph]!, nr = rows.first[ph + 1]! - r0;
    for (let pw = 0; pw < outW; pw++) {
      const c0 = cols.first[pw]!, nc = cols.first[pw + 1]! - c0;
      cellWeight.fill(0, 0, nr * nc);
      for (let iy = 0; iy < gridH; iy++) {
        const y = ph * gridH + iy;
        if (!ys.valid[y]) continue;
        for (let a = 0; a < 2; a++) {
          const wy = a === 0 ? ys.hw[y]! : ys.lw[y]!;
          const ri = rows.tapCell[2 * y + a]! * nc;
          for (let ix = 0; ix < gridW; ix++) {
            const x = pw * gridW + ix;
            if (!xs.valid[x]) continue;
            const lo = ri + cols.tapCell[2 * x]!, hi = ri + cols.tapCell[2 * x + 1]!;
            cellWeight[lo] = cellWeight[lo]! + f32(wy * xs.hw[x]!);
            cellWeight[hi] = cellWeight[hi]! + f32(wy * xs.lw[x]!);
          }
        }
      }
      let n = 0;
      for (let ri = 0; ri < nr; ri++) {
        const rowStart = rows.cell[r0 + ri]! * width;
        for (let ci = 0; ci < nc; ci++) {
          const w = cellWeight[ri * nc + ci]!;
          if (w === 0) continue;
          cellPos[n] = posBase + (rowStart + cols.cell[c0 + ci]!) * posUnit;
          weights[n++] = w;
        }
      }
      if (usable) {
        usable.bins(cellPos.byteOffset, n, weights.byteOffset, channels, usable.outOffset + 4 * (ph * outW + pw), 4 * bins, count);
        continue;
      }

      const o = roiOut + ph * outW + pw;
      let c = 0;
      for (; c + 8 <= channels; c += 8) {
        let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
        for (let t = 0; t < n; t++) {
          const w = weights[t]!, q = cellPos[t]! + c;
          a0 += w * data[q]!;
          a1 += w * data[q + 1]!;
          a2 += w * data[q + 2]!;
          a3 += w * data[q + 3]!;
          a4 += w * data[q + 4]!;
          a5 += w * data[q + 5]!;
          a6 += w * data[q + 6]!;
          a7 += w * data[q + 7]!;
        }
        const oc = o + c * bins;
        out[oc] = a0 / count;
        out[oc + bins] = a1 / count;
        out[oc + 2 * bins] = a2 / count;
        out[oc + 3 * bins] = a3 / count;
        out[oc + 4 * bins] = a4 / count;
        out[oc + 5 * bins] = a5 / count;
        out[oc + 6 * bins] = a6 / count;
        out[oc + 7 * bins] = a7 / count;
      }
      for (; c < channels; c++) {
        let a = 0;
        for (let t = 0; t < n; t++) a += weights[t]! * data[cellPos[t]! + c]!;
        out[o + c * bins] = a / count;
      }
    }
  }
  if (usable) out.set(usable.out.subarray(0, channels * bins), roiOut);
}

/** Along one axis, per bin: the distinct cells its taps read, and each tap's index among them. */
interface AxisCells {
  /** Bin p's cells are cell[first[p]] .. cell[first[p + 1] - 1], ascending. */
  first: Int32Array;
  cell: Int32Array;
  /** Tap (sample j, corner a: 0 low, 1 high) reads its bin's cell number tapCell[2 * j + a]. */
  tapCell: Int32Array;
}

function axisCells(taps: AxisTaps, bins: number, grid: number): AxisCells {
  const first = new Int32Array(bins + 1);
  const cell = new Int32Array(2 * bins * grid);
  const tapCell = new Int32Array(2 * bins * grid);
  let n = 0;
  for (let p = 0; p < bins; p++) {
    first[p] = n;
    // Sample points ascend within a bin, and so do their low and high cells: a repeat is the last one seen.
    for (let i = 0; i < grid; i++) {
      const j = p * grid + i;
      if (!taps.valid[j]) continue;
      for (let a = 0; a < 2; a++) {
        const at = a === 0 ? taps.low[j]! : taps.high[j]!;
        if (n === first[p] || cell[n - 1] !== at) cell[n++] = at;
        tapCell[2 * j + a] = n - 1 - first[p]!;
      }
    }
  }
  first[bins] = n;
  return { first, cell, tapCell };
}

/**
 * The 'avg' bins of one RoI over a 3-channel map (R-CNN's region warp of the
 * image): the taps read straight from the axis tables into three sums, with
 * no sample table, which pays off for many channels only. The arithmetic is
 * the general loop's, step for step (float32 corner weights, each sample's
 * four terms summed before it is added), so the output is bit for bit the same.
 */
function averageRgbBins(
  data: Float32Array, width: number, ys: AxisTaps, xs: AxisTaps,
  outH: number, outW: number, gridH: number, gridW: number, count: number, out: Float32Array, roiOut: number,
): void {
  const bins = outH * outW;
  for (let ph = 0; ph < outH; ph++) {
    for (let pw = 0; pw < outW; pw++) {
      let a0 = 0, a1 = 0, a2 = 0;
      for (let iy = 0; iy < gridH; iy++) {
        const y = ph * gridH + iy;
        if (!ys.valid[y]) continue;
        const r0 = ys.low[y]! * width, r1 = ys.high[y]! * width;
        const hy = ys.hw[y]!, ly = ys.lw[y]!;
        for (let ix = 0; ix < gridW; ix++) {
          const x = pw * gridW + ix;
          if (!xs.valid[x]) continue;
          const hx = xs.hw[x]!, lx = xs.lw[x]!;
          const w1 = f32(hy * hx), w2 = f32(hy * lx), w3 = f32(ly * hx), w4 = f32(ly * lx);
          const p1 = 3 * (r0 + xs.low[x]!), p2 = 3 * (r0 + xs.high[x]!), p3 = 3 * (r1 + xs.low[x]!), p4 = 3 * (r1 + xs.high[x]!);
          a0 += w1 * data[p1]! + w2 * data[p2]! + w3 * data[p3]! + w4 * data[p4]!;
          a1 += w1 * data[p1 + 1]! + w2 * data[p2 + 1]! + w3 * data[p3 + 1]! + w4 * data[p4 + 1]!;
          a2 += w1 * data[p1 + 2]! + w2 * data[p2 + 2]! + w3 * data[p3 + 2]! + w4 * data[p4 + 2]!;
        }
      }
      const o = roiOut + ph * outW + pw;
      out[o] = a0 / count;
      out[o + bins] = a1 / count;
      out[o + 2 * bins] = a2 / count;
    }
  }
}

/** Bilinear taps along one axis for each (bin, sample): low and high index, their weights, and whether the point reads the map at all. */
interface AxisTaps {
  low: Int32Array;
  high: Int32Array;
  /** Weight of `low` (1 - l) and of `high` (l), float32. */
  hw: Float32Array;
  lw: Float32Array;
  valid: Uint8Array;
}

/**
 * The sample points start + bin * p + (i + 0.5) * bin / grid along one axis,
 * in float32 step for step as torchvision, with its border rules: a point
 * more than one cell outside the map reads 0; coordinates in [-1, 0] are
 * clamped to 0; the last row/column repeats.
 */
function axisTaps(bins: number, grid: number, start: number, bin: number, size: number): AxisTaps {
  const n = bins * grid;
  const taps: AxisTaps = { low: new Int32Array(n), high: new Int32Array(n), hw: new Float32Array(n), lw: new Float32Array(n), valid: new Uint8Array(n) };
  for (let p = 0; p < bins; p++) {
    for (let i = 0; i < grid; i++) {
      const j = p * grid + i;
      const v = f32(f32(start + f32(p * bin)) + f32(f32(f32(i + 0.5) * bin) / grid));
      if (v < -1 || v > size) continue;
      let c = v <= 0 ? 0 : v;
      let low = Math.trunc(c);
      let high: number;
      if (low >= size - 1) {
        high = low = size - 1;
        c = low;
      } else {
        high = low + 1;
      }
      const l = f32(c - low);
      taps.low[j] = low;
      taps.high[j] = high;
      taps.lw[j] = l;
      taps.hw[j] = f32(1 - l);
      taps.valid[j] = 1;
    }
  }
  return taps;
}
