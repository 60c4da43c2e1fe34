import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Detector } from '../../src/detector.js';
import { fixturePath, loadFixture } from '../helpers/fixtures.js';
import { matchedFraction } from '../helpers/parity.js';
import { TINY_FPN } from '../helpers/packages.js';

const ref = loadFixture('parity', 'fixture-tiny-fpn.json');

describe('Faster R-CNN parity with torchvision on identical weights (fixture-tiny-fpn)', () => {
  let detector: Detector;
  beforeAll(async () => {
    detector = await Detector.load(TINY_FPN, { intraOpThreads: 1 });
  });
  afterAll(() => detector.close());

  for (const r of ref.results as any[]) {
    it(`${r.image}: >= 99% of detections matched both ways (same class, IoU >= 0.99, |score diff| <= 1e-3)`, async () => {
      const ours = await detector.detect(fixturePath('images', r.image));
      expect(ours.image).toEqual({ width: r.width, height: r.height });
      expect(r.detections.length).toBeGreaterThan(0);
      const forward = matchedFraction(r.detections, ours.detections);
      const backward = matchedFraction(ours.detections, r.detections);
      expect(forward).toBeGreaterThanOrEqual(0.99);
      expect(backward).toBeGreaterThanOrEqual(0.99);
    });
  }
});
