/**
 * `--shard i/n`: which images of a run are this machine's. An image belongs to
 * shard (first 4 bytes of sha256 of its path as listed) mod n, so n machines
 * given the same inputs split them into disjoint parts whose union is the
 * whole, whatever order each lists them in, and adding an image to the input
 * moves no other image to another shard.
 */

import { createHash } from 'node:crypto';

export interface Shard {
  index: number;
  count: number;
}

/** Parses "i/n" with 0 <= i < n. */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count) throw new RangeError(`--shard ${JSON.stringify(text)} is invalid; allowed: i/n with 0 <= i < n, e.g. 0/4`);
  return { index, count };
}

export function shardOf(path: string, count: number): number {
  return createHash('sha256').update(path).digest().readUInt32BE(0) % count;
}

export function inShard(path: string, shard: Shard | undefined): boolean {
  return shard === undefined || shardOf(path, shard.count) === shard.index;
}
