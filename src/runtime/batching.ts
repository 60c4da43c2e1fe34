/**
 * Batching across concurrent requests: a GraphSession that runs the calls
 * waiting for it as one. What a GPU needs to be busy (one image's backbone
 * or one image's RoIs leave most of an H200 idle), and what servers of
 * detection models do (Triton's dynamic batcher).
 *
 * Calls that arrive while the graph is busy, or in the same turn of the
 * event loop, wait in a queue. Each run takes the oldest call and every
 * waiting call in its bucket (the same input names and the same dims apart
 * from the first axis: an image's padded size, a head's RoI shape), up to
 * `maxBatch`, concatenates their feeds along the first axis, runs the graph
 * once and gives each call its own rows of every output. Calls of other
 * buckets wait for the next run, in arrival order. A failed run fails every
 * call in it.
 *
 * The first axis must be the graph's batch: images for a backbone or an RPN
 * head (their packages' inputs may fix it at 1; model/package.ts relaxes
 * that when it batches), RoIs for a box head. A batch whose outputs do not
 * have the summed first axis is refused with INFERENCE_FAILED.
 */

import { DetectError } from '../errors.js';
import type { GraphSession, Tensor } from './session.js';

interface Waiting {
  feeds: Record<string, Tensor>;
  /** The bucket: input names and dims past the first axis. */
  key: string;
  rows: number;
  resolve: (out: Record<string, Tensor>) => void;
  reject: (err: unknown) => void;
}

export interface BatchStats {
  /** Graph runs, and the calls they served. */
  runs: number;
  calls: number;
  /** The largest batch run, in calls. */
  largest: number;
}

export interface BatchingGraph extends GraphSession {
  readonly stats: BatchStats;
}

function bucketOf(feeds: Record<string, Tensor>): { key: string; rows: number } {
  const names = Object.keys(feeds).sort();
  const rows = feeds[names[0]!]!.dims[0]!;
  for (const n of names) {
    if (feeds[n]!.dims[0] !== rows) throw new DetectError('INFERENCE_FAILED', `a batched graph's inputs must agree on the first axis; ${n} has ${feeds[n]!.dims[0]}, ${names[0]} ${rows}`);
  }
  return { key: names.map((n) => `${n}:${feeds[n]!.dims.slice(1).join('x')}`).join(','), rows };
}

function concat(tensors: Tensor[]): Tensor {
  if (tensors.length === 1) return tensors[0]!;
  const rows = tensors.reduce((n, t) => n + t.dims[0]!, 0);
  const data = new Float32Array(tensors.reduce((n, t) => n + t.data.length, 0));
  let at = 0;
  for (const t of tensors) {
    data.set(t.data, at);
    at += t.data.length;
  }
  return { data, dims: [rows, ...tensors[0]!.dims.slice(1)] };
}

/** Rows [from, from + count) of a tensor whose first axis is `total` long (a view, no copy). */
function rowsOf(t: Tensor, from: number, count: number, total: number): Tensor {
  const size = t.data.length / total;
  return { data: t.data.subarray(from * size, (from + count) * size), dims: [count, ...t.dims.slice(1)] };
}

/** Wrap a graph so that concurrent calls run batched, at most `maxBatch` calls a run. */
export function batching(graph: GraphSession, maxBatch: number): BatchingGraph {
  const queue: Waiting[] = [];
  const stats: BatchStats = { runs: 0, calls: 0, largest: 0 };
  let busy = false;

  async function runBatch(batch: Waiting[]): Promise<void> {
    const total = batch.reduce((n, w) => n + w.rows, 0);
    const feeds: Record<string, Tensor> = {};
    for (const name of Object.keys(batch[0]!.feeds)) feeds[name] = concat(batch.map((w) => w.feeds[name]!));
    stats.runs++;
    stats.calls += batch.length;
    stats.largest = Math.max(stats.largest, batch.length);
    const out = await graph.run(feeds);
    for (const [name, t] of Object.entries(out)) {
      if (batch.length > 1 && t.dims[0] !== total) {
        throw new DetectError('INFERENCE_FAILED', `graph ${graph.name} cannot run batched: output ${name} has ${t.dims[0]} rows for ${total} input rows`);
      }
    }
    let from = 0;
    for (const w of batch) {
      const mine: Record<string, Tensor> = {};
      for (const [name, t] of Object.entries(out)) mine[name] = batch.length === 1 ? t : rowsOf(t, from, w.rows, total);
      from += w.rows;
      w.resolve(mine);
    }
  }

  async function drain(): Promise<void> {
    while (queue.length) {
      const key = queue[0]!.key;
      const batch: Waiting[] = [];
      for (let i = 0; i < queue.length && batch.length < maxBatch; ) {
        if (queue[i]!.key === key) batch.push(...queue.splice(i, 1));
        else i++;
      }
      try {
        await runBatch(batch);
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    busy = false;
  }

  return {
    name: graph.name,
    inputNames: graph.inputNames,
    inputShapes: graph.inputShapes,
    outputNames: graph.outputNames,
    device: graph.device,
    stats,
    run(feeds) {
      return new Promise((resolve, reject) => {
        const { key, rows } = bucketOf(feeds);
        queue.push({ feeds, key, rows, resolve, reject });
        if (busy) return;
        busy = true;
        // Let the calls made in this turn of the event loop join the first batch.
        setImmediate(() => void drain());
      });
    },
    release: () => graph.release(),
  };
}
