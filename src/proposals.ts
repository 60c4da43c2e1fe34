/**
 * Region proposals as a library: selective search on an image file or bytes,
 * strategies spread over worker threads. Nothing here reads the environment
 * or prints.
 */

import type { Cancellation } from './core/cancellation.js';
import type { Mode } from './core/selective-search/selective-search.js';
import { DetectError } from './errors.js';
import { DEFAULT_DECODE_LIMITS, decodeImage, readImageFile, type DecodeLimits } from './image/decode.js';
import { checkOptions, type OptionsOf } from './options.js';
import { Stopwatch } from './pipelines/stopwatch.js';
import { SelectiveSearchPool } from './workers/selective-search-pool.js';

export interface ProposalResult {
  image: { width: number; height: number };
  method: 'selective-search';
  mode: Mode;
  /** (x1, y1, x2, y2) in original-image pixels, after EXIF rotation, best first. */
  proposals: [number, number, number, number][];
  /** Milliseconds: decode, selectiveSearch, total. */
  timings: Record<string, number>;
}

/** Selective search's options of OPTIONS (src/options.ts): mode (default fast), maxProposals, minSize, seed (default 0). */
export type ProposeOptions = Omit<OptionsOf<'proposals'>, 'method' | 'model'>;

/**
 * Default pixel limit for proposals: selective search's peak memory in
 * `fast` mode measured 230 bytes per pixel at 1000 x 750 and 185 at
 * 2560 x 1440 (docs/selective-search.md), so 4 MP (2560 x 1440) bounds a call
 * at under 1 GB per worker; it took 16 s there on this project's machine.
 * R-CNN itself runs it at 500 px wide.
 */
export const DEFAULT_PROPOSAL_MAX_PIXELS = 4_000_000;

export class RegionProposer {
  private readonly pool: SelectiveSearchPool;
  private readonly limits: DecodeLimits;

  /** @param workers worker threads for the strategies; 0 or 1 runs on the calling thread. */
  constructor(options: { workers?: number; limits?: Partial<DecodeLimits> } = {}) {
    const workers = options.workers ?? 1;
    if (!Number.isInteger(workers) || workers < 0 || workers > 64) {
      throw new DetectError('INVALID_OPTION', `workers is ${JSON.stringify(workers)}; allowed: an integer from 0 to 64`);
    }
    this.pool = new SelectiveSearchPool(workers);
    this.limits = { ...DEFAULT_DECODE_LIMITS, maxPixels: DEFAULT_PROPOSAL_MAX_PIXELS, ...options.limits };
  }

  /**
   * @param signal checked as selective search groups regions, when its strategies run on the calling
   * thread (workers 0 or 1); its throw stops the search.
   */
  async propose(input: Uint8Array | string, options: ProposeOptions = {}, signal?: Cancellation): Promise<ProposalResult> {
    const clock = new Stopwatch();
    checkOptions('proposals', options, { method: 'selective-search' });
    const mode = options.mode ?? 'fast';
    const bytes = typeof input === 'string' ? await readImageFile(input) : input;
    const image = await decodeImage(bytes, this.limits);
    clock.lap('decode');
    const boxes = await this.pool.run(image, mode, { seed: options.seed ?? 0, maxProposals: options.maxProposals, minSize: options.minSize }, signal);
    clock.lap('selectiveSearch');
    const proposals: [number, number, number, number][] = [];
    for (let i = 0; i < boxes.length; i += 4) proposals.push([boxes[i]!, boxes[i + 1]!, boxes[i + 2]!, boxes[i + 3]!]);
    return { image: { width: image.width, height: image.height }, method: 'selective-search', mode, proposals, timings: clock.timings() };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
