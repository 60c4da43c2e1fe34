/**
 * `npm run bench:load`: the HTTP service under load. Not a test.
 *
 *   npm run bench:load -- [--seconds 30] [--concurrency 16] [--workers 2]
 *
 * 1. Starts `rcnn-serve serve` as its own process (default model, WORKERS
 *    workers, one ONNX Runtime thread each) and sends the fixture image
 *    (480 x 360) from `concurrency` clients for `seconds`; probes /healthz
 *    every 100 ms; reads the server's event-loop lag from its /metrics.
 * 2. Runs the same worker pool in this process, without HTTP, at the same
 *    concurrency for the same time.
 * Prints images/s, p50/p99 latency, status counts, /healthz latency, lag, and
 * the ratio HTTP / in-process throughput (target >= 0.9).
 */

import { freePort, startServer } from '../helpers/processes.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { SHIPPED_MODELS_DIR, DEFAULT_MODEL } from '../../src/model/package.js';
import { InferencePool } from '../../src/workers/inference-pool.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '30' }, concurrency: { type: 'string', default: '16' }, workers: { type: 'string', default: '2' } } });
const seconds = Number(values.seconds), concurrency = Number(values.concurrency), workers = Number(values.workers);
const image = readFileSync(join(root, 'test/fixtures/images/shapes.png'));

const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);

async function drive(run: () => Promise<number>): Promise<{ latencies: number[]; statuses: Map<number, number>; rate: number }> {
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  const end = performance.now() + seconds * 1000;
  let ok = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        const status = await run().catch(() => 0);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status === 200) {
          ok++;
          latencies.push(performance.now() - t);
        } else if (status === 503) await new Promise((r) => setTimeout(r, 50));
      }
    }),
  );
  return { latencies, statuses, rate: ok / seconds };
}

// 1. Over HTTP, against a server process.
const server = await startServer(freePort(), { WORKERS: String(workers), ORT_THREADS: '1', MAX_QUEUE: String(4 * concurrency) });
const base = server.url;
try {
  process.stderr.write(`HTTP: ${concurrency} clients for ${seconds} s ...\n`);
  const health: number[] = [];
  let probing = true;
  const prober = (async () => {
    while (probing) {
      const t = performance.now();
      await fetch(`${base}/healthz`).then((r) => r.arrayBuffer());
      health.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const http = await drive(() => fetch(`${base}/v1/detect`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: image }).then(async (r) => (await r.arrayBuffer(), r.status)));
  probing = false;
  await prober;
  const metrics = await fetch(`${base}/metrics`).then((r) => r.text());
  // Sample lines, not the # HELP lines that name the same metric. prom-client's figures include its 10 ms timer resolution.
  const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN) * 1000;
  const lagP99 = gauge('rcnn_nodejs_eventloop_lag_p99_seconds');
  const lagMax = gauge('rcnn_nodejs_eventloop_lag_max_seconds');
  server.child.kill('SIGTERM');

  // 2. The same pool in this process, no HTTP.
  process.stderr.write(`in-process: ${concurrency} concurrent for ${seconds} s ...\n`);
  const pool = new InferencePool({ workers, maxQueue: 4 * concurrency });
  const settings = { device: 'cpu' as const, intraOpThreads: 1, limits: { maxBytes: 20 << 20, maxPixels: 40_000_000 } };
  const modelDir = join(SHIPPED_MODELS_DIR, DEFAULT_MODEL);
  await Promise.all(Array.from({ length: workers }, () => pool.detect({ modelDir, bytes: image, options: {}, settings })));
  const local = await drive(() => pool.detect({ modelDir, bytes: image, options: {}, settings }).then(() => 200));
  await pool.close();

  const row = (name: string, r: typeof http) =>
    `| ${name} | ${r.rate.toFixed(2)} | ${pct(r.latencies, 50).toFixed(0)} | ${pct(r.latencies, 99).toFixed(0)} | ${[...r.statuses].map(([s, n]) => `${s}: ${n}`).join(', ')} |`;
  process.stdout.write(
    [
      `${workers} workers x 1 ONNX Runtime thread, ${concurrency} concurrent clients, ${seconds} s, ${image.length}-byte 480 x 360 PNG, default model.`,
      '',
      '| path | images/s | p50 ms | p99 ms | statuses |',
      '|---|---|---|---|---|',
      row('HTTP (POST /v1/detect)', http),
      row('in-process pool', local),
      '',
      `HTTP / in-process throughput: ${(http.rate / local.rate).toFixed(3)} (target >= 0.9)`,
      `server event-loop lag (prom-client, includes its 10 ms resolution): p99 ${lagP99.toFixed(1)} ms, max ${lagMax.toFixed(1)} ms (target p99 < 50)`,
      `/healthz during the load: p50 ${pct(health, 50).toFixed(1)} ms, p99 ${pct(health, 99).toFixed(1)} ms, max ${Math.max(...health).toFixed(1)} ms over ${health.length} probes (target < 50)`,
      '',
    ].join('\n'),
  );
} finally {
  server.child.kill('SIGTERM');
}
