import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.js';
import { SHIPPED_MODELS_DIR } from '../../src/model/package.js';
import { scanModels, type Registry } from '../../src/model/registry.js';
import { DeadlineError, InferencePool } from '../../src/workers/inference-pool.js';
import { fixturePath } from '../helpers/fixtures.js';
import { islandsImage } from '../helpers/images.js';
import { contractViolation } from '../helpers/openapi.js';

const png = readFileSync(fixturePath('images', 'shapes.png'));
const islands = islandsImage(1000);
const SETTINGS = { device: 'cpu' as const, intraOpThreads: 1, limits: { maxBytes: 5 * 1024 * 1024, maxPixels: 4_000_000 } };
let app: FastifyInstance;
let pool: InferencePool;
let registry: Registry;
/** The shipped shapes-vgg package. */
let modelDir: string;

beforeAll(async () => {
  // A 1 ms deadline: every inference overruns it.
  pool = new InferencePool({ workers: 1, maxQueue: 8, deadlineMs: 1 });
  registry = await scanModels(SHIPPED_MODELS_DIR);
  modelDir = registry.models.find((m) => m.name === 'shapes-vgg')!.dir;
  app = await buildApp({ registry, pool, settings: SETTINGS, maxBodyBytes: 5 * 1024 * 1024, ready: () => true, apiKey: 's3cret' });
});
afterAll(async () => {
  await app.close();
  await pool.close();
});

function conforms(res: LightMyRequestResponse, method: string, url: string): LightMyRequestResponse {
  expect(contractViolation(method, url, res.statusCode, String(res.headers['content-type'] ?? ''), res.body)).toBeUndefined();
  return res;
}

describe('API key', () => {
  it('guards the API routes; health, readiness and the OpenAPI document stay open', async () => {
    const detect = (headers: Record<string, string>) => app.inject({ method: 'GET', url: '/v1/models', headers });
    const res = conforms(await detect({}), 'GET', '/v1/models');
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'UNAUTHORIZED' });
    expect((await detect({ authorization: 'Bearer wrong' })).statusCode).toBe(401);
    expect(conforms(await detect({ authorization: 'Bearer s3cret' }), 'GET', '/v1/models').statusCode).toBe(200);
    expect((await detect({ 'x-api-key': 's3cret' })).statusCode).toBe(200);
    for (const url of ['/healthz', '/readyz', '/v2/health/live', '/openapi.yaml']) expect((await app.inject(url)).statusCode).toBe(200);
  });
});

describe('per-request deadline', () => {
  it('answers 504 DEADLINE_EXCEEDED and keeps serving; the late result is dropped', async () => {
    const url = '/v1/detect';
    const res = conforms(await app.inject({ method: 'POST', url, headers: { 'content-type': 'image/png', 'x-api-key': 's3cret' }, payload: png }), 'POST', url);
    expect(res.statusCode).toBe(504);
    expect(res.json().code).toBe('DEADLINE_EXCEEDED');
    // The pool is still usable afterwards: nothing leaked into later requests.
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect(pool.queued).toBeLessThanOrEqual(1);
  });

  it('the worker\'s late reply comes after the caller got DeadlineError, and goes nowhere', async () => {
    const piscina = (pool as unknown as { piscina: { run: (task: unknown) => Promise<unknown> } }).piscina;
    const run = piscina.run.bind(piscina);
    const late: Promise<unknown>[] = [];
    piscina.run = (task) => {
      const work = run(task);
      late.push(work);
      return work;
    };
    try {
      let settled = 0;
      const caller = pool.detect({ modelDir, bytes: new Uint8Array(png), options: {}, settings: SETTINGS }).finally(() => settled++);
      await expect(caller).rejects.toBeInstanceOf(DeadlineError);
      expect(late).toHaveLength(1);
      let workDone = false;
      const outcome = late[0]!.then(
        () => 'a result',
        (err: Error) => err.message,
      ).finally(() => (workDone = true));
      await Promise.resolve();
      expect(workDone).toBe(false); // the worker was still at it when the caller gave up
      // The worker stops at its next stage, past the deadline it was given, and says so: to no one.
      expect(await outcome).toBe("stopped: past the caller's deadline");
      expect(settled).toBe(1);
      expect(pool.busy).toBe(0);
    } finally {
      piscina.run = run;
    }
  });
});

describe('a deadline stops the work in the worker too', () => {
  it('R-CNN over thousands of regions stops at its next batch once the caller has given up', async () => {
    const slow = new InferencePool({ workers: 1, maxQueue: 2, deadlineMs: 500 });
    const boxes = Array.from({ length: 8000 }, (_, i) => [i % 200, i % 150, (i % 200) + 60, (i % 150) + 80]);
    const bytes = new Uint8Array(readFileSync(fixturePath('images', 'shapes-val-000003.png')));
    await expect(slow.detect({ modelDir, bytes, options: { pipeline: 'rcnn', proposals: boxes }, settings: SETTINGS })).rejects.toBeInstanceOf(DeadlineError);
    // 8000 crops take many seconds; the worker gives up within a batch of the deadline, so closing (which
    // waits for running tasks) is quick.
    const started = performance.now();
    await slow.close();
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('selective search on its worst case stops at its next check, in /v1/proposals and in a fast-rcnn detection', async () => {
    // Unstopped, this image's eight `fast` strategies take over a minute (about 9 s each, measured); the grouping
    // checks the deadline every 256 merges, about 0.6 s apart here.
    const slow = new InferencePool({ workers: 1, maxQueue: 2, deadlineMs: 1000 });
    const bytes = new Uint8Array(await sharp(Buffer.from(islands.data), { raw: { width: islands.width, height: islands.height, channels: 3 } }).png().toBuffer());
    const started = performance.now();
    await expect(slow.proposals({ bytes, options: {}, settings: SETTINGS })).rejects.toBeInstanceOf(DeadlineError);
    await expect(slow.detect({ modelDir, bytes, options: { pipeline: 'fast-rcnn' }, settings: SETTINGS })).rejects.toBeInstanceOf(DeadlineError);
    await slow.close();
    // Two deadlines, the second queued behind the first's last check, then a quick close.
    expect(performance.now() - started).toBeLessThan(6000);
  }, 30_000);
});

describe('CORS and event-loop pressure', () => {
  it('sends CORS headers for an allowed origin only, and sheds load with 503 BUSY when the event loop lags', async () => {
    const settings = { device: 'cpu' as const, intraOpThreads: 1, limits: { maxBytes: 1 << 20, maxPixels: 1_000_000 } };
    const other = await buildApp({
      registry,
      pool,
      settings,
      maxBodyBytes: 1 << 20,
      ready: () => true,
      corsOrigins: ['https://app.example'],
      pressure: { maxEventLoopDelayMs: 1, maxHeapUsedBytes: 0, sampleIntervalMs: 100 },
    });
    await other.ready();
    const allowed = await other.inject({ method: 'OPTIONS', url: '/v1/detect', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example');
    const denied = await other.inject({ method: 'GET', url: '/v1/models', headers: { origin: 'https://evil.example' } });
    expect(denied.headers['access-control-allow-origin']).toBeUndefined();
    // Block the loop for 300 ms; under-pressure's overdue sample then sees the lag.
    const until = Date.now() + 300;
    while (Date.now() < until) {
      /* busy */
    }
    await new Promise((r) => setTimeout(r, 20));
    const res = conforms(await other.inject({ method: 'GET', url: '/v1/models' }), 'GET', '/v1/models');
    expect(res.statusCode).toBe(503);
    expect(res.json().code).toBe('BUSY');
    expect(res.headers['retry-after']).toBe('1');
    expect((await other.inject('/healthz')).statusCode).toBe(200);
    await other.close();
  });
});
