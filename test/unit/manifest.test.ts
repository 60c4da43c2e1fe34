/**
 * model.json's validation (src/model/manifest.ts over the TypeBox schema of
 * manifest-schema.ts): each problem named with its field, its value and what
 * is allowed; the anchor generators' union answers for the generator given.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/model/manifest.js';
import { fixturePath } from '../helpers/fixtures.js';
import { TINY_FPN } from '../helpers/packages.js';

const shipped = JSON.parse(readFileSync(fixturePath('..', '..', 'models', 'shapes-vgg', 'model.json'), 'utf8'));

function problems(edit: (m: any) => void): string {
  const m = structuredClone(shipped);
  edit(m);
  try {
    parseManifest(m, 'model.json');
  } catch (err) {
    expect((err as { code: string }).code).toBe('INVALID_MODEL');
    return (err as Error).message;
  }
  return expect.unreachable('accepted');
}

describe('model.json validation', () => {
  it('accepts the shipped package and the test one as they are', () => {
    for (const dir of [fixturePath('..', '..', 'models', 'shapes-vgg'), TINY_FPN]) {
      const doc = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
      expect(parseManifest(doc, doc.name).name).toBe(doc.name);
    }
  });

  it('names the field, the value and what is allowed', () => {
    expect(problems((m) => (m.pipelines['faster-rcnn'].boxCoder.pixelOffset = 2))).toBe('model.json: pipelines.faster-rcnn.boxCoder.pixelOffset is 2; allowed: 0, 1');
    expect(problems((m) => (m.pipelines['faster-rcnn'].boxCoder.weights = [1, 1, 1]))).toBe('model.json: pipelines.faster-rcnn.boxCoder.weights must NOT have fewer than 4 items (got [1,1,1])');
    expect(problems((m) => (m.pipelines.rcnn.proposals.mode = 'turbo'))).toBe('model.json: pipelines.rcnn.proposals.mode is "turbo"; allowed: "single", "fast", "quality", "opencv-fast", "opencv-quality"');
    expect(problems((m) => (m.input.mean = [1, 2]))).toBe('model.json: input.mean must NOT have fewer than 3 items (got [1,2])');
    expect(problems((m) => (m.extra = 1))).toBe('model.json: extra is not a known field');
    expect(problems((m) => delete m.pipelines['faster-rcnn'].rpn.preNmsTopN)).toBe('model.json: pipelines.faster-rcnn.rpn.preNmsTopN is missing');
  });

  it("answers an anchor spec for its own generator, not with the other generator's fields", () => {
    const anchors = (edit: (a: any) => void) => problems((m) => edit(m.pipelines['faster-rcnn'].rpn.anchors));
    expect(anchors((a) => (a.generator = 'detectron'))).toBe('model.json: pipelines.faster-rcnn.rpn.anchors.generator is "detectron"; allowed: "torchvision", "py-faster-rcnn"');
    expect(anchors((a) => (a.extra = 1))).toBe('model.json: pipelines.faster-rcnn.rpn.anchors.extra is not a known field');
    expect(anchors((a) => (a.sizes = []))).toBe('model.json: pipelines.faster-rcnn.rpn.anchors.sizes must NOT have fewer than 1 items (got [])');
  });

  it('holds the precision fields to the package: int8 needs its quantization, fp16 has none, ranges name real graphs and run low to high', () => {
    expect(problems((m) => {
      m.precision = 'int8';
      delete m.quantization;
    })).toBe('model.json: precision is int8 but quantization (how the graphs were quantized) is missing');
    expect(problems((m) => (m.precision = 'int4'))).toBe('model.json: precision is "int4"; allowed: "fp32", "fp16", "int8"');
    expect(problems((m) => (m.precision = 'fp16'))).toBe('model.json: precision is fp16 but quantization (int8 ranges, which apply to fp32 graphs) is present');
    expect(problems((m) => (m.quantization.graphs['other.onnx'] = m.quantization.graphs['backbone.onnx']))).toMatch(/^model\.json: quantization\.graphs names "other\.onnx", which is not a graph of this package \(backbone\.onnx, /);
    expect(problems((m) => (m.quantization.graphs['backbone.onnx'].ranges.image = [1, -1]))).toBe('model.json: quantization.graphs.backbone.onnx.ranges.image is [1, -1]; the minimum must not exceed the maximum');
    expect(problems((m) => (m.quantization.calibration.method = 'mse'))).toBe('model.json: quantization.calibration.method is "mse"; allowed: "minmax", "percentile", "entropy"');
  });
});
