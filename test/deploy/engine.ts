/**
 * The Docker engine these checks run on: Debian's docker.io, installed with
 * apt when this machine has none, and a `dockerd` started when none answers
 * (stopped again at the end; one that was running is left alone). Commands go
 * through the `docker` client on PATH, which negotiates the engine's API.
 */

import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type Log = (line: string) => void;

/** Debian's packages for the engine, compose (v1, Python) and the stand-in base image's root file system, by the program each gives. */
const ENGINE_PACKAGES: Record<string, string> = { 'docker.io': 'dockerd', 'docker-compose': 'docker-compose', debootstrap: 'debootstrap' };

/** `docker ARGS...`: its stdout, trimmed; a failure throws with its stderr. */
export async function docker(args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  return command('docker', args, options);
}

/** A command that failed: its exit code (null when a signal or the timeout ended it) and what it printed. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null,
  ) {
    super(message);
  }
}

/** Any command: its stdout, trimmed; a failure throws a CommandError carrying the command, its exit code and its stderr. */
export async function command(file: string, args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  try {
    const { stdout } = await run(file, args, { maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 0, env: options.env, cwd: options.cwd });
    return stdout.trim();
  } catch (err) {
    const e = err as Error & { stderr?: string; stdout?: string; code?: number | string };
    const exitCode = typeof e.code === 'number' ? e.code : null;
    throw new CommandError(`${file} ${args.join(' ')} failed (exit ${exitCode ?? e.code}): ${(e.stderr || e.stdout || e.message).trim().slice(-2000)}`, exitCode);
  }
}

/** Whether `name` is a program on PATH. */
function has(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function engineAnswers(): Promise<boolean> {
  return docker(['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 10_000 }).then(
    () => true,
    () => false,
  );
}

export interface Engine {
  /** The engine's version, e.g. 20.10.24+dfsg1. */
  version: string;
  /** Stops the dockerd this run started, if it started one. */
  release(): Promise<void>;
}

/** Installs the engine's packages if missing, starts dockerd if none answers, and waits for it. */
export async function ensureEngine(log: Log, workDir: string): Promise<Engine> {
  const missing = Object.keys(ENGINE_PACKAGES).filter((pkg) => !has(ENGINE_PACKAGES[pkg]!));
  if (missing.length > 0) {
    log(`installing ${missing.join(', ')} from Debian`);
    await command('apt-get', ['update', '-qq']);
    await command('apt-get', ['install', '-y', '-qq', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  let daemon: ChildProcess | undefined;
  if (!(await engineAnswers())) {
    const logFile = join(workDir, 'dockerd.log');
    const out = openSync(logFile, 'a');
    daemon = spawn('dockerd', [], { stdio: ['ignore', out, out], detached: true });
    closeSync(out);
    log(`started dockerd (pid ${daemon.pid}, log ${logFile})`);
    const deadline = Date.now() + 60_000;
    while (!(await engineAnswers())) {
      if (daemon.exitCode !== null || Date.now() > deadline) throw new Error(`dockerd did not come up (exit ${daemon.exitCode}); see ${logFile}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const version = await docker(['info', '--format', '{{.ServerVersion}}']);
  return {
    version,
    async release() {
      if (!daemon || daemon.exitCode !== null) return;
      const exited = new Promise((resolve) => daemon!.once('exit', resolve));
      daemon.kill('SIGTERM');
      await exited;
      log('stopped the dockerd this run started');
    },
  };
}
