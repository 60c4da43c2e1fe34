import { describe, expect, it } from 'vitest';
import { activationParams, quantizeBias, quantizeWeights, TensorStatistics } from '../../../src/core/quantize.js';

describe('int8 parameters', () => {
  it('chooses a hand-computed scale and zero point (their arithmetic in ONNX Runtime: qdq.test)', () => {
    // Range [-1, 3]: scale = 4 / 255 = 0.0156862..., zero point = round(1 / scale) = round(63.75) = 64.
    const p = activationParams(-1, 3);
    expect(p.scale).toBe(Math.fround(4 / 255));
    expect(p.zeroPoint).toBe(64);
  });

  it('widens a range to hold 0, and gives an all-zero tensor scale 1', () => {
    expect(activationParams(2, 6)).toEqual({ scale: Math.fround(6 / 255), zeroPoint: 0 });
    expect(activationParams(-6, -2)).toEqual({ scale: Math.fround(6 / 255), zeroPoint: 255 });
    expect(activationParams(0, 0)).toEqual({ scale: 1, zeroPoint: 0 });
    expect(() => activationParams(0, Infinity)).toThrow(/not finite/);
  });

  it('quantizes weights symmetric per output channel, in [-127, 127]', () => {
    // Two channels (axis 0) of three weights; channel 1 is all zero.
    const q = quantizeWeights(Float32Array.of(0.5, -1.27, 0.01, 0, 0, 0), [2, 3], 0);
    expect(Array.from(q.scales)).toEqual([Math.fround(1.27 / 127), 1]);
    expect(Array.from(q.values)).toEqual([50, -127, 1, 0, 0, 0]);
    // Axis 1 of a [K, N] matrix: the channel is the column.
    const m = quantizeWeights(Float32Array.of(1, -2, 0.5, 4), [2, 2], 1);
    expect(Array.from(m.scales)).toEqual([Math.fround(1 / 127), Math.fround(4 / 127)]);
    expect(Array.from(m.values)).toEqual([127, -64, 64, 127]);
  });

  it('gives biases an int32 scale of input scale x weight scale', () => {
    const b = quantizeBias(Float32Array.of(0.3, -0.02), 0.01, Float32Array.of(0.5, 0.001));
    expect(Array.from(b.scales)).toEqual([Math.fround(0.01 * 0.5), Math.fround(0.01 * Math.fround(0.001))]);
    expect(Array.from(b.values)).toEqual([60, -2000]);
  });
});

describe('calibration statistics', () => {
  const ramp = (n: number, scale: number) => Float32Array.from({ length: n }, (_, i) => (i / (n - 1)) * scale);

  it('minmax gives the extremes', () => {
    const s = new TensorStatistics();
    s.add(Float32Array.of(-2, 0.5, 7));
    s.add(Float32Array.of(1, -3));
    expect(s.range('minmax')).toEqual([-3, 7]);
  });

  it('percentile clips the rare large values', () => {
    const s = new TensorStatistics();
    s.add(ramp(100000, 1)); // uniform on [0, 1]
    s.add(Float32Array.of(50)); // one outlier
    const [lo, hi] = s.range('percentile', 99.9);
    expect(lo).toBe(0);
    // The threshold is the upper edge of the bin where 99.9% of |x| is reached; the histogram's edge doubled to hold 50.
    expect(hi).toBeGreaterThan(0.99);
    expect(hi).toBeLessThan(1.1);
    expect(s.range('minmax')[1]).toBe(50);
  });

  it('entropy keeps the bulk of a peaked distribution and drops a far tail', () => {
    const s = new TensorStatistics();
    const values = new Float32Array(200000);
    let seed = 1;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < values.length; i++) values[i] = -Math.log(1 - rand()); // exponential, mean 1
    s.add(values);
    s.add(Float32Array.of(100));
    const [, hi] = s.range('entropy');
    expect(hi).toBeGreaterThan(3);
    expect(hi).toBeLessThan(40);
  });

  it('gives the same histogram for the same values in the same batches (the edge doubles deterministically)', () => {
    const run = () => {
      const s = new TensorStatistics();
      for (const k of [1, 3, 0.5, 9, 2]) s.add(ramp(1000, k));
      return [s.edge, Array.from(s.histogram), s.range('percentile'), s.range('entropy')];
    };
    expect(run()).toEqual(run());
  });

  it('refuses non-finite values and an empty run', () => {
    expect(() => new TensorStatistics().add(Float32Array.of(1, NaN))).toThrow(/not finite/);
    expect(() => new TensorStatistics().range('minmax')).toThrow(/no calibration values/);
  });
});
