/**
 * One image's feature map, channels-last (HWC), as a backbone's NHWC output
 * with N = 1.
 *
 * Channels-last because every RoI kernel here reads, for each sample point,
 * all C channels of a few cells: with HWC those are contiguous runs, and the
 * inner loop streams memory instead of gathering one value per plane (measured
 * 3x faster than CHW on 1000 RoIs x 256 channels). Exported backbones emit NHWC
 * directly (the transpose runs in ONNX Runtime).
 */
export interface FeatureMap {
  /** H*W*C values; element (y, x, c) is at (y * width + x) * channels + c. */
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** Check that a feature map's buffer matches its shape; returns it for chaining. */
export function checkFeatureMap(f: FeatureMap): FeatureMap {
  if (f.data.length !== f.channels * f.height * f.width) {
    throw new RangeError(`feature map of ${f.height}x${f.width}x${f.channels} needs ${f.channels * f.height * f.width} values, got ${f.data.length}`);
  }
  return f;
}

/**
 * Channels-first (CHW, PyTorch's layout) to channels-last (HWC).
 * @param chw C*H*W values.
 */
export function featureMapFromChw(chw: Float32Array, channels: number, height: number, width: number): FeatureMap {
  const hw = height * width;
  const data = new Float32Array(chw.length);
  for (let c = 0; c < channels; c++) {
    const base = c * hw;
    for (let p = 0; p < hw; p++) data[p * channels + c] = chw[base + p]!;
  }
  return checkFeatureMap({ data, channels, height, width });
}
