/**
 * The service's fuzz: a real `rcnn-serve serve` process (its worker threads
 * included in its memory) takes the seeded payloads of
 * test/helpers/fuzz-payloads.ts over raw sockets, eight at a time. Never a
 * 500; every non-2xx in the one envelope; no body anywhere with a path, a
 * stack frame or an ONNX node name; the process's RSS sampled and bounded;
 * healthy afterwards.
 */

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturePath } from '../helpers/fixtures.js';
import { fuzzRequests, type FuzzRequest } from '../helpers/fuzz-payloads.js';
import { freePort, startServer, type ServerProcess } from '../helpers/processes.js';
import { rawRequest, type RawResponse } from '../helpers/raw-http.js';
import { modelsWithFixtures } from '../helpers/packages.js';

const SEED = 20261202;
/**
 * The server's resident memory may not pass this during the run. Measured on this project's
 * 2-core machine with two workers and both shipped models, feature views on (the default): 0.64-0.66 GB at the start, at
 * most 1.17 GB during the run on Node 20 and 1.27 GB on Node 24 (the 2000 x 2000 image and the explain requests
 * included); before feature views and explain, 0.55-0.59 and 0.89-1.06 GB.
 */
const MAX_RSS_BYTES = 1.5 * 1024 ** 3;
/** What no response body may contain: an absolute path, a stack frame, ONNX Runtime's or a graph's words. */
const LEAKS = [/(^|[\s"'(=:])\/(?:work|root|home|tmp|usr|opt|var|srv|mnt|proc)\//, /\n\s+at \S.*:\d+:\d+/, /\.onnx\b/, /Name:'/, /onnxruntime/i, /\[ONNXRuntimeError\]/];

let server: ServerProcess;
let port: number;
beforeAll(async () => {
  port = freePort();
  server = await startServer(port, {
    MODELS_DIR: modelsWithFixtures(),
    WORKERS: '2',
    ORT_THREADS: '1',
    MAX_QUEUE: '32',
    MAX_BODY_BYTES: String(2 * 1024 * 1024),
    MAX_PIXELS: '4000000',
    PROPOSALS_MAX_PIXELS: '300000',
    BODY_TIMEOUT_MS: '3000',
  }, 120_000);
}, 180_000);
afterAll(async () => {
  server.child.kill('SIGTERM');
  expect(await server.exited).toBe(0);
});

/** The process's resident set, bytes (Linux /proc). */
function rss(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) * 1024;
}

describe('fuzzing the service', () => {
  it('over 10,000 seeded hostile requests: no 500, every error in the envelope, nothing internal leaked, memory bounded, healthy after', async () => {
    const requests = await fuzzRequests(SEED);
    expect(requests.length).toBeGreaterThan(10_000);
    const startRss = rss(server.child.pid!);
    let maxRss = startRss;
    const sampler = setInterval(() => (maxRss = Math.max(maxRss, rss(server.child.pid!))), 200);
    const byStatus = new Map<number, number>();
    const byCategory = new Map<string, Map<number, number>>();
    const problems: string[] = [];
    const check = (req: FuzzRequest, res: RawResponse) => {
      byStatus.set(res.status, (byStatus.get(res.status) ?? 0) + 1);
      const cat = byCategory.get(req.category) ?? new Map<number, number>();
      cat.set(res.status, (cat.get(res.status) ?? 0) + 1);
      byCategory.set(req.category, cat);
      const what = `${req.category} ${JSON.stringify(req.bytes.subarray(0, 80).toString('latin1'))} -> ${res.status}`;
      if (res.status === 0) problems.push(`${what}: the connection closed without an answer`);
      if (res.status >= 500 && res.status !== 503 && res.status !== 504) problems.push(`${what}: ${res.body.toString().slice(0, 300)}`);
      const type = res.headers['content-type'] ?? '';
      if (!type.startsWith('image/')) {
        const text = res.body.toString();
        for (const leak of LEAKS) if (leak.test(text)) problems.push(`${what}: body matches ${leak}: ${text.slice(0, 300)}`);
      }
      if (res.status >= 400) {
        let body: { code?: unknown; message?: unknown; requestId?: unknown } = {};
        try {
          body = JSON.parse(res.body.toString());
        } catch {
          problems.push(`${what}: the body is not JSON: ${res.body.toString().slice(0, 100)}`);
        }
        if (typeof body.code !== 'string' || typeof body.message !== 'string' || typeof body.requestId !== 'string') problems.push(`${what}: not the envelope: ${res.body.toString().slice(0, 200)}`);
      }
    };
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = next++; i < requests.length; i = next++) {
          const req = requests[i]!;
          check(req, await rawRequest(port, req.bytes, { end: req.end, timeoutMs: 60_000 }));
        }
      }),
    );
    clearInterval(sampler);
    const seconds = (performance.now() - started) / 1000;
    const summary = { requests: requests.length, seconds: Math.round(seconds), startRssMB: Math.round(startRss / 2 ** 20), maxRssMB: Math.round(maxRss / 2 ** 20), byStatus: Object.fromEntries(byStatus), byCategory: Object.fromEntries([...byCategory].map(([k, v]) => [k, Object.fromEntries(v)])) };
    console.log(`fuzz: ${JSON.stringify(summary)}`);
    expect({ count: problems.length, first: problems.slice(0, 20) }).toEqual({ count: 0, first: [] });
    expect(byStatus.get(500) ?? 0).toBe(0);
    // The run reached the pipelines, not only the parsers.
    expect(byStatus.get(200) ?? 0).toBeGreaterThan(500);
    expect(maxRss).toBeLessThan(MAX_RSS_BYTES);
    // Healthy afterwards: alive, ready, and still detecting.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    const res = await fetch(`http://127.0.0.1:${port}/v1/detect`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: readFileSync(fixturePath('images', 'shapes.png')) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { detections: unknown[] }).detections.length).toBeGreaterThan(0);
  }, 900_000);
});
