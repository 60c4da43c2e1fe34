/**
 * The test-only packages, and edited copies of the shipped one for tests of
 * what a broken or unusual package does.
 */

import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelManifest } from '../../src/model/manifest-schema.js';
import { SHIPPED_MODELS_DIR } from '../../src/model/package.js';
import { fixturePath } from './fixtures.js';

/**
 * fixture-tiny-fpn: a small Faster R-CNN (2.6 MB) with torchvision parity fixtures. It lives with
 * the tests, not in models/, so that a server or the CLI never offers it to a user.
 */
export const TINY_FPN = fixturePath('packages', 'fixture-tiny-fpn');

let both: string | undefined;
/** A models folder with the shipped packages and the test ones (links, made once per process and removed at its exit), for MODELS_DIR. */
export function modelsWithFixtures(): string {
  if (both) return both;
  const dir = (both = mkdtempSync(join(tmpdir(), 'rcnn-serve-models-')));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const shipped = readdirSync(SHIPPED_MODELS_DIR).filter((name) => existsSync(join(SHIPPED_MODELS_DIR, name, 'model.json')));
  for (const name of shipped) symlinkSync(join(SHIPPED_MODELS_DIR, name), join(both, name));
  symlinkSync(TINY_FPN, join(both, 'fixture-tiny-fpn'));
  return both;
}

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
