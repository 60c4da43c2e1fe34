import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { featureMapFromChw, type FeatureMap } from '../../../src/core/roi/feature-map.js';
import { inferFeatureScale, mapRoisToLevels } from '../../../src/core/roi/level-mapper.js';
import { multiScaleRoiAlign } from '../../../src/core/roi/multi-scale-roi-align.js';
import { roiAlign } from '../../../src/core/roi/roi-align.js';
import { roiPool } from '../../../src/core/roi/roi-pool.js';
import { fixturePath, loadFixture, maxAbsDiff } from '../../helpers/fixtures.js';

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

describe('roi_align against torchvision', () => {
  for (const c of fx.roiAlign as any[]) {
    it(`aligned=${c.aligned}, sampling ${c.samplingRatio}, scale ${c.spatialScale}, ${c.outputSize.join('x')}: within 1e-4`, () => {
      const out = roiAlign(feature, rois, { outputSize: c.outputSize, spatialScale: c.spatialScale, samplingRatio: c.samplingRatio, aligned: c.aligned });
      expect(maxAbsDiff(out, c.output)).toBeLessThanOrEqual(1e-4);
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

  it('halving the image and the box halves nothing: aligned=true output agrees', () => {
    // The same content at stride 8 instead of 4: the map is the ramp resampled at half resolution.
    const half: FeatureMap = { channels: 2, height: h, width: w, data: ramp.data };
    const a = roiAlign(ramp, Float32Array.of(10, 12, 90, 70), { outputSize: [5, 5], spatialScale: 0.25, samplingRatio: 0, aligned: true });
    const b = roiAlign(half, Float32Array.of(20, 24, 180, 140), { outputSize: [5, 5], spatialScale: 0.125, samplingRatio: 0, aligned: true });
    expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-5);
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
  it('pools within 1e-4', () => {
    const out = multiScaleRoiAlign(levels, msRois, { scales: ms.scales, outputSize: [7, 7], samplingRatio: 2, aligned: false });
    expect(maxAbsDiff(out, ms.output)).toBeLessThanOrEqual(1e-4);
  });
});
