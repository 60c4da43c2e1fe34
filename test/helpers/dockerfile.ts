/**
 * A Dockerfile read and its steps carried out without a Docker engine (none
 * runs on these machines): each stage's filesystem is a folder, COPY copies
 * from the build context (less what .dockerignore leaves out) or from an
 * earlier stage's folder, RUN runs its shell command in the stage's WORKDIR
 * with the stage's ENV, and the final stage's CMD and HEALTHCHECK can then be
 * run the same way. What the base image itself provides (Node, npm, a shell)
 * comes from this machine: run it under the Node the image names.
 *
 * Container paths in ENV values (MODELS_DIR=/app/models) are mapped into the
 * stage's folder; only the instructions the project's Dockerfiles use are
 * supported, and anything else is refused rather than skipped.
 */

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, posix, relative } from 'node:path';
import { glob } from 'tinyglobby';

export interface Instruction {
  keyword: string;
  /** The text after the keyword, continuation lines joined. */
  args: string;
  /** The 1-based line it starts on. */
  line: number;
}

/** Instructions in order: comments and blank lines dropped, backslash continuations joined. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { parts: string[]; line: number } | undefined;
  for (const [i, raw] of text.split('\n').entries()) {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') || (trimmed === '' && !pending)) continue;
    const continued = trimmed.endsWith('\\');
    const part = continued ? trimmed.slice(0, -1).trim() : trimmed;
    if (pending) pending.parts.push(part);
    else pending = { parts: [part], line: i + 1 };
    if (continued) continue;
    const joined = pending.parts.filter(Boolean).join(' ');
    const m = /^(\S+)\s*(.*)$/s.exec(joined)!;
    out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!, line: pending.line });
    pending = undefined;
  }
  return out;
}

/** KEY=VALUE pairs of ENV, ARG or LABEL (double-quoted values allowed). */
export function parsePairs(args: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_.-]*)(?:=("(?:[^"\\]|\\.)*"|\S*))?/g)) {
    const value = m[2] ?? '';
    pairs[m[1]!] = value.startsWith('"') ? (JSON.parse(value) as string) : value;
  }
  return pairs;
}

/** The exec form (a JSON array) of CMD, ENTRYPOINT or HEALTHCHECK's CMD; shell form as sh -c. */
export function commandOf(args: string): string[] {
  return args.trim().startsWith('[') ? (JSON.parse(args) as string[]) : ['/bin/sh', '-c', args];
}

function substitute(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, a: string | undefined, b: string | undefined) => vars[(a ?? b)!] ?? whole);
}

export interface Stage {
  name: string;
  /** The base: an image reference, or the name of an earlier stage. */
  from: string;
  /** The folder standing for the stage's filesystem root. */
  root: string;
  workdir: string;
  env: Record<string, string>;
  user?: string;
  cmd?: string[];
  healthcheck?: { options: Record<string, string>; cmd: string[] };
  exposed: string[];
}

/** .dockerignore's patterns: a pattern excludes the paths it matches and everything under them. */
function dockerignore(context: string): string[] {
  const file = join(context, '.dockerignore');
  if (!existsSync(file)) return [];
  const patterns = readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (patterns.some((p) => p.startsWith('!'))) throw new Error('.dockerignore exceptions (!) are not supported here');
  return patterns.flatMap((p) => [p, `${p}/**`]);
}

/** Copies a context path (file or folder) to dest, leaving out what .dockerignore excludes. */
async function copyFromContext(context: string, source: string, dest: string, ignore: string[]): Promise<void> {
  const abs = join(context, source);
  if (!existsSync(abs)) throw new Error(`COPY ${source}: not in the build context`);
  const isDir = statSync(abs).isDirectory();
  const files = await glob(isDir ? [`${source.replace(/\/$/, '')}/**`] : [source], { cwd: context, ignore, dot: true, onlyFiles: true, expandDirectories: false });
  if (files.length === 0) throw new Error(`COPY ${source}: everything in it is excluded by .dockerignore`);
  for (const f of files) {
    const rel = isDir ? relative(source, f) : posix.basename(f);
    const target = isDir ? join(dest, rel) : dest.endsWith('/') ? join(dest, rel) : dest;
    mkdirSync(dirname(target), { recursive: true });
    cpSync(join(context, f), target);
  }
}

export interface BuildOptions {
  dockerfile: string;
  /** The build context (the repository root). */
  context: string;
  /** An empty folder for the stages' filesystems. */
  work: string;
  /** Build args (ARG overrides). */
  buildArgs?: Record<string, string>;
  log?: (line: string) => void;
}

/** Runs every instruction of every stage; returns the stages, the last one being the image. */
export async function buildWithoutEngine(options: BuildOptions): Promise<Stage[]> {
  const { context, work } = options;
  const log = options.log ?? (() => {});
  const ignore = dockerignore(context);
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  let stage: Stage | undefined;
  const inStage = (p: string) => join(stage!.root, isAbsolute(p) ? p : posix.join(stage!.workdir, p));
  for (const ins of parseDockerfile(readFileSync(options.dockerfile, 'utf8'))) {
    const vars = { ...globalArgs, ...stage?.env };
    if (ins.keyword === 'ARG') {
      const pairs = parsePairs(ins.args);
      for (const [k, v] of Object.entries(pairs)) (stage ? stage.env : globalArgs)[k] = options.buildArgs?.[k] ?? v;
      continue;
    }
    if (ins.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(substitute(ins.args, vars).trim());
      if (!m) throw new Error(`line ${ins.line}: FROM ${ins.args}: not understood`);
      const base = stages.find((s) => s.name === m[1]);
      const root = join(work, `stage-${stages.length}`);
      mkdirSync(root, { recursive: true });
      if (base) cpSync(base.root, root, { recursive: true, verbatimSymlinks: true });
      stage = { name: m[2] ?? String(stages.length), from: m[1]!, root, workdir: base?.workdir ?? '/', env: { ...base?.env }, exposed: [] };
      stages.push(stage);
      log(`FROM ${m[1]} (stage ${stage.name})`);
      continue;
    }
    if (!stage) throw new Error(`line ${ins.line}: ${ins.keyword} before FROM`);
    const args = substitute(ins.args, vars);
    switch (ins.keyword) {
      case 'WORKDIR':
        stage.workdir = posix.resolve(stage.workdir, args.trim());
        mkdirSync(inStage('.'), { recursive: true });
        break;
      case 'ENV':
        Object.assign(stage.env, parsePairs(args));
        break;
      case 'COPY': {
        const words = args.trim().split(/\s+/);
        const from = words[0]!.startsWith('--from=') ? words.shift()!.slice('--from='.length) : undefined;
        if (words.some((w) => w.startsWith('--'))) throw new Error(`line ${ins.line}: COPY ${args}: only --from is supported here`);
        const dest = words.pop()!;
        const target = inStage(dest) + (dest.endsWith('/') || words.length > 1 ? '/' : '');
        if (from !== undefined) {
          const source = stages.find((s) => s.name === from);
          if (!source) throw new Error(`line ${ins.line}: COPY --from=${from}: no such stage (images are not fetched here)`);
          for (const w of words) cpSync(join(source.root, posix.resolve(source.workdir, w)), target, { recursive: true });
        } else {
          for (const w of words) await copyFromContext(context, w, target, ignore);
        }
        log(`COPY ${args}`);
        break;
      }
      case 'RUN':
        log(`RUN ${args}`);
        // npm's cache inside the stage, where root's is in the image: `npm cache clean` there leaves this machine's alone.
        execFileSync('/bin/sh', ['-c', args], { cwd: inStage('.'), env: { ...containerEnv(stage), npm_config_cache: join(stage.root, 'root', '.npm') }, stdio: ['ignore', 'inherit', 'inherit'] });
        break;
      case 'USER':
        stage.user = args.trim();
        break;
      case 'EXPOSE':
        stage.exposed.push(...args.trim().split(/\s+/));
        break;
      case 'CMD':
        stage.cmd = commandOf(args);
        break;
      case 'HEALTHCHECK': {
        const m = /^((?:--\S+=\S+\s+)*)CMD\s+(.*)$/s.exec(args.trim());
        if (!m) throw new Error(`line ${ins.line}: HEALTHCHECK ${args}: only --option=value ... CMD is supported here`);
        const opts = Object.fromEntries(m[1]!.trim().split(/\s+/).filter(Boolean).map((o) => o.slice(2).split('=') as [string, string]));
        stage.healthcheck = { options: opts, cmd: commandOf(m[2]!) };
        break;
      }
      default:
        throw new Error(`line ${ins.line}: ${ins.keyword} is not supported by the engine-less build`);
    }
  }
  return stages;
}

/**
 * The stage's ENV over this machine's environment (PATH and the like stand
 * for the base image's), container paths mapped into the stage's folder.
 */
export function containerEnv(stage: Stage, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries({ ...stage.env, ...extra })) {
    const first = v.startsWith('/') ? v.split('/')[1] : undefined;
    env[k] = first && existsSync(join(stage.root, first)) ? join(stage.root, v) : v;
  }
  return env;
}

/** Starts the image's CMD in its WORKDIR with its ENV (and `extra`, as `docker run -e` would). */
export function runCmd(stage: Stage, extra: Record<string, string> = {}): ChildProcess {
  if (!stage.cmd) throw new Error('the image has no CMD');
  const [file, ...args] = stage.cmd;
  return spawn(file === 'node' ? process.execPath : file!, args, { cwd: join(stage.root, stage.workdir), env: containerEnv(stage, extra), stdio: ['ignore', 'pipe', 'pipe'] });
}
