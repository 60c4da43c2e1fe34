/**
 * `npm run test:swarm`: docker/stack.yaml on a Docker Swarm (this machine made
 * a single-node swarm if it is not in one, and taken out again after): the
 * service's 3 replicas, with stack.mesh.yaml's routing mesh where the kernel
 * has IPVS (without it, neither the mesh nor a virtual IP works: the jobs find
 * the replicas by DNS round robin, endpoint_mode dnsrr), and the batch client as 4
 * one-shard jobs over 500 images and 2 corrupt ones. While the jobs run, one
 * replica's container is killed (`docker kill`) and the service is rolled to a
 * new image (start-first, one at a time, each new task gated by its health
 * check). Then: every image is in the union of the shards' outputs exactly
 * once, only the corrupt ones failed, every job completed (exit 0, with
 * --allow-failed), and the service is back to 3 healthy replicas on the new image.
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../helpers/processes.js';
import { makeBatchInput, readBatchLines, type BatchLine } from './batch-data.js';
import { command, docker } from './engine.js';
import { buildImage, IMAGE, ROOT, seconds, setUp, sleep } from './setup.js';

const IMAGES = 500;
const CORRUPT = 2;
const SHARDS = 4;
const REPLICAS = 3;
const NEXT = `${IMAGE}-next`;
const JOB_LIMIT_MS = 15 * 60_000;

const d = await setUp('swarm');
await d.main(async () => {
  const swarm = await docker(['info', '--format', '{{.Swarm.LocalNodeState}}']);
  if (swarm !== 'active') {
    await docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
    d.atEnd(() => docker(['swarm', 'leave', '--force']));
    d.log('made this machine a single-node swarm (left again at the end)');
  }
  await buildImage(d);
  await buildImage(d, NEXT, ['--label', 'org.rcnn-serve.rollout=next']); // the same layers, a new image id
  const data = join(d.work, 'batch');
  const input = await makeBatchInput(IMAGE, data, IMAGES, CORRUPT);

  const stack = `rcnn-serve-test-${process.pid}`;
  const service = `${stack}_rcnn-serve`;
  const jobs = Array.from({ length: SHARDS }, (_, i) => `${stack}_batch-${i}`);
  const port = freePort();
  // dockerd loads IPVS for the swarm's load balancing when the kernel has it.
  const ipvs = existsSync('/proc/net/ip_vs');
  const files = ipvs ? ['docker/stack.yaml', 'docker/stack.mesh.yaml'] : ['docker/stack.yaml'];
  const env = { ...process.env, BATCH_DATA: data, RCNN_SERVE_PORT: String(port), RCNN_SERVE_ENDPOINT_MODE: ipvs ? 'vip' : 'dnsrr' };
  const out = join(data, 'out');
  // Whole lines only: a line being appended is not yet an image done.
  const done = () => readdirSync(out).reduce((n, f) => n + readFileSync(join(out, f), 'utf8').split('\n').length - 1, 0);
  const deadline = Date.now() + JOB_LIMIT_MS;
  const until = async (what: string, ok: () => boolean | Promise<boolean>) => {
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`${what} not within ${JOB_LIMIT_MS / 60_000} min; ${done()} images done`);
      await sleep(500);
    }
  };
  const replicaContainers = async (): Promise<string[]> => (await docker(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${service}`])).split('\n').filter(Boolean);

  const started = performance.now();
  const at = () => seconds(started);
  d.atEnd(async () => {
    await docker(['stack', 'rm', stack]);
    const ofStack = ['--filter', `label=com.docker.stack.namespace=${stack}`];
    while ((await docker(['service', 'ls', '-q', ...ofStack])) !== '') await sleep(500);
    // A completed job's container outlives its service (engine 20.10): removed here.
    const left = (await docker(['ps', '-aq', ...ofStack])).split('\n').filter(Boolean);
    if (left.length > 0) await docker(['rm', '-f', ...left]);
  });
  await command('docker', ['stack', 'deploy', '--resolve-image', 'never', ...files.flatMap((f) => ['-c', join(ROOT, f)]), stack], { env });
  const reach = ipvs ? `virtual IP, routing mesh on port ${port}` : 'no IPVS in this kernel: DNS round robin (dnsrr), no routing mesh';
  d.log(`docker stack deploy -c ${files.join(' -c ')} ${stack}: ${REPLICAS} replicas of ${IMAGE} (${reach}), ${SHARDS} batch jobs over ${input.all.length} images (${CORRUPT} corrupt)`);

  // One replica killed once the jobs are under way, then the rolling update.
  await until('15% of the images', () => done() >= IMAGES * 0.15);
  const victim = (await replicaContainers())[0]!;
  await docker(['kill', victim]);
  d.log(`${at()}: docker kill of replica ${victim} with ${done()} of ${input.all.length} images done`);
  await until('35% of the images', () => done() >= IMAGES * 0.35);
  await docker(['service', 'update', '--detach', '--no-resolve-image', '--image', NEXT, service]);
  d.log(`${at()}: rolling ${service} to ${NEXT} with ${done()} images done`);

  let rolled = '';
  let finished: string[] = [];
  while (finished.length < SHARDS) {
    if (Date.now() > deadline) throw new Error(`the jobs did not finish within ${JOB_LIMIT_MS / 60_000} min; ${done()} images done`);
    await sleep(1000);
    if (!rolled) {
      const state = await docker(['service', 'inspect', '--format', '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}', service]);
      if (state === 'completed') rolled = at();
      else if (state.startsWith('rollback') || state === 'paused') throw new Error(`the rolling update is ${state}`);
      if (rolled) d.log(`${rolled}: rolling update completed with ${done()} images done`);
    }
    finished = [];
    for (const job of jobs) {
      const tasks = (await docker(['service', 'ps', '--format', '{{.CurrentState}}', job])).split('\n');
      if (tasks.some((t) => t.startsWith('Complete'))) finished.push(job);
    }
  }
  d.log(`${at()}: all ${SHARDS} jobs complete`);

  // Every image exactly once in the union of the shards' outputs; only the corrupt ones failed.
  const lines: BatchLine[] = [];
  for (let i = 0; i < SHARDS; i++) {
    const shard = readBatchLines(join(out, `detections-${i}.jsonl`));
    const tasks = (await docker(['service', 'ps', '-q', jobs[i]!])).split('\n').length;
    d.log(`shard ${i}/${SHARDS}: ${shard.length} lines, ${tasks} task${tasks > 1 ? 's' : ''}`);
    lines.push(...shard);
  }
  const seen = new Map<string, number>();
  for (const l of lines) seen.set(l.path, (seen.get(l.path) ?? 0) + 1);
  const duplicates = [...seen].filter(([, n]) => n > 1).map(([p]) => p);
  const missing = input.all.filter((p) => !seen.has(p));
  const failed = lines.filter((l) => l.error).map((l) => `${l.path} ${l.error!.code}`).sort();
  const retried = lines.filter((l) => l.attempts > 1).length;
  const why = new Map<string, number>();
  for (const job of jobs) {
    for (const [, code] of (await command('sh', ['-c', 'docker service logs --raw "$0" 2>&1', job])).matchAll(/^retry \d+\/\d+ of .*?: (\w+): /gm)) why.set(code!, (why.get(code!) ?? 0) + 1);
  }
  const retries = [...why].map(([code, n]) => `${n} ${code}`).join(', ') || 'none';
  d.log(`${lines.length} lines for ${input.all.length} images: duplicates ${duplicates.length}, missing ${missing.length}, failed ${failed.length} (${failed.join(', ')}); ${retried} images needed retries (${retries})`);
  if (duplicates.length > 0 || missing.length > 0) throw new Error(`duplicates: ${duplicates.join(', ')}; missing: ${missing.join(', ')}`);
  if (failed.join() !== input.corrupt.map((p) => `${p} CORRUPT_IMAGE`).join()) throw new Error(`failed: ${failed.join(', ')}`);
  if (!rolled) throw new Error('the rolling update had not completed when the jobs did');

  // Back to 3 healthy replicas, all on the new image (answering through the routing mesh, where there is one).
  const healthyBy = Date.now() + 120_000;
  for (;;) {
    const replicas = (await docker(['ps', '--filter', `label=com.docker.swarm.service.name=${service}`, '--format', '{{.Image}} {{.Status}}'])).split('\n').filter(Boolean);
    if (replicas.length === REPLICAS && replicas.every((r) => r.startsWith(`${NEXT} `) && r.includes('(healthy)'))) break;
    if (Date.now() > healthyBy) throw new Error(`replicas: ${replicas.join('; ')}`);
    await sleep(1000);
  }
  if (ipvs) {
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    if (ready.status !== 200) throw new Error(`/readyz through the routing mesh: ${ready.status}`);
  }
  d.log(`${at()}: ${REPLICAS} replicas healthy on ${NEXT}${ipvs ? '; /readyz 200 through the routing mesh' : ''}`);
});
