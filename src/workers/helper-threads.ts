/**
 * Worker threads that take one kind of job from the calling thread: selective
 * search's strategies, a share of the RoIs to pool. Jobs go to a thread by
 * number and their answers come back by id. A thread that dies (an
 * out-of-memory crash, an uncaught error, an exit) fails the jobs it had and
 * is replaced, so the next job runs on a live thread instead of waiting
 * forever.
 */

import { parentPort, Worker } from 'node:worker_threads';
import { workerEntry } from './worker-entry.js';

interface JobMessage<Job> {
  id: number;
  job: Job;
}

type AnswerMessage<Answer> = { id: number; answer: Answer } | { id: number; error: string };

/** One thread and the jobs it has been sent. */
interface Slot<Answer> {
  worker: Worker;
  alive: boolean;
  pending: Map<number, { resolve: (answer: Answer) => void; reject: (err: Error) => void }>;
}

export class HelperThreads<Job, Answer> {
  private readonly slots: Slot<Answer>[] = [];
  private next = 0;
  private closing = false;

  /**
   * @param entry the thread's module in src/workers (it calls answerJobs).
   * @param what names the threads in errors, e.g. 'selective-search'.
   */
  constructor(
    private readonly entry: string,
    size: number,
    private readonly what: string,
  ) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  get size(): number {
    return this.slots.length;
  }

  private spawn(): Slot<Answer> {
    const slot: Slot<Answer> = { worker: new Worker(workerEntry(this.entry)), alive: true, pending: new Map() };
    slot.worker.on('message', (msg: AnswerMessage<Answer>) => {
      const p = slot.pending.get(msg.id);
      if (!p) return;
      slot.pending.delete(msg.id);
      if ('error' in msg) p.reject(new Error(msg.error));
      else p.resolve(msg.answer);
    });
    const fail = (why: string) => {
      if (!slot.alive) return;
      slot.alive = false;
      for (const p of slot.pending.values()) p.reject(new Error(`a ${this.what} worker stopped (${why}) before finishing its job`));
      slot.pending.clear();
      const at = this.slots.indexOf(slot);
      if (!this.closing && at >= 0) this.slots[at] = this.spawn();
    };
    slot.worker.on('error', (err) => fail(err.message));
    slot.worker.on('exit', (code) => fail(`exit code ${code}`));
    return slot;
  }

  /** Runs `job` on thread `thread` (0 .. size - 1); `transfer` moves buffers instead of copying them. */
  run(thread: number, job: Job, transfer: ArrayBuffer[] = []): Promise<Answer> {
    const slot = this.slots[thread]!;
    const id = this.next++;
    return new Promise<Answer>((resolve, reject) => {
      if (!slot.alive) return reject(new Error(`a ${this.what} worker stopped before its job was sent`));
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, job } satisfies JobMessage<Job>, transfer);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }
}

/**
 * The thread's side: answers each job with what `work` returns (its
 * `transfer` buffers moved, not copied), or with its error's message.
 */
export function answerJobs<Job, Answer>(work: (job: Job) => { answer: Answer; transfer?: ArrayBuffer[] }): void {
  parentPort!.on('message', ({ id, job }: JobMessage<Job>) => {
    let reply: AnswerMessage<Answer>;
    let transfer: ArrayBuffer[] = [];
    try {
      const done = work(job);
      reply = { id, answer: done.answer };
      transfer = done.transfer ?? [];
    } catch (err) {
      reply = { id, error: (err as Error).message };
    }
    parentPort!.postMessage(reply, transfer);
  });
}
