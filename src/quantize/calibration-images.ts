/**
 * The images a calibration runs on: a folder (walked recursively, sorted), a
 * batch manifest (one path per line), or a COCO annotations file (its
 * images, in the file's order). The same source always gives the same list.
 */

import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { collectInputs, InputError } from '../batch/inputs.js';
import { QuantizeError } from '../errors.js';

/** Fewer images than this say little about a tensor's range: refused. */
export const MIN_CALIBRATION_IMAGES = 8;
export const DEFAULT_CALIBRATION_IMAGES = 32;

export interface CalibrationImages {
  /** The first `count` images of the source, in order. */
  files: string[];
  /** The source's name for model.json: a folder's name, a file's with its folder's; never a machine's path. */
  label: string;
}

async function cocoImages(file: string): Promise<string[] | undefined> {
  if (!file.endsWith('.json')) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
  const images = (doc as { images?: unknown }).images;
  if (!Array.isArray(images)) return undefined;
  return images.map((im, i) => {
    const name = (im as { file_name?: unknown }).file_name;
    if (typeof name !== 'string') throw new QuantizeError('CALIBRATION_IMAGES', `${file}: images[${i}] has no file_name`);
    return resolve(dirname(file), name);
  });
}

/** @throws QuantizeError CALIBRATION_IMAGES when the source does not exist or holds fewer than `count` images. */
export async function calibrationImages(source: string, count: number): Promise<CalibrationImages> {
  if (!Number.isInteger(count) || count < MIN_CALIBRATION_IMAGES) {
    throw new QuantizeError('CALIBRATION_IMAGES', `--count is ${count}; calibration needs at least ${MIN_CALIBRATION_IMAGES} images`);
  }
  const info = await stat(source).catch(() => undefined);
  if (!info) throw new QuantizeError('CALIBRATION_IMAGES', `--calibration ${source}: no such file or folder (give a folder of images, a manifest or a COCO annotations file)`);
  let files: string[];
  try {
    files = (info.isFile() ? await cocoImages(source) : undefined) ?? (await collectInputs([source]));
  } catch (err) {
    if (err instanceof InputError) throw new QuantizeError('CALIBRATION_IMAGES', err.message, { cause: err });
    throw err;
  }
  if (files.length < count) {
    throw new QuantizeError('CALIBRATION_IMAGES', `${source} holds ${files.length} image${files.length === 1 ? '' : 's'}; the calibration asks for ${count} (--count, at least ${MIN_CALIBRATION_IMAGES})`);
  }
  const full = resolve(source);
  return { files: files.slice(0, count), label: info.isFile() ? `${basename(dirname(full))}/${basename(full)}` : basename(full) };
}
