/**
 * Pictures of what a backbone computes (Zeiler & Fergus 2014, figures 1-2;
 * Krizhevsky et al. 2012, figure 3): activation maps as tiles, and the
 * first layer's filters as small colour images.
 */

import sharp from 'sharp';

/** Gap between tiles, pixels, and the background it shows. */
const GAP = 4;
const BACKGROUND = { r: 255, g: 255, b: 255, alpha: 1 };

/** The "hot" colour map: black, red, yellow, white as v goes from 0 to 1. */
function hot(v: number): [number, number, number] {
  const t = Math.min(1, Math.max(0, v)) * 3;
  return [Math.round(255 * Math.min(1, t)), Math.round(255 * Math.min(1, Math.max(0, t - 1))), Math.round(255 * Math.max(0, t - 2))];
}

/** Tiles laid out in a near-square grid, each tile already encoded as a PNG of tileWidth x tileHeight. */
async function grid(tiles: Buffer[], tileWidth: number, tileHeight: number): Promise<Buffer> {
  const columns = Math.ceil(Math.sqrt(tiles.length));
  const rows = Math.ceil(tiles.length / columns);
  return sharp({ create: { width: columns * (tileWidth + GAP) + GAP, height: rows * (tileHeight + GAP) + GAP, channels: 4, background: BACKGROUND } })
    .composite(tiles.map((input, i) => ({ input, left: GAP + (i % columns) * (tileWidth + GAP), top: GAP + Math.floor(i / columns) * (tileHeight + GAP) })))
    .png()
    .toBuffer();
}

/**
 * Activation maps, each scaled from 0 to its own maximum (a map at or below 0
 * everywhere is black), upsampled smoothly to `tileWidth` wide, in a grid.
 * @returns a PNG.
 */
export async function drawActivationTiles(maps: readonly { data: ArrayLike<number>; width: number; height: number }[], tileWidth: number): Promise<Buffer> {
  if (maps.length === 0) throw new RangeError('no maps to draw');
  const { width, height } = maps[0]!;
  const tileHeight = Math.max(1, Math.round((tileWidth * height) / width));
  const tiles = await Promise.all(
    maps.map((m) => {
      let max = 0;
      for (let i = 0; i < m.data.length; i++) max = Math.max(max, m.data[i]!);
      const rgb = Buffer.alloc(3 * m.width * m.height);
      for (let i = 0; i < m.width * m.height; i++) rgb.set(hot(max > 0 ? m.data[i]! / max : 0), 3 * i);
      return sharp(rgb, { raw: { width: m.width, height: m.height, channels: 3 } }).resize(tileWidth, tileHeight, { fit: 'fill', kernel: 'cubic' }).png().toBuffer();
    }),
  );
  return grid(tiles, tileWidth, tileHeight);
}

/**
 * Convolution filters [out, in, kh, kw] as colour images, each scaled from
 * its own minimum to its maximum (as AlexNet's figure 3), enlarged without
 * smoothing so that each weight is a visible square. Three input channels
 * are shown as colours (in `order`); any other count as grey, their mean.
 * @returns a PNG.
 */
export async function drawFilters(dims: readonly [number, number, number, number], data: Float32Array, order: 'RGB' | 'BGR'): Promise<Buffer> {
  const [out, inChannels, kh, kw] = dims;
  const scale = Math.max(4, Math.ceil(48 / Math.max(kh, kw)));
  const plane = kh * kw;
  const tiles = await Promise.all(
    Array.from({ length: out }, (_, o) => {
      const w = data.subarray(o * inChannels * plane, (o + 1) * inChannels * plane);
      let lo = Infinity, hi = -Infinity;
      for (const v of w) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
      const span = hi > lo ? hi - lo : 1;
      const rgb = Buffer.alloc(3 * plane);
      for (let p = 0; p < plane; p++) {
        for (let c = 0; c < 3; c++) {
          let v: number;
          if (inChannels === 3) v = w[(order === 'BGR' ? 2 - c : c) * plane + p]!;
          else {
            v = 0;
            for (let i = 0; i < inChannels; i++) v += w[i * plane + p]! / inChannels;
          }
          rgb[3 * p + c] = Math.round((255 * (v - lo)) / span);
        }
      }
      return sharp(rgb, { raw: { width: kw, height: kh, channels: 3 } }).resize(kw * scale, kh * scale, { kernel: 'nearest' }).png().toBuffer();
    }),
  );
  return grid(tiles, kw * scale, kh * scale);
}
