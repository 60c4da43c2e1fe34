/**
 * The pool of inference workers (piscina). The queue is bounded: when it is
 * full, run() rejects with PoolBusyError and the caller sheds the request
 * (HTTP 503 with Retry-After) instead of queueing without limit.
 */

import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { DetectionResult, ExplainResult, FeatureViewResult, RpnProposalResult } from '../detector.js';
import { DetectError, type ErrorCode } from '../errors.js';
import type { ProposalResult } from '../proposals.js';
import type { FiltersResult, InferenceReply, InferenceTask } from './inference-worker.js';
import { workerEntry } from './worker-entry.js';

export class PoolBusyError extends Error {
  constructor(readonly queued: number) {
    super(`all workers are busy and ${queued} requests are queued`);
  }
}

export class DeadlineError extends Error {
  constructor(readonly ms: number) {
    super(`the request took longer than the ${ms} ms deadline`);
  }
}

/**
 * The worker thread running this request died before it answered: it went
 * over its heap limit (`heapMb`), or it was stopped. The pool has started a
 * replacement, so a retry is served (HTTP 503 WORKER_LOST with Retry-After).
 */
export class WorkerLostError extends Error {
  constructor(readonly outOfMemory: boolean, heapMb: number | undefined, cause: Error) {
    super(
      outOfMemory
        ? `the worker running this request went over its JavaScript heap limit${heapMb === undefined ? '' : ` (${heapMb} MB)`} and was replaced; retry, or send a smaller image`
        : 'the worker running this request stopped before it answered and was replaced; retry',
      { cause },
    );
  }
}

/**
 * A task's rejection as WorkerLostError when it says the thread died: Node's
 * ERR_WORKER_OUT_OF_MEMORY (piscina passes the worker's 'error' on), or
 * piscina's own "worker exited with code: N"; anything else is undefined.
 */
export function workerLost(err: unknown, heapMb: number | undefined): WorkerLostError | undefined {
  if (!(err instanceof Error)) return undefined;
  if ((err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY') return new WorkerLostError(true, heapMb, err);
  if (/^worker exited with code: /.test(err.message)) return new WorkerLostError(false, heapMb, err);
  return undefined;
}

/** The pool is shutting down: its callers get this instead of a result (HTTP 503 SHUTTING_DOWN). */
export class ShuttingDownError extends Error {
  constructor() {
    super('the server is shutting down');
  }
}

export interface InferencePoolOptions {
  /** Worker threads. */
  workers: number;
  /** Requests that may wait for a worker; more are refused. */
  maxQueue: number;
  /**
   * Per-request deadline in ms (0: none). Past it the caller gets DeadlineError;
   * the worker finishes the task and its result is dropped (aborting a running
   * task would terminate the worker and its loaded models).
   */
  deadlineMs?: number;
  /**
   * Each worker's JavaScript heap limit (V8's old generation), MB; unset:
   * Node's default. A worker over it is stopped and replaced, and its request
   * gets WorkerLostError; the others run on. (Images, tensors and WebAssembly
   * memory live outside this heap: the pixel limits bound those.)
   */
  heapMb?: number;
  /**
   * Tasks one worker runs at once (default 1). Above 1, with the tasks'
   * settings.maxBatch, a worker's concurrent tasks run their graphs batched.
   */
  tasksPerWorker?: number;
}

export class InferencePool {
  private readonly piscina: Piscina;

  constructor(readonly options: InferencePoolOptions) {
    this.abandoned = new Promise<never>((_, reject) => (this.rejectAbandoned = reject));
    this.abandoned.catch(() => undefined);
    this.piscina = new Piscina({
      filename: fileURLToPath(workerEntry('inference-worker')),
      minThreads: options.workers,
      maxThreads: options.workers,
      maxQueue: options.maxQueue,
      concurrentTasksPerWorker: options.tasksPerWorker ?? 1,
      // Loaded models stay in their worker: never retire idle threads.
      idleTimeout: Number.POSITIVE_INFINITY,
      ...(options.heapMb === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: options.heapMb } }),
    });
    // A worker that fails with no task in it is replaced; piscina reports it as an 'error' event,
    // which, unheard, would throw in this thread and end the process.
    this.piscina.on('error', (err: Error) => this.idleWorkerFailed(err));
  }

  private idleWorkerFailed: (err: Error) => void = (err) => process.emitWarning(`an idle inference worker failed and was replaced: ${err.message}`);

  private warned: (message: string) => void = (message) => process.emitWarning(message);

  /** Where the workers' warnings go (a device fallback as a model loads; default: a process warning). */
  onWarning(listener: (message: string) => void): void {
    this.warned = listener;
  }

  /** Where failures of idle workers are reported (default: a process warning). */
  onIdleWorkerError(listener: (err: Error) => void): void {
    this.idleWorkerFailed = listener;
  }

  /** Requests waiting for a worker. */
  get queued(): number {
    return this.piscina.queueSize;
  }

  /** Workers running a request now. */
  get busy(): number {
    return Math.min(this.options.workers, this.inFlight);
  }

  private inFlight = 0;
  /** Every task still running in a worker, including those whose caller has given up. */
  private readonly running = new Set<Promise<unknown>>();
  /** Rejects with ShuttingDownError when abandon() is called: every waiting caller races it. */
  private readonly abandoned: Promise<never>;
  private rejectAbandoned!: (err: ShuttingDownError) => void;
  /** Shared with every detect task (SharedArrayBuffer): 1 once abandon() is called, so runs stop at their next stage. */
  private readonly stopFlag = new Int32Array(new SharedArrayBuffer(4));

  async detect(task: Omit<Extract<InferenceTask, { kind: 'detect' }>, 'kind'>): Promise<DetectionResult> {
    return this.run<DetectionResult>({ kind: 'detect', ...task });
  }

  async explain(task: Omit<Extract<InferenceTask, { kind: 'explain' }>, 'kind'>): Promise<ExplainResult> {
    return this.run<ExplainResult>({ kind: 'explain', ...task });
  }

  async features(task: Omit<Extract<InferenceTask, { kind: 'features' }>, 'kind'>): Promise<FeatureViewResult> {
    return this.run<FeatureViewResult>({ kind: 'features', ...task });
  }

  async filters(task: Omit<Extract<InferenceTask, { kind: 'filters' }>, 'kind'>): Promise<FiltersResult> {
    return this.run<FiltersResult>({ kind: 'filters', ...task });
  }

  async proposals(task: Omit<Extract<InferenceTask, { kind: 'proposals' }>, 'kind'>): Promise<ProposalResult> {
    return this.run<ProposalResult>({ kind: 'proposals', ...task });
  }

  async rpnProposals(task: Omit<Extract<InferenceTask, { kind: 'rpn' }>, 'kind'>): Promise<RpnProposalResult> {
    return this.run<RpnProposalResult>({ kind: 'rpn', ...task });
  }

  private async run<T>(task: InferenceTask): Promise<T> {
    if (Atomics.load(this.stopFlag, 0) === 1) throw new ShuttingDownError();
    if (this.piscina.queueSize >= this.options.maxQueue) throw new PoolBusyError(this.piscina.queueSize);
    this.inFlight++;
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = this.options.deadlineMs ?? 0;
      // The tasks that check a cancellation as they go (detect, explain, proposals) get the shutdown flag and the deadline.
      if (task.kind === 'detect' || task.kind === 'explain' || task.kind === 'proposals') task = { ...task, stop: this.stopFlag, ...(deadline > 0 ? { deadlineAt: Date.now() + deadline } : {}) };
      const work = this.piscina.run(task) as Promise<InferenceReply<T>>;
      const tracked = work.catch(() => undefined).finally(() => this.running.delete(tracked));
      this.running.add(tracked);
      const waits: Promise<InferenceReply<T>>[] = [work, this.abandoned];
      if (deadline > 0) waits.push(new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new DeadlineError(deadline)), deadline))));
      const reply = await Promise.race(waits).catch((err: unknown) => {
        throw workerLost(err, this.options.heapMb) ?? err;
      });
      for (const w of reply.warnings ?? []) this.warned(w);
      if ('error' in reply) throw new DetectError(reply.error.code as ErrorCode, reply.error.message);
      return reply.result;
    } finally {
      clearTimeout(timer);
      this.inFlight--;
    }
  }

  /**
   * Shutdown's cut-off: every caller still waiting, queued or running, gets
   * ShuttingDownError now, and later calls get it at once. A running
   * detection stops at its next stage (stopping a thread inside an ONNX
   * Runtime call is not safe, so it is asked to stop, not terminated); a
   * queued one stops as it starts.
   */
  abandon(): void {
    Atomics.store(this.stopFlag, 0, 1);
    this.rejectAbandoned(new ShuttingDownError());
  }

  /**
   * Let running tasks finish (at most `drainMs`), then stop the workers.
   * Terminating a thread in the middle of an ONNX Runtime call is not safe
   * (it aborted the process); after abandon(), detections end at their next
   * stage, so a short drain is enough.
   */
  async close(drainMs = 30_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.running]), new Promise((r) => (timer = setTimeout(r, drainMs)))]);
    clearTimeout(timer);
    await this.piscina.destroy();
  }
}
