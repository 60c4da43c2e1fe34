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

  it('converts greyscale, alpha (dropped, not composited) and 16-bit PNG to 8-bit RGB, pixel for pixel', async () => {
    const grey = await sharp({ create: { width: 5, height: 4, channels: 3, background: { r: 9, g: 9, b: 9 } } }).greyscale().png().toBuffer();
    const rgba = await sharp({ create: { width: 5, height: 4, channels: 4, background: { r: 200, g: 10, b: 30, alpha: 0.5 } } }).png().toBuffer();
    const deep = await sharp({ create: { width: 5, height: 4, channels: 3, background: { r: 255, g: 0, b: 128 } } }).png({ bitdepth: 16 } as PngOptions).toColourspace('rgb16').toBuffer();
    for (const [bytes, rgb] of [[grey, [9, 9, 9]], [rgba, [200, 10, 30]], [deep, [255, 0, 128]]] as const) {
      const img = await decodeImage(bytes);
      expect([img.width, img.height]).toEqual([5, 4]);
      expect(Array.from(img.data)).toEqual(Array.from({ length: 20 }, () => rgb).flat());
    }
  });

  it('applies every EXIF orientation, 1 to 8, in PNG and WebP, as the EXIF specification maps stored to seen pixels', async () => {
    // A 4 x 3 image of distinct pixels; where stored pixel (x, y) is seen, written out per orientation.
    const w = 4, h = 3;
    const stored = Buffer.alloc(w * h * 3);
    for (let i = 0; i < w * h; i++) stored.set([i * 20, 255 - i * 20, i * 7], 3 * i);
    const seenFrom: Record<number, (x: number, y: number) => [number, number]> = {
      1: (x, y) => [x, y],
      2: (x, y) => [w - 1 - x, y], // mirrored left-right
      3: (x, y) => [w - 1 - x, h - 1 - y], // rotated 180
      4: (x, y) => [x, h - 1 - y], // mirrored top-bottom
      5: (x, y) => [y, x], // transposed
      6: (x, y) => [y, h - 1 - x], // rotated 90 clockwise
      7: (x, y) => [w - 1 - y, h - 1 - x], // transversed
      8: (x, y) => [w - 1 - y, x], // rotated 90 anticlockwise
    };
    for (const format of ['png', 'webp'] as const) {
      for (let orientation = 1; orientation <= 8; orientation++) {
        const bytes = await sharp(stored, { raw: { width: w, height: h, channels: 3 } })
          .toFormat(format, { lossless: true })
          .withMetadata({ orientation })
          .toBuffer();
        const img = await decodeImage(bytes);
        const [sw, sh] = orientation >= 5 ? [h, w] : [w, h];
        expect([format, orientation, img.width, img.height]).toEqual([format, orientation, sw, sh]);
        const expected: number[] = [];
        for (let y = 0; y < sh; y++) {
          for (let x = 0; x < sw; x++) {
            const [fx, fy] = seenFrom[orientation]!(x, y);
            expected.push(...stored.subarray(3 * (fy * w + fx), 3 * (fy * w + fx) + 3));
          }
        }
        expect([format, orientation, Array.from(img.data)]).toEqual([format, orientation, expected]);
      }
    }
  });

  it('an image with an embedded Display P3 profile is converted to sRGB (PIL, and so torchvision, reads the stored values)', async () => {
    const source = readFileSync(fixturePath('images', 'shapes.png'));
    const srgb = await sharp(source).removeAlpha().raw().toBuffer();
    const p3 = await sharp(source).withIccProfile('p3').png().toBuffer();
    const stats = (a: Uint8Array) => {
      let sum = 0, max = 0;
      for (let i = 0; i < a.length; i++) {
        const d = Math.abs(a[i]! - srgb[i]!);
        sum += d;
        max = Math.max(max, d);
      }
      return { mean: sum / a.length, max };
    };
    // Measured: the stored P3 values are 5.3 levels from the sRGB source on average (at most 40); decoded, 0.15
    // (at most 2, the two conversions' rounding). PIL's convert('RGB') keeps the stored values: on a P3 JPEG of
    // this image ours and PIL's differ by 5.0 on average and 63 at most, so parity fixtures use untagged images.
    const stored = stats(await sharp(p3, { ignoreIcc: true }).removeAlpha().raw().toBuffer());
    expect(stored.mean).toBeGreaterThan(5);
    const decoded = stats((await decodeImage(p3)).data);
    expect(decoded.max).toBeLessThanOrEqual(2);
    expect(decoded.mean).toBeLessThan(0.2);
  });

  it('a CMYK JPEG is converted to RGB; an animated WebP gives its first frame', async () => {
    const source = { r: 30, g: 120, b: 200 };
    const cmyk = await sharp({ create: { width: 8, height: 8, channels: 3, background: source } }).toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer();
    expect((await sharp(cmyk).metadata()).channels).toBe(4);
    const rgb = Array.from((await decodeImage(cmyk)).data.subarray(0, 3));
    // Measured [9, 118, 181]: libvips's CMYK round trip through its default profiles is not exact.
    [source.r, source.g, source.b].forEach((v, c) => expect(Math.abs(rgb[c]! - v)).toBeLessThanOrEqual(21));
    const frame = (r: number, b: number) => sharp({ create: { width: 8, height: 6, channels: 3, background: { r, g: 0, b } } }).png().toBuffer();
    const animated = await sharp([await frame(255, 0), await frame(0, 255)], { join: { animated: true } }).webp({ lossless: true }).toBuffer();
    expect((await sharp(animated).metadata()).pages).toBe(2);
    const first = await decodeImage(animated);
    expect([first.width, first.height, ...first.data.subarray(0, 3)]).toEqual([8, 6, 255, 0, 0]);
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
