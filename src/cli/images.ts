/**
 * What the image commands (detect, proposals) share: their input limits,
 * and running a command over images one by one, an output line (or block)
 * or an error line for each.
 */

import { CodedError, DetectError } from '../errors.js';
import { numberFlag, type CliIo } from './flags.js';

export const LIMIT_FLAGS = {
  'max-pixels': { type: 'string' },
  'max-bytes': { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The decode limits that --max-pixels and --max-bytes set. */
export function limitsFrom(values: { 'max-pixels'?: string; 'max-bytes'?: string }) {
  return {
    ...(values['max-pixels'] !== undefined && { maxPixels: numberFlag('max-pixels', values['max-pixels']) }),
    ...(values['max-bytes'] !== undefined && { maxBytes: numberFlag('max-bytes', values['max-bytes']) }),
  };
}

export function describeError(err: unknown, verbose: boolean): { code: string; message: string; stack?: string } {
  if (err instanceof CodedError) return { code: err.code, message: err.message, stack: verbose ? err.stack : undefined };
  const e = err as Error;
  return { code: 'INTERNAL_ERROR', message: e?.message ?? String(err), stack: verbose ? e?.stack : undefined };
}

/**
 * Run `work` on each image in order; one output line (JSON) or block (text)
 * per image, an error line for an image that fails, and the other images
 * still run. A bad option fails every image alike, so it stops at the first.
 * @returns exit status: 0 if all succeeded, else 1.
 */
export async function forEachImage(
  paths: string[],
  io: CliIo,
  json: boolean,
  verbose: boolean,
  work: (path: string, index: number) => Promise<{ json: object; text: string[] }>,
): Promise<number> {
  let failed = 0;
  for (const [i, path] of paths.entries()) {
    try {
      const out = await work(path, i);
      if (json) io.out(JSON.stringify(out.json));
      else out.text.forEach((l) => io.out(l));
    } catch (err) {
      failed++;
      const e = describeError(err, verbose);
      if (json) io.out(JSON.stringify({ path, error: { code: e.code, message: e.message } }));
      io.err(`error: ${path}: ${e.code}: ${e.message}`);
      if (e.stack) io.err(e.stack);
      if (err instanceof DetectError && (err.code === 'INVALID_OPTION' || err.code === 'UNSUPPORTED_PIPELINE')) {
        failed += paths.length - i - 1;
        break;
      }
    }
  }
  return failed > 0 ? 1 : 0;
}
