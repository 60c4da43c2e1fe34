import sharp from 'sharp';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MODEL, DetectError, Detector } from '../../src/index.js';
import { fixturePath } from '../helpers/fixtures.js';

// No CUDA device is visible to this file's process (read when CUDA first starts), so that on any host,
// with a CUDA provider or without, a cuda request meets the fallback.
process.env.CUDA_VISIBLE_DEVICES = '';

describe('library API', () => {
  it('load, detect on bytes and on a path (same detections), close', async () => {
    const detector = await Detector.load(DEFAULT_MODEL, { intraOpThreads: 1 });
    expect(detector.name).toBe('shapes-vgg');
    expect(detector.classes).toEqual(['__background__', 'circle', 'square', 'triangle', 'star', 'cross', 'hexagon', 'ring', 'crescent']);
    expect(detector.pipelines).toEqual(['rcnn', 'fast-rcnn', 'faster-rcnn']);
    const path = fixturePath('images', 'shapes.png');
    const fromPath = await detector.detect(path, { scoreThreshold: 0.2 });
    const fromBytes = await detector.detect(new Uint8Array(readFileSync(path)), { scoreThreshold: 0.2 });
    expect(fromBytes.detections).toEqual(fromPath.detections);
    expect(fromPath.detections.length).toBeGreaterThan(0);
    const all = await detector.detect(path, { scoreThreshold: 0.05 });
    expect(all.detections.length).toBeGreaterThan(fromPath.detections.length);
    expect(fromPath.detections).toEqual(all.detections.filter((d) => d.score >= 0.2));
    await detector.close();
  });

  it('errors are DetectErrors with a stable code', async () => {
    const detector = await Detector.load(DEFAULT_MODEL, { intraOpThreads: 1 });
    const err = await detector.detect(new Uint8Array(0)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DetectError);
    expect((err as DetectError).code).toBe('EMPTY_IMAGE');
    await expect(detector.detect(new Uint8Array(readFileSync(fixturePath('images', 'shapes.png'))), { maxDetections: 0 })).rejects.toThrow(
      'maxDetections is 0; allowed: an integer from 1 to 10000',
    );
    await detector.close();
  });

  it('a device that cannot be used: the CPU with one warning per load, or DEVICE_UNAVAILABLE when the fallback is refused', async () => {
    const warnings: string[] = [];
    const fallback = await Detector.load(DEFAULT_MODEL, { device: 'cuda', intraOpThreads: 1, onWarning: (w) => warnings.push(w) });
    await fallback.close();
    expect(warnings).toHaveLength(1); // the first graph fails over; the others open on the CPU directly
    expect(warnings[0]).toMatch(/^CUDA execution provider unavailable \(.*\); running on the CPU\. /);
    await expect(Detector.load(DEFAULT_MODEL, { device: 'cuda', deviceFallback: 'error' })).rejects.toMatchObject({
      code: 'DEVICE_UNAVAILABLE',
      message: expect.stringMatching(/^CUDA execution provider unavailable \(.*\); the CPU fallback is refused \(device fallback: error\)\. /),
    });
  });

  it('EXIF: boxes are in the upright frame the image is seen in', async () => {
    const detector = await Detector.load(DEFAULT_MODEL, { intraOpThreads: 1 });
    const jpeg = readFileSync(fixturePath('images', 'chelsea-exif6.jpg'));
    const r = await detector.detect(new Uint8Array(jpeg));
    expect(r.image).toEqual({ width: 226, height: 150 });
    expect(r.detections.length).toBeGreaterThan(0);
    // The same pixels, turned upright by sharp's explicit rotation and stored without an orientation tag.
    const upright = await sharp(jpeg).rotate(90).png().toBuffer();
    expect((await detector.detect(new Uint8Array(upright))).detections).toEqual(r.detections);
    await detector.close();
  });
});
