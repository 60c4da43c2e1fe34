/**
 * Selective search with its strategies spread over worker threads. The
 * ranking runs on the calling thread from per-strategy seeded random numbers,
 * so the proposals are identical to the serial run for any worker count.
 */

import type { Cancellation } from '../core/cancellation.js';
import { rankProposals, selectiveSearch, strategiesFor, type Mode, type RankOptions } from '../core/selective-search/selective-search.js';
import type { RgbImage } from '../core/image.js';
import type { Hierarchy } from '../core/selective-search/grouping.js';
import { HelperThreads } from './helper-threads.js';
import type { StrategyTask } from './selective-search-worker.js';

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
  private readonly threads: HelperThreads<StrategyTask, Int32Array[]>;

  /** @param size worker threads; 0 or 1 runs on the calling thread. */
  constructor(readonly size: number) {
    this.threads = new HelperThreads('selective-search-worker', size > 1 ? size : 0, 'selective-search');
  }

  /**
   * Ranked proposals, K*4 xyxy in pixels, best first.
   * @param signal checked as the grouping goes, on the calling thread only (size 0 or 1).
   */
  async run(image: RgbImage, mode: Mode, rank: RankOptions, signal?: Cancellation): Promise<Float32Array> {
    const strategies = strategiesFor(mode);
    if (this.threads.size === 0) return selectiveSearch(image, { mode, ...rank, signal });
    const parts = partitionStrategies(mode, this.threads.size);
    const hierarchies: Pick<Hierarchy, 'boxes'>[] = new Array(strategies.length);
    await Promise.all(
      parts.map(async (indices, w) => {
        const boxes = await this.threads.run(w, { image: { data: image.data, width: image.width, height: image.height }, mode, indices });
        indices.forEach((s, k) => (hierarchies[s] = { boxes: boxes[k]! }));
      }),
    );
    return rankProposals(hierarchies, rank);
  }

  close(): Promise<void> {
    return this.threads.close();
  }
}
