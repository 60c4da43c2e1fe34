/**
 * `npm run test:image`: the CPU image's steps without a Docker engine (none
 * runs here). Every stage of docker/Dockerfile is carried out in a temporary
 * folder (a clean copy of what it COPYs, its `npm ci` lines exactly as written,
 * the TypeScript build), then its CMD starts with its ENV (PORT moved to a free
 * port, as `docker run -e PORT=...` would), its HEALTHCHECK command must pass,
 * one POST /v1/detect must find objects, and SIGTERM must end it with status 0.
 * Node and npm are this machine's: CI runs it under Node 20 and Node 24.
 *
 *   npm run test:image [-- --dockerfile docker/Dockerfile] [--keep]
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildWithoutEngine, containerEnv, runCmd } from '../helpers/dockerfile.js';
import { freePort } from '../helpers/processes.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const { values } = parseArgs({ options: { dockerfile: { type: 'string', default: 'docker/Dockerfile' }, keep: { type: 'boolean' } } });
const work = mkdtempSync(join(tmpdir(), 'rcnn-serve-image-'));
const log = (line: string) => process.stderr.write(`[image] ${line}\n`);
const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

let status = 1;
try {
  log(`node ${process.version}; building ${values.dockerfile} in ${work}`);
  const started = performance.now();
  const stages = await buildWithoutEngine({ dockerfile: join(root, values.dockerfile!), context: root, work, log });
  const image = stages.at(-1)!;
  log(`built ${stages.length} stages in ${seconds(started)}`);
  if (!image.user || image.user === 'root' || image.user === '0') throw new Error(`the image runs as ${image.user ?? 'root'}; it must name a non-root USER`);
  if (!image.healthcheck) throw new Error('the image has no HEALTHCHECK');

  const port = String(freePort());
  const server = runCmd(image, { PORT: port });
  let output = '';
  server.stdout!.on('data', (d) => (output += d));
  server.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
  try {
    // HEALTHCHECK as Docker runs it: its command, in the container's environment, until it passes or start-period ends.
    const [file, ...args] = image.healthcheck.cmd;
    const startPeriodMs = Number.parseInt(image.healthcheck.options['start-period'] ?? '0s', 10) * 1000;
    const deadline = Date.now() + Math.max(startPeriodMs, 10_000);
    const healthStarted = performance.now();
    for (;;) {
      try {
        execFileSync(file === 'node' ? process.execPath : file!, args, { env: containerEnv(image, { PORT: port }), stdio: 'ignore', timeout: 5000 });
        break;
      } catch {
        if (server.exitCode !== null) throw new Error(`the server exited with ${server.exitCode}:\n${output}`);
        if (Date.now() > deadline) throw new Error(`HEALTHCHECK still failing after ${startPeriodMs} ms:\n${output}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    log(`HEALTHCHECK passed ${seconds(healthStarted)} after the CMD started`);

    const image_ = readFileSync(join(root, 'test/fixtures/images/shapes-val-000003.png'));
    const res = await fetch(`http://127.0.0.1:${port}/v1/detect`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: image_ });
    const body = (await res.json()) as { model?: string; pipeline?: string; detections?: { label: string }[] };
    if (res.status !== 200 || !body.detections?.length) throw new Error(`/v1/detect answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
    log(`/v1/detect: ${body.model} ${body.pipeline}, ${body.detections.length} detections (${body.detections.map((d) => d.label).join(', ')})`);
  } finally {
    server.kill('SIGTERM');
  }
  const code = await exited;
  if (code !== 0) throw new Error(`the server exited with ${code} after SIGTERM:\n${output}`);
  log('SIGTERM: exited 0');
  status = 0;
} catch (err) {
  log(`FAILED: ${(err as Error).message}`);
} finally {
  if (!values.keep) rmSync(work, { recursive: true, force: true });
}
process.exitCode = status;
