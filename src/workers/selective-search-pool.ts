/**
 * Selective search with its strategies spread over worker threads. The
 * ranking runs on the calling thread from per-strategy seeded random numbers,
 * so the proposals are identical to the serial run for any worker count.
 */

import { Worker } from 'node:worker_threads';
import type { Cancellation } from '../core/cancellation.js';
import { rankProposals, selectiveSearch, strategiesFor, type Mode, type RankOptions } from '../core/selective-search/selective-search.js';
import type { RgbImage } from '../core/image.js';
import type { Hierarchy } from '../core/selective-search/grouping.js';
import { workerEntry } from './worker-entry.js';

/**
 * Split strategy indices over `n` workers, keeping strategies of one colour
 * space together (they share its conversion, texture and sorted graph), and
 * balancing the number of strategies per worker.
 */
export function partitionStrategies(mode: Mode, n: number): number[][] {
  const strategies = strategiesFor(mode);
  const groups = new Map<string, number[]>();
  strategies.forEach((s, i) => groups.set(`${s.colourSpace}/${s.k}`, [...(groups.get(`${s.colourSpace}/${s.k}`) ?? []), i]));
  const parts: number[][] = Array.from({ length: Math.max(1, n) }, () => []);
  // Largest groups first, each to the currently lightest worker.
  for (const g of [...groups.values()].sort((a, b) => b.length - a.length || a[0]! - b[0]!)) {
    parts.reduce((best, p) => (p.length < best.length ? p : best), parts[0]!).push(...g);
  }
  return parts.filter((p) => p.length > 0);
}

/** One worker thread and the jobs it has been sent. */
interface Slot {
  worker: Worker;
  alive: boolean;
  pending: Map<number, { resolve: (b: Int32Array[]) => void; reject: (e: Error) => void }>;
}

export class SelectiveSearchPool {
  private readonly slots: Slot[] = [];
  private next = 0;
  private closing = false;

  /** @param size worker threads; 0 or 1 runs on the calling thread. */
  constructor(readonly size: number) {
    if (size > 1) for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  /**
   * A worker in a slot of its own. A worker that dies (an out-of-memory
   * crash, an uncaught error, an exit) fails the jobs it had and is replaced,
   * so the next job runs on a live thread instead of waiting forever.
   */
  private spawn(): Slot {
    const slot: Slot = { worker: new Worker(workerEntry('selective-search-worker')), alive: true, pending: new Map() };
    slot.worker.on('message', (msg: { id: number; boxes?: Int32Array[]; error?: string }) => {
      const p = slot.pending.get(msg.id);
      if (!p) return;
      slot.pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(msg.error));
      else p.resolve(msg.boxes!);
    });
    const fail = (why: string) => {
      if (!slot.alive) return;
      slot.alive = false;
      for (const p of slot.pending.values()) p.reject(new Error(`a selective-search worker stopped (${why}) before finishing its job`));
      slot.pending.clear();
      const at = this.slots.indexOf(slot);
      if (!this.closing && at >= 0) this.slots[at] = this.spawn();
    };
    slot.worker.on('error', (err) => fail(err.message));
    slot.worker.on('exit', (code) => fail(`exit code ${code}`));
    return slot;
  }

  /**
   * Ranked proposals, K*4 xyxy in pixels, best first.
   * @param signal checked as the grouping goes, on the calling thread only (size 0 or 1).
   */
  async run(image: RgbImage, mode: Mode, rank: RankOptions, signal?: Cancellation): Promise<Float32Array> {
    const strategies = strategiesFor(mode);
    if (this.slots.length === 0) return selectiveSearch(image, { mode, ...rank, signal });
    const parts = partitionStrategies(mode, this.slots.length);
    const hierarchies: Pick<Hierarchy, 'boxes'>[] = new Array(strategies.length);
    await Promise.all(
      parts.map(async (indices, w) => {
        const id = this.next++;
        const slot = this.slots[w]!;
        const boxes = await new Promise<Int32Array[]>((resolve, reject) => {
          if (!slot.alive) return reject(new Error('a selective-search worker stopped before its job was sent'));
          slot.pending.set(id, { resolve, reject });
          slot.worker.postMessage({ id, image: { data: image.data, width: image.width, height: image.height }, mode, indices });
        });
        indices.forEach((s, k) => (hierarchies[s] = { boxes: boxes[k]! }));
      }),
    );
    return rankProposals(hierarchies, rank);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }
}
