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
 * The maps are copied into a shared WebAssembly.Memory (ONNX Runtime's
 * outputs are ordinary ArrayBuffers, and it takes no shared one as an
 * input), which is kept and grown between runs: a first copy costs its page
 * faults, about 40 ms for R50-FPN's 83 MB at 800 x 1216, a later one about
 * 6 ms. Each thread has a scratch area there, and RoIAlign's channel loop
 * runs in WebAssembly SIMD over the maps (src/core/roi/simd-bins.ts; the
 * same bits as the TypeScript loop), so a detector at one thread splits
 * its large RoIAlign jobs too, over no helper, for the SIMD loop. The
 * helpers pool into one shared output per split and answer with the
 * chunks they took; the calling thread pools straight into the result and
 * then copies the helpers' chunks in. (They used to post each chunk's
 * features back: an array per chunk to allocate, collect and place.) The
 * chunks a helper took and never answered (it died) are pooled on the
 * calling thread, and the helper is replaced.
 */

import { boxCount, type BoxArray } from '../core/boxes.js';
import type { FeatureMap } from '../core/roi/feature-map.js';
import { poolRegions, type RegionPooler, type RoiOp } from '../core/roi/pool-regions.js';
import { MAX_PAGES, SCRATCH_FIXED_BYTES, useSimdBins, WASM_PAGE_BYTES } from '../core/roi/simd-bins.js';
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
  /** The WebAssembly memory the maps live in, this thread's scratch area in it (byte offset) and that area's output bytes (simd-bins.ts). */
  memory: WebAssembly.Memory;
  scratch: number;
  outBytes: number;
}

/** Takes chunks of `share` until none are left, pooling each into `share.out`; returns the chunks taken. */
export function poolChunks(share: RoiShare): number[] {
  // The maps as views of this thread's own buffer object for the memory: the one its SIMD kernel knows.
  const buffer = useSimdBins(share.memory, share.scratch, share.outBytes);
  const levels = share.levels.map((level) => ({ ...level, data: new Float32Array(buffer, level.data.byteOffset, level.data.length) }));
  const chunks = Math.ceil(boxCount(share.rois) / share.chunk);
  const taken: number[] = [];
  for (let c = Atomics.add(share.next, 0, 1); c < chunks; c = Atomics.add(share.next, 0, 1)) {
    poolRegions(levels, share.rois.subarray(4 * c * share.chunk, 4 * (c + 1) * share.chunk), share.op, share.out, c * share.chunk);
    taken.push(c);
  }
  return taken;
}

/** Rounds up to a multiple of 64 bytes (a cache line: no two threads' scratch areas share one). */
const aligned = (bytes: number) => Math.ceil(bytes / 64) * 64;

export class RoiThreads implements RegionPooler {
  /** Started at the first split: a detector that never splits starts no thread. */
  private helpers: HelperThreads<RoiShare, number[]> | undefined;
  /** The maps' shared copies and each thread's scratch area, grown as needed. */
  private memory: WebAssembly.Memory | undefined;
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
    // One thread splits only for RoIAlign's SIMD loop: RoI max pooling would gain nothing from the copy.
    const serial = k < this.threads || k * perRoi < MIN_SPLIT_VALUES || (this.threads === 1 && op.type !== 'roi-align');
    if (serial) return Promise.resolve(poolRegions(levels, rois, op));
    const run = this.turn.then(() => this.split(levels, rois, op, perRoi));
    this.turn = run.catch(() => undefined);
    return run;
  }

  /** @param perRoi output values per RoI (C x outputH x outputW). */
  private async split(levels: readonly FeatureMap[], rois: BoxArray, op: RoiOp, perRoi: number): Promise<Float32Array> {
    const helpers = (this.helpers ??= new HelperThreads('roi-worker', this.threads - 1, 'RoI'));
    const all = Float32Array.from(rois);
    const k = boxCount(all);
    // The memory: the maps, then a scratch area per thread (the calling one first).
    const outBytes = 4 * perRoi;
    const scratchBytes = aligned(SCRATCH_FIXED_BYTES + outBytes);
    const offsets: number[] = [];
    let mapsEnd = 0;
    for (const level of levels) {
      offsets.push(mapsEnd);
      mapsEnd = aligned(mapsEnd + level.data.byteLength);
    }
    const memory = this.memoryOf(mapsEnd + this.threads * scratchBytes);
    if (!memory) return poolRegions(levels, all, op);
    // The helpers' output lives only as long as the split: kept, it would hold K x C x bins floats per
    // inference worker for good (Fast R-CNN's 2000 regions x 512 x 7 x 7: 200 MB), past what a
    // container's memory allows (measured: the image test's 1 GiB container OOM-killed).
    const shared = helpers.size ? new Float32Array(new SharedArrayBuffer(4 * k * perRoi)) : new Float32Array(0);
    const share: RoiShare = {
      levels: levels.map((level, l) => {
        const data = new Float32Array(memory.buffer, offsets[l], level.data.length);
        data.set(level.data);
        return { ...level, data };
      }),
      rois: all,
      op,
      chunk: CHUNK,
      next: new Int32Array(new SharedArrayBuffer(4)),
      out: shared,
      memory,
      scratch: mapsEnd,
      outBytes,
    };
    const helped = Array.from({ length: helpers.size }, (_, t) => helpers.run(t, { ...share, scratch: mapsEnd + (t + 1) * scratchBytes }).catch((): number[] => []));

    // The calling thread takes chunks too, straight into the result.
    const out = new Float32Array(k * perRoi);
    const placed = new Uint8Array(Math.ceil(k / CHUNK));
    for (const c of poolChunks({ ...share, out })) placed[c] = 1;
    // The helpers' chunks are copied from shared memory: ONNX Runtime takes no SharedArrayBuffer as an input.
    for (const c of (await Promise.all(helped)).flat()) {
      out.set(shared.subarray(c * CHUNK * perRoi, Math.min(k, (c + 1) * CHUNK) * perRoi), c * CHUNK * perRoi);
      placed[c] = 1;
    }
    // A helper that died had taken chunks it never answered: they are pooled here.
    placed.forEach((done, c) => {
      if (!done) poolRegions(levels, all.subarray(4 * c * CHUNK, 4 * (c + 1) * CHUNK), op, out, c * CHUNK);
    });
    return out;
  }

  /** The shared memory, grown to at least `bytes`; undefined past its 4 GiB, or where it cannot grow (the calling thread then pools alone). */
  private memoryOf(bytes: number): WebAssembly.Memory | undefined {
    const pages = Math.ceil(bytes / WASM_PAGE_BYTES);
    if (pages > MAX_PAGES) return undefined;
    try {
      if (!this.memory) this.memory = new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES, shared: true });
      else if (this.memory.buffer.byteLength < bytes) this.memory.grow(pages - this.memory.buffer.byteLength / WASM_PAGE_BYTES);
    } catch {
      return undefined;
    }
    return this.memory;
  }

  async close(): Promise<void> {
    this.memory = undefined;
    await this.helpers?.close();
  }
}
