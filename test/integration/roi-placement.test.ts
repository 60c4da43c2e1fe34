/**
 * roiPlacement 'graph': the RoI op inside a graph (ONNX's RoiAlign for Faster
 * R-CNN, MaxRoiPool for Fast R-CNN, both in the head; R-CNN's warp, a
 * RoiAlign, and its mirror images in the backbone) instead of TypeScript on
 * the host. On the FPN parity fixture (four levels) and the shipped
 * package (one), in fp32 and in int8, the detections are the host
 * placement's within the parity tests' tolerances.
 */

import { afterAll, describe, expect, it } from 'vitest';
import { Detector } from '../../src/detector.js';
import { fixturePath } from '../helpers/fixtures.js';
import { TINY_FPN } from '../helpers/packages.js';
import { matchedFraction } from '../helpers/parity.js';

const IMAGES = ['shapes.png', 'shapes-val-000011.png', 'shapes-val-000003.png'];
const SHAPES_VGG = ['faster-rcnn', 'fast-rcnn', 'rcnn'];
const cases = [
  { name: 'Faster R-CNN, fixture-tiny-fpn (four levels)', model: TINY_FPN, precision: 'fp32', pipeline: 'faster-rcnn', rewritten: ['faster-rcnn'] },
  { name: 'Faster R-CNN, shapes-vgg (one level)', model: 'shapes-vgg', precision: 'fp32', pipeline: 'faster-rcnn', rewritten: SHAPES_VGG },
  { name: 'Faster R-CNN, shapes-vgg in int8, built at load', model: 'shapes-vgg', precision: 'int8', pipeline: 'faster-rcnn', rewritten: SHAPES_VGG },
  { name: 'Fast R-CNN (RoI max pooling), shapes-vgg', model: 'shapes-vgg', precision: 'fp32', pipeline: 'fast-rcnn', rewritten: SHAPES_VGG },
  { name: "R-CNN (the crops' warp and mirror images), shapes-vgg", model: 'shapes-vgg', precision: 'fp32', pipeline: 'rcnn', rewritten: SHAPES_VGG },
] as const;
const detectors: Detector[] = [];

afterAll(() => Promise.all(detectors.map((d) => d.close())));

describe('RoIAlign placed in the box head graph', () => {
  for (const c of cases) {
    it(`${c.name}: the same detections as the RoI op on the host`, async () => {
      const host = await Detector.load(c.model, { intraOpThreads: 1 });
      const graph = await Detector.load(c.model, { intraOpThreads: 1, roiPlacement: 'graph' });
      detectors.push(host, graph);
      expect([...graph.model.roiGraphs.keys()]).toEqual(c.rewritten);
      expect(host.model.roiGraphs.size).toBe(0);
      for (const image of IMAGES) {
        const a = await host.detect(fixturePath('images', image), { pipeline: c.pipeline, precision: c.precision });
        const b = await graph.detect(fixturePath('images', image), { pipeline: c.pipeline, precision: c.precision });
        expect(a.detections.length, image).toBeGreaterThan(0);
        expect(b.timings.roi ?? b.timings.warp).toBeUndefined(); // inside a graph
        expect(matchedFraction(a.detections, b.detections), image).toBeGreaterThanOrEqual(0.99);
        expect(matchedFraction(b.detections, a.detections), image).toBeGreaterThanOrEqual(0.99);
      }
    }, 120_000);
  }

  it('is refused when it is not host or graph', async () => {
    await expect(Detector.load('shapes-vgg', { roiPlacement: 'gpu' as 'graph' })).rejects.toMatchObject({ code: 'INVALID_OPTION', message: expect.stringContaining('roiPlacement') });
  });
});
