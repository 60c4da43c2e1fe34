/** Encoding RGB pixels, the other half of the sharp seam (decode.ts reads). */

import sharp from 'sharp';
import type { RgbImage } from '../core/image.js';

const raw = (image: RgbImage) => sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });

/** Lossless PNG. */
export function encodePng(image: RgbImage): Promise<Buffer> {
  return raw(image).png().toBuffer();
}

/** JPEG at `quality` (1-100), chroma at full resolution (4:4:4), so small shapes keep their colour. */
export function encodeJpeg(image: RgbImage, quality: number): Promise<Buffer> {
  return raw(image).jpeg({ quality, chromaSubsampling: '4:4:4' }).toBuffer();
}
