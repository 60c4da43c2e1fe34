/**
 * Image decoding: the bytes a user sends -> upright 8-bit RGB pixels.
 *
 * JPEG, PNG and WebP only; EXIF orientation applied first, so boxes are in the
 * frame people see; alpha dropped (as PIL's convert('RGB')); greyscale and
 * 16-bit inputs converted to 8-bit sRGB. Limits on bytes and pixels are
 * checked before any pixel is decoded (sharp reads the header only), so a
 * decompression bomb is refused without allocating it.
 */

import { readFile } from 'node:fs/promises';
import sharp, { type Metadata } from 'sharp';
import type { RgbImage } from '../core/image.js';
import { DetectError } from '../errors.js';

export const SUPPORTED_FORMATS = Object.freeze(['jpeg', 'png', 'webp'] as const);

export interface DecodeLimits {
  /** Largest accepted input, in bytes. */
  maxBytes: number;
  /** Largest accepted width x height, in pixels (after EXIF rotation: same count). */
  maxPixels: number;
}

/** Defaults: 20 MiB and 40 MP (a 40 MP float32 tensor is 480 MB). */
export const DEFAULT_DECODE_LIMITS: DecodeLimits = Object.freeze({ maxBytes: 20 * 1024 * 1024, maxPixels: 40_000_000 });

/**
 * Decode an encoded image.
 * @throws DetectError with code EMPTY_IMAGE, IMAGE_TOO_LARGE, UNSUPPORTED_FORMAT or CORRUPT_IMAGE.
 */
export async function decodeImage(bytes: Uint8Array, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): Promise<RgbImage> {
  if (bytes.length === 0) throw new DetectError('EMPTY_IMAGE', 'the image is empty (0 bytes)');
  if (bytes.length > limits.maxBytes) {
    throw new DetectError('IMAGE_TOO_LARGE', `the image is ${bytes.length} bytes; at most ${limits.maxBytes} bytes are allowed`);
  }
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw new DetectError('UNSUPPORTED_FORMAT', `the bytes are not an image in a supported format; allowed: ${SUPPORTED_FORMATS.join(', ')}`);
  }
  const format = meta.format ?? 'unknown';
  if (!(SUPPORTED_FORMATS as readonly string[]).includes(format)) {
    throw new DetectError('UNSUPPORTED_FORMAT', `image format ${format} is not supported; allowed: ${SUPPORTED_FORMATS.join(', ')}`);
  }
  const pixels = (meta.width ?? 0) * (meta.height ?? 0);
  if (pixels > limits.maxPixels) {
    throw new DetectError('IMAGE_TOO_LARGE', `the image is ${meta.width}x${meta.height} = ${pixels} pixels; at most ${limits.maxPixels} are allowed`);
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'warning' })
      .rotate()
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoder gave ${info.channels} channels`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  } catch (err) {
    throw new DetectError('CORRUPT_IMAGE', `the ${format} image could not be decoded (truncated or damaged): ${(err as Error).message}`);
  }
}

/**
 * Read an image file's bytes.
 * @throws DetectError FILE_NOT_FOUND saying why (missing, a folder, no permission).
 */
export async function readImageFile(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new DetectError('FILE_NOT_FOUND', `cannot read ${path}: ${why}`);
  }
}
