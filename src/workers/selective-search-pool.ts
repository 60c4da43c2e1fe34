/**
 * Selective search with its strategies spread over worker threads. The
 * ranking runs on the calling thread from per-strategy seeded random numbers,
 * so the proposals are identical to the serial run for any worker count.
 */

import { Worker } from 'node:worker_threads';
import { rankProposals, selectiveSearch, strategiesFor, type Mode, type RankOptions, type RgbPixels } from '../core/selective-search/selective-search.js';
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

export class SelectiveSearchPool {
  private readonly workers: Worker[] = [];
  private next = 0;
  private readonly pending = new Map<number, { resolve: (b: Int32Array[]) => void; reject: (e: Error) => void }>();

  /** @param size worker threads; 0 or 1 runs on the calling thread. */
  constructor(readonly size: number) {
    if (size > 1) {
      const entry = workerEntry('selective-search-worker');
      for (let i = 0; i < size; i++) {
        const w = new Worker(entry);
        w.on('message', (msg: { id: number; boxes?: Int32Array[]; error?: string }) => {
          const p = this.pending.get(msg.id);
          if (!p) return;
          this.pending.delete(msg.id);
          if (msg.error !== undefined) p.reject(new Error(msg.error));
          else p.resolve(msg.boxes!);
        });
        w.on('error', (err) => {
          for (const p of this.pending.values()) p.reject(err);
          this.pending.clear();
        });
        this.workers.push(w);
      }
    }
  }

  /** Ranked proposals, K*4 xyxy in pixels, best first. */
  async run(image: RgbPixels, mode: Mode, rank: RankOptions): Promise<Float32Array> {
    const strategies = strategiesFor(mode);
    if (this.workers.length === 0) return selectiveSearch(image, { mode, ...rank });
    const parts = partitionStrategies(mode, this.workers.length);
    const hierarchies: Hierarchy[] = new Array(strategies.length);
    await Promise.all(
      parts.map(async (indices, w) => {
        const id = this.next++;
        const boxes = await new Promise<Int32Array[]>((resolve, reject) => {
          this.pending.set(id, { resolve, reject });
          this.workers[w]!.postMessage({ id, image: { data: image.data, width: image.width, height: image.height }, mode, indices });
        });
        indices.forEach((s, k) => (hierarchies[s] = { boxes: boxes[k]! }));
      }),
    );
    return rankProposals(hierarchies, rank);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
