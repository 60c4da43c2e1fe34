/**
 * Where a worker thread's module is: the compiled file next to this one or,
 * when running the TypeScript sources (as the tests do), a bootstrap file in
 * the temporary folder that registers tsx (a dev dependency) and re-exports
 * the source module. (A file, not a data: URL: piscina takes a path.) The
 * bootstrap is named by its content, so the processes of one checkout share
 * one file per worker module instead of leaving one each behind.
 */

import { createHash } from 'node:crypto';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
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
  const file = join(tmpdir(), `rcnn-serve-${name}-${createHash('sha256').update(bootstrap).digest('hex').slice(0, 16)}.mjs`);
  if (!existsSync(file)) {
    // Written whole under a name of its own, then renamed: another process never sees it half-written.
    const partial = `${file}.${process.pid}`;
    writeFileSync(partial, bootstrap);
    renameSync(partial, file);
  }
  return pathToFileURL(file);
}
