/**
 * Separable Gaussian smoothing as `scipy.ndimage.gaussian_filter` (which
 * skimage's `gaussian` wraps): kernel exp(-x^2 / (2 sigma^2)) over
 * x in [-r, r], r = floor(truncate * sigma + 0.5), normalised to sum 1;
 * border mode 'reflect' (d c b a | a b c d | d c b a); rows first, then
 * columns; sums in scipy's order for symmetric kernels.
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

/** scipy's 'reflect' index for i in any range over [0, n). */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n;
  let j = i % period;
  if (j < 0) j += period;
  return j < n ? j : period - 1 - j;
}

/**
 * Smooth each channel of an HWC image along y, then x. Each output value is
 * scipy's sum (centre term, then pairs outward), computed a row at a time so
 * that every read is sequential.
 * @param image H*W*C values.
 * @param kernel odd-length symmetric kernel, e.g. gaussianKernel(sigma).
 * @returns a new Float64Array of H*W*C.
 */
export function smoothChannels(image: Float64Array, width: number, height: number, channels: number, kernel: Float64Array): Float64Array {
  const r = (kernel.length - 1) / 2;
  if (r <= 3) return smoothChannels7(image, width, height, channels, kernel);
  const tmp = new Float64Array(image.length);
  const out = new Float64Array(image.length);
  const rowLength = width * channels;
  // Along y (axis 0): output row y from input rows y - r .. y + r, reflected at the borders.
  for (let y = 0; y < height; y++) {
    const to = y * rowLength;
    const centre = kernel[r]!;
    for (let i = 0; i < rowLength; i++) tmp[to + i] = image[to + i]! * centre;
    for (let j = 1; j <= r; j++) {
      const w = kernel[r + j]!;
      const below = reflect(y + j, height) * rowLength, above = reflect(y - j, height) * rowLength;
      for (let i = 0; i < rowLength; i++) tmp[to + i]! += (image[below + i]! + image[above + i]!) * w;
    }
  }
  // Along x (axis 1), for each row and channel, through a line padded by reflection.
  const line = new Float64Array(width + 2 * r);
  for (let y = 0; y < height; y++) {
    const row = y * rowLength;
    for (let c = 0; c < channels; c++) {
      for (let i = -r; i < 0; i++) line[i + r] = tmp[row + reflect(i, width) * channels + c]!;
      for (let i = 0; i < width; i++) line[i + r] = tmp[row + i * channels + c]!;
      for (let i = width; i < width + r; i++) line[i + r] = tmp[row + reflect(i, width) * channels + c]!;
      for (let x = 0; x < width; x++) out[row + x * channels + c] = correlateSymmetric(line, x + r, kernel, r);
    }
  }
  return out;
}

/**
 * smoothChannels for kernels of up to 7 taps (sigma under 0.875 at truncate
 * 4; the segmentation's 0.8 has 7), unrolled: each pass reads its taps in
 * place, with no reflected line. A shorter kernel is padded with zero taps,
 * which add exact zeros, so the sums are those of smoothChannels' loops.
 */
function smoothChannels7(image: Float64Array, width: number, height: number, channels: number, kernel: Float64Array): Float64Array {
  const k = new Float64Array(7);
  k.set(kernel, 3 - (kernel.length - 1) / 2);
  const centre = k[3]!, k1 = k[4]!, k2 = k[5]!, k3 = k[6]!;
  const tmp = new Float64Array(image.length);
  const out = new Float64Array(image.length);
  const rowLength = width * channels;
  for (let y = 0; y < height; y++) {
    const to = y * rowLength;
    const a1 = reflect(y - 1, height) * rowLength, a2 = reflect(y - 2, height) * rowLength, a3 = reflect(y - 3, height) * rowLength;
    const b1 = reflect(y + 1, height) * rowLength, b2 = reflect(y + 2, height) * rowLength, b3 = reflect(y + 3, height) * rowLength;
    for (let i = 0; i < rowLength; i++) {
      tmp[to + i] = image[to + i]! * centre + (image[b1 + i]! + image[a1 + i]!) * k1 + (image[b2 + i]! + image[a2 + i]!) * k2 + (image[b3 + i]! + image[a3 + i]!) * k3;
    }
  }
  const s1 = channels, s2 = 2 * channels, s3 = 3 * channels;
  for (let y = 0; y < height; y++) {
    const row = y * rowLength;
    for (let x = 0; x < width; x++) {
      if (x >= 3 && x + 3 < width) {
        for (let at = row + x * channels, end = at + channels; at < end; at++) {
          out[at] = tmp[at]! * centre + (tmp[at + s1]! + tmp[at - s1]!) * k1 + (tmp[at + s2]! + tmp[at - s2]!) * k2 + (tmp[at + s3]! + tmp[at - s3]!) * k3;
        }
      } else {
        for (let c = 0; c < channels; c++) {
          const at = (dx: number) => row + reflect(x + dx, width) * channels + c;
          out[row + x * channels + c] =
            tmp[at(0)]! * centre + (tmp[at(1)]! + tmp[at(-1)]!) * k1 + (tmp[at(2)]! + tmp[at(-2)]!) * k2 + (tmp[at(3)]! + tmp[at(-3)]!) * k3;
        }
      }
    }
  }
  return out;
}

/** scipy's NI_Correlate1D for a symmetric kernel: centre term, then pairs outward. */
function correlateSymmetric(line: Float64Array, centre: number, kernel: Float64Array, r: number): number {
  let acc = line[centre]! * kernel[r]!;
  for (let j = 1; j <= r; j++) acc += (line[centre + j]! + line[centre - j]!) * kernel[r + j]!;
  return acc;
}
