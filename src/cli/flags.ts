/**
 * What every command shares: the usage error (exit 2), the I/O it writes to,
 * number flags, and the request options of src/options.ts as flags: each
 * option is the kebab-case flag of its name (maxDetections:
 * --max-detections), parsed to its type here and checked by the library, and
 * its --help line comes from its doc, range and default.
 */

import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { CocoDataset } from '../dataset/coco.js';
import { DetectError } from '../errors.js';
import { cocoDataset } from '../eval/coco-results.js';
import { optionsOf, type Operation, type OptionSpec, type OptionsOf } from '../options.js';
import { closest } from '../suggest.js';

/** Bad usage: the command line itself is wrong (exit status 2). */
export class UsageError extends Error {}

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

/**
 * parseArgs, strict, with positionals; an unknown flag, or a flag missing its value, is a usage
 * error that names the nearest known flag.
 */
export function parseCommand<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const flag = /'(-{1,2}[^' ]+)/.exec(e.message)?.[1];
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag) {
      const near = closest(flag.replace(/^-+/, ''), Object.keys(config.options ?? {}));
      throw new UsageError(`unknown option ${flag}${near === undefined ? '' : `; did you mean --${near}?`}`);
    }
    if (e.code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError(e.message);
    throw err;
  }
}

/** A file a flag names, as text; a missing or unreadable one is a usage error naming the flag. */
export async function readFlagFile(flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? `--${flag} ${path}: no such file` : `--${flag} ${path}: cannot read it (${code ?? (err as Error).message})`);
  }
}

/** A JSON file a flag names; not JSON is a usage error naming the flag and the parser's complaint. */
export async function readJsonFlag(flag: string, path: string): Promise<unknown> {
  const text = await readFlagFile(flag, path);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--${flag} ${path} is not JSON (${(err as Error).message})`);
  }
}

/** COCO ground truth a flag names (--gt), read and checked before any work: a usage error naming the flag. */
export async function readGroundTruthFlag(flag: string, path: string): Promise<{ dataset: CocoDataset; path: string }> {
  const doc = await readJsonFlag(flag, path);
  try {
    return { dataset: cocoDataset(doc, path), path };
  } catch (err) {
    throw new UsageError(`--${flag} ${(err as Error).message}`);
  }
}

/** The CLI flag of an option: its name in kebab case. */
export function flagOf(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** `raw` as a number, or a usage error naming the flag. */
export function numberFlag(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`--${flag} needs a number, got ${JSON.stringify(raw)}`);
  return v;
}

/**
 * parseArgs' config for the options of `op` (all take a value but the
 * booleans), to spread into a command's own flags. Typed as empty so that
 * parseArgs still types the command's own flags; optionsFromFlags reads these.
 */
export function optionFlags(op: Operation): Record<never, never> {
  const flags: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, spec] of optionsOf(op)) flags[flagOf(name)] = { type: spec.type === 'boolean' ? 'boolean' : 'string' };
  return flags;
}

/** The options of `op` that parsed flags set, numbers parsed (their ranges are the library's to check). */
export function optionsFromFlags<Op extends Operation>(op: Op, values: object): OptionsOf<Op> {
  const options: Record<string, unknown> = {};
  for (const [name, spec] of optionsOf(op)) {
    const raw = (values as Record<string, unknown>)[flagOf(name)];
    if (raw === undefined) continue;
    options[name] = spec.type === 'number' || spec.type === 'integer' ? numberFlag(flagOf(name), raw as string) : raw;
  }
  return options as OptionsOf<Op>;
}

/**
 * Check up front, as a usage error, what the library would refuse for every
 * image alike (a command that runs thousands of images should not fail each).
 */
export function asUsageError<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof DetectError && err.code === 'INVALID_OPTION') throw new UsageError(err.message.replace(/^(\w+)/, (name) => `--${flagOf(name)}`));
    throw err;
  }
}

/** Words in lines of at most `width` after the first line's `first` columns, the others indented to column 27. */
function wrap(text: string, first: number, width = 118): string {
  const lines = [''];
  let room = width - first;
  for (const word of text.split(' ')) {
    if (lines.at(-1)! && lines.at(-1)!.length + 1 + word.length > room) {
      lines.push('');
      room = width - 27;
    }
    lines[lines.length - 1] += `${lines.at(-1) ? ' ' : ''}${word}`;
  }
  return lines.join(`\n${' '.repeat(27)}`);
}

/**
 * One --help line: the flag and its placeholder to column 27, then who takes
 * it (`takers`: pipelines or methods), the doc, the range and the default.
 */
export function helpLine(name: string, spec: OptionSpec, takers?: readonly string[]): string {
  const flag = `  --${flagOf(name)}${spec.arg ? ` ${spec.arg}` : ''}`.padEnd(27);
  const range = spec.enum && !spec.arg?.includes('|') ? `: ${spec.enum.join(' | ')}` : spec.minimum !== undefined ? `, ${spec.minimum}..${spec.maximum}` : '';
  const only = takers ? `${takers.join(' / ')}: ` : '';
  const fallback = spec.default !== undefined ? String(spec.default) : spec.defaultFrom;
  return flag + wrap(`${only}${spec.doc}${range}${fallback ? ` (default: ${fallback})` : ''}`, flag.length);
}

/** The flags of the options of `op`, with their placeholders, comma-separated in lines of at most `width`, indented by 2. */
export function flagList(op: Operation, width = 118): string {
  const lines = [''];
  for (const [name, spec] of optionsOf(op)) {
    const flag = `--${flagOf(name)}${spec.arg ? ` ${spec.arg}` : ''}`;
    if (lines.at(-1)!.length + flag.length + 4 > width) {
      lines[lines.length - 1] += ',';
      lines.push('');
    }
    lines[lines.length - 1] += `${lines.at(-1) ? ', ' : '  '}${flag}`;
  }
  return lines.join('\n');
}

/** The --help lines of the options of `op`. */
export function optionsHelp(op: Operation): string {
  return optionsOf(op)
    .map(([name, spec]) => helpLine(name, spec, op === 'proposals' ? spec.methods : spec.pipelines))
    .join('\n');
}
