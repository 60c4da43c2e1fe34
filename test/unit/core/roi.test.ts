import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { featureMapFromChw, type FeatureMap } from '../../../src/core/roi/feature-map.js';
import { inferFeatureScale, mapRoisToLevels } from '../../../src/core/roi/level-mapper.js';
import { multiScaleRoiAlign } from '../../../src/core/roi/multi-scale-roi-align.js';
import { roiAlign } from '../../../src/core/roi/roi-align.js';
import { roiPool } from '../../../src/core/roi/roi-pool.js';
import { CHANNELS_PER_PASS, MAX_PAGES, SCRATCH_FIXED_BYTES, simdBinsFor, useSimdBins } from '../../../src/core/roi/simd-bins.js';
import { fixturePath, loadFixture, maxAbsDiff } from '../../helpers/fixtures.js';
import { referenceRoiAlign } from '../../helpers/roi-align-reference.js';

const fx = loadFixture('core', 'roi.json');
const feature = featureMapFromChw(Float32Array.from(fx.feature.data), fx.feature.channels, fx.feature.height, fx.feature.width);
const rois = Float32Array.from(fx.rois as number[]);

describe('roi_pool against torchvision', () => {
  for (const c of fx.roiPool as any[]) {
    it(`scale ${c.spatialScale}, ${c.outputSize.join('x')}: exactly equal`, () => {
      const out = roiPool(feature, rois, { outputSize: c.outputSize, spatialScale: c.spatialScale });
      expect(Array.from(out)).toEqual(c.output);
    });
  }
});

/** One float32 ulp for values in [2, 4): the fixtures' outputs reach 2.9, and the measured error is at most this (2.4e-7). */
const ONE_ULP_AT_2 = 2 ** -22;

describe('roi_align against torchvision', () => {
  for (const c of fx.roiAlign as any[]) {
    it(`aligned=${c.aligned}, sampling ${c.samplingRatio}, scale ${c.spatialScale}, ${c.outputSize.join('x')}: within one float32 ulp`, () => {
      const out = roiAlign(feature, rois, { outputSize: c.outputSize, spatialScale: c.spatialScale, samplingRatio: c.samplingRatio, aligned: c.aligned });
      // Measured: 6e-8 to 2.4e-7 over the twelve cases (torch sums the samples in another order).
      expect(maxAbsDiff(out, c.output)).toBeLessThanOrEqual(ONE_ULP_AT_2);
    });
  }
});

describe('RoIAlign invariances', () => {
  // A smooth map: f(c, y, x) = c + 0.1 y + 0.05 x is reproduced exactly by bilinear interpolation.
  const h = 32, w = 40;
  const rampChw = new Float32Array(2 * h * w).map((_, i) => Math.floor(i / (h * w)) + 0.1 * Math.floor((i % (h * w)) / w) + 0.05 * (i % w));
  const ramp = featureMapFromChw(rampChw, 2, h, w);

  it('aligned=true on a linear map: each bin reads the value at its centre (golden arithmetic)', () => {
    // RoI (8, 8, 36, 36) px at scale 1/4 -> cells (1.5, 1.5)-(8.5, 8.5); bin (0,0) of 7 covers 1.5..2.5, centre 2.
    const out = roiAlign(ramp, Float32Array.of(8, 8, 36, 36), { outputSize: [7, 7], spatialScale: 0.25, samplingRatio: 2, aligned: true });
    expect(out[0]).toBeCloseTo(0 + 0.1 * 2 + 0.05 * 2, 5);
  });

  it('aligned=true reads the same image point at any stride: one linear image at strides 4 and 8 agrees, aligned=false does not', () => {
    // A feature map at stride s holds, in cell i, the image's value at the cell's centre s (i + 0.5).
    // On a linear image both maps' bilinear samples are exact, so the same box pools the same values
    // at both scales only if the box is shifted by half a cell (aligned=true) in each map's own cells.
    const image = (c: number, y: number, x: number) => c + 0.01 * y + 0.02 * x;
    const mapAt = (stride: number, height: number, width: number): FeatureMap =>
      featureMapFromChw(new Float32Array(2 * height * width).map((_, i) => {
        const c = Math.floor(i / (height * width)), y = Math.floor((i % (height * width)) / width), x = i % width;
        return image(c, stride * (y + 0.5), stride * (x + 0.5));
      }), 2, height, width);
    const fine = mapAt(4, 64, 80), coarse = mapAt(8, 32, 40);
    const box = Float32Array.of(40, 48, 200, 168);
    const pool = (map: FeatureMap, spatialScale: number, aligned: boolean) =>
      roiAlign(map, box, { outputSize: [5, 5], spatialScale, samplingRatio: 2, aligned });
    const a = pool(fine, 0.25, true), b = pool(coarse, 0.125, true);
    // Bin (0, 0) is centred on image point x 56, y 60.
    expect(a[0]).toBeCloseTo(0.01 * 60 + 0.02 * 56, 5);
    expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-5);
    // Without the half-cell shift the maps are read half a cell off: 2 px at stride 4, 4 px at stride 8.
    expect(maxAbsDiff(pool(fine, 0.25, false), pool(coarse, 0.125, false))).toBeGreaterThan(0.05);
  });

  it('an RGB map (the region warp) gives bit for bit what the general kernel gives on the same values and a fourth channel', () => {
    // Three channels take their own loop; four take the general one. Boxes inside, across the border and outside the map.
    const rgb = new Float32Array(3 * h * w).map((_, i) => Math.sin(i * 0.37) * 3);
    const rgba = new Float32Array(4 * h * w).map((_, i) => (i % 4 === 3 ? 9 : rgb[3 * Math.floor(i / 4) + (i % 4)]!));
    const boxes = Float32Array.of(3.2, 4.7, 30.1, 25.9, -6, -3, 12.5, 40, 35, 20, 52, 44, 50, 40, 60, 50, 7, 7, 7.4, 7.3);
    for (const [samplingRatio, aligned] of [[2, true], [0, false]] as const) {
      const options = { outputSize: [6, 5] as const, spatialScale: 1, samplingRatio, aligned };
      const three = roiAlign({ channels: 3, height: h, width: w, data: rgb }, boxes, options);
      const four = roiAlign({ channels: 4, height: h, width: w, data: rgba }, boxes, options);
      const firstThree = four.filter((_, i) => Math.floor(i / 30) % 4 !== 3);
      expect(three).toEqual(firstThree);
    }
  });

  it('max mode on a linear map takes the largest sample (the one nearest the bottom-right)', () => {
    const out = roiAlign(ramp, Float32Array.of(8, 8, 36, 36), { outputSize: [7, 7], spatialScale: 0.25, samplingRatio: 2, aligned: true, mode: 'max' });
    // Bin (0,0) spans 1.5..2.5; samples at 1.75 and 2.25 -> max at (2.25, 2.25).
    expect(out[0]).toBeCloseTo(0.1 * 2.25 + 0.05 * 2.25, 5);
  });

  it('ONNX RoiAlign mode=max differs: it maxes the weighted corner terms, not the interpolated samples', async () => {
    const session = await ort.InferenceSession.create(fixturePath('onnx', 'roi_align_max.onnx'));
    const box = Float32Array.of(8, 8, 36, 36);
    const y = (await session.run({
      X: new ort.Tensor('float32', rampChw, [1, 2, h, w]),
      rois: new ort.Tensor('float32', box, [1, 4]),
      batch_indices: new ort.Tensor('int64', BigInt64Array.of(0n), [1]),
    })).Y!.data as Float32Array;
    const ours = roiAlign(ramp, box, { outputSize: [7, 7], spatialScale: 0.25, samplingRatio: 2, aligned: true, mode: 'max' });
    // Ours: 0.3375 (the bilinear value at (2.25, 2.25)). ONNX Runtime: the largest of
    // w1*v1 .. w4*v4 at the best sample, i.e. 0.5625 * 0.3 = 0.16875 at (2.25, 2.25)
    // with v = 0.3 at cell (2, 2) weighted 0.75 * 0.75.
    expect(ours[0]).toBeCloseTo(0.3375, 5);
    expect(y[0]).toBeCloseTo(0.16875, 4);
    expect(Math.abs(y[0]! - ours[0]!)).toBeGreaterThan(0.1);
    await session.release();
  });
});

describe("roi_align's cell-at-a-time 'avg' against the sample-at-a-time reference", () => {
  /** Seeded values in [-4, 4), and RoIs inside, across and outside a map of `height` x `width` cells at 1/16. */
  function randomCase(seed: number, channels: number, height: number, width: number, k: number) {
    let state = seed;
    const next = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const map: FeatureMap = { data: Float32Array.from({ length: height * width * channels }, () => next() * 8 - 4), channels, height, width };
    const boxes = new Float32Array(4 * k);
    for (let i = 0; i < k; i++) {
      const x = next() * (16 * width + 100) - 60, y = next() * (16 * height + 100) - 60;
      boxes.set([x, y, x + next() * 500, y + next() * 500], 4 * i);
    }
    boxes.set([5, 5, 5, 5], 0); // empty
    return { map, boxes };
  }
  const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

  for (const channels of [1, 4, 13, 64]) {
    it(`${channels} channel(s): bit for bit, over sampling 0-3, aligned or not, 7x7, 3x5 and 14x14 bins`, () => {
      const { map, boxes } = randomCase(channels, channels, 23, 37, 40);
      for (const aligned of [false, true]) {
        for (const samplingRatio of [0, 1, 2, 3]) {
          for (const outputSize of [[7, 7], [3, 5], [14, 14]] as const) {
            const options = { outputSize, spatialScale: 1 / 16, samplingRatio, aligned };
            expect(bits(roiAlign(map, boxes, options)).equals(bits(referenceRoiAlign(map, boxes, options))), JSON.stringify(options)).toBe(true);
          }
        }
      }
    });
  }

  // The SIMD channel loop (simd-bins.ts) runs where the map lives in a WebAssembly memory set up for it: the same cases,
  // bit for bit against the reference; 48 channels (not a multiple of CHANNELS_PER_PASS) take the TypeScript loop there.
  for (const channels of [64, 48]) {
    it(`${channels} channels in a WebAssembly memory: bit for bit, the SIMD loop ${channels % CHANNELS_PER_PASS ? 'not ' : ''}taken`, () => {
      const { map, boxes } = randomCase(channels + 1, channels, 23, 37, 40);
      const outBytes = 4 * channels * 14 * 14;
      const memory = new WebAssembly.Memory({ initial: Math.ceil((map.data.byteLength + SCRATCH_FIXED_BYTES + outBytes) / 65536), maximum: MAX_PAGES, shared: true });
      const buffer = useSimdBins(memory, map.data.byteLength, outBytes);
      const data = new Float32Array(buffer, 0, map.data.length);
      data.set(map.data);
      // Count the kernel's calls: the 64-channel map must go through it, the 48-channel one must not.
      const kernel = simdBinsFor(buffer)!;
      const bins = kernel.bins;
      let calls = 0;
      kernel.bins = (...args) => {
        calls++;
        bins(...args);
      };
      for (const aligned of [false, true]) {
        for (const samplingRatio of [0, 1, 2, 3]) {
          for (const outputSize of [[7, 7], [3, 5], [14, 14]] as const) {
            const options = { outputSize, spatialScale: 1 / 16, samplingRatio, aligned };
            expect(bits(roiAlign({ ...map, data }, boxes, options)).equals(bits(referenceRoiAlign(map, boxes, options))), JSON.stringify(options)).toBe(true);
          }
        }
      }
      if (channels % CHANNELS_PER_PASS) expect(calls).toBe(0);
      else expect(calls).toBeGreaterThan(1000);
    });
  }
});

describe('MultiScaleRoIAlign against torchvision', () => {
  const ms = loadFixture('core', 'multiscale.json');
  const levels: FeatureMap[] = (ms.features as any[]).map((f) => featureMapFromChw(Float32Array.from(f.data), f.channels, f.height, f.width));
  const msRois = Float32Array.from(ms.rois as number[]);

  it('infers the same scale per level', () => {
    expect(levels.map((f) => inferFeatureScale(f.height, ms.imageSize[0]))).toEqual(ms.scales);
  });
  it('maps RoIs to the same levels (canonical 224 -> level 4)', () => {
    expect(Array.from(mapRoisToLevels(msRois, { kMin: 2, kMax: 5 }))).toEqual(ms.levels);
  });
  it('golden: a 224 x 224 RoI reads level 4, 112 x 112 level 3, 448 level 5, 10 x 10 clamps to 2', () => {
    const boxes = Float32Array.of(0, 0, 224, 224, 0, 0, 112, 112, 0, 0, 448, 448, 0, 0, 10, 10);
    expect(Array.from(mapRoisToLevels(boxes, { kMin: 2, kMax: 5 })).map((l) => l + 2)).toEqual([4, 3, 5, 2]);
  });
  it('refuses levels of different channel counts (their RoIs would land at the wrong places)', () => {
    const odd = [...levels.slice(0, -1), { ...levels.at(-1)!, channels: levels.at(-1)!.channels + 1, data: new Float32Array(levels.at(-1)!.height * levels.at(-1)!.width * (levels.at(-1)!.channels + 1)) }];
    expect(() => multiScaleRoiAlign(odd, msRois, { scales: ms.scales, outputSize: [7, 7], samplingRatio: 2, aligned: false })).toThrow(/the same channel count on every level/);
  });
  it('pools within one float32 ulp', () => {
    const out = multiScaleRoiAlign(levels, msRois, { scales: ms.scales, outputSize: [7, 7], samplingRatio: 2, aligned: false });
    // Measured: 2.4e-7, outputs up to 2.2.
    expect(maxAbsDiff(out, ms.output)).toBeLessThanOrEqual(ONE_ULP_AT_2);
  });
});
