/**
 * Twice the load the server can hold: a real `rcnn-serve serve` with one
 * worker and a queue of two (three requests at most in its hands) and six
 * clients sending detections back to back. Every answer is 200, or 503 BUSY
 * with Retry-After and Connection: close; liveness answers throughout, and fast.
 */

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturePath } from '../helpers/fixtures.js';
import { freePort, startServer, type ServerProcess } from '../helpers/processes.js';

const WORKERS = 1;
const MAX_QUEUE = 2;
const CLIENTS = 2 * (WORKERS + MAX_QUEUE);
const DURATION_MS = 10_000;
/** /healthz's p99 under this overload may not pass this. Measured on this project's 2-core machine: p50 1.6 ms, p99 14.6 ms over 98 probes. */
const HEALTH_P99_MS = 100;

let server: ServerProcess;
beforeAll(async () => {
  server = await startServer(freePort(), { WORKERS: String(WORKERS), ORT_THREADS: '1', MAX_QUEUE: String(MAX_QUEUE) }, 120_000);
}, 180_000);
afterAll(async () => {
  server.child.kill('SIGTERM');
  expect(await server.exited).toBe(0);
});

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

describe('at twice saturation', () => {
  it('answers only 200, or 503 BUSY with Retry-After, closing the connection; /healthz stays up and fast', async () => {
    const image = readFileSync(fixturePath('images', 'shapes-val-000003.png'));
    const until = performance.now() + DURATION_MS;
    const statuses = new Map<number, number>();
    const bad: string[] = [];
    const client = async () => {
      while (performance.now() < until) {
        const res = await fetch(`${server.url}/v1/detect?scales=single`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: image });
        const body = (await res.json()) as { code?: string };
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 503) {
          // Connection: close, so that the retry's new connection may reach another replica.
          if (res.headers.get('retry-after') !== '1' || res.headers.get('connection') !== 'close' || body.code !== 'BUSY') {
            bad.push(`503 retry-after ${res.headers.get('retry-after')} connection ${res.headers.get('connection')} ${JSON.stringify(body)}`);
          }
          // A well-behaved client waits as told, shortened here to keep the load at the limit.
          await new Promise((r) => setTimeout(r, 50));
        } else if (res.status !== 200) bad.push(`${res.status} ${JSON.stringify(body)}`);
      }
    };
    const health: number[] = [];
    const probe = async () => {
      while (performance.now() < until) {
        const started = performance.now();
        const res = await fetch(`${server.url}/healthz`);
        await res.arrayBuffer();
        if (res.status !== 200) bad.push(`healthz ${res.status}`);
        health.push(performance.now() - started);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await Promise.all([...Array.from({ length: CLIENTS }, client), probe()]);
    health.sort((a, b) => a - b);
    const p99 = quantile(health, 0.99);
    console.log(`overload: ${JSON.stringify({ clients: CLIENTS, seconds: DURATION_MS / 1000, statuses: Object.fromEntries(statuses), healthz: { probes: health.length, p50: +quantile(health, 0.5).toFixed(1), p99: +p99.toFixed(1), max: +health.at(-1)!.toFixed(1) } })}`);
    expect(bad).toEqual([]);
    expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
    expect(statuses.get(503) ?? 0).toBeGreaterThan(0);
    expect(p99).toBeLessThan(HEALTH_P99_MS);
  }, 120_000);
});
