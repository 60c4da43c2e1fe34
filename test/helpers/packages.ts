/** Edited copies of the shipped package, for tests of what a broken or unusual package does. */

import { copyFileSync, cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelManifest } from '../../src/model/manifest-schema.js';
import { SHIPPED_MODELS_DIR } from '../../src/model/package.js';

/**
 * A copy of the shipped package `name` in a temporary folder, its model.json changed by `edit`, and
 * each file named in `replace` (a graph's file name) overwritten by the given path.
 */
export function editedPackage(edit: (manifest: ModelManifest) => void, replace: Record<string, string> = {}, name = 'shapes-vgg'): string {
  const dir = mkdtempSync(join(tmpdir(), 'rcnn-serve-edited-'));
  cpSync(join(SHIPPED_MODELS_DIR, name), dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as ModelManifest;
  edit(manifest);
  writeFileSync(join(dir, 'model.json'), JSON.stringify(manifest));
  for (const [file, from] of Object.entries(replace)) copyFileSync(from, join(dir, file));
  return dir;
}
