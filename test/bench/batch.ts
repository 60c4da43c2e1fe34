/**
 * `npm run bench:batch`: the batch client's throughput through a local
 * server against the same pipeline in-process (--local), on the same machine
 * in the same script. Both sides run the pool the server runs (WORKERS
 * workers x ORT_THREADS threads) with warm models; the runs alternate, and
 * each side's best is kept (this machine is shared and noisy).
 *
 *   npm run bench:batch -- [--count 120] [--seed 99] [--model NAME] [--pipeline NAME] [--rounds 2] [--workers N]
 *
 * Images are written by the dataset generator (a seed the model never saw).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_RETRY } from '../../src/batch/retry.js';
import { runBatch } from '../../src/batch/run.js';
import { HttpTarget, LocalTarget, type RunOptions, type Target } from '../../src/batch/targets.js';
import { generateDataset } from '../../src/dataset/generate.js';
import type { PipelineName } from '../../src/detector.js';
import { DEFAULT_DECODE_LIMITS } from '../../src/image/decode.js';
import { DEFAULT_MODEL, resolveModelDir } from '../../src/model/package.js';
import { freePort, startServer } from '../helpers/processes.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '120' },
    seed: { type: 'string', default: '99' },
    model: { type: 'string', default: DEFAULT_MODEL },
    pipeline: { type: 'string' },
    rounds: { type: 'string', default: '2' },
    workers: { type: 'string', default: String(Math.min(availableParallelism(), 4)) },
  },
});
const workers = Number(values.workers);
const threads = Math.max(1, Math.floor(availableParallelism() / workers));
const dir = mkdtempSync(join(tmpdir(), 'rcnn-serve-bench-batch-'));
process.stderr.write(`writing ${values.count} images of seed ${values.seed} ...\n`);
await generateDataset({ seed: Number(values.seed), count: Number(values.count), out: dir });

const options: RunOptions = { model: values.model, pipeline: values.pipeline as PipelineName | undefined };
const { model: _, ...detectOptions } = options;
const local = new LocalTarget(await resolveModelDir(values.model!), detectOptions, { device: 'cpu', intraOpThreads: threads, limits: DEFAULT_DECODE_LIMITS }, workers);
const server = await startServer(freePort(), { WORKERS: String(workers), ORT_THREADS: String(threads), MAX_QUEUE: '64' });
const http = new HttpTarget(server.url, options, { timeoutMs: 120_000 });

let run = 0;
async function imagesPerSecond(target: Target, concurrency: number): Promise<number> {
  const summary = await runBatch({ inputs: [join(dir, 'images')], out: join(dir, `run-${run++}.jsonl`), resume: false, concurrency, retry: DEFAULT_RETRY, targets: [target] });
  if (summary.failed) throw new Error(`${summary.failed} images failed through ${target.name}`);
  return summary.imagesPerSecond;
}

try {
  // Warm-up: models loaded in every worker on both sides, first-run allocations done.
  // Twice the workers in flight on both sides: the next image is read (and uploaded) while a worker runs.
  const concurrency = 2 * workers;
  await imagesPerSecond(local, concurrency);
  await imagesPerSecond(http, concurrency);
  const best = { local: 0, http: 0 };
  for (let r = 0; r < Number(values.rounds); r++) {
    best.local = Math.max(best.local, await imagesPerSecond(local, concurrency));
    best.http = Math.max(best.http, await imagesPerSecond(http, concurrency));
  }
  console.log(`rcnn-serve batch, ${values.count} images of seed ${values.seed} (${values.model}, pipeline ${values.pipeline ?? 'default'}), ${workers} workers x ${threads} ORT threads, ${2 * workers} images in flight, best of ${values.rounds}`);
  console.log(`| target | images/s |`);
  console.log(`|---|---|`);
  console.log(`| --local (in-process pool) | ${best.local.toFixed(2)} |`);
  console.log(`| --url (local server, HTTP) | ${best.http.toFixed(2)} |`);
  console.log(`server / local: ${(best.http / best.local).toFixed(3)}`);
} finally {
  await local.close();
  server.child.kill('SIGTERM');
  await server.exited;
  rmSync(dir, { recursive: true, force: true });
}
