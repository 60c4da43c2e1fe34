import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileModule, WASM_MODULES } from '../../../../scripts/build-wasm.js';
import { KernelLayout, SORT_COUNTS_BYTES, withKernelMemory } from '../../../../src/core/selective-search/kernels.js';
import { gaussianKernel } from '../../../../src/core/selective-search/gaussian.js';

/** The smooth kernel on one image, in a memory of its own. */
function smooth(image: Float64Array, width: number, height: number, channels: number, kernel: Float64Array): Float64Array {
  const layout = new KernelLayout();
  const data = layout.reserve(8 * image.length), tmp = layout.reserve(8 * image.length), taps = layout.reserve(8 * kernel.length);
  const instance = layout.instantiate('smooth');
  instance.f64(data, image.length).set(image);
  instance.f64(taps, kernel.length).set(kernel);
  instance.kernels.smooth(data, tmp, data, width, height, channels, taps, (kernel.length - 1) / 2);
  return instance.f64(data, image.length).slice();
}

/** The sortByWeight kernel: the items by increasing weight[item], stably. */
function sortByWeight(weight: Float64Array, items: Uint32Array): Uint32Array {
  const n = items.length;
  const layout = new KernelLayout();
  const w = layout.reserve(8 * weight.length), a = layout.reserve(4 * n), b = layout.reserve(4 * n);
  const keys = layout.reserve(4 * n), keys2 = layout.reserve(4 * n), counts = layout.reserve(SORT_COUNTS_BYTES);
  const instance = layout.instantiate('sortByWeight');
  instance.f64(w, weight.length).set(weight);
  instance.u32(a, n).set(items);
  return instance.u32(instance.kernels.sortByWeight(w, a, n, keys, keys2, b, counts), n).slice();
}

/** scipy.ndimage.gaussian_filter's sums written out per output value: rows (axis 0), then columns. */
function reference(image: Float64Array, width: number, height: number, channels: number, kernel: Float64Array): Float64Array {
  const r = (kernel.length - 1) / 2;
  const reflect = (i: number, n: number) => {
    if (n === 1) return 0;
    let j = i % (2 * n);
    if (j < 0) j += 2 * n;
    return j < n ? j : 2 * n - 1 - j;
  };
  const at = (y: number, x: number, c: number) => (y * width + x) * channels + c;
  const pass = (src: Float64Array, alongY: boolean) => {
    const dst = new Float64Array(src.length);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < channels; c++) {
          const tap = (d: number) => src[alongY ? at(reflect(y + d, height), x, c) : at(y, reflect(x + d, width), c)]!;
          let acc = tap(0) * kernel[r]!;
          for (let j = 1; j <= r; j++) acc += (tap(j) + tap(-j)) * kernel[r + j]!;
          dst[at(y, x, c)] = acc;
        }
      }
    }
    return dst;
  };
  return pass(pass(image, true), false);
}

describe('smooth (the segmentation\'s Gaussian)', () => {
  const sizes: [number, number, number][] = [[1, 1, 3], [2, 5, 3], [7, 3, 1], [31, 17, 3]];
  // Radii 1, 2, 3 (0.8 is the segmentation's) and 6.
  for (const sigma of [0.3, 0.5, 0.8, 1.5]) {
    it(`equals scipy's sums bit for bit, sigma ${sigma}`, () => {
      let seed = 7;
      for (const [width, height, channels] of sizes) {
        const image = Float64Array.from({ length: width * height * channels }, () => ((seed = (seed * 16807) % 2147483647) % 256) / 255);
        const kernel = gaussianKernel(sigma);
        expect(Array.from(smooth(image, width, height, channels, kernel))).toEqual(Array.from(reference(image, width, height, channels, kernel)));
      }
    });
  }
});

describe('sortByWeight', () => {
  it('sorts items by non-negative double weights, stably, down to the last bit', () => {
    const weight = Float64Array.of(3.5, 0, 1e-300, 2, 3.5, 1e300, 0, 2.0000000001, 2);
    expect(Array.from(sortByWeight(weight, Uint32Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8)))).toEqual([1, 6, 2, 3, 8, 7, 0, 4, 5]);
    // Ties keep the order the items come in.
    expect(Array.from(sortByWeight(weight, Uint32Array.of(8, 4, 3, 0)))).toEqual([8, 3, 4, 0]);
  });

  it('agrees with a comparison sort on many near-equal weights', () => {
    const n = 5000;
    const weight = Float64Array.from({ length: n }, (_, i) => 0.25 + ((i * 7919) % 97) * 1e-12 + ((i * 31) % 5) * 1e-3);
    const items = Uint32Array.from({ length: n }, (_, i) => (i * 2654435761) % n);
    const expected = Array.from(items).sort((a, b) => weight[a]! - weight[b]!); // stable since ES2019
    expect(Array.from(sortByWeight(weight, items))).toEqual(expected);
  });
});

describe('kernel memory', () => {
  /** An instance for a job of this many bytes. */
  const job = (bytes: number) => {
    const layout = new KernelLayout();
    layout.reserve(bytes);
    return layout.instantiate('test');
  };

  it('lays out arrays 16-aligned, and phases that are never live together over one region', () => {
    const layout = new KernelLayout();
    expect(layout.reserve(5)).toBe(0);
    expect(layout.overlay([8, 40], [100], [1, 1, 1])).toEqual([[16, 32], [16], [16, 32, 48]]);
    expect(layout.reserve(1)).toBe(16 + 112);
  });

  it('serves the next job from the thread\'s released memory, grown as needed; lets a big one go once no run holds it', () => {
    const small = job(1 << 20);
    small.release();
    const grown = job(8 << 20);
    expect(grown).toBe(small);
    expect(grown.bytes).toBeGreaterThanOrEqual(8 << 20);
    grown.release();
    // Over 64 MiB: kept between the jobs of a run, let go when it ends.
    withKernelMemory(() => {
      const big = job(80 << 20);
      big.release();
      expect(job(1 << 20)).toBe(big);
      big.release();
    });
    const after = job(1 << 20);
    expect(after.bytes).toBeLessThan(64 << 20);
    after.release();
  });

  it('refuses a job over WebAssembly\'s 4 GiB with an error that says so', () => {
    const layout = new KernelLayout();
    layout.reserve(112 * 40_000_000);
    expect(() => layout.instantiate('felzenszwalb on 8000x5000x3')).toThrow(/felzenszwalb on 8000x5000x3 needs 4\.2 GiB of working memory; WebAssembly allows 4 GiB/);
  });
});

describe('the compiled modules', () => {
  for (const module of WASM_MODULES) {
    it(`${module.output} is what npm run build:wasm makes of ${module.sources.join(' and ')}`, async () => {
      expect(readFileSync(module.output, 'utf8')).toBe(await compileModule(module));
    });
  }
});
