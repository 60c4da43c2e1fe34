/**
 * RoIAlign 'avg', the obviously-correct way: torchvision's CPU loop
 * (roi_align_kernel.cpp) read literally, one bilinear sample at a time, its
 * float32 steps in Math.fround, each sample's four corner terms summed in
 * float64 and added to the bin's sum. src/core/roi/roi-align.ts reads each
 * feature cell once per bin instead; the tests hold it to this bit for bit.
 */

import type { FeatureMap } from '../../src/core/roi/feature-map.js';
import type { RoiAlignOptions } from '../../src/core/roi/roi-align.js';

const f32 = Math.fround;

export function referenceRoiAlign({ data, channels, height, width }: FeatureMap, rois: Float32Array, o: Omit<RoiAlignOptions, 'mode'>): Float32Array {
  const [outH, outW] = o.outputSize;
  const k = rois.length / 4;
  const out = new Float32Array(k * channels * outH * outW);
  const scale = f32(o.spatialScale);
  const offset = o.aligned ? 0.5 : 0;
  for (let r = 0; r < k; r++) {
    const x1 = f32(f32(rois[4 * r]! * scale) - offset), y1 = f32(f32(rois[4 * r + 1]! * scale) - offset);
    const x2 = f32(f32(rois[4 * r + 2]! * scale) - offset), y2 = f32(f32(rois[4 * r + 3]! * scale) - offset);
    const roiW = o.aligned ? f32(x2 - x1) : Math.max(f32(x2 - x1), 1);
    const roiH = o.aligned ? f32(y2 - y1) : Math.max(f32(y2 - y1), 1);
    const binH = f32(roiH / outH), binW = f32(roiW / outW);
    const gridH = o.samplingRatio > 0 ? o.samplingRatio : Math.ceil(f32(roiH / outH));
    const gridW = o.samplingRatio > 0 ? o.samplingRatio : Math.ceil(f32(roiW / outW));
    const count = Math.max(gridH * gridW, 1);
    for (let c = 0; c < channels; c++) {
      for (let ph = 0; ph < outH; ph++) {
        for (let pw = 0; pw < outW; pw++) {
          let sum = 0;
          for (let iy = 0; iy < gridH; iy++) {
            const y = f32(f32(y1 + f32(ph * binH)) + f32(f32(f32(iy + 0.5) * binH) / gridH));
            for (let ix = 0; ix < gridW; ix++) {
              const x = f32(f32(x1 + f32(pw * binW)) + f32(f32(f32(ix + 0.5) * binW) / gridW));
              sum += bilinear(data, channels, height, width, y, x, c);
            }
          }
          out[((r * channels + c) * outH + ph) * outW + pw] = sum / count;
        }
      }
    }
  }
  return out;
}

/** One bilinear sample, as torchvision: 0 more than a cell outside the map, clamped at its edges. */
function bilinear(data: Float32Array, channels: number, height: number, width: number, y: number, x: number, c: number): number {
  if (y < -1 || y > height || x < -1 || x > width) return 0;
  let yy = y <= 0 ? 0 : y, xx = x <= 0 ? 0 : x;
  let yLow = Math.trunc(yy), xLow = Math.trunc(xx), yHigh: number, xHigh: number;
  if (yLow >= height - 1) (yHigh = yLow = height - 1), (yy = yLow);
  else yHigh = yLow + 1;
  if (xLow >= width - 1) (xHigh = xLow = width - 1), (xx = xLow);
  else xHigh = xLow + 1;
  const ly = f32(yy - yLow), lx = f32(xx - xLow), hy = f32(1 - ly), hx = f32(1 - lx);
  const at = (row: number, col: number) => data[(row * width + col) * channels + c]!;
  return f32(hy * hx) * at(yLow, xLow) + f32(hy * lx) * at(yLow, xHigh) + f32(ly * hx) * at(yHigh, xLow) + f32(ly * lx) * at(yHigh, xHigh);
}
