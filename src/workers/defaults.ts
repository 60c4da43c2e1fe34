/**
 * The default sizes of the worker pools and of ONNX Runtime's threads, for
 * the server (WORKERS, ORT_THREADS), the batch client's --local and the
 * proposals command: at most four workers, and workers x threads <= cores,
 * so that ONNX Runtime's own threads do not fight the pool.
 */

import { availableParallelism } from 'node:os';

export function defaultWorkers(cores = availableParallelism()): number {
  return Math.max(1, Math.min(cores, 4));
}

export function defaultThreads(workers: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / workers));
}
