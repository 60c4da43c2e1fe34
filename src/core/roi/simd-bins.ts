/**
 * RoIAlign's inner loop in WebAssembly SIMD (assembly/roi-align.ts, compiled
 * by `npm run build:wasm`): a bin's C channels as the sum of its cells'
 * channel runs, each weighted, then divided by the sample count, the same
 * bits as the TypeScript loop (roi-align.ts, averageBins) at about half the
 * time.
 *
 * It runs where the feature maps live in a WebAssembly.Memory: the RoI
 * threads (src/workers/roi-threads.ts) copy the maps into a shared one and
 * give each thread a scratch area there (`useSimdBins`); averageBins finds
 * the kernel by the maps' buffer (`simdBinsFor`). Elsewhere it runs its
 * TypeScript loop.
 */

import { ROI_ALIGN_WASM } from './roi-align-module.js';

/** A WebAssembly memory page. */
export const WASM_PAGE_BYTES = 65536;
/** The memory's largest size, in pages (4 GiB: the most a 32-bit memory addresses). */
export const MAX_PAGES = 65536;

/** Channels a pass over a bin's cells sums, two to a register: the channel count must be a multiple. */
export const CHANNELS_PER_PASS = 16;

/** The most cells a bin may have for the kernel (a RoI whose bins may have more takes the TypeScript loop). */
export const SCRATCH_CELLS = 16384;
const CELLS_BYTES = 4 * SCRATCH_CELLS;
/** Bytes a scratch area needs besides a RoI's output: the cells and weights of one bin. */
export const SCRATCH_FIXED_BYTES = CELLS_BYTES + 8 * SCRATCH_CELLS;

/** One thread's view of the kernel over one memory. */
export interface SimdBins {
  /** Bin cells as byte offsets (of the channel run), and their float64 weights; `SCRATCH_CELLS` of each. */
  cells: Int32Array;
  weights: Float64Array;
  /** One RoI's output, C x bins float32, at byte offset `outOffset`. */
  out: Float32Array;
  outOffset: number;
  /** (cells, n, weights, channels, out, stride, count): bin sums into out + c * stride, channels a multiple of CHANNELS_PER_PASS. */
  bins: (cells: number, n: number, weights: number, channels: number, out: number, stride: number, count: number) => void;
}

let compiled: WebAssembly.Module | undefined;
let kernels = new WeakMap<ArrayBufferLike, SimdBins>();

/** The kernel for maps in `buffer`, if this thread set one up (`useSimdBins`). */
export function simdBinsFor(buffer: ArrayBufferLike): SimdBins | undefined {
  return kernels.get(buffer);
}

/**
 * Sets this thread up to pool maps that are views of `memory`: its scratch
 * area starts at byte `scratch` and holds `outBytes` of output after the
 * fixed part. Returns the memory's buffer the maps must be views of (where
 * WebAssembly SIMD is missing, the TypeScript loop reads them there).
 */
export function useSimdBins(memory: WebAssembly.Memory, scratch: number, outBytes: number): ArrayBufferLike {
  const buffer = memory.buffer;
  try {
    compiled ??= new WebAssembly.Module(Buffer.from(ROI_ALIGN_WASM, 'base64'));
  } catch {
    return buffer;
  }
  const instance = new WebAssembly.Instance(compiled, { env: { memory } });
  const outOffset = scratch + SCRATCH_FIXED_BYTES;
  kernels = new WeakMap([[buffer, {
    cells: new Int32Array(buffer, scratch, SCRATCH_CELLS),
    weights: new Float64Array(buffer, scratch + CELLS_BYTES, SCRATCH_CELLS),
    out: new Float32Array(buffer, outOffset, outBytes / 4),
    outOffset,
    bins: instance.exports.bins as SimdBins['bins'],
  }]]);
  return buffer;
}
