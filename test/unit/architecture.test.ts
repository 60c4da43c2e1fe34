/**
 * The layers of src/ (docs/architecture.md), read from the import statements
 * of every file: nothing imports upward, core/ is pure (nothing outside it,
 * no packages, no Node built-ins), sharp and ONNX Runtime each have one seam,
 * and no file imports itself back through others.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturePath } from '../helpers/fixtures.js';

const SRC = fixturePath('..', '..', 'src');

/** Bottom first. A module is a folder of src/ or a file at its top; it may import its own layer and those below. */
const LAYERS: readonly (readonly string[])[] = [
  ['core'],
  ['errors', 'suggest'],
  ['image', 'runtime', 'onnx'],
  ['model'],
  ['pipelines', 'inspect'],
  ['options'],
  ['detector', 'explain', 'proposals', 'workers'],
  ['dataset', 'eval', 'batch', 'config', 'http', 'quantize'],
  ['cli', 'index'],
];

/** Packages that only one folder may import: the seams. */
const SEAMS: Readonly<Record<string, string>> = { sharp: 'image', 'onnxruntime-node': 'runtime' };

interface Import {
  from: string;
  /** The imported file relative to src/ (for a relative import), or the package's name. */
  to: string;
  relative: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

const imports: Import[] = sourceFiles(SRC).flatMap((file) => {
  const from = relative(SRC, file);
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\b[^'";]*?from\s*'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/gm)].map((m) => {
    const spec = (m[1] ?? m[2])!;
    if (!spec.startsWith('.')) return { from, to: spec.startsWith('node:') ? 'node:' : spec.split('/')[0]!, relative: false };
    return { from, to: normalize(join(dirname(from), spec)).replace(/\.js$/, '.ts'), relative: true };
  });
});

const moduleOf = (path: string) => path.split('/')[0]!.replace(/\.ts$/, '');
const layerOf = (path: string) => LAYERS.findIndex((l) => l.includes(moduleOf(path)));

describe('architecture', () => {
  it('reads the imports of every module (the scan sees what it checks)', () => {
    expect(imports.length).toBeGreaterThan(200);
    const modules = new Set(imports.map((i) => moduleOf(i.from)));
    for (const m of modules) expect(LAYERS.flat(), `${m} has no layer`).toContain(m);
  });

  it('nothing imports a layer above its own', () => {
    const upward = imports.filter((i) => i.relative && layerOf(i.to) > layerOf(i.from)).map((i) => `${i.from} -> ${i.to}`);
    expect(upward).toEqual([]);
  });

  it('core/ imports only core/: no package, no Node built-in, nothing above', () => {
    const outside = imports.filter((i) => moduleOf(i.from) === 'core' && !(i.relative && moduleOf(i.to) === 'core')).map((i) => `${i.from} -> ${i.to}`);
    expect(outside).toEqual([]);
  });

  it('sharp is imported only by image/, onnxruntime-node only by runtime/', () => {
    const stray = imports.filter((i) => !i.relative && SEAMS[i.to] !== undefined && moduleOf(i.from) !== SEAMS[i.to]).map((i) => `${i.from} -> ${i.to}`);
    expect(stray).toEqual([]);
  });

  it("only model/ and pipelines/ import the graph sessions (runtime/session.ts); the rest name devices through runtime/device.ts", () => {
    const allowed = new Set(['model', 'pipelines', 'runtime']);
    const stray = imports.filter((i) => i.relative && i.to === 'runtime/session.ts' && !allowed.has(moduleOf(i.from))).map((i) => `${i.from} -> ${i.to}`);
    expect(stray).toEqual([]);
    expect(imports.filter((i) => i.to === 'runtime/session.ts').length).toBeGreaterThan(0);
  });

  it('no import cycle between files', () => {
    const edges = new Map<string, string[]>();
    for (const i of imports) if (i.relative) edges.set(i.from, [...(edges.get(i.from) ?? []), i.to]);
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const next of edges.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of edges.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });
});
