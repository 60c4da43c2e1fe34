/**
 * The sampled Gaussian of `scipy.ndimage.gaussian_filter` (which skimage's
 * `gaussian` wraps): exp(-x^2 / (2 sigma^2)) over x in [-r, r],
 * r = floor(truncate * sigma + 0.5), normalised to sum 1. The segmentation
 * smooths with it (assembly/felzenszwalb.ts), the texture derives from it.
 */

/** Normalised 1-D Gaussian kernel of radius floor(truncate * sigma + 0.5). */
export function gaussianKernel(sigma: number, truncate = 4): Float64Array {
  const radius = Math.floor(truncate * sigma + 0.5);
  const k = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let x = -radius; x <= radius; x++) sum += k[x + radius] = Math.exp((-0.5 / (sigma * sigma)) * x * x);
  for (let i = 0; i < k.length; i++) k[i] = k[i]! / sum;
  return k;
}
