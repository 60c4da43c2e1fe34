/**
 * An occlusion map drawn over its image: red where greying a patch lowered
 * the detection's score, blue where it raised it, opacity in proportion to
 * the change (the largest change, either way, is the most opaque); the
 * detection's box on top.
 */

import sharp from 'sharp';
import { pixelDrops, type OcclusionGrid } from '../core/occlusion.js';
import { boxesSvg, uprightSize, type DrawnBox } from './draw.js';

/** The overlay's longest side at most: sharp scales it up to the image, smoothly. */
const OVERLAY_MAX_SIDE = 1024;

/** Opacity of the largest change. */
const MAX_ALPHA = 0.7;

/**
 * @param bytes the encoded image (EXIF orientation applied, as for detection).
 * @param grid the patch positions, in the upright image's pixels.
 * @param patchDrops the score's drop with each patch greyed, in the grid's order.
 * @returns a PNG.
 */
export async function drawOcclusionMap(bytes: Uint8Array, grid: OcclusionGrid, patchDrops: readonly number[], box: DrawnBox): Promise<Buffer> {
  const { width, height } = await uprightSize(bytes);
  const drops = pixelDrops(grid, patchDrops, width, height, Math.min(1, OVERLAY_MAX_SIDE / Math.max(width, height)));
  let most = 0;
  for (const d of drops.data) most = Math.max(most, Math.abs(d));
  const rgba = Buffer.alloc(4 * drops.data.length);
  drops.data.forEach((d, i) => {
    const strength = most > 0 ? Math.abs(d) / most : 0;
    rgba[4 * i] = d > 0 ? 230 : 40;
    rgba[4 * i + 1] = 40;
    rgba[4 * i + 2] = d > 0 ? 40 : 230;
    rgba[4 * i + 3] = Math.round(255 * MAX_ALPHA * strength);
  });
  const overlay = await sharp(rgba, { raw: { width: drops.width, height: drops.height, channels: 4 } }).resize(width, height, { fit: 'fill', kernel: 'cubic' }).png().toBuffer();
  return sharp(bytes)
    .rotate()
    .composite([
      { input: overlay, top: 0, left: 0 },
      { input: boxesSvg([box], width, height), top: 0, left: 0 },
    ])
    .png()
    .toBuffer();
}
