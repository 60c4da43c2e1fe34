/**
 * A worker thread that dies: stopped in the middle of a request, gone between
 * requests, or over its heap limit. The request it held gets 503 WORKER_LOST
 * with Retry-After (in the one error envelope, as openapi.yaml says), the
 * error is logged, the process and the other workers go on, and a new worker
 * serves the next request.
 *
 * No request of this service reliably overruns a worker's heap (measured on
 * Node 20 and 24: selective search on 4 MP of noise fits in 20 MB; what a
 * small request needs, mostly the worker's own start, is 16 to 24 MB), so
 * the heap-limit case takes Node's own error from a real worker that
 * allocates without end, and checks that it is told apart.
 *
 * (A thread stopped inside an ONNX Runtime call takes the whole process with
 * it: measured, "terminate called after throwing an instance of
 * 'Napi::Error'". So the mid-request cases here die inside selective search,
 * which runs in JavaScript and WebAssembly; and deadlines and shutdown ask a
 * run to stop rather than terminate its thread.)
 */

import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.js';
import { SHIPPED_MODELS_DIR } from '../../src/model/package.js';
import { scanModels, type Registry } from '../../src/model/registry.js';
import { InferencePool, workerLost, WorkerLostError } from '../../src/workers/inference-pool.js';
import { fixturePath } from '../helpers/fixtures.js';
import { contractViolation } from '../helpers/openapi.js';

const MAX_BODY = 20 * 1024 * 1024;
const png = readFileSync(fixturePath('images', 'shapes.png'));
let noise4mp: Buffer;
let app: FastifyInstance;
let pool: InferencePool;
let registry: Registry;
const logs: { level: number; msg: string; err?: { message: string } }[] = [];

/** The pool's threads, as piscina keeps them (its public `threads` list). */
function threads(p: InferencePool): { threadId: number; terminate: () => Promise<number> }[] {
  return (p as unknown as { piscina: { threads: { threadId: number; terminate: () => Promise<number> }[] } }).piscina.threads;
}

async function untilBusy(p: InferencePool): Promise<void> {
  const started = performance.now();
  while (p.busy === 0 && performance.now() - started < 10_000) await new Promise((r) => setTimeout(r, 5));
  expect(p.busy).toBe(1);
}

beforeAll(async () => {
  const side = 2000;
  const raw = Buffer.alloc(side * side * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919) % 251;
  noise4mp = await sharp(raw, { raw: { width: side, height: side, channels: 3 } }).png().toBuffer();
  registry = await scanModels(SHIPPED_MODELS_DIR);
  pool = new InferencePool({ workers: 1, maxQueue: 4 });
  app = await buildApp({
    registry,
    pool,
    settings: { device: 'cpu', intraOpThreads: 1, limits: { maxBytes: MAX_BODY, maxPixels: 4_000_000 } },
    maxBodyBytes: MAX_BODY,
    requestConcurrency: 1,
    ready: () => true,
    draining: () => false,
    logger: { level: 'error', stream: { write: (line: string) => logs.push(JSON.parse(line)) } },
  });
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await pool.close();
});

const post = (url: string, payload: Buffer) => app.inject({ method: 'POST', url, headers: { 'content-type': 'image/png' }, payload });

function expectWorkerLost(res: Awaited<ReturnType<typeof post>>, message: RegExp): void {
  expect(res.statusCode).toBe(503);
  expect(res.headers['retry-after']).toBe('1');
  expect(res.json().code).toBe('WORKER_LOST');
  expect(res.json().message).toMatch(message);
  expect(contractViolation('POST', '/v1/proposals', res.statusCode, String(res.headers['content-type']), res.body)).toBeUndefined();
}

describe('a worker that dies', () => {
  it('stopped mid-request: 503 WORKER_LOST, logged; the requests queued behind it are served by its replacement', async () => {
    const oldId = threads(pool)[0]!.threadId;
    const errorsBefore = logs.filter((l) => l.level >= 50).length;
    const held = post('/v1/proposals', noise4mp);
    await untilBusy(pool);
    const queued = post('/v1/detect?scales=single', png);
    await new Promise((r) => setTimeout(r, 300));
    await threads(pool).find((t) => t.threadId === oldId)!.terminate();
    expectWorkerLost(await held, /stopped before it answered and was replaced; retry$/);
    expect(logs.filter((l) => l.level >= 50).slice(errorsBefore).map((l) => l.err?.message)).toEqual([expect.stringContaining('stopped before it answered')]);
    const next = await queued;
    expect(next.statusCode).toBe(200);
    expect(next.json().detections.length).toBeGreaterThan(0);
    expect(threads(pool).map((t) => t.threadId)).not.toContain(oldId);
  }, 90_000);

  it('between requests: replaced, and the next request gets the same detections', async () => {
    const first = await post('/v1/detect?scales=single', png);
    const dead = threads(pool)[0]!;
    const deadId = dead.threadId;
    await dead.terminate();
    const again = await post('/v1/detect?scales=single', png);
    expect(again.statusCode).toBe(200);
    expect(again.json().detections).toEqual(first.json().detections);
    expect(threads(pool).map((t) => t.threadId)).not.toContain(deadId);
    expect(threads(pool)).toHaveLength(1);
  }, 60_000);
});

describe('a worker over its heap limit', () => {
  it("is told apart by Node's own error: WORKER_LOST naming the limit; a plain exit is lost but not out of memory; other errors are neither", async () => {
    const worker = new Worker('const keep = []; for (;;) keep.push(new Array(1e5).fill(0.5));', { eval: true, resourceLimits: { maxOldGenerationSizeMb: 16 } });
    const err = await new Promise<Error>((resolve) => worker.on('error', resolve));
    const oom = workerLost(err, 16);
    expect(oom).toBeInstanceOf(WorkerLostError);
    expect(oom!.outOfMemory).toBe(true);
    expect(oom!.message).toBe('the worker running this request went over its JavaScript heap limit (16 MB) and was replaced; retry, or send a smaller image');
    expect(workerLost(new Error('worker exited with code: 1'), 16)!.outOfMemory).toBe(false);
    expect(workerLost(new Error('stopped: past the caller\'s deadline'), 16)).toBeUndefined();
    expect(workerLost('worker exited with code: 1', 16)).toBeUndefined();
  });
});
