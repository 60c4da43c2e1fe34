/**
 * What every deploy check starts from: a Docker engine (ensureEngine), the
 * Dockerfile's Node base (ensureNodeBase), and the CPU image built from the
 * repository by `docker build`, as an operator builds it. Then helpers for
 * containers: wait until Docker calls one healthy, read its state.
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildArgDefault, ensureNodeBase } from './base-image.js';
import { command, docker, ensureEngine, type Engine, type Log } from './engine.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DOCKERFILE = join(ROOT, 'docker/Dockerfile');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** The tag docker/compose.yaml and docker/stack.yaml run. */
export const IMAGE = `rcnn-serve:${VERSION}`;

export const seconds = (since: number): string => `${((performance.now() - since) / 1000).toFixed(1)} s`;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Deploy {
  log: Log;
  /** A scratch folder, removed at the end. */
  work: string;
  engine: Engine;
  /** Runs `fn`, then the clean-ups registered with `atEnd` (last first), then releases the engine; exit status 0 or 1. */
  main(fn: () => Promise<void>): Promise<void>;
  atEnd(cleanup: () => Promise<unknown>): void;
}

/** The engine and a scratch folder for the check called `name` (its log prefix). */
export async function setUp(name: string): Promise<Deploy> {
  const log: Log = (line) => process.stderr.write(`[${name}] ${line}\n`);
  const work = mkdtempSync(join(tmpdir(), `rcnn-serve-${name}-`));
  const engine = await ensureEngine(log, work);
  log(`docker engine ${engine.version}; host node ${process.version}`);
  const cleanups: (() => Promise<unknown>)[] = [];
  let cleaned: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaned ??= (async () => {
      for (const cleanup of cleanups.reverse()) await cleanup().catch((err: Error) => log(`clean-up: ${err.message}`));
      await engine.release();
      rmSync(work, { recursive: true, force: true });
    })());
  // Stopped early (Ctrl-C, a CI timeout): the containers, the swarm and the dockerd go all the same.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: cleaning up`);
      void cleanUp().finally(() => process.exit(1));
    });
  }
  return {
    log,
    work,
    engine,
    atEnd: (cleanup) => cleanups.push(cleanup),
    async main(fn) {
      let status = 1;
      try {
        await fn();
        status = 0;
        log('passed');
      } catch (err) {
        log(`FAILED: ${(err as Error).stack ?? err}`);
      }
      await cleanUp();
      process.exitCode = status;
    },
  };
}

let base: Promise<unknown> | undefined;

/** `docker build` of docker/Dockerfile from the repository root, its base made available first (once per run); returns the build's seconds. */
export async function buildImage(d: Deploy, tag: string = IMAGE, extra: string[] = []): Promise<number> {
  await (base ??= ensureNodeBase(buildArgDefault(DOCKERFILE, 'NODE_IMAGE'), d.log, d.work));
  const started = performance.now();
  await docker(['build', '--quiet', '-f', DOCKERFILE, '-t', tag, ...extra, ROOT], { timeoutMs: 1_800_000 });
  const s = (performance.now() - started) / 1000;
  const bytes = Number(await docker(['image', 'inspect', '--format', '{{.Size}}', tag]));
  d.log(`built ${tag} in ${s.toFixed(0)} s: ${(bytes / 1e6).toFixed(0)} MB`);
  return s;
}

export interface ContainerState {
  Status: string;
  Running: boolean;
  OOMKilled: boolean;
  ExitCode: number;
  Health?: { Status: string; Log: { ExitCode: number; Output: string }[] };
}

export async function containerState(id: string): Promise<ContainerState> {
  return JSON.parse(await docker(['inspect', '--format', '{{json .State}}', id])) as ContainerState;
}

/** Waits until Docker's own HEALTHCHECK calls the container healthy; throws if it exits or turns unhealthy. */
export async function waitHealthy(id: string, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const state = await containerState(id);
    if (state.Health?.Status === 'healthy') return;
    if (!state.Running || state.Health?.Status === 'unhealthy' || Date.now() > deadline) {
      const logs = await containerLogs(id).catch(() => '');
      throw new Error(`container ${id.slice(0, 12)} is ${state.Status}, health ${state.Health?.Status}, exit ${state.ExitCode}:\n${logs}`);
    }
    await sleep(200);
  }
}

/** The host port Docker published for the container's 8080. */
export async function publishedPort(id: string): Promise<number> {
  const line = (await docker(['port', id, '8080/tcp'])).split('\n')[0]!;
  return Number(line.slice(line.lastIndexOf(':') + 1));
}

/** What the container wrote, stdout and stderr together (the server logs to both). */
export async function containerLogs(id: string): Promise<string> {
  return command('sh', ['-c', 'docker logs "$0" 2>&1', id]);
}
