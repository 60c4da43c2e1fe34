import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

/** Absolute path of a file under test/fixtures. */
export function fixturePath(...parts: string[]): string {
  return fileURLToPath(new URL(['../fixtures', ...parts].join('/'), import.meta.url));
}

/** Parse a JSON fixture written by one of the test/fixtures/make_*.py scripts. */
export function loadFixture<T = any>(...parts: string[]): T {
  return JSON.parse(readFileSync(fixturePath(...parts), 'utf8')) as T;
}

/** A gzipped little-endian uint16 array (label images, hierarchies) written by a test/fixtures/make_*.py script. */
export function loadU16Fixture(...parts: string[]): Uint16Array {
  const buf = gunzipSync(readFileSync(fixturePath(...parts)));
  return new Uint16Array(buf.buffer, buf.byteOffset, buf.length / 2);
}

/** Largest absolute difference between two equally long arrays; throws on a length mismatch. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
