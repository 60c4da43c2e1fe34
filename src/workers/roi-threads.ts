/**
 * RoI pooling spread over the threads a detector may use.
 *
 * ONNX Runtime runs the graphs on `intraOpThreads` threads, but the RoI ops
 * are TypeScript and ran on the calling thread alone, while the others
 * waited: with R50-FPN int8 at 2 threads, RoIAlign was a quarter of the time.
 * Here the calling thread and `threads - 1` helper threads take chunks of
 * the regions from a shared counter until none are left (a fixed split left
 * the calling thread waiting: a helper ran a third slower, measured), the
 * helpers reading the feature maps from shared memory. Each chunk is pooled
 * by the very same code (poolRegions), so the output is the serial one bit
 * for bit, whatever the thread count (tested).
 *
 * The maps are copied into SharedArrayBuffers (ONNX Runtime's outputs are
 * ordinary ArrayBuffers, and it takes no shared one as an input), which are
 * kept and reused between runs: a first copy costs its page faults, about
 * 40 ms for R50-FPN's 83 MB at 800 x 1216, a later one about 6 ms. The
 * helpers pool into a shared output (kept likewise) and answer with the
 * chunks they took; the calling thread pools straight into the result and
 * then copies the helpers' chunks in. (They used to post each chunk's
 * features back: an array per chunk to allocate, collect and place.) The
 * chunks a helper took and never answered (it died) are pooled on the
 * calling thread, and the helper is replaced.
 */

import { boxCount, type BoxArray } from '../core/boxes.js';
import type { FeatureMap } from '../core/roi/feature-map.js';
import { poolRegions, type RegionPooler, type RoiOp } from '../core/roi/pool-regions.js';
import { HelperThreads } from './helper-threads.js';

/** Below this many output values (RoIs x channels x bins) one thread pools them all: the split would cost more than it saves. */
export const MIN_SPLIT_VALUES = 1 << 20;

/** Regions per chunk: small enough to even out the threads' ends, large enough that a chunk's overhead is noise. */
const CHUNK = 16;

/** A helper's job: the whole split, of which it takes chunks. */
export interface RoiShare {
  /** The maps, as views of the SharedArrayBuffers they were copied into (the helpers read these; the calling thread reads its own). */
  levels: FeatureMap[];
  /** All the regions, K*4 xyxy. */
  rois: Float32Array;
  op: RoiOp;
  /** Regions per chunk; chunk c is regions c * chunk .. (c + 1) * chunk - 1. */
  chunk: number;
  /** The next chunk to take, shared by every thread of the split (Atomics.add). */
  next: Int32Array;
  /** Where the pooled features go, region r at slot r: shared memory for the helpers, the result itself for the calling thread. */
  out: Float32Array;
}

/** Takes chunks of `share` until none are left, pooling each into `share.out`; returns the chunks taken. */
export function poolChunks(share: RoiShare): number[] {
  const chunks = Math.ceil(boxCount(share.rois) / share.chunk);
  const taken: number[] = [];
  for (let c = Atomics.add(share.next, 0, 1); c < chunks; c = Atomics.add(share.next, 0, 1)) {
    poolRegions(share.levels, share.rois.subarray(4 * c * share.chunk, 4 * (c + 1) * share.chunk), share.op, share.out, c * share.chunk);
    taken.push(c);
  }
  return taken;
}

export class RoiThreads implements RegionPooler {
  /** Started at the first split: a detector that never splits starts no thread. */
  private helpers: HelperThreads<RoiShare, number[]> | undefined;
  /** Each level's shared copy, grown as needed. */
  private readonly shared: Float32Array[] = [];
  /** The helpers' output, grown as needed. */
  private sharedOut = new Float32Array(new SharedArrayBuffer(0));
  /** One split at a time: the shared copies belong to it. */
  private turn: Promise<unknown> = Promise.resolve();

  /** Threads in all, the calling one included. */
  readonly threads: number;

  /** @param threads threads in all, the calling one included; 1 or less pools on the calling thread only. */
  constructor(threads: number) {
    this.threads = Math.max(1, Math.floor(threads));
  }

  /**
   * `poolRegions(levels, rois, op)`, on all the threads when the work is large enough.
   * @returns Float32Array of K x C x outputH x outputW, in RoI order.
   */
  pool(levels: readonly FeatureMap[], rois: BoxArray, op: RoiOp): Promise<Float32Array> {
    const k = boxCount(rois);
    const perRoi = levels[0]!.channels * op.outputSize[0] * op.outputSize[1];
    if (this.threads === 1 || k < this.threads || k * perRoi < MIN_SPLIT_VALUES) return Promise.resolve(poolRegions(levels, rois, op));
    const run = this.turn.then(() => this.split(levels, rois, op, perRoi));
    this.turn = run.catch(() => undefined);
    return run;
  }

  /** @param perRoi output values per RoI (C x outputH x outputW). */
  private async split(levels: readonly FeatureMap[], rois: BoxArray, op: RoiOp, perRoi: number): Promise<Float32Array> {
    const helpers = (this.helpers ??= new HelperThreads('roi-worker', this.threads - 1, 'RoI'));
    const all = Float32Array.from(rois);
    const k = boxCount(all);
    if (this.sharedOut.length < k * perRoi) this.sharedOut = new Float32Array(new SharedArrayBuffer(4 * k * perRoi));
    const share: RoiShare = {
      levels: levels.map((level, l) => ({ ...level, data: this.sharedCopy(l, level.data) })),
      rois: all,
      op,
      chunk: CHUNK,
      next: new Int32Array(new SharedArrayBuffer(4)),
      out: this.sharedOut,
    };
    const helped = Array.from({ length: helpers.size }, (_, t) => helpers.run(t, share).catch((): number[] => []));

    // The calling thread takes chunks too, from its own (unshared) maps, straight into the result.
    const out = new Float32Array(k * perRoi);
    const placed = new Uint8Array(Math.ceil(k / CHUNK));
    for (const c of poolChunks({ ...share, levels: [...levels], out })) placed[c] = 1;
    // The helpers' chunks are copied from shared memory: ONNX Runtime takes no SharedArrayBuffer as an input.
    for (const c of (await Promise.all(helped)).flat()) {
      out.set(this.sharedOut.subarray(c * CHUNK * perRoi, Math.min(k, (c + 1) * CHUNK) * perRoi), c * CHUNK * perRoi);
      placed[c] = 1;
    }
    // A helper that died had taken chunks it never answered: they are pooled here.
    placed.forEach((done, c) => {
      if (!done) poolRegions(levels, all.subarray(4 * c * CHUNK, 4 * (c + 1) * CHUNK), op, out, c * CHUNK);
    });
    return out;
  }

  /** `data` copied into level l's shared buffer; a view of it. */
  private sharedCopy(l: number, data: Float32Array): Float32Array {
    let buffer = this.shared[l];
    if (!buffer || buffer.length < data.length) buffer = this.shared[l] = new Float32Array(new SharedArrayBuffer(data.byteLength));
    const view = buffer.subarray(0, data.length);
    view.set(data);
    return view;
  }

  async close(): Promise<void> {
    this.shared.length = 0;
    this.sharedOut = new Float32Array(new SharedArrayBuffer(0));
    await this.helpers?.close();
  }
}
