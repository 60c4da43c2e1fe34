import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.js';
import { SHIPPED_MODELS_DIR } from '../../src/model/package.js';
import { scanModels } from '../../src/model/registry.js';
import { InferencePool } from '../../src/workers/inference-pool.js';
import { fixturePath } from '../helpers/fixtures.js';
import { pngClaiming } from '../helpers/images.js';
import { contractViolation } from '../helpers/openapi.js';
import { modelsWithFixtures } from '../helpers/packages.js';

const png = readFileSync(fixturePath('images', 'shapes.png'));
let app: FastifyInstance;
let pool: InferencePool;
let ready = true;

beforeAll(async () => {
  pool = new InferencePool({ workers: 1, maxQueue: 8 });
  // Selective search's own pixel limit under the images': shapes.png (480 x 360) passes it.
  const settings = { device: 'cpu' as const, intraOpThreads: 1, limits: { maxBytes: 5 * 1024 * 1024, maxPixels: 4_000_000 }, proposalMaxPixels: 200_000 };
  app = await buildApp({ registry: await scanModels(modelsWithFixtures()), pool, settings, maxBodyBytes: 5 * 1024 * 1024, ready: () => ready });
  // Record every response the app sends, for the contract check at the end.
  app.addHook('onSend', async (request, reply, payload) => {
    sent.push({ method: request.method, url: request.url, status: reply.statusCode, type: String(reply.getHeader('content-type') ?? ''), body: String(payload) });
    return payload;
  });
});
const sent: { method: string; url: string; status: number; type: string; body: string }[] = [];
afterAll(async () => {
  await app.close();
  await pool.close();
});

/** A PNG of one grey. */
const flatPng = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: { r: 127, g: 127, b: 127 } } }).png().toBuffer();

const detect = (payload: Buffer | Uint8Array, type = 'image/png', query = '') =>
  app.inject({ method: 'POST', url: `/v1/detect${query}`, headers: { 'content-type': type }, payload: Buffer.from(payload) });

/** Parts with a filename are files; without, text fields. */
function multipartBody(parts: { name: string; filename?: string; type?: string; data: Buffer }[]): { body: Buffer; type: string } {
  const boundary = '----rcnnserve';
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const head = p.filename === undefined ? `name="${p.name}"\r\n` : `name="${p.name}"; filename="${p.filename}"\r\nContent-Type: ${p.type}\r\n`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; ${head}\r\n`), p.data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

describe('POST /v1/detect', () => {
  it('fast-rcnn and rcnn score the regions of a multipart "proposals" field; bad JSON is a 400', async () => {
    const sample = readFileSync(fixturePath('images', 'shapes-val-000003.png'));
    const boxes = [[10, 10, 120, 100], [200, 40, 300, 160]];
    for (const pipeline of ['fast-rcnn', 'rcnn']) {
      const { body, type } = multipartBody([
        { name: 'image', filename: 'a.png', type: 'image/png', data: sample },
        { name: 'proposals', data: Buffer.from(JSON.stringify(boxes)) },
      ]);
      const res = await app.inject({ method: 'POST', url: `/v1/detect?pipeline=${pipeline}`, headers: { 'content-type': type }, payload: body });
      expect(res.statusCode).toBe(200);
      expect(res.json().results[0]).toMatchObject({ model: 'shapes-vgg', pipeline, regions: 2 });
    }
    const { body, type } = multipartBody([
      { name: 'image', filename: 'a.png', type: 'image/png', data: sample },
      { name: 'proposals', data: Buffer.from('[[1, 2') },
    ]);
    const res = await app.inject({ method: 'POST', url: '/v1/detect?pipeline=fast-rcnn', headers: { 'content-type': type }, payload: body });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('INVALID_OPTION');
  });

  it("mode sets selective search for rcnn and fast-rcnn and is refused for faster-rcnn; maxProposals caps every pipeline's regions", async () => {
    const sample = readFileSync(fixturePath('images', 'shapes-val-000003.png'));
    const res = await detect(sample, 'image/png', '?pipeline=fast-rcnn&mode=single&maxProposals=25');
    expect(res.statusCode).toBe(200);
    expect(res.json().regions).toBe(25);
    const rpn = await detect(sample, 'image/png', '?pipeline=faster-rcnn&scales=single&maxProposals=25');
    expect(rpn.statusCode).toBe(200);
    expect(rpn.json().regions).toBe(25); // the RPN keeps 25 after its NMS instead of the model's rpn.postNmsTopN (300)
    expect((await detect(sample, 'image/png', '?pipeline=faster-rcnn&scales=single')).json().regions).toBeGreaterThan(25);
    const refused = await detect(sample, 'image/png', '?pipeline=faster-rcnn&mode=single');
    expect(refused.statusCode).toBe(400);
    expect(refused.json().message).toBe('mode is an rcnn, fast-rcnn option; faster-rcnn proposes with its RPN');
    expect((await detect(sample, 'image/png', '?pipeline=rcnn&mode=edge-boxes')).statusCode).toBe(400);
  });

  it("scales picks faster-rcnn's test scales or its one input size; unknown values and other pipelines are a 400", async () => {
    const sample = readFileSync(fixturePath('images', 'shapes-val-000003.png'));
    const multi = await detect(sample, 'image/png', '?scales=multi');
    const single = await detect(sample, 'image/png', '?scales=single');
    expect([multi.statusCode, single.statusCode]).toEqual([200, 200]);
    expect(multi.json().regions).toBeGreaterThan(single.json().regions);
    expect(multi.json().timings.merge).toBeGreaterThanOrEqual(0);
    expect((await detect(sample, 'image/png', '?scales=many')).json().code).toBe('INVALID_OPTION');
    const refused = await detect(sample, 'image/png', '?pipeline=rcnn&scales=single');
    expect(refused.statusCode).toBe(400);
    expect(refused.json().message).toContain('scales is a faster-rcnn option');
    const render = await app.inject({ method: 'POST', url: '/v1/render?pipeline=fast-rcnn&scales=single', headers: { 'content-type': 'image/png' }, payload: sample });
    expect(render.statusCode).toBe(400);
  });

  it('a raw PNG body returns the CLI\'s result shape', async () => {
    const res = await detect(png, 'image/png', '?model=fixture-tiny-fpn&scoreThreshold=0.3');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ model: 'fixture-tiny-fpn', pipeline: 'faster-rcnn', image: { width: 480, height: 360 } });
    expect(body.detections.length).toBeGreaterThan(0);
    const all = (await detect(png, 'image/png', '?model=fixture-tiny-fpn&scoreThreshold=0.05')).json().detections;
    expect(all.some((d: { score: number }) => d.score <= 0.3)).toBe(true); // so that the threshold has something to remove
    expect(body.detections).toEqual(all.filter((d: { score: number }) => d.score >= 0.3));
    expect(body.timings.total).toBeGreaterThan(0);
  });

  it('the default threshold is the display one, 0.5; the model says its own evaluation threshold', async () => {
    const shown = (await detect(png)).json().detections as { score: number }[];
    const all = (await detect(png, 'image/png', '?scoreThreshold=0.05')).json().detections as { score: number }[];
    expect(all.some((d) => d.score <= 0.5)).toBe(true); // so that the default has something to remove
    expect(shown).toEqual(all.filter((d) => d.score > 0.5));
    const model = (await app.inject({ method: 'GET', url: '/v1/models/shapes-vgg' })).json();
    expect(model.postprocess['faster-rcnn']).toEqual({ scoreThreshold: 0.05, nmsThreshold: 0.5, detectionsPerImage: 100 });
  });

  it('boxFormat, normalized and classes shape the boxes', async () => {
    const base = (await detect(png)).json().detections as { box: number[]; label: string; score: number }[];
    const labels = new Set(base.map((d) => d.label));
    expect(labels.size).toBeGreaterThan(1); // so that a class filter has something to remove
    const xywh = (await detect(png, 'image/png', '?boxFormat=xywh&normalized=true')).json().detections as typeof base;
    expect(xywh.length).toBe(base.length);
    xywh.forEach((d, i) => {
      const [x1, y1, x2, y2] = base[i]!.box as [number, number, number, number];
      [x1 / 480, y1 / 360, (x2 - x1) / 480, (y2 - y1) / 360].forEach((v, k) => expect(d.box[k]).toBeCloseTo(v, 5));
    });
    const label = base[0]!.label;
    const only = (await detect(png, 'image/png', `?classes=${label}`)).json().detections;
    expect(only.length).toBeGreaterThan(0);
    expect(only).toEqual(base.filter((d) => d.label === label));
  });

  it('an unknown model name gets the nearest one and the list', async () => {
    const res = await detect(png, 'image/png', '?model=shapes-vg');
    expect(res.statusCode).toBe(404);
    expect(res.json().message).toBe('no model "shapes-vg"; did you mean shapes-vgg?; available: shapes-vgg, fixture-tiny-fpn');
  });

  it('a bad query names the option, the value and what is allowed, in the library\'s words; an unknown one the nearest', async () => {
    const message = async (query: string) => {
      const res = await detect(png, 'image/png', query);
      expect(res.statusCode, query).toBe(400);
      expect(res.json().code).toBe('INVALID_OPTION');
      return res.json().message as string;
    };
    expect(await message('?scoreThreshold=7')).toBe('scoreThreshold is 7; allowed: a number from 0 to 1');
    expect(await message('?scoreThreshold=high')).toBe('scoreThreshold is "high"; allowed: a number from 0 to 1');
    expect(await message('?maxDetections=2.5')).toBe('maxDetections is 2.5; allowed: an integer from 1 to 10000');
    expect(await message('?mode=turbo')).toBe('mode "turbo" is unknown; allowed: single, fast, quality, opencv-fast, opencv-quality');
    expect(await message('?boxFormat=xxyy')).toBe('boxFormat "xxyy" is unknown; allowed: xyxy, xywh, cxcywh');
    expect(await message('?scorethreshold=0.5')).toBe(
      'scorethreshold is not an option of /v1/detect; did you mean scoreThreshold?; allowed: model, pipeline, scoreThreshold, iouThreshold, maxDetections, mode, maxProposals, scales, precision, provenance, classes, boxFormat, normalized',
    );
    expect(await message('?classes=person,cat')).toBe(
      'classes names "person", "cat", which model shapes-vgg does not detect; its classes: circle, square, triangle, star, cross, hexagon, ring, crescent',
    );
    expect(await message('?classes=circel')).toContain('which model shapes-vgg does not detect; did you mean circle?; its classes: ');
    const render = await app.inject({ method: 'POST', url: '/v1/render?classes=dog', headers: { 'content-type': 'image/png' }, payload: png });
    expect(render.statusCode).toBe(400);
  });

  it('multipart with several image fields gives one result per image, in order, errors in place', async () => {
    const jpeg = await sharp(png).jpeg().toBuffer();
    const { body, type } = multipartBody([
      { name: 'image', filename: 'a.png', type: 'image/png', data: png },
      { name: 'image', filename: 'b.txt', type: 'text/plain', data: Buffer.from('not an image') },
      { name: 'image', filename: 'c.jpg', type: 'image/jpeg', data: jpeg },
    ]);
    const res = await app.inject({ method: 'POST', url: '/v1/detect', headers: { 'content-type': type }, payload: body });
    expect(res.statusCode).toBe(200);
    const { results } = res.json();
    expect(results.map((r: { image?: unknown; error?: { code: string } }) => r.error?.code ?? 'ok')).toEqual(['ok', 'UNSUPPORTED_FORMAT', 'ok']);
  });

  it('bad input gets its 4xx with a stable code, the message and the request id; the server stays up', async () => {
    const cases: [Promise<{ statusCode: number; json: () => { code: string; message: string; requestId: string } }>, number, string][] = [
      [detect(Buffer.alloc(0)), 400, 'EMPTY_IMAGE'],
      [detect(png.subarray(0, png.length >> 1)), 422, 'CORRUPT_IMAGE'],
      [detect(pngClaiming(100000, 100000)), 413, 'IMAGE_TOO_LARGE'],
      [detect(Buffer.from('GIF89a....'), 'image/gif'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [detect(Buffer.from('%PDF-1.4'), 'application/pdf'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [detect(Buffer.from('%PDF-1.4'), 'image/png'), 415, 'UNSUPPORTED_FORMAT'],
      [detect(Buffer.alloc(6 * 1024 * 1024)), 413, 'BODY_TOO_LARGE'],
      [detect(Buffer.alloc(50 * 1024 * 1024)), 413, 'BODY_TOO_LARGE'],
      [detect(png, 'image/png', '?model=nope'), 404, 'MODEL_NOT_FOUND'],
      [detect(png, 'image/png', '?model=fixture-tiny-fpn&pipeline=rcnn'), 400, 'UNSUPPORTED_PIPELINE'],
      [detect(png, 'image/png', '?pipeline=yolo'), 400, 'INVALID_OPTION'],
      [detect(png, 'image/png', '?scoreThreshold=7'), 400, 'INVALID_OPTION'],
      [detect(png, 'image/png', `?${Array.from({ length: 1000 }, (_, i) => `p${i}=1`).join('&')}`), 400, 'INVALID_OPTION'],
      [app.inject({ method: 'POST', url: '/v1/detect', headers: { 'content-type': 'multipart/form-data; boundary=x' }, payload: 'garbage' }) as never, 400, 'MALFORMED_MULTIPART'],
    ];
    for (const [i, [p, status, code]] of cases.entries()) {
      const res = await p;
      expect({ case: i, status: res.statusCode }).toEqual({ case: i, status });
      const body = res.json();
      if (code) expect(body.code).toBe(code);
      expect(body.message.length).toBeGreaterThan(10);
      expect(body.requestId).toBeTruthy();
    }
    expect((await detect(png)).statusCode).toBe(200);
  });
});

describe('other routes', () => {
  it('POST /v1/proposals?method=rpn returns a model RPN\'s boxes by objectness; selective-search options are refused', async () => {
    const sample = readFileSync(fixturePath('images', 'shapes-val-000003.png'));
    const post = (query: string) => app.inject({ method: 'POST', url: `/v1/proposals${query}`, headers: { 'content-type': 'image/png' }, payload: sample });
    const res = await post('?method=rpn&maxProposals=50');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ model: 'shapes-vgg', method: 'rpn', image: { width: 355, height: 370 } });
    expect(body.proposals).toHaveLength(50);
    expect(body.scores).toHaveLength(50);
    expect(body.scores.every((v: number, i: number) => i === 0 || v <= body.scores[i - 1])).toBe(true);
    expect(body.proposals.every((b: number[]) => b[0]! >= 0 && b[2]! <= 355 && b[1]! >= 0 && b[3]! <= 370 && b[0]! < b[2]!)).toBe(true);
    expect((await post('?method=rpn&model=fixture-tiny-fpn')).json().proposals.length).toBeGreaterThan(50);
    expect((await post('?method=rpn&mode=fast')).statusCode).toBe(400);
    expect((await post('?model=shapes-vgg')).statusCode).toBe(400);
    expect((await post('?method=rpn&model=nope')).statusCode).toBe(404);
  });

  it('POST /v1/proposals returns ranked selective-search boxes', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/proposals?mode=single&maxProposals=10', headers: { 'content-type': 'image/png' }, payload: png });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ method: 'selective-search', mode: 'single', image: { width: 480, height: 360 } });
    expect(res.json().proposals).toHaveLength(10);
  });

  it('POST /v1/proposals refuses images over selective search\'s pixel limit (413) that detection still takes', async () => {
    const big = await sharp(png).resize(640, 480).png().toBuffer();
    const res = await app.inject({ method: 'POST', url: '/v1/proposals?mode=single', headers: { 'content-type': 'image/png' }, payload: big });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ code: 'IMAGE_TOO_LARGE', message: 'the image is 640x480 = 307200 pixels; at most 200000 are allowed' });
    expect((await detect(big, 'image/png', '?scales=single')).statusCode).toBe(200);
  });

  it('at the pixel limit exactly is accepted, one row more is refused (selective search 200000, decoding 4000000)', async () => {
    const sized = (w: number, h: number) => sharp(png).resize(w, h, { fit: 'fill' }).png().toBuffer();
    const proposals = async (payload: Buffer) => app.inject({ method: 'POST', url: '/v1/proposals?mode=single&maxProposals=5', headers: { 'content-type': 'image/png' }, payload });
    expect((await proposals(await sized(500, 400))).statusCode).toBe(200);
    expect((await proposals(await sized(500, 401))).json()).toMatchObject({ code: 'IMAGE_TOO_LARGE', message: 'the image is 500x401 = 200500 pixels; at most 200000 are allowed' });
    // Flat, so that 4 megapixels stay within the 5 MiB body limit.
    expect((await detect(await flatPng(2000, 2000), 'image/png', '?scales=single')).statusCode).toBe(200);
    const over = await detect(await flatPng(2000, 2001), 'image/png', '?scales=single');
    expect([over.statusCode, over.json().code]).toEqual([413, 'IMAGE_TOO_LARGE']);
  });

  it('an image with nothing in it: 200 and no detections from each pipeline; render returns it untouched', async () => {
    const flat = await flatPng(320, 240);
    for (const pipeline of ['rcnn', 'fast-rcnn', 'faster-rcnn']) {
      const res = await detect(flat, 'image/png', `?model=shapes-vgg&pipeline=${pipeline}&scoreThreshold=0.5`);
      expect([pipeline, res.statusCode, res.json().detections]).toEqual([pipeline, 200, []]);
    }
    const render = await app.inject({ method: 'POST', url: '/v1/render?model=shapes-vgg&scoreThreshold=0.5', headers: { 'content-type': 'image/png' }, payload: flat });
    expect(render.statusCode).toBe(200);
    expect((await sharp(render.rawPayload).removeAlpha().raw().toBuffer()).equals(await sharp(flat).raw().toBuffer())).toBe(true);
  });

  it('precision=int8 runs the int8 graphs the shipped package builds at load; a model without them is a 400', async () => {
    const fp32 = (await detect(png)).json();
    const int8 = (await detect(png, 'image/png', '?precision=int8')).json();
    expect([fp32.precision, int8.precision]).toEqual(['fp32', 'int8']);
    expect(int8.detections.length).toBeGreaterThan(0);
    const models = (await app.inject('/v1/models')).json().models as { name: string; precisions: string[]; quantization?: { stored: boolean } }[];
    expect(models.find((m) => m.name === 'shapes-vgg')).toMatchObject({ precisions: ['fp32', 'int8'], quantization: { stored: false, calibration: { method: 'percentile' } } });
    expect(models.find((m) => m.name === 'fixture-tiny-fpn')!.precisions).toEqual(['fp32']);
    const refused = await detect(png, 'image/png', '?model=fixture-tiny-fpn&precision=int8');
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toMatchObject({ code: 'UNSUPPORTED_PRECISION', message: 'model fixture-tiny-fpn has no int8 graphs; it serves: fp32 (make int8 graphs with rcnn-serve models quantize)' });
    const bad = await detect(png, 'image/png', '?precision=int4');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain('fp32, fp16, int8');
  });

  it('models, health and readiness', async () => {
    const models = (await app.inject('/v1/models')).json().models;
    expect(models.map((m: { name: string }) => m.name)).toContain('fixture-tiny-fpn');
    const one = (await app.inject('/v1/models/fixture-tiny-fpn')).json();
    expect(one.classes).toContain('triangle');
    expect(one.layers.graphs['backbone.onnx'].layers[0]).toMatchObject({ type: 'Conv', kernel: [3, 3], stride: [2, 2] });
    expect(one.layers.totals.params).toBeGreaterThan(100000);
    expect((await app.inject('/v1/models/nope')).statusCode).toBe(404);
    expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' });
    expect((await app.inject('/v2/health/live')).statusCode).toBe(200);
    expect((await app.inject('/readyz')).statusCode).toBe(200);
    expect((await app.inject('/v2/models/fixture-tiny-fpn/ready')).statusCode).toBe(200);
    expect((await app.inject('/v2/health/ready')).json()).toEqual({ status: 'ready' });
    ready = false;
    for (const url of ['/readyz', '/v2/health/ready', '/v2/models/fixture-tiny-fpn/ready']) {
      const res = await app.inject(url);
      expect({ url, status: res.statusCode, retryAfter: res.headers['retry-after'] }).toEqual({ url, status: 503, retryAfter: '1' });
      expect(res.json()).toMatchObject({ status: 'not ready', code: 'NOT_READY' });
    }
    expect((await app.inject('/v2/health/live')).statusCode).toBe(200); // liveness does not follow readiness
    ready = true;
    expect((await app.inject('/nowhere')).json().code).toBe('NOT_FOUND');
  });
});

describe('POST /v1/render', () => {
  it('returns the image, same size, with the detections drawn (PNG and JPEG)', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/render?model=fixture-tiny-fpn&scoreThreshold=0.3', headers: { 'content-type': 'image/png' }, payload: png });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('image/png');
    const drawn = await sharp(res.rawPayload).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    expect([drawn.info.width, drawn.info.height]).toEqual([480, 360]);
    const original = await sharp(png).removeAlpha().raw().toBuffer();
    // The boxes are the detections' (image/draw.ts's own test checks colours and placement pixel for pixel):
    // the middle of each box's edges is drawn over, and the image away from every box and its label is not.
    const { detections } = (await detect(png, 'image/png', '?model=fixture-tiny-fpn&scoreThreshold=0.3')).json() as { detections: { box: number[] }[] };
    expect(detections.length).toBeGreaterThan(0);
    const changed = (x: number, y: number) => [0, 1, 2].some((c) => original[3 * (Math.round(y) * 480 + Math.round(x)) + c] !== drawn.data[3 * (Math.round(y) * 480 + Math.round(x)) + c]);
    for (const { box: [x1, y1, x2, y2] } of detections) {
      for (const [x, y] of [[(x1! + x2!) / 2, y1!], [(x1! + x2!) / 2, y2! - 1], [x1!, (y1! + y2!) / 2], [x2! - 1, (y1! + y2!) / 2]]) expect(changed(x!, y!)).toBe(true);
    }
    const nearABox = (x: number, y: number) => detections.some(({ box: [x1, y1, x2, y2] }) => x >= x1! - 4 && x <= x2! + 4 && y >= y1! - 30 && y <= y2! + 4);
    let away = 0;
    for (let y = 0; y < 360; y += 2) for (let x = 0; x < 480; x += 2) if (!nearABox(x, y)) { away++; expect(changed(x, y)).toBe(false); }
    expect(away).toBeGreaterThan(1000);
    const jpeg = await app.inject({ method: 'POST', url: '/v1/render?format=jpeg', headers: { 'content-type': 'image/png' }, payload: png });
    expect(jpeg.headers['content-type']).toBe('image/jpeg');
    expect((await sharp(jpeg.rawPayload).metadata()).format).toBe('jpeg');
  });
});

describe('metrics', () => {
  it('GET /metrics exposes requests, latencies, stage times, queue, workers and models', async () => {
    const res = await app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    for (const series of [
      'rcnn_http_requests_total{method="POST",route="/v1/detect",status="200"}',
      'rcnn_http_request_duration_seconds_bucket',
      'rcnn_pipeline_stage_duration_seconds_bucket{le="0.005",pipeline="faster-rcnn",stage="backbone"}',
      'rcnn_queue_depth 0',
      'rcnn_workers 1',
      'rcnn_models_loaded 2',
    ]) {
      expect(res.body).toContain(series);
    }
  });
});

describe('the OpenAPI contract', () => {
  it('GET / serves the demo page and GET /docs the Swagger UI', async () => {
    const page = await app.inject('/');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<form id="form" class="card">');
    const docs = await app.inject('/docs');
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toContain('swagger');
  });

  it('GET /openapi.yaml serves the document', async () => {
    const res = await app.inject('/openapi.yaml');
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/^openapi: 3\.1\.0/);
  });

  it('every route and every response served in these tests conforms to openapi.yaml', () => {
    expect(sent.length).toBeGreaterThan(20);
    const violations = sent.map((r) => contractViolation(r.method, r.url, r.status, r.type, r.body)).filter((v) => v !== undefined);
    expect(violations).toEqual([]);
    // Every documented operation was exercised.
    const seen = new Set(sent.map((r) => `${r.method} ${r.url.split('?')[0]}`));
    for (const op of ['POST /v1/detect', 'POST /v1/render', 'POST /v1/proposals', 'GET /v1/models', 'GET /healthz', 'GET /readyz', 'GET /v2/health/live', 'GET /metrics', 'GET /openapi.yaml', 'GET /', 'GET /docs']) {
      expect(seen.has(op)).toBe(true);
    }
  });
});
