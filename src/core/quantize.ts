/**
 * Linear quantization, as ONNX's QuantizeLinear and DequantizeLinear define
 * it, and the statistics that choose its ranges.
 *
 * - Activations: uint8, asymmetric, one scale and zero point per tensor:
 *   q = saturate(roundHalfEven(x / scale) + zeroPoint), x' = (q - zeroPoint) * scale.
 * - Weights: int8, symmetric (zero point 0) per output channel, in
 *   [-127, 127] so that -w quantizes to -q (onnxruntime's `reduce_range`
 *   is not needed: this is the u8s8 layout its x86 kernels run fastest).
 * - Biases: int32 with scale = input scale x weight scale, zero point 0, so
 *   that the int32 accumulator adds them as they are.
 *
 * Scales are float32 (what the graph stores), and weights are divided by
 * them in float32 and rounded half to even, as QuantizeLinear does.
 */

import { roundHalfEven } from './rounding.js';

export interface QuantParams {
  /** float32, > 0. */
  scale: number;
  /** 0..255 for uint8 activations, 0 for int8 weights. */
  zeroPoint: number;
}

export const UINT8_MAX = 255;
export const INT8_MAX = 127;

/**
 * uint8 parameters for values in [lo, hi]. The range is first widened to
 * hold 0 (so that zero, the padding value, is exact); a tensor that is
 * always 0 gets scale 1.
 */
export function activationParams(lo: number, hi: number): QuantParams {
  const min = Math.min(lo, 0), max = Math.max(hi, 0);
  if (!(Number.isFinite(min) && Number.isFinite(max))) throw new RangeError(`range [${lo}, ${hi}] is not finite`);
  if (max === min) return { scale: 1, zeroPoint: 0 };
  const scale = Math.fround((max - min) / UINT8_MAX);
  const zeroPoint = Math.min(UINT8_MAX, Math.max(0, roundHalfEven(-min / scale)));
  return { scale, zeroPoint };
}

export interface QuantizedWeights {
  values: Int8Array;
  /** One per channel along `axis`, float32, > 0. */
  scales: Float32Array;
}

/**
 * Symmetric int8 per channel: channel c's scale is max|w_c| / 127 (1 for an
 * all-zero channel).
 * @param dims the weight's shape; @param axis the output-channel axis.
 */
export function quantizeWeights(w: Float32Array, dims: readonly number[], axis: number): QuantizedWeights {
  const channels = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channelOf = (i: number) => Math.floor(i / inner) % channels;
  const maxAbs = new Float64Array(channels);
  for (let i = 0; i < w.length; i++) {
    const c = channelOf(i), a = Math.abs(w[i]!);
    if (a > maxAbs[c]!) maxAbs[c] = a;
  }
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) scales[c] = maxAbs[c]! > 0 ? maxAbs[c]! / INT8_MAX : 1;
  const values = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const q = roundHalfEven(Math.fround(w[i]! / scales[channelOf(i)]!));
    values[i] = Math.min(INT8_MAX, Math.max(-INT8_MAX, q));
  }
  return { values, scales };
}

/** int32 biases for an input scale and per-channel weight scales (zero point 0). */
export function quantizeBias(bias: Float32Array, inputScale: number, weightScales: Float32Array): { values: Int32Array; scales: Float32Array } {
  const scales = new Float32Array(bias.length);
  const values = new Int32Array(bias.length);
  for (let c = 0; c < bias.length; c++) {
    scales[c] = Math.fround(inputScale * weightScales[weightScales.length === 1 ? 0 : c]!);
    const q = roundHalfEven(bias[c]! / scales[c]!);
    values[c] = Math.min(2 ** 31 - 1, Math.max(-(2 ** 31), q));
  }
  return { values, scales };
}

/** How a tensor's calibration statistics become its range. */
export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';
export const CALIBRATION_METHODS: readonly CalibrationMethod[] = ['minmax', 'percentile', 'entropy'];

/** The share of |x| the percentile method keeps inside the range (onnxruntime's default). */
export const DEFAULT_PERCENTILE = 99.999;

const BINS = 2048;

/**
 * One tensor's statistics over a calibration run: its minimum, maximum and a
 * histogram of |x| in 2048 bins over [0, edge). When a value beyond the edge
 * arrives the edge doubles and pairs of bins merge, so one pass suffices and
 * the same values in the same order always give the same histogram.
 */
export class TensorStatistics {
  min = Infinity;
  max = -Infinity;
  /** Upper edge of the histogram; 0 until a non-zero value arrives. */
  edge = 0;
  readonly histogram = new Float64Array(BINS);
  count = 0;

  add(values: Float32Array): void {
    let min = this.min, max = this.max, maxAbs = 0, finite = true;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v < min) min = v;
      if (v > max) max = v;
      const a = Math.abs(v);
      if (a > maxAbs) maxAbs = a;
      else if (!(a < Infinity)) finite = false; // NaN
    }
    if (!finite || maxAbs === Infinity) throw new RangeError('calibration saw a value that is not finite');
    this.min = min;
    this.max = max;
    if (maxAbs > 0 && this.edge === 0) this.edge = maxAbs;
    while (maxAbs > this.edge) this.doubleEdge();
    const h = this.histogram, perBin = this.edge > 0 ? BINS / this.edge : 0;
    for (let i = 0; i < values.length; i++) h[Math.min(BINS - 1, Math.floor(Math.abs(values[i]!) * perBin))]! += 1;
    this.count += values.length;
  }

  private doubleEdge(): void {
    const h = this.histogram;
    for (let i = 0; i < BINS / 2; i++) h[i] = h[2 * i]! + h[2 * i + 1]!;
    h.fill(0, BINS / 2);
    this.edge *= 2;
  }

  /** The range a method gives: minmax the extremes; percentile and entropy clip |x| at a threshold. */
  range(method: CalibrationMethod, percentile = DEFAULT_PERCENTILE): [number, number] {
    if (this.count === 0) throw new RangeError('no calibration values were seen');
    if (method === 'minmax' || this.edge === 0) return [this.min, this.max];
    const t = method === 'percentile' ? this.percentileThreshold(percentile) : this.entropyThreshold(this.min >= 0 ? UINT8_MAX + 1 : INT8_MAX + 1);
    return [Math.max(this.min, -t), Math.min(this.max, t)];
  }

  private percentileThreshold(percentile: number): number {
    const target = (percentile / 100) * this.count;
    let seen = 0;
    for (let i = 0; i < BINS; i++) {
      seen += this.histogram[i]!;
      if (seen >= target) return ((i + 1) * this.edge) / BINS;
    }
    return this.edge;
  }

  /**
   * The threshold that minimises the KL divergence between the |x|
   * distribution clipped there and its quantization to `levels` bins
   * (Migacz, "8-bit Inference with TensorRT", GTC 2017).
   */
  private entropyThreshold(levels: number): number {
    const h = this.histogram;
    let best = BINS, bestDivergence = Infinity;
    let tail = 0;
    for (let i = BINS - 1; i >= levels; i--) tail += h[i]!;
    for (let i = levels; i <= BINS; i++) {
      // p: the first i bins, what lies beyond folded into the last; q: p merged into `levels` bins and spread back.
      const p = Array.from(h.subarray(0, i));
      p[i - 1]! += tail;
      const q = new Float64Array(i);
      for (let j = 0; j < levels; j++) {
        const start = Math.floor((j * i) / levels), end = Math.floor(((j + 1) * i) / levels);
        let sum = 0, nonZero = 0;
        for (let k = start; k < end; k++) {
          sum += h[k]!;
          if (h[k] !== 0) nonZero++;
        }
        for (let k = start; k < end; k++) if (h[k] !== 0) q[k] = sum / nonZero;
      }
      const divergence = klDivergence(p, q);
      if (divergence < bestDivergence) {
        bestDivergence = divergence;
        best = i;
      }
      if (i < BINS) tail -= h[i]!;
    }
    return (best * this.edge) / BINS;
  }
}

/** KL(p || q) of two unnormalised histograms; bins where p is 0 add nothing, where q is 0 and p not, a large penalty. */
function klDivergence(p: readonly number[], q: Float64Array): number {
  let ps = 0, qs = 0;
  for (let i = 0; i < p.length; i++) {
    ps += p[i]!;
    qs += q[i]!;
  }
  if (ps === 0 || qs === 0) return Infinity;
  let d = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    const pi = p[i]! / ps, qi = q[i]! / qs;
    d += qi > 0 ? pi * Math.log(pi / qi) : pi * 20; // log(1 / 2e-9): an unrepresented bin
  }
  return d;
}
