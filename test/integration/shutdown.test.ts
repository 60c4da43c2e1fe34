/**
 * Stopping the real processes as an operator and a supervisor do: SIGTERM
 * with requests in flight and queued under a short shutdown timeout, and
 * stopping `npm start`, `npx rcnn-serve serve` and `npx rcnn-serve batch`
 * through the npm process a supervisor started (npm passes neither SIGTERM
 * nor SIGKILL on to the command).
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fixturePath } from '../helpers/fixtures.js';
import { freePort, startServer } from '../helpers/processes.js';

const ROOT = fixturePath('..', '..');
const sample = readFileSync(fixturePath('images', 'shapes-val-000003.png'));
const scratch = mkdtempSync(join(tmpdir(), 'rcnn-serve-shutdown-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Pids of processes whose command line contains `token` (Linux /proc). */
function pidsWith(token: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(token);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Resolves once `check` holds, polling; rejects after `ms`. */
async function until(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return performance.now() - started;
}

const answers = (url: string) => fetch(url).then(() => true, () => false);

describe('SIGTERM under a short SHUTDOWN_TIMEOUT_MS with requests queued', () => {
  it('answers every request (200 if it finished in time, else 503 SHUTTING_DOWN with Retry-After), no resets, and exits 0 at the timeout', async () => {
    const timeoutMs = 2000;
    const server = await startServer(freePort(), { SHUTDOWN_TIMEOUT_MS: String(timeoutMs), MAX_QUEUE: '8' });
    // R-CNN on the default fast selective search: seconds per image, so one runs and the rest queue.
    const requests = Array.from({ length: 5 }, () =>
      fetch(`${server.url}/v1/detect?pipeline=rcnn`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: sample }).then(
        async (res) => ({ status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { code?: string } }),
        (err: Error) => ({ status: 0, retryAfter: null, body: { code: `connection error: ${err.message}` } }),
      ),
    );
    await new Promise((r) => setTimeout(r, 500));
    const stopped = performance.now();
    server.child.kill('SIGTERM');
    const results = await Promise.all(requests);
    expect(await server.exited).toBe(0);
    const exitMs = performance.now() - stopped;
    for (const r of results) {
      if (r.status === 200) continue;
      expect(r).toMatchObject({ status: 503, retryAfter: '1', body: { code: 'SHUTTING_DOWN' } });
    }
    expect(results.filter((r) => r.status === 503).length).toBeGreaterThan(0);
    // It exited 2.8 s after the timeout, the queued ones reset. Now every answer comes at the timeout,
    // and the exit once the running R-CNN reaches its next batch and stops (measured 1.2 s after it).
    expect(exitMs).toBeLessThan(timeoutMs + 2500);
  }, 120_000);
});

/** `npm start` or `npx rcnn-serve ARGS` in the repository, as a supervisor starts it: its own process group. */
function viaNpm(args: string[], env: Record<string, string>): ChildProcess {
  return spawn('npm', args, { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn', WORKERS: '1', ORT_THREADS: '1', ...env }, stdio: 'ignore', detached: true });
}

describe('a supervisor stops the command through npm', () => {
  for (const [how, args, signal] of [
    ['npm start', ['start'], 'SIGTERM'],
    ['npm start', ['start'], 'SIGKILL'],
    ['npx rcnn-serve serve', ['exec', '--', 'rcnn-serve', 'serve'], 'SIGKILL'],
  ] as const) {
    it(`${how}: ${signal} to npm stops the server (it lived on as an orphan holding the port)`, async () => {
      const port = freePort();
      const npm = viaNpm([...args], { PORT: String(port), HOST: '127.0.0.1' });
      const url = `http://127.0.0.1:${port}/readyz`;
      await until(() => fetch(url).then((r) => r.status === 200, () => false), 90_000, 'the server is ready');
      npm.kill(signal);
      // The watch checks every 0.5 s; then the server drains (nothing in flight) and exits.
      const ms = await until(async () => !(await answers(url)), 5000, 'the server stops answering');
      expect(ms).toBeLessThan(5000);
    }, 120_000);
  }

  it('npx rcnn-serve batch: SIGTERM to npm stops the batch cleanly after the images in flight; --resume finishes it', async () => {
    const server = await startServer(freePort());
    try {
      const images = join(scratch, 'images');
      mkdirSync(images);
      for (let i = 0; i < 40; i++) writeFileSync(join(images, `${String(i).padStart(3, '0')}.png`), sample);
      const out = join(scratch, `batch-${process.pid}.jsonl`);
      const npm = viaNpm(['exec', '--', 'rcnn-serve', 'batch', images, '--url', server.url, '--out', out, '--concurrency', '1'], {});
      await until(() => readFileSafe(out).length > 0, 60_000, 'the batch client has written its first lines');
      npm.kill('SIGTERM');
      await until(() => pidsWith(out).length === 0, 15_000, 'the batch client (node under sh under npm) has exited');
      const written = readFileSafe(out).trim().split('\n').filter(Boolean).length;
      expect(written).toBeLessThan(40);
      const resume = spawn(process.execPath, [join(ROOT, 'bin', 'rcnn-serve.js'), 'batch', images, '--url', server.url, '--out', out, '--resume'], { stdio: 'ignore' });
      expect(await new Promise((r) => resume.on('exit', r))).toBe(0);
      const lines = readFileSafe(out).trim().split('\n').map((l) => JSON.parse(l) as { path: string; result?: unknown });
      expect(new Set(lines.map((l) => l.path)).size).toBe(40);
      expect(lines).toHaveLength(40);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  }, 180_000);
});

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
