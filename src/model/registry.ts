/**
 * The packages a server offers: every folder under a models directory whose
 * model.json validates. Broken packages are reported, not fatal.
 */

import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DetectError } from '../errors.js';
import { didYouMean } from '../suggest.js';
import type { ModelManifest } from './manifest-schema.js';
import { DEFAULT_MODEL, readManifest } from './package.js';

export interface RegisteredModel {
  name: string;
  dir: string;
  manifest: ModelManifest;
}

export interface Registry {
  models: RegisteredModel[];
  /** Folders that looked like packages but failed validation, with why. */
  broken: { dir: string; reason: string }[];
}

/** Whether a folder entry is a folder, or a link to one (a package linked into MODELS_DIR from elsewhere). */
async function isFolder(parent: string, e: Dirent): Promise<boolean> {
  if (e.isDirectory()) return true;
  return e.isSymbolicLink() && (await stat(join(parent, e.name)).then((s) => s.isDirectory(), () => false));
}

/** The packages under `modelsDir`, by name, the default package (if there) first: requests that name no model get it. */
export async function scanModels(modelsDir: string): Promise<Registry> {
  const entries = await readdir(modelsDir, { withFileTypes: true });
  const registry: Registry = { models: [], broken: [] };
  const folders = [];
  for (const e of entries) if (await isFolder(modelsDir, e)) folders.push(e);
  for (const e of folders.sort((a, b) => a.name.localeCompare(b.name))) {
    const dir = join(modelsDir, e.name);
    const files = await readdir(dir);
    if (!files.includes('model.json')) continue; // e.g. recipes/
    try {
      const manifest = await readManifest(dir);
      registry.models.push({ name: manifest.name, dir, manifest });
    } catch (err) {
      registry.broken.push({ dir, reason: (err as Error).message });
    }
  }
  registry.models.sort((a, b) => Number(b.name === DEFAULT_MODEL) - Number(a.name === DEFAULT_MODEL));
  return registry;
}

/**
 * The registered package called `name`, or the default one (the first) when no name is given.
 * @throws DetectError MODEL_NOT_FOUND listing the names there are.
 */
export function modelNamed(registry: Registry, name: string | undefined): RegisteredModel {
  const m = name === undefined ? registry.models[0] : registry.models.find((x) => x.name === name);
  const names = registry.models.map((x) => x.name);
  if (!m) throw new DetectError('MODEL_NOT_FOUND', `no model ${JSON.stringify(name)}${didYouMean(String(name), names)}; available: ${names.join(', ')}`);
  return m;
}
