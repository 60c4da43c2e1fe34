/**
 * One image's feature map, channel-major (CHW), as a backbone's NCHW output
 * with N = 1.
 */
export interface FeatureMap {
  /** C*H*W values; element (c, y, x) is at (c * height + y) * width + x. */
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** Check that a feature map's buffer matches its shape; returns it for chaining. */
export function checkFeatureMap(f: FeatureMap): FeatureMap {
  if (f.data.length !== f.channels * f.height * f.width) {
    throw new RangeError(`feature map of ${f.channels}x${f.height}x${f.width} needs ${f.channels * f.height * f.width} values, got ${f.data.length}`);
  }
  return f;
}
