/**
 * Where a worker thread's module is: the compiled file next to this one or,
 * when running the TypeScript sources (as the tests do), a bootstrap file in
 * the temporary folder that registers tsx (a dev dependency) and re-exports
 * the source module. (A file, not a data: URL: piscina takes a path.)
 */

import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** @param name the module's base name in src/workers, e.g. 'inference-worker'. */
export function workerEntry(name: string): URL {
  const js = new URL(`./${name}.js`, import.meta.url);
  if (existsSync(fileURLToPath(js))) return js;
  // require.resolve gives tsx's CommonJS entry; its ES module twin sits beside it.
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const source = new URL(`./${name}.ts`, import.meta.url).href;
  const bootstrap =
    `const { register } = await import(${JSON.stringify(tsx)}); register();` +
    `const module = await import(${JSON.stringify(source)}); export default module.default;`;
  const file = join(tmpdir(), `rcnn-serve-${name}-${process.pid}.mjs`);
  writeFileSync(file, bootstrap);
  return pathToFileURL(file);
}
