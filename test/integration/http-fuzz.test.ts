import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.js';
import { SHIPPED_MODELS_DIR } from '../../src/model/package.js';
import { scanModels } from '../../src/model/registry.js';
import { InferencePool } from '../../src/workers/inference-pool.js';
import { fixturePath } from '../helpers/fixtures.js';

let app: FastifyInstance;
let pool: InferencePool;
const seeds: Buffer[] = [];

beforeAll(async () => {
  pool = new InferencePool({ workers: 2, maxQueue: 64 });
  const settings = { device: 'cpu' as const, intraOpThreads: 1, limits: { maxBytes: 1 << 20, maxPixels: 1_000_000 } };
  app = await buildApp({ registry: await scanModels(SHIPPED_MODELS_DIR), pool, settings, maxBodyBytes: 1 << 20, ready: () => true });
  // Small valid images to mutate: PNG, JPEG, WebP.
  const base = sharp(readFileSync(fixturePath('images', 'shapes.png'))).resize(64, 48);
  seeds.push(await base.clone().png().toBuffer(), await base.clone().jpeg().toBuffer(), await base.clone().webp().toBuffer());
});
afterAll(async () => {
  await app.close();
  await pool.close();
});

const TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'application/octet-stream', 'text/plain', 'multipart/form-data; boundary=zz'];

/** A payload: random bytes, or a valid image with bytes flipped, cut, or spliced. */
const payload = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)),
  fc
    .tuple(fc.integer({ min: 0, max: 2 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 20 }), fc.option(fc.nat()))
    .map(([s, flips, cut]) => {
      const b = Buffer.from(seeds[s]!);
      for (const [at, v] of flips) b[at % b.length] = v;
      return cut === null ? b : b.subarray(0, cut % (b.length + 1));
    }),
);
const query = fc.record(
  { scoreThreshold: fc.oneof(fc.double(), fc.constant('x')), maxDetections: fc.integer({ min: -5, max: 20000 }), boxFormat: fc.constantFrom('xyxy', 'xywh', 'polar') },
  { requiredKeys: [] },
);

describe('fuzzing POST /v1/detect', () => {
  it('600 random and mutated payloads: never a 5xx, the server keeps answering, memory stays bounded', async () => {
    const statuses = new Map<number, number>();
    const heapBefore = process.memoryUsage().heapUsed;
    await fc.assert(
      fc.asyncProperty(payload, fc.constantFrom(...TYPES), query, async (body, type, q) => {
        const qs = new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)])).toString();
        const res = await app.inject({ method: 'POST', url: `/v1/detect?${qs}`, headers: { 'content-type': type }, payload: body });
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        expect(res.statusCode).toBeLessThan(500);
        if (res.statusCode >= 400) expect(res.json()).toMatchObject({ code: expect.any(String), message: expect.any(String), requestId: expect.any(String) });
      }),
      { numRuns: 600, seed: 20261128 },
    );
    expect((await app.inject('/healthz')).statusCode).toBe(200);
    // Some of the mutated images still decode: the fuzz reached the pipeline, not only the parsers.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
    global.gc?.();
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(200 * 1024 * 1024);
  }, 300_000);
});
