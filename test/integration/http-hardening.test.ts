/**
 * What a hostile client found (issue "Hardening"), each as a test that failed
 * before its fix: thin images, 5xx bodies that leaked paths, unbounded
 * multipart bodies, selective search past its pixel limit on /v1/detect, slow
 * bodies, errors outside the envelope, one request taking the whole queue,
 * graphs whose outputs do not fit the manifest.
 */

import { readFileSync, rmSync } from 'node:fs';
import { createConnection, type AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.js';
import { readManifest, SHIPPED_MODELS_DIR } from '../../src/model/package.js';
import { scanModels, type Registry } from '../../src/model/registry.js';
import { Detector } from '../../src/detector.js';
import { InferencePool, ShuttingDownError } from '../../src/workers/inference-pool.js';
import { fixturePath } from '../helpers/fixtures.js';
import { contractViolation } from '../helpers/openapi.js';
import { editedPackage } from '../helpers/packages.js';
import { rawRequest, type RawOptions } from '../helpers/raw-http.js';

const png = readFileSync(fixturePath('images', 'shapes.png'));
const MAX_BODY = 2 * 1024 * 1024;
const RECEIVE_TIMEOUT_MS = 1000;
let app: FastifyInstance;
let pool: InferencePool;
let registry: Registry;
let draining = false;
const logs: string[] = [];
const edited: string[] = [];
const sent: { method: string; url: string; status: number; type: string; body: string }[] = [];

/** A package edited as `edit` says, registered under `name`. */
async function register(name: string, edit: Parameters<typeof editedPackage>[0], replace?: Record<string, string>): Promise<void> {
  const dir = editedPackage((m) => {
    m.name = name;
    edit(m);
  }, replace);
  edited.push(dir);
  registry.models.push({ name, dir, manifest: await readManifest(dir) });
}

beforeAll(async () => {
  registry = await scanModels(SHIPPED_MODELS_DIR);
  // R-CNN's head swapped for Fast R-CNN's (same input and output names, other dims): ONNX Runtime fails inside the graph.
  await register('swapped-head', () => undefined, { 'rcnn_head.onnx': `${SHIPPED_MODELS_DIR}/shapes-vgg/fast_rcnn_head.onnx` });
  // A class more in model.json than the heads predict: their outputs do not fit the manifest.
  await register('extra-class', (m) => m.classes.push('extra'));
  // R-CNN's head swapped for one whose class_logits are int64 (test/fixtures/make_int64_head.py).
  await register('int64-head', () => undefined, { 'rcnn_head.onnx': fixturePath('onnx', 'int64_head.onnx') });
  pool = new InferencePool({ workers: 1, maxQueue: 2 });
  const settings = { device: 'cpu' as const, intraOpThreads: 1, limits: { maxBytes: MAX_BODY, maxPixels: 4_000_000 }, proposalMaxPixels: 200_000 };
  app = await buildApp({
    registry,
    pool,
    settings,
    maxBodyBytes: MAX_BODY,
    receiveTimeoutMs: RECEIVE_TIMEOUT_MS,
    requestConcurrency: 1,
    ready: () => true,
    draining: () => draining,
    apiKey: 'k',
    logger: { level: 'error', stream: { write: (line: string) => logs.push(line) } },
  });
  app.addHook('onSend', async (request, reply, payload) => {
    sent.push({ method: request.method, url: request.url, status: reply.statusCode, type: String(reply.getHeader('content-type') ?? ''), body: String(payload) });
    return payload;
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await app.close();
  await pool.close();
  for (const dir of edited) rmSync(dir, { recursive: true, force: true });
});

const KEY = { 'x-api-key': 'k' };
const post = (url: string, payload: Buffer | string, type = 'image/png') => app.inject({ method: 'POST', url, headers: { 'content-type': type, ...KEY }, payload });
const grey = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: '#888' } }).png().toBuffer();

/** Parts with a filename are files; without, text fields. */
function multipart(parts: { name: string; filename?: string; data: Buffer }[]): { body: Buffer; type: string } {
  const boundary = '----hardening';
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const head = p.filename === undefined ? `name="${p.name}"\r\n` : `name="${p.name}"; filename="${p.filename}"\r\nContent-Type: image/png\r\n`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; ${head}\r\n`), p.data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

/** A raw request to the listening app; the response's JSON body parsed. */
async function raw(request: string, options?: RawOptions) {
  const res = await rawRequest((app.server.address() as { port: number }).port, request, options);
  return { ...res, json: JSON.parse(res.body.toString()) as Record<string, unknown> };
}

describe('thin images (long side over 640 times the short one)', () => {
  it('detect, render and the RPN answer 200 where they answered 500 (a zero-height input tensor)', async () => {
    for (const [w, h] of [[641, 1], [640, 1], [1281, 2], [3, 2000], [20000, 1]] as const) {
      const image = await grey(w, h);
      for (const query of ['?scales=single', '', '?pipeline=fast-rcnn', '?pipeline=rcnn']) {
        const res = await post(`/v1/detect${query}`, image);
        expect({ size: `${w}x${h}`, query, status: res.statusCode }).toEqual({ size: `${w}x${h}`, query, status: 200 });
        expect(res.json().image).toEqual({ width: w, height: h });
      }
      expect((await post('/v1/render?scales=single', image)).statusCode).toBe(200);
      expect((await post('/v1/proposals?method=rpn', image)).statusCode).toBe(200);
    }
  });
});

describe('5xx bodies', () => {
  it('carry the code and a public message, never the path, the graph node or the stack; the log has the details', async () => {
    logs.length = 0;
    const res = await post('/v1/detect?model=swapped-head&pipeline=rcnn', png);
    expect(res.statusCode).toBe(500);
    const body = res.json();
    expect(body.code).toBe('INFERENCE_FAILED');
    expect(body.message).toBe('ONNX Runtime failed while running a graph; the details are in the server log under this request id');
    expect(res.body).not.toMatch(/\/tmp\/|\.onnx|Name:'|\n\s+at /);
    const logged = logs.map((l) => JSON.parse(l)).find((l) => l.reqId === body.requestId);
    expect(logged.err.message).toContain('rcnn_head.onnx');
    // Inside a multipart result too.
    const { body: form, type } = multipart([{ name: 'image', filename: 'a.png', data: png }]);
    const part = (await post('/v1/detect?model=swapped-head&pipeline=rcnn', form, type)).json().results[0].error;
    expect(part).toMatchObject({ code: 'INFERENCE_FAILED', status: 500 });
    expect(part.message).not.toMatch(/\/tmp\/|\.onnx/);
  });

  it('a graph whose outputs do not fit the manifest is INVALID_MODEL, the message naming the graph and the output', async () => {
    for (const pipeline of ['rcnn', 'fast-rcnn', 'faster-rcnn']) {
      const res = await post(`/v1/detect?model=extra-class&pipeline=${pipeline}`, png);
      expect({ pipeline, status: res.statusCode, code: res.json().code }).toEqual({ pipeline, status: 500, code: 'INVALID_MODEL' });
    }
    const detector = await Detector.load(registry.models.find((m) => m.name === 'extra-class')!.dir, { intraOpThreads: 1 });
    await expect(detector.detect(png, { pipeline: 'faster-rcnn', scales: 'single' })).rejects.toMatchObject({
      code: 'INVALID_MODEL',
      message: expect.stringMatching(/^graph box_head\.onnx output "class_logits" has dims \[\d+, 9\]; the pipeline reads \[\d+, 10\]$/),
    });
    await detector.close();
  });

  it('a graph output that is not float32 is INVALID_MODEL naming the graph and the output (it was read as a Float32Array)', async () => {
    const res = await post('/v1/detect?model=int64-head&pipeline=rcnn', png);
    expect([res.statusCode, res.json().code]).toEqual([500, 'INVALID_MODEL']);
    const detector = await Detector.load(registry.models.find((m) => m.name === 'int64-head')!.dir, { intraOpThreads: 1 });
    await expect(detector.detect(png, { pipeline: 'rcnn', proposals: [[10, 10, 100, 100]] })).rejects.toMatchObject({
      code: 'INVALID_MODEL',
      message: 'graph rcnn_head.onnx output "class_logits" is int64; the pipelines read float32 outputs',
    });
    await detector.close();
  });
});

describe('multipart bodies are bounded as a whole', () => {
  it('40 parts under the limit each but over it together: 413 BODY_TOO_LARGE (they were all accepted)', async () => {
    const part = Buffer.alloc(64 * 1024, 7);
    const { body, type } = multipart(Array.from({ length: 40 }, (_, i) => ({ name: 'image', filename: `${i}.png`, data: part })));
    const res = await post('/v1/detect', body, type);
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ code: 'BODY_TOO_LARGE', message: expect.stringContaining(`over ${MAX_BODY} bytes in all`) });
  });

  it('one file over the limit, 65 files, and a text field over 1 MiB: 413 BODY_TOO_LARGE (was code BAD_REQUEST)', async () => {
    const big = multipart([{ name: 'image', filename: 'a.png', data: Buffer.alloc(MAX_BODY + 1) }]);
    expect((await post('/v1/detect', big.body, big.type)).json()).toMatchObject({ code: 'BODY_TOO_LARGE' });
    const many = multipart(Array.from({ length: 65 }, (_, i) => ({ name: 'image', filename: `${i}.png`, data: Buffer.from('x') })));
    const tooMany = await post('/v1/detect', many.body, many.type);
    expect(tooMany.statusCode).toBe(413);
    expect(tooMany.json()).toMatchObject({ code: 'BODY_TOO_LARGE', message: expect.stringContaining('at most 64 images') });
    const field = multipart([{ name: 'image', filename: 'a.png', data: png }, { name: 'proposals', data: Buffer.alloc(1024 * 1024 + 1, 0x20) }]);
    expect((await post('/v1/detect?pipeline=fast-rcnn', field.body, field.type)).json()).toMatchObject({ code: 'BODY_TOO_LARGE', message: expect.stringContaining('"proposals"') });
  });
});

describe("selective search's pixel limit on /v1/detect", () => {
  it('rcnn and fast-rcnn refuse an image over it with 413 (it ran at full size); own proposals and faster-rcnn still run', async () => {
    const big = await sharp(png).resize(640, 480).png().toBuffer();
    for (const pipeline of ['rcnn', 'fast-rcnn']) {
      const res = await post(`/v1/detect?pipeline=${pipeline}`, big);
      expect(res.statusCode).toBe(413);
      expect(res.json()).toMatchObject({ code: 'IMAGE_TOO_LARGE', message: expect.stringContaining(`${pipeline} runs selective search on at most 200000`) });
      const { body, type } = multipart([{ name: 'image', filename: 'a.png', data: big }, { name: 'proposals', data: Buffer.from('[[10, 10, 200, 200]]') }]);
      expect((await post(`/v1/detect?pipeline=${pipeline}`, body, type)).json().results[0].regions).toBe(1);
    }
    expect((await post('/v1/detect?scales=single', big)).statusCode).toBe(200);
  });
});

describe('errors in the one envelope', () => {
  it('text/plain and JSON bodies are 415 (were 400); long model names 414 URI_TOO_LONG; an unknown model 404 MODEL_NOT_FOUND', async () => {
    for (const type of ['text/plain', 'application/json']) {
      const res = await post('/v1/detect', type === 'text/plain' ? 'hello' : '{"image": 1}', type);
      expect(res.statusCode).toBe(415);
      expect(res.json().code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
    const long = await app.inject({ url: `/v1/models/${'m'.repeat(201)}`, headers: KEY });
    expect(long.statusCode).toBe(414);
    expect(long.json()).toMatchObject({ code: 'URI_TOO_LONG', requestId: expect.any(String) });
    const unknown = await app.inject({ url: '/v2/models/nope/ready', headers: KEY });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ code: 'MODEL_NOT_FOUND', requestId: expect.any(String) });
  });

  it('/v2/models/{name}/ready needs the key (it tells which names exist); the pages and the contract stay open', async () => {
    expect((await app.inject('/v2/models/shapes-vgg/ready')).statusCode).toBe(401);
    expect((await app.inject({ url: '/v2/models/shapes-vgg/ready', headers: KEY })).statusCode).toBe(200);
    for (const url of ['/', '/docs', '/docs/json', '/openapi.yaml', '/healthz', '/readyz', '/metrics']) expect({ url, status: (await app.inject(url)).statusCode }).toEqual({ url, status: 200 });
    expect((await app.inject('/docs-private')).statusCode).toBe(401);
  });

  it('while draining, API requests get 503 SHUTTING_DOWN with Retry-After and Connection: close; liveness stays 200', async () => {
    draining = true;
    try {
      const res = await post('/v1/detect', png);
      expect(res.statusCode).toBe(503);
      expect(res.json().code).toBe('SHUTTING_DOWN');
      expect(res.headers['retry-after']).toBe('1');
      expect(res.headers.connection).toBe('close');
      expect((await app.inject('/healthz')).statusCode).toBe(200);
    } finally {
      draining = false;
    }
  });

  it('every response of these tests conforms to openapi.yaml (Swagger UI\'s own files aside)', () => {
    expect(sent.filter((r) => !r.url.startsWith('/docs')).map((r) => contractViolation(r.method, r.url, r.status, r.type, r.body)).filter((v) => v !== undefined)).toEqual([]);
  });
});

describe('over the wire: what Node and the router answer before a route runs', () => {
  it('a body sent one byte at a time gets 408 REQUEST_TIMEOUT in the envelope within the limit (it was held past 150 s)', async () => {
    const head = `POST /v1/detect HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n`;
    const res = await raw(head, { trickle: Buffer.from('a'), everyMs: 200 });
    expect(res.status).toBe(408);
    expect(res.json).toMatchObject({ code: 'REQUEST_TIMEOUT', requestId: expect.any(String) });
    expect(res.headers.connection).toBe('close');
    // Node checks the timers about every second (connectionsCheckingInterval).
    expect(res.ms).toBeGreaterThan(RECEIVE_TIMEOUT_MS - 50);
    expect(res.ms).toBeLessThan(RECEIVE_TIMEOUT_MS + 1500);
  });

  it('headers over 16 KiB: 431 in the envelope with Connection: close, and the next request on a new connection is served', async () => {
    const res = await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nx-bomb: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(res.status).toBe(431);
    expect(res.json.code).toBe('HEADERS_TOO_LARGE');
    expect(res.headers.connection).toBe('close');
    const { port } = app.server.address() as { port: number };
    // fetch's keep-alive pool drops the closed connection instead of reusing it (it got ECONNRESET).
    await expect(fetch(`http://127.0.0.1:${port}/healthz`, { headers: { 'x-bomb': 'a'.repeat(20_000) } })).resolves.toMatchObject({ status: 431 });
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  it('a refusal sent while the body is still coming (413 on the Content-Length, 413 past the limit in chunks, 401): the client reads it and its upload is not reset (it was EPIPE; behind docker-proxy the 413 was lost)', async () => {
    const big = Buffer.alloc(12 * MAX_BODY);
    const chunked = Array.from({ length: 12 }, () => [Buffer.from(`${MAX_BODY.toString(16)}\r\n`), Buffer.alloc(MAX_BODY), Buffer.from('\r\n')]).flat();
    const cases = [
      { sends: [`POST /v1/detect HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nContent-Type: image/png\r\nContent-Length: ${big.length}\r\n\r\n`, big], status: 413, code: 'BODY_TOO_LARGE' },
      { sends: ['POST /v1/detect HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n', ...chunked], status: 413, code: 'BODY_TOO_LARGE' },
      { sends: [`POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${big.length}\r\n\r\n`, big], status: 401, code: 'UNAUTHORIZED' },
    ];
    const { port } = app.server.address() as AddressInfo;
    for (const { sends, status, code } of cases) {
      const res = await rawRequest(port, sends, { timeoutMs: 20_000 });
      expect({ status: res.status, code: JSON.parse(res.body.toString()).code, connection: res.headers.connection, error: res.error }).toEqual({ status, code, connection: 'close', error: undefined });
      // The client closes once it has the answer, and the lingering server with it: not held to the 10 s cap.
      expect(res.ms).toBeLessThan(5000);
    }
  });

  it('bad framing is 400 BAD_REQUEST and Expect: 200-ok is 417 EXPECTATION_FAILED, both in the envelope (417 had no body)', async () => {
    const bad = await raw('GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n');
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('not valid HTTP/1.1'), requestId: expect.any(String) });
    const expectation = await raw('POST /v1/detect HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nExpect: 200-ok\r\nContent-Type: image/png\r\nContent-Length: 4\r\n\r\nabcd');
    expect(expectation.status).toBe(417);
    expect(expectation.json).toMatchObject({ code: 'EXPECTATION_FAILED', requestId: expect.any(String) });
  });
});

describe('one request cannot take the whole queue', () => {
  it('a multipart request of 6 images runs them in turn (3 were BUSY with 1 worker and a queue of 2), and another client is still served', async () => {
    const { body, type } = multipart(Array.from({ length: 6 }, (_, i) => ({ name: 'image', filename: `${i}.png`, data: png })));
    const big = post('/v1/detect?scales=single', body, type);
    await new Promise((r) => setTimeout(r, 100));
    const other = await post('/v1/detect?scales=single', png);
    expect(other.statusCode).toBe(200);
    const { results } = (await big).json();
    expect(results.map((r: { error?: { code: string } }) => r.error?.code ?? 'ok')).toEqual(Array(6).fill('ok'));
  });

  it('a client that disconnects mid-detection: the work goes on to its end (the deadline bounds it), nothing is logged as an error, the next client is served', async () => {
    // Decided: a running detection is not cancelled when its client goes (stopping ONNX Runtime mid-call is not
    // safe, and the work is at most a deadline long); its result is sent to a closed socket and dropped.
    const { port } = app.server.address() as AddressInfo;
    const errorsBefore = logs.filter((l) => JSON.parse(l).level >= 50).length;
    const sentBefore = sent.length;
    const socket = createConnection({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve) => socket.on('connect', resolve));
    socket.write(`POST /v1/detect?scoreThreshold=0.0501 HTTP/1.1\r\nHost: t\r\nx-api-key: k\r\nContent-Type: image/png\r\nContent-Length: ${png.length}\r\n\r\n`);
    socket.write(png);
    // Gone once the detection runs in the worker.
    const started = performance.now();
    while (pool.busy === 0 && performance.now() - started < 5000) await new Promise((r) => setTimeout(r, 5));
    expect(pool.busy).toBe(1);
    socket.destroy();
    while (pool.busy > 0 && performance.now() - started < 30_000) await new Promise((r) => setTimeout(r, 20));
    expect(pool.busy).toBe(0);
    // The handler ran to the end: its 200 went out (to a closed socket).
    const mine = sent.slice(sentBefore).filter((r) => r.url.includes('scoreThreshold=0.0501'));
    expect(mine.map((r) => r.status)).toEqual([200]);
    expect(JSON.parse(mine[0]!.body).detections.length).toBeGreaterThan(0);
    expect(logs.filter((l) => JSON.parse(l).level >= 50).length).toBe(errorsBefore);
    expect((await post('/v1/detect?scales=single', png)).statusCode).toBe(200);
  });

  it("the pool's cut-off answers its waiting callers ShuttingDownError and refuses new ones", async () => {
    const own = new InferencePool({ workers: 1, maxQueue: 4 });
    const modelDir = registry.models[0]!.dir;
    const settings = { device: 'cpu' as const, intraOpThreads: 1, limits: { maxBytes: MAX_BODY, maxPixels: 4_000_000 } };
    const waiting = [0, 1, 2].map(() => own.detect({ modelDir, bytes: png, options: {}, settings }));
    own.abandon();
    for (const w of waiting) await expect(w).rejects.toBeInstanceOf(ShuttingDownError);
    await expect(own.detect({ modelDir, bytes: png, options: {}, settings })).rejects.toBeInstanceOf(ShuttingDownError);
    await own.close();
  });
});
