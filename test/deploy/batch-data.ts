/**
 * Input for the batch job in a container: synthetic images made by the image
 * itself (`rcnn-serve dataset`, so the check needs no build on the host), plus
 * corrupt files, which the job must record as failed and never lose; and its
 * output read back.
 */

import { chownSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { docker } from './engine.js';

export interface BatchInput {
  /** Every image's path as the job sees it (under /data/images), sorted. */
  all: string[];
  /** The corrupt ones among them. */
  corrupt: string[];
}

/** `count` images in `data`/images (seed 7, COCO annotations beside them) and `corrupt` truncated JPEGs; `data`/out for the job. */
export async function makeBatchInput(image: string, data: string, count: number, corrupt: number): Promise<BatchInput> {
  mkdirSync(join(data, 'out'), { recursive: true });
  for (const dir of [data, join(data, 'out')]) chownSync(dir, 1000, 1000); // the image's user writes there
  await docker(['run', '--rm', '--read-only', '--no-healthcheck', '-v', `${data}:/data`, image, 'node', 'bin/rcnn-serve.js', 'dataset', '--seed', '7', '--count', String(count), '--out', '/data'], { timeoutMs: 600_000 });
  const images = join(data, 'images');
  const first = readFileSync(join(images, readdirSync(images).sort()[0]!));
  const bad = Array.from({ length: corrupt }, (_, i) => `corrupt-${i}.jpg`);
  for (const name of bad) writeFileSync(join(images, name), first.subarray(0, first.length >> 2)); // a JPEG cut at a quarter
  const inContainer = (name: string) => `/data/images/${name}`;
  return { all: readdirSync(images).sort().map(inContainer), corrupt: bad.map(inContainer) };
}

export interface BatchLine {
  path: string;
  attempts: number;
  result?: { detections: unknown[] };
  error?: { code: string; message: string };
}

/** The JSON lines of a batch output file. */
export function readBatchLines(file: string): BatchLine[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as BatchLine);
}
