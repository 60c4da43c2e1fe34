/**
 * RoI max pooling (Girshick, Fast R-CNN 2015, section 2.1), as
 * `torchvision.ops.roi_pool` and Caffe's ROIPoolingLayer.
 *
 * The RoI is projected onto the feature map and *quantized*: each corner is
 * rounded to the nearest cell (half away from zero), the RoI spans
 * (x2 - x1 + 1) x (y2 - y1 + 1) cells (at least 1 x 1), and bin (ph, pw)
 * covers rows [floor(ph * binH), ceil((ph + 1) * binH)) from the RoI's start,
 * clipped to the map. Each bin outputs the max over its cells, or 0 if empty.
 * Bins may overlap by one cell; that is the reference behaviour.
 *
 * Arithmetic mirrors the reference's float32 steps (Math.fround), so outputs
 * agree exactly.
 */

import { boxCount, type BoxArray } from '../boxes.js';
import { checkFeatureMap, type FeatureMap } from './feature-map.js';

import { roundHalfAway } from '../rounding.js';

const f32 = Math.fround;

export interface RoiPoolOptions {
  /** Output bins [height, width], e.g. [7, 7] (VGG16) or [6, 6] (AlexNet, ZFNet). */
  outputSize: readonly [number, number];
  /** Feature cells per input pixel, e.g. 1/16. */
  spatialScale: number;
}

/**
 * RoI max pooling over one feature map.
 * @param feature H x W x C (channels-last).
 * @param rois K*4 xyxy in input pixels.
 * @returns Float32Array of K x C x outputH x outputW.
 */
export function roiPool(feature: FeatureMap, rois: BoxArray, options: RoiPoolOptions): Float32Array {
  const out = new Float32Array(boxCount(rois) * feature.channels * options.outputSize[0] * options.outputSize[1]);
  roiPoolInto(feature, rois, options, out);
  return out;
}

/** RoI max pooling into `out`, RoI r's C x outputH x outputW block at slot `first + r`. */
export function roiPoolInto(feature: FeatureMap, rois: BoxArray, options: RoiPoolOptions, out: Float32Array, first = 0): void {
  const { data, channels, height, width } = checkFeatureMap(feature);
  const [outH, outW] = options.outputSize;
  const k = boxCount(rois);
  const bins = outH * outW;
  const scale = f32(options.spatialScale);
  const acc = new Float32Array(channels);
  // Per bin: [hstart, hend, wstart, wend] in cells, clipped.
  const extent = new Int32Array(bins * 4);

  for (let r = 0; r < k; r++) {
    const startW = roundHalfAway(f32(rois[4 * r]! * scale));
    const startH = roundHalfAway(f32(rois[4 * r + 1]! * scale));
    const endW = roundHalfAway(f32(rois[4 * r + 2]! * scale));
    const endH = roundHalfAway(f32(rois[4 * r + 3]! * scale));
    const roiW = Math.max(endW - startW + 1, 1);
    const roiH = Math.max(endH - startH + 1, 1);
    const binH = f32(roiH / outH);
    const binW = f32(roiW / outW);
    for (let ph = 0; ph < outH; ph++) {
      for (let pw = 0; pw < outW; pw++) {
        const e = 4 * (ph * outW + pw);
        extent[e] = Math.min(Math.max(Math.floor(f32(ph * binH)) + startH, 0), height);
        extent[e + 1] = Math.min(Math.max(Math.ceil(f32((ph + 1) * binH)) + startH, 0), height);
        extent[e + 2] = Math.min(Math.max(Math.floor(f32(pw * binW)) + startW, 0), width);
        extent[e + 3] = Math.min(Math.max(Math.ceil(f32((pw + 1) * binW)) + startW, 0), width);
      }
    }
    const roiOut = (first + r) * channels * bins;
    for (let b = 0; b < bins; b++) {
      const hs = extent[4 * b]!, he = extent[4 * b + 1]!, ws = extent[4 * b + 2]!, we = extent[4 * b + 3]!;
      const o = roiOut + b;
      if (he <= hs || we <= ws) {
        for (let c = 0; c < channels; c++) out[o + c * bins] = 0;
        continue;
      }
      acc.fill(-Infinity);
      for (let y = hs; y < he; y++) {
        for (let x = ws; x < we; x++) {
          const p = (y * width + x) * channels;
          for (let c = 0; c < channels; c++) {
            const v = data[p + c]!;
            if (v > acc[c]!) acc[c] = v;
          }
        }
      }
      for (let c = 0; c < channels; c++) out[o + c * bins] = acc[c]!;
    }
  }
}
