/**
 * Efficient graph-based image segmentation (Felzenszwalb & Huttenlocher,
 * IJCV 2004), as `skimage.segmentation.felzenszwalb`:
 *
 *   1. smooth each channel with a Gaussian (sigma; scipy's 'reflect' border,
 *      kernel radius round(4 sigma));
 *   2. an 8-connected grid graph; an edge's weight is the Euclidean distance
 *      between its pixels' smoothed colours;
 *   3. visit edges by increasing weight; merge the two components when the
 *      weight is below both internal differences Int(C) + k / |C| (k = scale,
 *      with pixel values in [0, 1], k is divided by 255 as skimage does);
 *   4. a second pass over the same order merges any component smaller than
 *      minComponentSize with its neighbour.
 *
 * The union-find is skimage's (the smaller root wins, paths compressed on
 * join), and labels are numbered in raster order of each region's first
 * pixel, so labels coincide with skimage's where the segmentation does.
 * Equal edge weights are visited in edge order (a stable sort); numpy's
 * argsort leaves their order unspecified.
 *
 * The steps run as WebAssembly kernels (assembly/felzenszwalb.ts, compiled
 * from AssemblyScript) over arrays this file lays out in their memory
 * (kernels.ts): the same arithmetic as the TypeScript they replaced, about
 * 2.5 times as fast (docs/selective-search.md).
 *
 * Time O(n log n) at worst (a linear radix sort of 4n edges, comparison
 * sorts only inside runs of equal float32 weights); memory 112 bytes per
 * pixel for a three-channel image, held while the sorted graph is.
 */

import { KernelLayout, SORT_COUNTS_BYTES, type KernelInstance } from './kernels.js';
import { gaussianKernel } from './gaussian.js';

export interface FelzenszwalbOptions {
  /** Observation scale k: larger gives larger regions (skimage's `scale`). */
  scale: number;
  /** Gaussian smoothing before building the graph, in pixels (0.8 in the paper). */
  sigma: number;
  /** Components smaller than this are merged into a neighbour, in pixels. */
  minComponentSize: number;
}

export interface Segmentation {
  /** Region label of each pixel, row-major, 0..count-1. */
  labels: Int32Array;
  count: number;
  width: number;
  height: number;
}

/**
 * Steps 1 and 2 done, the edges sorted: the smoothed image's 8-connected
 * graph, independent of k and minComponentSize, so the strategies that segment one
 * image at several scales share it. It holds its kernels' memory until
 * released.
 */
export class SortedGraph {
  private constructor(
    readonly width: number,
    readonly height: number,
    private readonly instance: KernelInstance,
    /** Offsets in the instance's memory: edges by weight, their weights, and the union-find's arrays. */
    private readonly at: { sorted: number; weight: number; offsets: number; forest: number; size: number; threshold: number; startsSmall: number; labels: number },
    private readonly edges: number,
  ) {}

  private released = false;

  /**
   * Smooth, build the grid graph, sort its edges.
   * @param image H*W*C values, HWC, in [0, 1] (skimage's img_as_float of 8-bit input).
   */
  static build(image: Float64Array, width: number, height: number, channels: number, sigma: number): SortedGraph {
    const n = width * height;
    if (image.length !== n * channels) {
      throw new RangeError(`felzenszwalb: ${width}x${height}x${channels} needs ${n * channels} values, got ${image.length}`);
    }
    const m = n === 0 ? 0 : height * (width - 1) + (height - 1) * width + 2 * (height - 1) * (width - 1);
    const kernel = sigma > 0 && n > 0 ? gaussianKernel(sigma) : undefined;
    const layout = new KernelLayout();
    const taps = layout.reserve(8 * (kernel?.length ?? 0));
    // Four weight slots per pixel, indexed by the packed edge (p << 2) | direction; some unused.
    const weight = layout.reserve(8 * 4 * n);
    const packed = layout.reserve(4 * m), packed2 = layout.reserve(4 * m);
    const counts = layout.reserve(SORT_COUNTS_BYTES);
    // One region serves three phases in turn: the image and the smoothing's scratch, the sort's keys, the union-find.
    const [[colours, tmp], [keys, keys2], [offsets, forest, size, threshold, startsSmall, labels]] = layout.overlay(
      [8 * image.length, 8 * image.length],
      [4 * m, 4 * m],
      [16, 4 * n, 4 * n, 4 * n, n, 4 * n],
    ) as [[number, number], [number, number], [number, number, number, number, number, number]];
    const instance = layout.instantiate(`felzenszwalb on ${width}x${height}x${channels}`);
    const { kernels } = instance;
    instance.f64(colours, image.length).set(image);
    if (kernel) {
      instance.f64(taps, kernel.length).set(kernel);
      kernels.smooth(colours, tmp, colours, width, height, channels, taps, (kernel.length - 1) / 2);
    }
    kernels.gridEdges(colours, width, height, channels, packed, weight);
    const sorted = kernels.sortByWeight(weight, packed, m, keys, keys2, packed2, counts);
    // An edge's second endpoint from its first, by direction (see gridEdges in assembly/felzenszwalb.ts).
    instance.i32(offsets, 4).set([1, width, width + 1, width - 1]);
    const at = { sorted, weight, offsets, forest, size, threshold, startsSmall, labels };
    return new SortedGraph(width, height, instance, at, m);
  }

  /** Steps 3 and 4 at scale k, then the labels. */
  segment(scale: number, minComponentSize: number): Segmentation {
    if (this.released) throw new Error('SortedGraph: segment after release');
    const { width, height, at } = this;
    const n = width * height;
    if (n === 0) return { labels: new Int32Array(0), count: 0, width, height };
    const count = this.instance.kernels.segment(at.sorted, this.edges, at.weight, at.offsets, n, scale / 255, minComponentSize, at.forest, at.size, at.threshold, at.startsSmall, at.labels);
    return { labels: this.instance.i32(at.labels, n).slice(), count, width, height };
  }

  /** Done segmenting: its memory may serve the thread's next graph. */
  release(): void {
    this.released = true;
    this.instance.release();
  }
}

/**
 * Segment a multi-channel image.
 * @param image H*W*C values, HWC, in [0, 1] (skimage's img_as_float of 8-bit input).
 */
export function felzenszwalb(image: Float64Array, width: number, height: number, channels: number, options: FelzenszwalbOptions): Segmentation {
  const graph = SortedGraph.build(image, width, height, channels, options.sigma);
  try {
    return graph.segment(options.scale, options.minComponentSize);
  } finally {
    graph.release();
  }
}
