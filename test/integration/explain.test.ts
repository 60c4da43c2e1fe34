/**
 * Why the detector said so: provenance, occlusion sensitivity and feature
 * views, through the library, the HTTP routes (held to openapi.yaml) and the
 * CLI.
 */

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoxCoder } from '../../src/core/box-coder.js';
import { boxIou, clipBoxes } from '../../src/core/boxes.js';
import type { AnchorSource, Provenance } from '../../src/core/provenance.js';
import { Detector } from '../../src/detector.js';
import { DetectError } from '../../src/errors.js';
import { buildApp } from '../../src/http/app.js';
import { scanModels } from '../../src/model/registry.js';
import { InferencePool } from '../../src/workers/inference-pool.js';
import { fixturePath } from '../helpers/fixtures.js';
import { contractViolation } from '../helpers/openapi.js';
import { modelsWithFixtures, TINY_FPN } from '../helpers/packages.js';
import { runCli } from '../helpers/processes.js';

const SAMPLE = fixturePath('images', 'shapes-val-000003.png');
const sample = readFileSync(SAMPLE);
const PIPELINES = ['rcnn', 'fast-rcnn', 'faster-rcnn'] as const;

let detector: Detector;
beforeAll(async () => {
  detector = await Detector.load('shapes-vgg', { intraOpThreads: 1, featureLayers: true });
});
afterAll(async () => {
  await detector.close();
});

const iou = (a: readonly number[], b: readonly number[]) => boxIou(Float32Array.from(a), Float32Array.from(b))[0]!;

describe('provenance', () => {
  it('is absent unless asked for, and asking changes no detection', async () => {
    for (const pipeline of PIPELINES) {
      const plain = await detector.detect(sample, { pipeline });
      const traced = await detector.detect(sample, { pipeline, provenance: true });
      expect(plain.detections.some((d) => d.provenance)).toBe(false);
      expect(traced.detections.map(({ provenance: _, ...d }) => d)).toEqual(plain.detections);
      expect(traced.detections.every((d) => d.provenance !== undefined)).toBe(true);
    }
  });

  it('names the source region of each detection: its selective-search strategy and level, or the caller, or its anchor', async () => {
    for (const pipeline of ['rcnn', 'fast-rcnn'] as const) {
      const r = await detector.detect(sample, { pipeline, provenance: true, scoreThreshold: 0.5 });
      expect(r.detections.length).toBeGreaterThan(0);
      for (const d of r.detections) {
        const p = d.provenance!;
        expect(p.source).toMatchObject({ method: 'selective-search', k: expect.any(Number), similarities: expect.stringMatching(/^(C\+)?(T\+)?(S\+)?F?$|^S$/) });
        const s = p.source as Extract<Provenance['source'], { method: 'selective-search' }>;
        expect(['HSV', 'Lab']).toContain(s.colourSpace);
        expect(s.level).toBeGreaterThanOrEqual(0);
        expect(s.level).toBeLessThanOrEqual(s.merges);
        expect(p.rank).toBeLessThan(r.regions);
        expect(iou(p.region, d.box)).toBeGreaterThan(0.3);
      }
    }
    const boxes = [[10, 10, 120, 100], [0, 270, 30, 305]];
    const caller = await detector.detect(sample, { pipeline: 'fast-rcnn', proposals: boxes, provenance: true, scoreThreshold: 0.3 });
    for (const d of caller.detections) {
      expect(d.provenance!.source).toEqual({ method: 'caller', index: d.provenance!.rank });
      expect(d.provenance!.region).toEqual(boxes[d.provenance!.rank]);
    }
  });

  it("Faster R-CNN's anchor and deltas decode to the source region, at every test scale and on flipped passes", async () => {
    const model = detector.model.manifest.pipelines['faster-rcnn']!;
    const coder = new BoxCoder(model.rpn.boxCoder);
    const r = await detector.detect(sample, { pipeline: 'faster-rcnn', provenance: true, scoreThreshold: 0.05 });
    const passes = new Set(r.detections.map((d) => JSON.stringify(d.provenance!.scale)));
    expect(passes.size).toBeGreaterThan(1);
    expect([...passes].some((p) => JSON.parse(p).flip)).toBe(true);
    for (const d of r.detections) {
      const p = d.provenance!;
      const s = p.source as AnchorSource;
      expect(s.method).toBe('rpn');
      expect(s.objectness).toBeGreaterThan(0);
      expect([0.5, 1, 2]).toContain(s.anchor.aspectRatio);
      const decoded = clipBoxes(coder.decode(Float32Array.from(s.deltas), Float32Array.from(s.anchor.box)), r.image.width, r.image.height);
      for (let i = 0; i < 4; i++) expect(decoded[i]).toBeCloseTo(p.region[i]!, 2);
    }
  });

  it('on an FPN model: anchors of several levels, their sizes by level', async () => {
    const fpn = await Detector.load(TINY_FPN, { intraOpThreads: 1 });
    try {
      const r = await fpn.detect(fixturePath('images', 'coffee.png'), { provenance: true, scoreThreshold: 0 });
      const sources = r.detections.map((d) => d.provenance!.source as AnchorSource);
      expect(sources.length).toBeGreaterThan(0);
      const spec = fpn.model.manifest.pipelines['faster-rcnn']!.rpn.anchors;
      if (spec.generator !== 'torchvision') throw new Error('expected torchvision anchors');
      for (const s of sources) expect(spec.sizes[s.anchor.level]).toContain(s.anchor.size);
    } finally {
      await fpn.close();
    }
  });
});

describe('occlusion sensitivity', () => {
  it('re-scores a fixed box as the pipeline scores that region: the baseline is the detect score of the box given as a proposal', async () => {
    const box = [2, 275, 28, 303];
    for (const pipeline of ['rcnn', 'fast-rcnn'] as const) {
      const r = await detector.explain(sample, { pipeline, box: box.join(','), label: 'ring', patch: 128, stride: 128 });
      const scored = await detector.detect(sample, { pipeline, proposals: [box], scoreThreshold: 0 });
      const ring = scored.detections.find((d) => d.label === 'ring')!;
      expect(r.maps[0]!.baseline).toBeCloseTo(ring.score, 4);
      expect(r.maps[0]!.target).toMatchObject({ from: 'caller', label: 'ring' });
    }
  });

  it('for each pipeline: one score per patch, the largest drop where the object is, the cost reported', async () => {
    for (const pipeline of PIPELINES) {
      const r = await detector.explain(sample, { pipeline, top: 2, patch: 32, stride: 32 });
      expect(r.grid).toMatchObject({ patch: 32, stride: 32, columns: 12, rows: 12 });
      expect(r.grid.xs.at(-1)).toBe(r.image.width - 32);
      expect(r.maps).toHaveLength(2);
      for (const m of r.maps) {
        expect(m.scores).toHaveLength(144);
        expect(m.drops[0]).toBeCloseTo(m.baseline - m.scores[0]!, 6);
        expect(m.target.provenance).toBeDefined();
        // The peak patch overlaps the detection's box.
        const [x1, y1, x2, y2] = m.peak.box;
        const [bx1, by1, bx2, by2] = m.target.box;
        expect(Math.min(x2, bx2) > Math.max(x1, bx1) && Math.min(y2, by2) > Math.max(y1, by1)).toBe(true);
        expect(m.peak.drop).toBeGreaterThan(0.2);
      }
      expect(r.cost.ms).toBeGreaterThan(0);
      if (pipeline === 'rcnn') {
        // Only the crops a patch touches run (each beside its mirror image): far fewer than the grid.
        expect(r.cost.passes).toBeLessThan(2 * 2 * 144);
        expect(r.cost.passes % 2).toBe(0);
      } else expect(r.cost.passes).toBe(144);
    }
  });

  it('R-CNN: a patch that does not touch the crop leaves the score exactly as it is', async () => {
    const r = await detector.explain(sample, { pipeline: 'rcnn', box: '2,275,28,303', label: 'ring', patch: 32, stride: 32 });
    const m = r.maps[0]!;
    // The top-left patch is far from the box at the bottom left.
    expect(m.scores[0]).toBe(m.baseline);
    expect(m.drops.filter((d) => d !== 0).length).toBeLessThanOrEqual(r.cost.passes / 2);
  });

  it('refuses, before any pass, what does not fit: the index, the patch, the budget, the selection', async () => {
    const refusal = async (options: Parameters<Detector['explain']>[1]) => {
      const err = await detector.explain(sample, options).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DetectError);
      expect((err as DetectError).code).toBe('INVALID_OPTION');
      return (err as Error).message;
    };
    expect(await refusal({ pipeline: 'fast-rcnn', detection: 500 })).toMatch(/^detection 500 is out of range: the detect run found \d+ detection\(s\); allowed: 0 to \d+$/);
    expect(await refusal({ patch: 400 })).toBe('patch 400 is larger than the 355x370 image; allowed: 2 to 355 (its shorter side)');
    expect(await refusal({ stride: 4, maxPasses: 100 })).toMatch(/7052 positions, 7052 backbone passes for 1 detection\(s\), over the budget maxPasses 100; use stride 3\d or more/);
    expect(await refusal({ maxPasses: 16385 })).toContain('maxPasses is 16385; allowed: an integer from 1 to 16384');
    expect(await refusal({ top: 2, detection: 0 })).toContain('detection and top each choose what to explain');
    expect(await refusal({ box: '1,2,3,4' })).toContain('box and label go together');
    expect(await refusal({ box: '1,2,3', label: 'ring' })).toContain('is not a box');
    expect(await refusal({ box: '1,2,30,40', label: 'rinng' })).toContain('did you mean ring?');
    expect(await refusal({ box: '400,400,500,500', label: 'ring' })).toBe('box "400,400,500,500" lies outside the 355x370 image');
    // A box past the edges is clipped to the image, as the caller's proposals are.
    const clipped = await detector.explain(sample, { pipeline: 'fast-rcnn', box: '-5,-5,1e9,1e9', label: 'ring', patch: 200, stride: 200 });
    expect(clipped.maps[0]!.target.box).toEqual([0, 0, 355, 370]);
  });

  it('a cancellation stops it between batches, and the detector carries on', async () => {
    let checks = 0;
    const signal = { throwIfAborted: () => { if (++checks > 3) throw new Error('cancelled'); } };
    await expect(detector.explain(sample, { pipeline: 'faster-rcnn', scales: 'single', box: '2,275,28,303', label: 'ring', signal })).rejects.toThrow('cancelled');
    expect(checks).toBe(4);
    expect((await detector.explain(sample, { pipeline: 'faster-rcnn', box: '2,275,28,303', label: 'ring', patch: 128, stride: 128 })).maps).toHaveLength(1);
  });

  it('runs the backbone one image at a time where the graph fixes its batch axis (a torchvision export)', async () => {
    const fpn = await Detector.load(TINY_FPN, { intraOpThreads: 1 });
    try {
      const r = await fpn.explain(fixturePath('images', 'coffee.png'), { box: '100,100,300,300', label: fpn.classes[1]!, patch: 200, stride: 200 });
      expect(r.cost.batches).toBe(r.cost.passes);
      expect(r.maps[0]!.scores).toHaveLength(r.grid.columns * r.grid.rows);
    } finally {
      await fpn.close();
    }
  });
});

describe('feature views', () => {
  it("a layer's strongest channels, at its resolution over the image, strongest first", async () => {
    const layers = detector.model.features!.layers;
    expect(layers.map((l) => l.op)).toEqual(['Relu', 'MaxPool', 'Relu', 'Relu', 'MaxPool', 'Relu', 'Relu', 'Relu', 'Relu']);
    const r = await detector.features(sample, { layer: layers[0]!.name, channels: 3 });
    // 355x370 resized to 512x534, padded to 512x544; the first layer has stride 2.
    expect(r.shape).toEqual([24, 267, 256]);
    expect(r.channels).toHaveLength(3);
    expect(r.channels[0]!.max).toBeGreaterThanOrEqual(r.channels[1]!.max);
    expect(r.channels[0]!.map).toHaveLength(267 * 256);
    expect(Math.max(...r.channels[0]!.map)).toBe(r.channels[0]!.max);
  });

  it('refuses a layer the backbone does not have, naming those it has; off, says so', async () => {
    const err = (await detector.features(sample, { layer: 'conv9' }).catch((e: unknown) => e)) as DetectError;
    expect(err.code).toBe('INVALID_OPTION');
    expect(err.message).toContain('allowed: /backbone/trunk/body/body.2/Relu, /backbone/trunk/body/body.3/MaxPool');
    const plain = await Detector.load('shapes-vgg', { intraOpThreads: 1 });
    try {
      expect(() => plain.filters()).toThrow(expect.objectContaining({ code: 'FEATURE_VIEWS_OFF' }));
    } finally {
      await plain.close();
    }
  });

  it('the first filters are the fp32 weights of the first convolution', () => {
    const f = detector.filters();
    expect(f.dims).toEqual([24, 3, 3, 3]);
    expect(f.channelOrder).toBe('RGB');
    expect(f.data.some((v) => v !== 0)).toBe(true);
  });
});

describe('the routes', () => {
  let app: FastifyInstance;
  let pool: InferencePool;
  const sent: { method: string; url: string; status: number; type: string; body: string }[] = [];
  beforeAll(async () => {
    pool = new InferencePool({ workers: 1, maxQueue: 8 });
    const settings = { device: 'cpu' as const, intraOpThreads: 1, limits: { maxBytes: 5 * 1024 * 1024, maxPixels: 4_000_000 }, featureLayers: true };
    app = await buildApp({ registry: await scanModels(modelsWithFixtures()), pool, settings, maxBodyBytes: 5 * 1024 * 1024, ready: () => true });
    app.addHook('onSend', async (request, reply, payload) => {
      sent.push({ method: request.method, url: request.url, status: reply.statusCode, type: String(reply.getHeader('content-type') ?? ''), body: String(payload) });
      return payload;
    });
  });
  afterAll(async () => {
    await app.close();
    await pool.close();
  });
  const post = (url: string) => app.inject({ method: 'POST', url, headers: { 'content-type': 'image/png' }, payload: sample });

  it('POST /v1/explain: the maps as JSON, or the first drawn over the image', async () => {
    const res = await post('/v1/explain?pipeline=fast-rcnn&top=1&patch=64&stride=64');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.maps).toHaveLength(1);
    expect(body.detections[0].provenance.source.method).toBe('selective-search');
    const png = await post('/v1/explain?pipeline=fast-rcnn&patch=64&stride=64&heatmap=true');
    expect(png.headers['content-type']).toBe('image/png');
    expect(await sharp(png.rawPayload).metadata()).toMatchObject({ width: 355, height: 370 });
  });

  it('POST /v1/explain: 400 with what is allowed', async () => {
    const cases: [string, string][] = [
      ['detection=9999', 'out of range'],
      ['patch=1000', 'larger than the 355x370 image'],
      ['stride=2', 'over the budget maxPasses 1024'],
      ['maxPasses=99999', 'allowed'],
      ['box=1,2,3,4&label=nothing', 'is not a class of model shapes-vgg'],
      ['heatmap=true&scoreThreshold=1', 'found none above scoreThreshold 1'],
    ];
    for (const [query, text] of cases) {
      const res = await post(`/v1/explain?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect(res.json(), query).toMatchObject({ code: 'INVALID_OPTION', message: expect.stringContaining(text) });
    }
  });

  it('POST /v1/features: PNG tiles of the strongest channels, or arrays; an unknown layer is a 400 listing the layers', async () => {
    const model = (await app.inject({ method: 'GET', url: '/v1/models/shapes-vgg' })).json();
    expect(model.featureLayers.map((l: { type: string }) => l.type)).toEqual(['Relu', 'MaxPool', 'Relu', 'Relu', 'MaxPool', 'Relu', 'Relu', 'Relu', 'Relu']);
    const layer = encodeURIComponent(model.featureLayers[4].name);
    const tiles = await post(`/v1/features?layer=${layer}&channels=4`);
    expect(tiles.statusCode).toBe(200);
    expect(tiles.headers['content-type']).toBe('image/png');
    expect(String(tiles.headers['x-channels']).split(',')).toHaveLength(4);
    const arrays = await post(`/v1/features?layer=${layer}&channels=2&arrays=true`);
    expect(arrays.json()).toMatchObject({ layer: { op: 'MaxPool' }, shape: [48, 67, 64] });
    const bad = await post('/v1/features?layer=fc9');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain('/backbone/trunk/body/body.22/Relu');
    expect((await post('/v1/features')).statusCode).toBe(400);
  });

  it('GET /v1/models/{name}/filters: the first filters as a picture', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/models/shapes-vgg/filters' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-filters']).toBe('24x3x3x3');
    expect((await sharp(res.rawPayload).metadata()).format).toBe('png');
    expect((await app.inject({ method: 'GET', url: '/v1/models/nope/filters' })).statusCode).toBe(404);
  });

  it('POST /v1/detect?provenance=true carries it', async () => {
    const res = await post('/v1/detect?provenance=true');
    expect(res.json().detections[0].provenance.source.method).toBe('rpn');
  });

  it('every response served here conforms to openapi.yaml', () => {
    const violations = sent.map((r) => contractViolation(r.method, r.url, r.status, r.type, r.body)).filter((v) => v !== undefined);
    expect(violations).toEqual([]);
    const seen = new Set(sent.map((r) => `${r.method} ${r.url.split('?')[0]}`));
    for (const op of ['POST /v1/explain', 'POST /v1/features', 'GET /v1/models/shapes-vgg/filters']) expect(seen.has(op)).toBe(true);
  });
});

describe('rcnn-serve explain', () => {
  it('writes the heat map and the JSON; a bad option is a coded error', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'explain-')), 'map.png');
    const run = await runCli(['explain', SAMPLE, '--pipeline', 'fast-rcnn', '--patch', '64', '--stride', '64', '--threads', '1', '--out', out, '--json']).done;
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.maps[0].scores).toHaveLength(result.grid.columns * result.grid.rows);
    expect(await sharp(out).metadata()).toMatchObject({ width: 355, height: 370, format: 'png' });
    const bad = await runCli(['explain', SAMPLE, '--patch', '999']).done;
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('error: INVALID_OPTION: patch 999 is larger');
  });
});
