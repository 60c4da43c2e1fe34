/**
 * The colour spaces selective search diversifies over (Uijlings et al. 2013,
 * section 3.2, table 1), each channel mapped to [0, 1] so that histograms use
 * the same uniform bins in every space:
 *
 *   RGB  R, G, B / 255
 *   HSV  hue / 360, saturation (max - min) / max, value max / 255
 *   Lab  CIE L*a*b* (sRGB, D65): L / 100, (a + 128) / 255, (b + 128) / 255, clamped
 *   rgI  normalised r = R / (R+G+B), g = G / (R+G+B), intensity (R+G+B) / 765
 *   I    intensity (R+G+B) / 765, one channel
 *   H    hue / 360, one channel
 */

export const COLOUR_SPACES = Object.freeze(['RGB', 'HSV', 'Lab', 'rgI', 'I', 'H'] as const);
export type ColourSpace = (typeof COLOUR_SPACES)[number];

/** A converted image: H*W*C values in [0, 1], HWC. */
export interface ChannelImage {
  data: Float64Array;
  width: number;
  height: number;
  channels: number;
}

export function channelCount(space: ColourSpace): number {
  return space === 'I' || space === 'H' ? 1 : 3;
}

/** Hue in [0, 1) (0 for greys), as the hexcone model. */
function hue(r: number, g: number, b: number, max: number, min: number): number {
  const d = max - min;
  if (d === 0) return 0;
  let h: number;
  if (max === r) h = (g - b) / d + (g < b ? 6 : 0);
  else if (max === g) h = (b - r) / d + 2;
  else h = (r - g) / d + 4;
  return h / 6;
}

/** sRGB 8-bit value to linear light. */
const LINEAR = Float64Array.from({ length: 256 }, (_, v) => {
  const c = v / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
});

function clampUnit(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

function labF(t: number): number {
  const e = 216 / 24389; // (6/29)^3
  return t > e ? Math.cbrt(t) : (24389 / 27 * t + 16) / 116;
}

/**
 * Convert 8-bit RGB (HWC, 3 bytes per pixel) to a colour space.
 * @param rgb width*height*3 bytes.
 */
export function convertColour(rgb: Uint8Array, width: number, height: number, space: ColourSpace): ChannelImage {
  const n = width * height;
  const channels = channelCount(space);
  const out = new Float64Array(n * channels);
  for (let i = 0; i < n; i++) {
    const R = rgb[3 * i]!, G = rgb[3 * i + 1]!, B = rgb[3 * i + 2]!;
    const o = i * channels;
    switch (space) {
      case 'RGB':
        out[o] = R / 255; out[o + 1] = G / 255; out[o + 2] = B / 255;
        break;
      case 'HSV': {
        const max = Math.max(R, G, B), min = Math.min(R, G, B);
        out[o] = hue(R, G, B, max, min); out[o + 1] = max === 0 ? 0 : (max - min) / max; out[o + 2] = max / 255;
        break;
      }
      case 'H': {
        out[o] = hue(R, G, B, Math.max(R, G, B), Math.min(R, G, B));
        break;
      }
      case 'Lab': {
        const r = LINEAR[R]!, g = LINEAR[G]!, b = LINEAR[B]!;
        const x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047;
        const y = 0.2126729 * r + 0.7151522 * g + 0.072175 * b;
        const z = (0.0193339 * r + 0.119192 * g + 0.9503041 * b) / 1.08883;
        const fx = labF(x), fy = labF(y), fz = labF(z);
        out[o] = clampUnit((116 * fy - 16) / 100);
        out[o + 1] = clampUnit((500 * (fx - fy) + 128) / 255);
        out[o + 2] = clampUnit((200 * (fy - fz) + 128) / 255);
        break;
      }
      case 'rgI': {
        const s = R + G + B;
        out[o] = s === 0 ? 1 / 3 : R / s; out[o + 1] = s === 0 ? 1 / 3 : G / s; out[o + 2] = s / 765;
        break;
      }
      case 'I':
        out[o] = (R + G + B) / 765;
        break;
    }
  }
  return { data: out, width, height, channels };
}
