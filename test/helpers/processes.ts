/** The CLI and the server as child processes, as users run them (needs `npm run build`). */

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fixturePath } from './fixtures.js';

export const CLI = fixturePath('..', '..', 'bin', 'rcnn-serve.js');

/** The first port of the kernel's ephemeral range (outgoing connections take theirs from it): Linux's, else 32768. */
const EPHEMERAL_START = (() => {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
})();

/**
 * A port for a server under test: random, from 20000 to just below the ephemeral range, so that no
 * client socket of a test running alongside holds it (20000-40000 once collided with one: EADDRINUSE).
 */
export function freePort(): number {
  const top = Math.max(EPHEMERAL_START, 21000);
  return 20000 + Math.floor(Math.random() * (top - 20000));
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr: () => string;
}

/** Starts `rcnn-serve serve` on 127.0.0.1:port and waits for /readyz. */
export async function startServer(port: number, env: Record<string, string> = {}, readyWithinMs = 60_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', WORKERS: '1', ORT_THREADS: '1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyWithinMs;
  for (;;) {
    if (await fetch(`${url}/readyz`).then((r) => r.status === 200, () => false)) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server not ready (exit ${child.exitCode}); stderr: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, child, exited, stderr: () => stderr };
}

export interface CliRun {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** Runs the CLI with args; `done` settles when it exits, however it exits. */
export function runCli(args: string[], env: Record<string, string> = {}): CliRun {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}
