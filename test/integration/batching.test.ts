/**
 * Batching across concurrent requests (src/runtime/batching.ts) on the
 * shipped package: graph inputs freed from a batch of 1, a detector whose
 * concurrent detections share graph runs, and the worker pool taking several
 * requests per worker. Batched or not, every detection is the same.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DECODE_LIMITS } from '../../src/image/decode.js';
import { Detector, type DetectionResult } from '../../src/detector.js';
import { SHIPPED_MODELS_DIR } from '../../src/model/package.js';
import { readValueInfo } from '../../src/onnx/graph.js';
import { freeBatchAxis, readModel, writeModel } from '../../src/onnx/model.js';
import { openGraph } from '../../src/runtime/session.js';
import { InferencePool } from '../../src/workers/inference-pool.js';
import { fixturePath } from '../helpers/fixtures.js';

const IMAGES = ['shapes-val-000003.png', 'shapes-val-000011.png', 'shapes-val-000003.png', 'shapes.png'].map((f) => readFileSync(fixturePath('images', f)));
let plain: Detector;
const sequential = new Map<string, DetectionResult[]>();

beforeAll(async () => {
  plain = await Detector.load('shapes-vgg', { intraOpThreads: 1 });
  for (const pipeline of ['fast-rcnn', 'faster-rcnn'] as const) {
    const results: DetectionResult[] = [];
    for (const image of IMAGES) results.push(await plain.detect(image, { pipeline }));
    sequential.set(pipeline, results);
  }
}, 120_000);

afterAll(() => plain.close());

describe('batching across requests', () => {
  it('frees an input fixed at one image, so that two images run at once, each as it runs alone', async () => {
    const file = join(SHIPPED_MODELS_DIR, 'shapes-vgg', 'rpn_head.onnx');
    const model = readModel(readFileSync(file));
    expect(readValueInfo(model.inputs[0]!.encoded).dims).toEqual([1, 'h', 'w', 128]);
    const freed = freeBatchAxis(model);
    expect(readValueInfo(freed.inputs[0]!.encoded)).toMatchObject({ dims: ['batch', 'h', 'w', 128], elementType: 1 });
    const fixed = await openGraph(file, { device: 'cpu', intraOpThreads: 1 });
    const free = await openGraph({ path: file, bytes: writeModel(freed) }, { device: 'cpu', intraOpThreads: 1 });
    try {
      const name = fixed.inputNames[0]!;
      const one = (seed: number) => Float32Array.from({ length: 20 * 30 * 128 }, (_, i) => Math.sin(i * 0.01 + seed));
      const two = new Float32Array(2 * 20 * 30 * 128);
      two.set(one(1));
      two.set(one(2), one(1).length);
      await expect(fixed.run({ [name]: { data: two, dims: [2, 20, 30, 128] } })).rejects.toMatchObject({ code: 'INFERENCE_FAILED' });
      const both = await free.run({ [name]: { data: two, dims: [2, 20, 30, 128] } });
      for (const [k, seed] of [[0, 1], [1, 2]] as const) {
        const alone = await fixed.run({ [name]: { data: one(seed), dims: [1, 20, 30, 128] } });
        for (const [output, t] of Object.entries(alone)) {
          const rows = both[output]!;
          const size = t.data.length;
          expect(Buffer.from(rows.data.buffer, rows.data.byteOffset + k * size * 4, size * 4).equals(Buffer.from(t.data.buffer, t.data.byteOffset, size * 4)), output).toBe(true);
        }
      }
    } finally {
      await Promise.all([fixed.release(), free.release()]);
    }
  });

  it('runs concurrent detections through shared graph runs, every detection as it is alone', async () => {
    const batched = await Detector.load('shapes-vgg', { intraOpThreads: 1, maxBatch: 4 });
    try {
      for (const pipeline of ['fast-rcnn', 'faster-rcnn'] as const) {
        const results = await Promise.all(IMAGES.map((image) => batched.detect(image, { pipeline })));
        results.forEach((r, k) => expect(r.detections, `${pipeline} image ${k}`).toEqual(sequential.get(pipeline)![k]!.detections));
      }
      const stats = Object.fromEntries([...batched.model.graphs].map(([file, g]) => [file, (g as unknown as { stats: { largest: number } }).stats]));
      expect(stats['backbone.onnx']!.largest).toBeGreaterThan(1); // two of the images have the same padded size
      expect(stats['box_head.onnx']!.largest).toBeGreaterThan(1);
      expect(stats['fast_rcnn_head.onnx']!.largest).toBeGreaterThan(1);
    } finally {
      await batched.close();
    }
    await expect(Detector.load('shapes-vgg', { maxBatch: 65 })).rejects.toMatchObject({ code: 'INVALID_OPTION', message: expect.stringContaining('maxBatch') });
  }, 120_000);

  it('takes several requests per worker in the pool (their graphs batched there), every detection as it is alone', async () => {
    const pool = new InferencePool({ workers: 1, maxQueue: 16, tasksPerWorker: 4 });
    try {
      const settings = { device: 'cpu' as const, intraOpThreads: 1, limits: DEFAULT_DECODE_LIMITS, maxBatch: 4 };
      const modelDir = join(SHIPPED_MODELS_DIR, 'shapes-vgg');
      const results = await Promise.all(IMAGES.map((bytes) => pool.detect({ modelDir, bytes, options: { pipeline: 'faster-rcnn' }, settings })));
      results.forEach((r, k) => expect(r.detections).toEqual(sequential.get('faster-rcnn')![k]!.detections));
    } finally {
      await pool.close();
    }
  }, 120_000);
});
