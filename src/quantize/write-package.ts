/**
 * Write a new package folder whole or not at all: its files go to a
 * temporary folder beside the destination, moved into place at the end, so
 * that a failure (or a kill) never leaves a half-written package that would
 * load.
 */

import { access, mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { QuantizeError } from '../errors.js';

export async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

/** @throws QuantizeError OUTPUT_EXISTS when `out` exists (before `fill` runs, or by the time it is done). */
export async function checkNewFolder(out: string): Promise<void> {
  if (await exists(out)) throw new QuantizeError('OUTPUT_EXISTS', `${out} exists already; name a new folder (nothing was written)`);
}

/**
 * Run `fill` on an empty temporary folder, then move it to `out`.
 * @throws QuantizeError OUTPUT_EXISTS; whatever `fill` throws, after removing the temporary folder.
 */
export async function writePackage(out: string, fill: (dir: string) => Promise<void>): Promise<void> {
  await checkNewFolder(out);
  const tmp = join(dirname(out), `.${basename(out)}.partial-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    await fill(tmp);
    if (await exists(out)) throw new QuantizeError('OUTPUT_EXISTS', `${out} appeared while it was being written; nothing was written`);
    await rename(tmp, out);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}
