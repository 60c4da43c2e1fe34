/**
 * The images of a batch run, from what the user named: folders (walked
 * recursively for image files), glob patterns, image files, and manifest files
 * (one path per line, or JSON lines with a "path" or a JSON string; relative
 * paths are relative to the manifest's folder). Folder listings are sorted, so
 * the same inputs give the same list on every machine; a path named twice is
 * kept once, where it first appears.
 */

import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';

/** File extensions taken as images when walking a folder or naming a file. */
export const IMAGE_EXTENSIONS = Object.freeze(['.jpg', '.jpeg', '.png', '.webp']);

export class InputError extends Error {}

function isImagePath(path: string): boolean {
  return IMAGE_EXTENSIONS.includes(extname(path).toLowerCase());
}

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: string[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(path)));
    else if (e.isFile() && isImagePath(e.name)) out.push(path);
  }
  return out;
}

function manifestLine(line: string, where: string): string {
  if (!line.startsWith('{') && !line.startsWith('"')) return line;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new InputError(`${where} is not JSON; a manifest line is a path, a JSON string or {"path": ...}`);
  }
  if (typeof v === 'string') return v;
  const path = (v as { path?: unknown }).path;
  if (typeof path !== 'string' || path === '') throw new InputError(`${where} has no "path" string`);
  return path;
}

async function readManifest(file: string): Promise<string[]> {
  const root = dirname(file);
  const lines = (await readFile(file, 'utf8')).split('\n');
  const out: string[] = [];
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const path = manifestLine(line, `${file}:${i + 1}`);
    out.push(isAbsolute(path) ? path : join(root, path));
  }
  return out;
}

/**
 * @returns the image paths, as they will appear in the output: joined onto
 * the input as named (relative inputs give relative paths).
 * @throws InputError for an input that does not exist or a glob that matches nothing.
 */
export async function collectInputs(inputs: readonly string[]): Promise<string[]> {
  const seen = new Set<string>();
  const out: string[] = [];
  const add = (path: string) => {
    const key = resolve(path);
    if (seen.has(key)) return;
    seen.add(key);
    out.push(path);
  };
  for (const input of inputs) {
    const info = await stat(input).catch(() => undefined);
    if (info?.isDirectory()) {
      (await walk(input)).forEach(add);
    } else if (info?.isFile()) {
      if (isImagePath(input)) add(input);
      else (await readManifest(input)).forEach(add);
    } else if (isDynamicPattern(input)) {
      const matches = (await glob(input, { onlyFiles: true, expandDirectories: false, absolute: isAbsolute(input) })).filter(isImagePath).sort();
      if (matches.length === 0) throw new InputError(`the pattern ${JSON.stringify(input)} matches no image (${IMAGE_EXTENSIONS.join(', ')})`);
      matches.forEach(add);
    } else {
      throw new InputError(`${input}: no such file or folder`);
    }
  }
  return out;
}
