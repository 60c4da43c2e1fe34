/**
 * `npm run test:compose`: docker/compose.yaml brought up by the engine with
 * compose (Compose v2's `docker compose` where the machine has it, else
 * Debian's docker-compose 1.29): the service built and healthy, then the
 * batch one-off job run through compose against it, its JSONL checked line by
 * line, and run again, which must resume and send nothing.
 */

import { join } from 'node:path';
import { freePort } from '../helpers/processes.js';
import { buildArgDefault, ensureNodeBase } from './base-image.js';
import { makeBatchInput, readBatchLines } from './batch-data.js';
import { command, CommandError, docker } from './engine.js';
import { DOCKERFILE, IMAGE, ROOT, seconds, setUp, waitHealthy } from './setup.js';

const IMAGES = 24;
const CORRUPT = 1;
/** The batch client's exit status for a run that finished with some images failed for good. */
const FINISHED_WITH_FAILURES = 3;

const d = await setUp('compose');
await d.main(async () => {
  const v2 = await docker(['compose', 'version', '--short']).catch(() => undefined);
  const compose = v2 ? ['docker', 'compose'] : ['docker-compose'];
  d.log(`${compose.join(' ')} ${v2 ?? (await command('docker-compose', ['version', '--short']))}`);
  const data = join(d.work, 'batch');
  const port = freePort();
  const env = { ...process.env, RCNN_SERVE_PORT: String(port), BATCH_DATA: data };
  const project = ['-p', `rcnn-serve-test-${port}`, '-f', join(ROOT, 'docker/compose.yaml')];
  const run = (...args: string[]) => command(compose[0]!, [...compose.slice(1), ...project, ...args], { env, timeoutMs: 900_000 });

  await ensureNodeBase(buildArgDefault(DOCKERFILE, 'NODE_IMAGE'), d.log, d.work);
  const up = performance.now();
  d.atEnd(() => run('down', '--timeout', '20'));
  await run('up', '-d', '--build');
  await waitHealthy(await run('ps', '-q', 'rcnn-serve'), 120_000);
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  if (ready.status !== 200) throw new Error(`/readyz on the published port: ${ready.status}`);
  d.log(`up -d --build: built, started and healthy in ${seconds(up)}; /readyz 200 on 127.0.0.1:${port}`);

  const input = await makeBatchInput(IMAGE, data, IMAGES, CORRUPT);
  const batch = async (): Promise<void> => {
    try {
      await run('run', '--rm', 'batch');
    } catch (err) {
      if (!(err instanceof CommandError && err.exitCode === FINISHED_WITH_FAILURES)) throw err;
    }
  };
  const job = performance.now();
  await batch();
  const out = join(data, 'out/detections.jsonl');
  const lines = readBatchLines(out);
  const paths = lines.map((l) => l.path).sort();
  const failed = lines.filter((l) => l.error).map((l) => `${l.path} ${l.error!.code}`);
  if (paths.join() !== input.all.join()) throw new Error(`the output's images are not the input's:\n${paths.join('\n')}`);
  if (failed.join() !== input.corrupt.map((p) => `${p} CORRUPT_IMAGE`).join()) throw new Error(`failed: ${failed.join(', ')}`);
  if (!lines.every((l) => l.error || Array.isArray(l.result?.detections))) throw new Error('a line with neither an error nor detections');
  const detections = lines.reduce((n, l) => n + (l.result?.detections.length ?? 0), 0);
  d.log(`run --rm batch: ${lines.length} lines in ${seconds(job)}, one per image; ${detections} detections; failed: ${failed.join(', ')}`);

  await batch();
  const again = readBatchLines(out).length;
  if (again !== lines.length) throw new Error(`run again, the output has ${again} lines, not ${lines.length}`);
  d.log(`run --rm batch again: resumed, still ${again} lines`);
});
