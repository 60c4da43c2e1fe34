import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Detector, PIPELINES } from '../../src/detector.js';
import { fixturePath, loadFixture } from '../helpers/fixtures.js';
import { matchedFraction } from '../helpers/parity.js';

// test/fixtures/make_pipeline_parity_fixtures.py: torch on the weights the package was exported from.
const ref = loadFixture('parity', 'shapes-vgg-pipelines.json');

/** Both sides non-empty and every detection matched by the other side's (same class, IoU >= 0.99, |score diff| <= 1e-3). */
function expectMatched(want: any[], ours: any[]): void {
  expect(want.length).toBeGreaterThan(0);
  expect(matchedFraction(want, ours)).toBeGreaterThanOrEqual(0.99);
  expect(matchedFraction(ours, want)).toBeGreaterThanOrEqual(0.99);
}

describe('the default package against torch, pipeline by pipeline (same weights, same regions)', () => {
  let detector: Detector;
  beforeAll(async () => {
    detector = await Detector.load('shapes-vgg', { intraOpThreads: 1 });
  });
  afterAll(() => detector.close());

  for (const c of ref.cases as any[]) {
    for (const pipeline of PIPELINES) {
      it(`${pipeline} on ${c.image}: every detection matched both ways (same class, IoU >= 0.99, |score diff| <= 1e-3)`, async () => {
        const want = c.pipelines[pipeline];
        const ours = await detector.detect(fixturePath('images', c.image), { pipeline, proposals: pipeline === 'faster-rcnn' ? undefined : c.proposals });
        if (want.regions !== null) expect(ours.regions).toBe(want.regions);
        expectMatched(want.detections, ours.detections);
      });
    }
    it(`faster-rcnn at one scale (scales=single) on ${c.image}: every detection matched both ways`, async () => {
      const ours = await detector.detect(fixturePath('images', c.image), { pipeline: 'faster-rcnn', scales: 'single' });
      expectMatched(c.fasterRcnnSingleScale.detections, ours.detections);
    });
  }
});
