/**
 * `npm run test:image`: the CPU image, built by `docker build` and run by a
 * real Docker engine (installed and started if this machine has none; the
 * Node base made here if it cannot be pulled: see base-image.ts).
 *
 *   1. `docker build` of docker/Dockerfile; the image's size, and what it holds.
 *   2. `docker run --read-only --tmpfs /tmp --memory --cpus`, as the image's own
 *      non-root user: healthy by its own HEALTHCHECK; /v1/detect, /v1/render and
 *      /v1/proposals on a photo; a decompression bomb and a 50 MB body get their
 *      413s, and the container is not OOM-killed.
 *   3. `docker stop` with requests in flight: they all finish, exit code 0,
 *      within the grace period.
 *   4. A model folder mounted read-only over /app/models is what is served; a
 *      broken package in it is skipped with a log line.
 */

import { chmodSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pngClaiming } from '../helpers/images.js';
import { rawRequest } from '../helpers/raw-http.js';
import { docker } from './engine.js';
import { buildImage, containerLogs, containerState, IMAGE, publishedPort, ROOT, seconds, setUp, sleep, waitHealthy, type Deploy } from './setup.js';

/** The limits the container runs under: what a small node gives one replica. */
const MEMORY = '1g';
const CPUS = '2';
/** The service's SHUTDOWN_TIMEOUT_MS default is 10 s; docker stop waits this long before SIGKILL. */
const STOP_GRACE_S = 20;

const photo = readFileSync(join(ROOT, 'test/fixtures/images/chelsea.png'));
const shapes = readFileSync(join(ROOT, 'test/fixtures/images/shapes-val-000003.png'));

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

async function post(base: string, path: string, body: Buffer<ArrayBuffer>, type = 'image/png'): Promise<Response> {
  return fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
}

/**
 * Starts the image hardened as in production; returns its id and base URL once Docker calls it
 * healthy, with the seconds from `docker run` to /readyz answering 200 and to healthy.
 */
async function start(d: Deploy, extra: string[] = []): Promise<{ id: string; base: string; readyS: number; healthyS: number }> {
  const started = performance.now();
  const id = await docker(['run', '-d', '--read-only', '--tmpfs', '/tmp', '--memory', MEMORY, '--memory-swap', MEMORY, '--cpus', CPUS, '-p', '127.0.0.1::8080', ...extra, IMAGE]);
  d.atEnd(() => docker(['rm', '-f', id]));
  const base = `http://127.0.0.1:${await publishedPort(id)}`;
  const ready = (async () => {
    // Each try bounded: docker-proxy takes the connection before the server listens, and may hold it.
    while (!(await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.status === 200, () => false))) await sleep(100);
    return (performance.now() - started) / 1000;
  })();
  await waitHealthy(id, 120_000);
  const healthyS = (performance.now() - started) / 1000;
  return { id, base, readyS: await ready, healthyS };
}

const d = await setUp('image');
await d.main(async () => {
  // 1. The image.
  await buildImage(d);
  const config = JSON.parse(await docker(['image', 'inspect', '--format', '{{json .Config}}', IMAGE])) as { User: string; Healthcheck?: { Test: string[]; Interval: number } };
  check(config.User !== '' && config.User !== 'root' && config.User !== '0', `the image runs as ${config.User || 'root'}`);
  check(Boolean(config.Healthcheck?.Test.join(' ').includes('/healthz')), 'the image has no HEALTHCHECK on /healthz');
  const sizes = await docker(['run', '--rm', '--entrypoint', 'du', IMAGE, '-sm', '/usr/local', '/app/node_modules', '/app/models', '/app/dist']);
  d.log(`in it (MB): ${sizes.replace(/\s+(\S+)(\n|$)/g, ' $1, ').replace(/, $/, '')}`);

  // 2. Hardened run: read-only root, tmpfs /tmp, memory and CPU limits, its own user.
  const { id, base, readyS, healthyS } = await start(d);
  d.log(`docker run --read-only --tmpfs /tmp --memory ${MEMORY} --cpus ${CPUS}: /readyz 200 after ${readyS.toFixed(1)} s, healthy by its own HEALTHCHECK (every ${config.Healthcheck!.Interval / 1e9} s) after ${healthyS.toFixed(1)} s`);
  const uid = await docker(['exec', id, 'id', '-u']);
  check(uid === '1000', `the server runs as uid ${uid}`);

  const detect = await post(base, '/v1/detect', photo);
  const detection = (await detect.json()) as { model: string; pipeline: string; image: { width: number }; detections: unknown[] };
  check(detect.status === 200 && detection.image?.width === 451 && Array.isArray(detection.detections), `/v1/detect on a photo: ${detect.status} ${JSON.stringify(detection).slice(0, 200)}`);
  const onShapes = (await (await post(base, '/v1/detect?pipeline=rcnn', shapes)).json()) as { detections: { label: string }[] };
  check(onShapes.detections.length > 0, 'no detections on the shapes image');
  const render = await post(base, '/v1/render', photo);
  const png = new Uint8Array(await render.arrayBuffer());
  check(render.status === 200 && render.headers.get('content-type') === 'image/png' && png[1] === 0x50, `/v1/render: ${render.status} ${render.headers.get('content-type')}`);
  const proposals = await post(base, '/v1/proposals?maxProposals=100', photo);
  const proposed = (await proposals.json()) as { proposals: number[][] };
  check(proposals.status === 200 && proposed.proposals.length === 100, `/v1/proposals: ${proposals.status}`);
  d.log(`photo (451 x 300): /v1/detect ${detection.model} ${detection.pipeline} ${detection.detections.length} detections; rcnn on the shapes image: ${onShapes.detections.length} detections of ${new Set(onShapes.detections.map((x) => x.label)).size} classes; /v1/render ${png.length} B PNG; /v1/proposals ${proposed.proposals.length} regions`);

  const bomb = await post(base, '/v1/detect', Buffer.from(pngClaiming(100_000, 100_000)));
  const bombBody = (await bomb.json()) as { code: string };
  check(bomb.status === 413 && bombBody.code === 'IMAGE_TOO_LARGE', `bomb: ${bomb.status} ${bombBody.code}`);
  // 50 MB over a bare socket: the answer comes from the headers (Content-Length over MAX_BODY_BYTES), whatever the client
  // still sends; the server lingers, so docker-proxy relays it instead of a reset (it once lost the 413: status 0).
  const port = Number(new URL(base).port);
  const huge = await rawRequest(port, [`POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${50 * 1024 * 1024}\r\n\r\n`, Buffer.alloc(50 * 1024 * 1024)], { timeoutMs: 30_000 });
  check(huge.status === 413 && huge.body.toString().includes('BODY_TOO_LARGE') && huge.error === undefined, `50 MB body: ${huge.status} ${huge.error ?? ''} ${huge.body.toString().slice(0, 200)}`);
  const after = await containerState(id);
  check(after.Running && !after.OOMKilled, `after the bomb and the 50 MB body: ${JSON.stringify(after)}`);
  const peak = Number(await docker(['exec', id, 'cat', '/sys/fs/cgroup/memory/memory.max_usage_in_bytes']).catch(() => 'NaN'));
  d.log(`bomb: 413 IMAGE_TOO_LARGE; 50 MB body: 413 BODY_TOO_LARGE, no reset (${huge.ms.toFixed(0)} ms); still running, OOMKilled false, peak memory ${(peak / 2 ** 20).toFixed(0)} MiB of ${MEMORY}`);

  // 3. docker stop with requests in flight.
  let answered = 0;
  const inFlight = Array.from({ length: 4 }, () =>
    post(base, '/v1/detect?pipeline=fast-rcnn', photo).then(
      (r) => (answered++, r.status),
      (err: Error) => err.message,
    ),
  );
  await sleep(300);
  check(answered === 0, `${answered} of the 4 requests were answered before docker stop; they must be in flight`);
  const stopping = performance.now();
  await docker(['stop', '-t', String(STOP_GRACE_S), id]);
  const stopS = seconds(stopping);
  const statuses = await Promise.all(inFlight);
  const stopped = await containerState(id);
  check(statuses.every((s) => s === 200), `requests in flight at docker stop: ${statuses.join(', ')}`);
  check(stopped.ExitCode === 0 && !stopped.OOMKilled, `exit code ${stopped.ExitCode} after docker stop`);
  check(Number.parseFloat(stopS) < STOP_GRACE_S, `docker stop took ${stopS}: past the grace period, killed`);
  d.log(`docker stop with 4 requests in flight: ${stopS}, all 4 answered 200, exit code 0`);

  // 4. Models mounted read-only: a copy of the default package and a broken one.
  const models = join(d.work, 'models');
  cpSync(join(ROOT, 'models/shapes-vgg'), join(models, 'shapes-vgg'), { recursive: true });
  mkdirSync(join(models, 'broken'));
  writeFileSync(join(models, 'broken/model.json'), '{"name": "broken", "pipelines": ');
  for (const dir of [models, join(models, 'shapes-vgg'), join(models, 'broken')]) chmodSync(dir, 0o755);
  const mounted = await start(d, ['-v', `${models}:/app/models:ro`]);
  const list = (await (await fetch(`${mounted.base}/v1/models`)).json()) as { models: { name: string }[] };
  check(list.models.map((m) => m.name).join() === 'shapes-vgg', `served from the mount: ${list.models.map((m) => m.name).join()}`);
  const logs = await containerLogs(mounted.id);
  const skipped = logs.split('\n').find((l) => l.includes('skipping model package') && l.includes('/app/models/broken'));
  check(skipped !== undefined, `no log line skipping the broken package:\n${logs.slice(-2000)}`);
  d.log(`models mounted read-only: served ${list.models.map((m) => m.name).join()}; the broken one skipped: ${JSON.parse(skipped!).msg}`);
});
