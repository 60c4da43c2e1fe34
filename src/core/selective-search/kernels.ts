/**
 * Selective search's WebAssembly kernels (assembly/: the segmentation's and
 * the texture's) and the memory they work in. A job lays its arrays out
 * (KernelLayout), gets an instance of the module over a memory that holds
 * them (KernelInstance), and releases it when done.
 *
 * Each thread has at most one memory in hand between jobs, grown as jobs
 * need: a fresh memory costs its page faults again (the sorted graph took
 * 44 ms with a fresh one, 31 with one kept, at 500 x 375). Between selective-search runs
 * (`withKernelMemory`) it keeps one of up to 64 MiB, enough for a 500 x 375
 * image; a bigger one is left to the garbage collector when the run ends.
 * The module is compiled once per thread, on first use.
 */

import { SELECTIVE_SEARCH_WASM } from './kernels-module.js';

/** The exports of assembly/felzenszwalb.ts and assembly/texture.ts; pointers are byte offsets into the instance's memory. */
export interface SelectiveSearchKernels {
  smooth(image: number, tmp: number, out: number, width: number, height: number, channels: number, kernel: number, radius: number): void;
  gridEdges(image: number, width: number, height: number, channels: number, packed: number, weight: number): number;
  sortByWeight(weight: number, items: number, n: number, keys: number, keys2: number, items2: number, counts: number): number;
  segment(sorted: number, m: number, weight: number, offsets: number, n: number, k: number, minComponentSize: number, forest: number, size: number, threshold: number, startsSmall: number, labels: number): number;
  textureCodes(image: number, width: number, height: number, channels: number, codes: number, g: number, dg: number, plane: number, rowsD: number, rowsG: number, gx: number, gy: number): void;
}

/** sortByWeight's `counts` buffer: its radix digits, three passes of 11 bits over a float32 key. */
export const SORT_COUNTS_BYTES = 3 * 2048 * 4;

const PAGE = 65536;
/** WebAssembly's 32-bit memories: 65536 pages of 64 KiB. */
const MAX_BYTES = 65536 * PAGE;
/** The most memory a thread keeps between selective-search runs. */
const KEEP_BYTES = 64 * 2 ** 20;

let compiled: WebAssembly.Module | undefined;
/** The thread's memory while no job holds it. */
let idle: KernelInstance | undefined;
/** How many withKernelMemory calls are running on this thread. */
let runs = 0;

const align16 = (bytes: number) => Math.ceil(bytes / 16) * 16;

/**
 * Run fn, keeping the thread's kernel memory between its jobs whatever its
 * size; when the outermost call ends, a memory over 64 MiB is let go.
 */
export function withKernelMemory<T>(fn: () => T): T {
  runs++;
  try {
    return fn();
  } finally {
    if (--runs === 0 && idle && idle.bytes > KEEP_BYTES) idle = undefined;
  }
}

/** Where the arrays of one job go in the memory of the instance that will run it. */
export class KernelLayout {
  private top = 0;

  /** Reserve bytes, 16-aligned; returns their offset. */
  reserve(bytes: number): number {
    const at = this.top;
    this.top += align16(bytes);
    return at;
  }

  /**
   * Reserve one region for arrays that are never live at the same time:
   * each phase's arrays lie one after another from the region's start.
   * @param phases each phase's array sizes, in bytes.
   * @returns each phase's offsets.
   */
  overlay(...phases: number[][]): number[][] {
    const start = this.top;
    let end = start;
    const offsets = phases.map((sizes) => {
      let next = start;
      return sizes.map((bytes) => {
        const at = next;
        next += align16(bytes);
        end = Math.max(end, next);
        return at;
      });
    });
    this.top = end;
    return offsets;
  }

  /**
   * An instance whose memory holds everything reserved: the thread's idle
   * one, grown if need be, or a new one. Its memory's contents are undefined.
   * @param what names the job in the error thrown when it needs more than WebAssembly's 4 GiB.
   */
  instantiate(what: string): KernelInstance {
    if (this.top > MAX_BYTES) {
      throw new RangeError(`${what} needs ${(this.top / 2 ** 30).toFixed(1)} GiB of working memory; WebAssembly allows 4 GiB: use a smaller image`);
    }
    const pages = Math.max(1, Math.ceil(this.top / PAGE));
    const instance = idle ?? KernelInstance.create(pages);
    idle = undefined;
    instance.growTo(pages);
    return instance;
  }
}

/** One instance of the module and its memory, with typed views of the arrays in it. */
export class KernelInstance {
  private constructor(
    readonly kernels: SelectiveSearchKernels,
    private readonly memory: WebAssembly.Memory,
  ) {}

  static create(pages: number): KernelInstance {
    const memory = new WebAssembly.Memory({ initial: pages });
    compiled ??= new WebAssembly.Module(Buffer.from(SELECTIVE_SEARCH_WASM, 'base64'));
    return new KernelInstance(new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as SelectiveSearchKernels, memory);
  }

  get bytes(): number {
    return this.memory.buffer.byteLength;
  }

  growTo(pages: number): void {
    const have = this.bytes / PAGE;
    if (pages > have) this.memory.grow(pages - have);
  }

  /** The job is done with it: it becomes the thread's idle memory (see withKernelMemory). Use it no more. */
  release(): void {
    if ((runs > 0 || this.bytes <= KEEP_BYTES) && this.bytes > (idle?.bytes ?? 0)) idle = this;
  }

  u8(at: number, length: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, at, length);
  }

  f64(at: number, length: number): Float64Array {
    return new Float64Array(this.memory.buffer, at, length);
  }

  u32(at: number, length: number): Uint32Array {
    return new Uint32Array(this.memory.buffer, at, length);
  }

  i32(at: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, at, length);
  }
}
