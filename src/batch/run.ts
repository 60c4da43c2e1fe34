/**
 * A batch run: every image of the input (this shard's part), sent to the
 * targets with bounded concurrency, retried on transient failures, one output
 * line each. With resume, images already in the output are neither sent nor
 * written again. A stop signal ends it cleanly: no new image is started, those
 * in flight finish and are written.
 */

import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CocoDataset, CocoResult } from '../dataset/coco.js';
import { CocoIds } from '../eval/coco-results.js';
import { collectInputs } from './inputs.js';
import { OutputJournal, readJournal, type BatchError, type BatchRecord } from './journal.js';
import type { BatchCounts, Progress } from './progress.js';
import { backoffMs, sleep, type RetryPolicy } from './retry.js';
import { inShard, type Shard } from './shard.js';
import { Balancer, type Outcome, type Target } from './targets.js';

export interface BatchOptions {
  inputs: readonly string[];
  out: string;
  resume: boolean;
  shard?: Shard;
  /** Images in flight at once. */
  concurrency: number;
  retry: RetryPolicy;
  targets: readonly Target[];
  /** Write the run's detections (earlier runs' lines included) as COCO results here. */
  /** Also write COCO results to `out`; ids from the ground truth `gt` (read by the caller before the run, so a bad one costs no run). */
  coco?: { out: string; gt?: { dataset: CocoDataset; path: string } };
  progress?: Progress;
  /** Aborting stops the run after the images in flight. */
  signal?: AbortSignal;
  /** Log lines (retries, target errors). */
  log?: (line: string) => void;
}

export interface BatchSummary extends BatchCounts {
  seconds: number;
  /** Images finished by this run per second. */
  imagesPerSecond: number;
  /** Images of the output (all runs) that failed for good. */
  failedInOutput: number;
  /** The run was stopped before every image was written. */
  interrupted: boolean;
}

async function readImage(path: string): Promise<{ bytes: Uint8Array } | { error: BatchError }> {
  try {
    return { bytes: await readFile(path) };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { error: { code: 'FILE_NOT_FOUND', message: `${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}` } };
  }
}

export async function runBatch(options: BatchOptions): Promise<BatchSummary> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const all = await collectInputs(options.inputs);
  const mine = all.filter((p) => inShard(p, options.shard));
  const journal = OutputJournal.open(options.out, options.resume);
  const mineKeys = new Set(mine.map((p) => resolve(p)));
  const todo = mine.filter((p) => !journal.existing.has(resolve(p)));
  const counts: BatchCounts = { total: mine.length, skipped: mine.length - todo.length, done: 0, failed: 0, retried: 0 };
  const balancer = new Balancer(options.targets);
  options.progress?.update(counts);

  const write = (record: BatchRecord) => {
    journal.append(record);
    if ('result' in record) counts.done++;
    else counts.failed++;
    options.progress?.update(counts);
  };

  const processImage = async (path: string) => {
    const read = await readImage(path);
    if ('error' in read) return write({ path, attempts: 0, error: read.error });
    const sha256 = createHash('sha256').update(read.bytes).digest('hex');
    for (let attempt = 0; ; attempt++) {
      const target = balancer.pick();
      target.outstanding++;
      let outcome: Outcome;
      try {
        outcome = await target.detect(path, read.bytes);
      } finally {
        target.outstanding--;
      }
      if ('result' in outcome) return write({ path, sha256, attempts: attempt + 1, result: outcome.result });
      const stopping = options.signal?.aborted ?? false;
      if (!outcome.retryable || attempt >= options.retry.retries || stopping) {
        // A transient failure cut short by a stop is not this image's fault: leave it for --resume.
        if (outcome.retryable && stopping) return;
        return write({ path, sha256, attempts: attempt + 1, error: outcome.error });
      }
      const wait = backoffMs(attempt, options.retry, outcome.retryAfterMs);
      if (outcome.error.code === 'CONNECTION_ERROR') target.downUntil = Date.now() + wait;
      counts.retried++;
      log(`retry ${attempt + 1}/${options.retry.retries} of ${path} in ${Math.round(wait)} ms: ${target.name}: ${outcome.error.code}: ${outcome.error.message}`);
      await sleep(wait, options.signal);
      if (options.signal?.aborted) return; // left for --resume
    }
  };

  let next = 0;
  const lane = async () => {
    while (next < todo.length && !options.signal?.aborted) await processImage(todo[next++]!);
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, todo.length)) }, lane));
  } finally {
    journal.close();
    options.progress?.stop(counts);
  }

  if (options.coco) await writeCoco(readJournal(options.out).filter((r) => mineKeys.has(resolve(r.path))), all, options.coco);
  const failedBefore = [...journal.existing].filter(([key, r]) => mineKeys.has(key) && 'error' in r).length;
  const seconds = (performance.now() - started) / 1000;
  return {
    ...counts,
    seconds,
    imagesPerSecond: (counts.done + counts.failed) / Math.max(seconds, 1e-9),
    failedInOutput: failedBefore + counts.failed,
    interrupted: counts.skipped + counts.done + counts.failed < counts.total,
  };
}

/** COCO results of every successful line; image ids from the ground truth, or the image's place in the whole input (all shards). */
async function writeCoco(records: readonly BatchRecord[], all: readonly string[], coco: NonNullable<BatchOptions['coco']>): Promise<void> {
  const ids = new CocoIds(coco.gt);
  const index = new Map(all.map((p, i) => [resolve(p), i]));
  const results: CocoResult[] = [];
  for (const r of records) if ('result' in r) results.push(...ids.results(r.path, index.get(resolve(r.path)) ?? -1, r.result));
  await writeFile(coco.out, JSON.stringify(results));
}
