import { readFileSync } from 'node:fs';
import sharp, { type PngOptions } from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../../src/image/decode.js';
import { fixturePath } from '../../helpers/fixtures.js';
import { pngClaiming, tinyBmp } from '../../helpers/images.js';

const png = readFileSync(fixturePath('images', 'chelsea.png'));

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return (err as { code: string }).code;
  }
}

describe('decodeImage', () => {
  it('decodes PNG to upright 8-bit RGB', async () => {
    const img = await decodeImage(png);
    expect([img.width, img.height, img.data.length]).toEqual([451, 300, 451 * 300 * 3]);
  });

  it('applies EXIF orientation 6: a 150x226 stored JPEG is seen as 226x150, the same way up as the source', async () => {
    const img = await decodeImage(readFileSync(fixturePath('images', 'chelsea-exif6.jpg')));
    expect([img.width, img.height]).toEqual([226, 150]);
    // Compare with the source photo downsized: the mean absolute difference is small only if upright.
    const ref = await sharp(png).resize(226, 150).removeAlpha().raw().toBuffer();
    let diff = 0;
    for (let i = 0; i < ref.length; i++) diff += Math.abs(ref[i]! - img.data[i]!);
    expect(diff / ref.length).toBeLessThan(12);
  });

  it('converts greyscale, alpha and 16-bit PNG to 8-bit RGB', async () => {
    const grey = await sharp({ create: { width: 5, height: 4, channels: 3, background: { r: 9, g: 9, b: 9 } } }).greyscale().png().toBuffer();
    const rgba = await sharp({ create: { width: 5, height: 4, channels: 4, background: { r: 200, g: 10, b: 30, alpha: 0.5 } } }).png().toBuffer();
    const deep = await sharp({ create: { width: 5, height: 4, channels: 3, background: { r: 255, g: 0, b: 128 } } }).png({ bitdepth: 16 } as PngOptions).toColourspace('rgb16').toBuffer();
    for (const bytes of [grey, rgba, deep]) {
      const img = await decodeImage(bytes);
      expect([img.width, img.height, img.data.length]).toEqual([5, 4, 60]);
    }
    expect(Array.from((await decodeImage(deep)).data.subarray(0, 3))).toEqual([255, 0, 128]);
  });

  it('WebP is accepted', async () => {
    const webp = await sharp(png).webp().toBuffer();
    expect((await decodeImage(webp)).width).toBe(451);
  });

  it('refuses empty, truncated, non-image, unsupported and oversized inputs with stable codes', async () => {
    expect(await code(decodeImage(new Uint8Array(0)))).toBe('EMPTY_IMAGE');
    expect(await code(decodeImage(png.subarray(0, png.length / 2)))).toBe('CORRUPT_IMAGE');
    expect(await code(decodeImage(new TextEncoder().encode('hello, not an image')))).toBe('UNSUPPORTED_FORMAT');
    expect(await code(decodeImage(tinyBmp()))).toBe('UNSUPPORTED_FORMAT');
    const gif = await sharp(png).gif().toBuffer();
    expect(await code(decodeImage(gif))).toBe('UNSUPPORTED_FORMAT');
    expect(await code(decodeImage(pngClaiming(100000, 100000)))).toBe('IMAGE_TOO_LARGE');
    expect(await code(decodeImage(png, { maxBytes: 100, maxPixels: 1e9 }))).toBe('IMAGE_TOO_LARGE');
  });

  it('says what was wrong and what is allowed', async () => {
    await expect(decodeImage(await sharp(png).gif().toBuffer())).rejects.toThrow('image format gif is not supported; allowed: jpeg, png, webp');
    await expect(decodeImage(pngClaiming(100000, 100000))).rejects.toThrow(/100000x100000 = 10000000000 pixels; at most 40000000/);
  });
});
