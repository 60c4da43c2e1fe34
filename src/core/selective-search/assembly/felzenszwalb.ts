/**
 * The kernels of the graph-based segmentation (felzenszwalb.ts is their
 * caller and documents the algorithm), in AssemblyScript: compiled to
 * WebAssembly with the texture's by `npm run build:wasm`, which writes the
 * module into kernels-module.ts.
 *
 * Every function works on arrays that the caller placed in the module's
 * memory (it imports it) and passes as byte offsets; nothing is allocated
 * here, and nothing is assumed of the memory's contents. The arithmetic is
 * the TypeScript original's, operation for operation (WebAssembly has no
 * fused multiply-add and rounds as JavaScript does), so the labels are the
 * same bit for bit, and so skimage's.
 */

/** scipy's 'reflect' index for i in any range over [0, n). */
function reflect(i: i32, n: i32): i32 {
  if (n == 1) return 0;
  const period = 2 * n;
  let j = i % period;
  if (j < 0) j += period;
  return j < n ? j : period - 1 - j;
}

@inline function f64At(base: usize, i: i32): f64 {
  return load<f64>(base + (<usize>i << 3));
}

@inline function setF64(base: usize, i: i32, v: f64): void {
  store<f64>(base + (<usize>i << 3), v);
}

@inline function i32At(base: usize, i: i32): i32 {
  return load<i32>(base + (<usize>i << 2));
}

@inline function setI32(base: usize, i: i32, v: i32): void {
  store<i32>(base + (<usize>i << 2), v);
}

/**
 * Gaussian smoothing of an HWC image as scipy.ndimage.gaussian_filter:
 * along y into `tmp`, then along x into `out` (which may be `image`). Each
 * value is scipy's sum for a symmetric kernel: the centre term, then the
 * pairs outward, acc += (after + before) * k[j]. Two values at a time where
 * no border is reflected (f64x2 lanes round as scalars do).
 * @param kernel the 2 radius + 1 taps.
 */
export function smooth(image: usize, tmp: usize, out: usize, width: i32, height: i32, channels: i32, kernel: usize, radius: i32): void {
  const rowLength = width * channels;
  const centre = f64At(kernel, radius);
  const centre2 = f64x2.splat(centre);
  // Along y, a row at a time: the centre term, then each pair of rows outward added in.
  for (let y = 0; y < height; y++) {
    const to = y * rowLength;
    let i = 0;
    for (; i + 2 <= rowLength; i += 2) v128.store(tmp + (<usize>(to + i) << 3), f64x2.mul(v128.load(image + (<usize>(to + i) << 3)), centre2));
    for (; i < rowLength; i++) setF64(tmp, to + i, f64At(image, to + i) * centre);
    for (let j = 1; j <= radius; j++) {
      const below = reflect(y + j, height) * rowLength, above = reflect(y - j, height) * rowLength;
      const tap = f64At(kernel, radius + j), tap2 = f64x2.splat(tap);
      i = 0;
      for (; i + 2 <= rowLength; i += 2) {
        const pair = f64x2.add(v128.load(image + (<usize>(below + i) << 3)), v128.load(image + (<usize>(above + i) << 3)));
        const at = tmp + (<usize>(to + i) << 3);
        v128.store(at, f64x2.add(v128.load(at), f64x2.mul(pair, tap2)));
      }
      for (; i < rowLength; i++) setF64(tmp, to + i, f64At(tmp, to + i) + (f64At(image, below + i) + f64At(image, above + i)) * tap);
    }
  }
  // Along x: the values whose taps all lie inside the row (contiguous in memory), then the borders, reflected.
  for (let y = 0; y < height; y++) {
    const row = y * rowLength;
    const inner0 = radius < width ? row + radius * channels : row;
    const inner1 = width - radius > radius ? row + (width - radius) * channels : inner0;
    let at = inner0;
    for (; at + 2 <= inner1; at += 2) {
      let acc = f64x2.mul(v128.load(tmp + (<usize>at << 3)), centre2);
      for (let j = 1; j <= radius; j++) {
        const s = j * channels;
        const pair = f64x2.add(v128.load(tmp + (<usize>(at + s) << 3)), v128.load(tmp + (<usize>(at - s) << 3)));
        acc = f64x2.add(acc, f64x2.mul(pair, f64x2.splat(f64At(kernel, radius + j))));
      }
      v128.store(out + (<usize>at << 3), acc);
    }
    for (; at < inner1; at++) {
      let acc = f64At(tmp, at) * centre;
      for (let j = 1; j <= radius; j++) {
        const s = j * channels;
        acc += (f64At(tmp, at + s) + f64At(tmp, at - s)) * f64At(kernel, radius + j);
      }
      setF64(out, at, acc);
    }
    for (let x = 0; x < width; x++) {
      const index = row + x * channels;
      if (index >= inner0 && index < inner1) continue;
      for (let c = 0; c < channels; c++) {
        let acc = f64At(tmp, row + x * channels + c) * centre;
        for (let j = 1; j <= radius; j++) {
          const after = row + reflect(x + j, width) * channels + c, before = row + reflect(x - j, width) * channels + c;
          acc += (f64At(tmp, after) + f64At(tmp, before)) * f64At(kernel, radius + j);
        }
        setF64(out, index + c, acc);
      }
    }
  }
}

/**
 * One direction of the grid graph: edges from p to p + step for the anchors
 * p of rows y0..y1 and columns x0..x1, row-major, from edge number e on.
 * @returns the next edge number.
 */
function gridDirection(img: usize, width: i32, channels: i32, packed: usize, weight: usize, e: i32, dir: i32, step: i32, y0: i32, y1: i32, x0: i32, x1: i32): i32 {
  for (let y = y0; y < y1; y++) {
    for (let p = y * width + x0, end = y * width + x1; p < end; p++) {
      const a = p * channels, b = (p + step) * channels;
      let s: f64;
      if (channels == 3) {
        const d0 = f64At(img, b) - f64At(img, a), d1 = f64At(img, b + 1) - f64At(img, a + 1), d2 = f64At(img, b + 2) - f64At(img, a + 2);
        s = d0 * d0 + d1 * d1 + d2 * d2;
      } else {
        s = 0;
        for (let c = 0; c < channels; c++) {
          const d = f64At(img, b + c) - f64At(img, a + c);
          s += d * d;
        }
      }
      const code = (p << 2) | dir;
      setI32(packed, e++, code);
      setF64(weight, code, sqrt<f64>(s));
    }
  }
  return e;
}

/**
 * The 8-connected grid graph in skimage's edge order: right, down,
 * down-right, up-right neighbours, each row-major; an edge is packed as
 * (p << 2) | direction, and its weight (the Euclidean distance of its
 * pixels' colours) stored at weight[packed].
 * @returns the number of edges.
 */
export function gridEdges(img: usize, width: i32, height: i32, channels: i32, packed: usize, weight: usize): i32 {
  let e = gridDirection(img, width, channels, packed, weight, 0, 0, 1, 0, height, 0, width - 1);
  e = gridDirection(img, width, channels, packed, weight, e, 1, width, 0, height - 1, 0, width);
  e = gridDirection(img, width, channels, packed, weight, e, 2, width + 1, 0, height - 1, 0, width - 1);
  // skimage's up-right edge joins (y, x + 1) and (y + 1, x): anchored at p = (y, x + 1), the other end is p + W - 1.
  return gridDirection(img, width, channels, packed, weight, e, 3, width - 1, 0, height - 1, 1, width);
}

const BITS = 11;
const BUCKETS = 1 << BITS;
const MASK = BUCKETS - 1;

/**
 * Stable sort of n items by their non-negative double weights
 * (weight[item]): an LSD radix sort of the float32 image of each weight
 * (three passes of 11 bits; for x >= 0 the IEEE bits order as unsigned
 * integers and rounding to float32 is monotone), then each run of equal
 * float32 keys ordered by the exact double (sortRun).
 * @param items the items, in the order ties keep; used as a buffer.
 * @param keys, keys2, items2 buffers of n u32.
 * @param counts a buffer of 3 * 2048 u32.
 * @returns items or items2: whichever holds the sorted items.
 */
export function sortByWeight(weight: usize, items: usize, n: i32, keys: usize, keys2: usize, items2: usize, counts: usize): usize {
  for (let i = 0; i < n; i++) store<f32>(keys + (<usize>i << 2), <f32>f64At(weight, i32At(items, i)));
  memory.fill(counts, 0, 3 * BUCKETS * 4);
  for (let i = 0; i < n; i++) {
    const d = i32At(keys, i);
    const c0 = counts + (<usize>(d & MASK) << 2);
    const c1 = counts + (<usize>(BUCKETS + ((d >>> BITS) & MASK)) << 2);
    const c2 = counts + (<usize>(2 * BUCKETS + (d >>> (2 * BITS))) << 2);
    store<i32>(c0, load<i32>(c0) + 1);
    store<i32>(c1, load<i32>(c1) + 1);
    store<i32>(c2, load<i32>(c2) + 1);
  }
  let order = items, order2 = items2;
  for (let pass = 0; pass < 3; pass++) {
    const shift = pass * BITS, base = pass * BUCKETS;
    // A pass whose digit is the same for every key would leave the order as it is.
    if (n == 0 || i32At(counts, base + ((i32At(keys, 0) >>> shift) & MASK)) == n) continue;
    let sum = 0;
    for (let d = base; d < base + BUCKETS; d++) {
      const c = i32At(counts, d);
      setI32(counts, d, sum);
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const d = i32At(keys, i);
      const slot = counts + (<usize>(base + ((d >>> shift) & MASK)) << 2);
      const at = load<i32>(slot);
      store<i32>(slot, at + 1);
      setI32(keys2, at, d);
      setI32(order2, at, i32At(order, i));
    }
    let t = keys; keys = keys2; keys2 = t;
    t = order; order = order2; order2 = t;
  }
  for (let start = 0; start < n; ) {
    let end = start + 1;
    const key = i32At(keys, start);
    while (end < n && i32At(keys, end) == key) end++;
    if (end - start > 1) sortRun(order, start, end, weight, keys2);
    start = end;
  }
  return order;
}

/**
 * Stable sort of order[start..end) by weight: insertion for the short runs
 * that photos give, a merge sort for long ones (a smooth gradient can put
 * most of an image's edges in one float32 value), so time stays O(n log n)
 * whatever the image; a run of equal doubles (a flat area) is left as it is.
 * @param scratch a buffer of at least end - start u32.
 */
function sortRun(order: usize, start: i32, end: i32, weight: usize, scratch: usize): void {
  if (end - start <= 32) {
    for (let i = start + 1; i < end; i++) {
      const item = i32At(order, i), v = f64At(weight, item);
      let j = i - 1;
      while (j >= start && f64At(weight, i32At(order, j)) > v) {
        setI32(order, j + 1, i32At(order, j));
        j--;
      }
      setI32(order, j + 1, item);
    }
    return;
  }
  const first = f64At(weight, i32At(order, start));
  let same = start + 1;
  while (same < end && f64At(weight, i32At(order, same)) == first) same++;
  if (same == end) return;
  const n = end - start;
  let a = order + (<usize>start << 2), b = scratch;
  for (let width = 1; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = min(lo + width, n), hi = min(lo + 2 * width, n);
      let i = lo, j = mid, o = lo;
      while (i < mid && j < hi) {
        // Take from the right half only when strictly lighter: stable.
        if (f64At(weight, i32At(a, j)) < f64At(weight, i32At(a, i))) setI32(b, o++, i32At(a, j++));
        else setI32(b, o++, i32At(a, i++));
      }
      while (i < mid) setI32(b, o++, i32At(a, i++));
      while (j < hi) setI32(b, o++, i32At(a, j++));
    }
    const t = a; a = b; b = t;
  }
  if (a != order + (<usize>start << 2)) memory.copy(order + (<usize>start << 2), a, <usize>n << 2);
}

/**
 * Root of a node's tree, halving the path on the way (each visited node is
 * pointed at its grandparent). A parent always has a smaller index and a
 * set's root is its smallest, as in skimage, so the roots are skimage's.
 */
@inline function findRoot(forest: usize, node: i32): i32 {
  let x = node;
  let parent = i32At(forest, x);
  while (parent < x) {
    const grand = i32At(forest, parent);
    setI32(forest, x, grand);
    x = parent;
    parent = grand;
  }
  return x;
}

@inline function setRoot(forest: usize, node: i32, root: i32): void {
  let n = node;
  while (i32At(forest, n) < n) {
    const next = i32At(forest, n);
    setI32(forest, n, root);
    n = next;
  }
  setI32(forest, n, root);
}

/** Join the trees of two roots under the smaller; returns the new root. */
@inline function joinTrees(forest: usize, r0: i32, r1: i32): i32 {
  const root = min(r0, r1);
  setRoot(forest, r0, root);
  setRoot(forest, r1, root);
  return root;
}

/**
 * Steps 3 and 4 and the labels, on sorted edges.
 * 3: skimage's union-find, visiting edges by weight and joining two
 *    components when the edge is lighter than both thresholds Int(C) + k / |C|
 *    (each root's kept up to date in float32, as skimage keeps it, so an edge
 *    costs no division).
 * 4: a second pass over the same order joins any component still under
 *    minComponentSize with its neighbour; once none is left the rest of the pass
 *    changes nothing, and an edge between two pixels that started the pass in
 *    big components is skipped without looking up its roots.
 * Labels number the regions in raster order of their first pixel.
 * @param offsets 4 i32: an edge's second endpoint from its first, by direction
 *   (right, down, down-right, up-right: 1, W, W + 1, W - 1); a table, as the
 *   directions of sorted edges come at random.
 * @param forest, size, labels buffers of n i32; threshold n f32; startsSmall n bytes.
 * @returns the number of regions.
 */
export function segment(sorted: usize, m: i32, weight: usize, offsets: usize, n: i32, k: f64, minComponentSize: i32, forest: usize, size: usize, threshold: usize, startsSmall: usize, labels: usize): i32 {
  for (let i = 0; i < n; i++) {
    setI32(forest, i, i);
    setI32(size, i, 1);
    store<f32>(threshold + (<usize>i << 2), <f32>k);
  }
  for (let e = 0; e < m; e++) {
    const q = i32At(sorted, e);
    const p = q >>> 2;
    const r0 = findRoot(forest, p + i32At(offsets, q & 3));
    const r1 = findRoot(forest, p);
    if (r0 == r1) continue;
    const w = f64At(weight, q);
    const t0 = load<f32>(threshold + (<usize>r0 << 2)), t1 = load<f32>(threshold + (<usize>r1 << 2));
    if (w < <f64>(t0 < t1 ? t0 : t1)) {
      const root = joinTrees(forest, r0, r1);
      const joined = i32At(size, r0) + i32At(size, r1);
      setI32(size, root, joined);
      store<f32>(threshold + (<usize>root << 2), <f32>(w + k / <f64>joined));
    }
  }
  let small = 0;
  for (let i = 0; i < n; i++) if (i32At(forest, i) == i && i32At(size, i) < minComponentSize) small++;
  if (small > 0) {
    for (let i = 0; i < n; i++) store<u8>(startsSmall + <usize>i, i32At(size, findRoot(forest, i)) < minComponentSize ? 1 : 0);
    for (let e = 0; e < m && small > 0; e++) {
      const q = i32At(sorted, e);
      const p = q >>> 2;
      const p2 = p + i32At(offsets, q & 3);
      if (load<u8>(startsSmall + <usize>p) == 0 && load<u8>(startsSmall + <usize>p2) == 0) continue;
      const r0 = findRoot(forest, p2), r1 = findRoot(forest, p);
      if (r0 == r1) continue;
      const s0 = i32At(size, r0), s1 = i32At(size, r1);
      if (s0 < minComponentSize || s1 < minComponentSize) {
        const root = joinTrees(forest, r0, r1);
        setI32(size, root, s0 + s1);
        small -= <i32>(s0 < minComponentSize) + <i32>(s1 < minComponentSize) - <i32>(s0 + s1 < minComponentSize);
      }
    }
  }
  // Roots are each region's smallest pixel: number them in raster order (size now holds each root's label).
  let count = 0;
  for (let i = 0; i < n; i++) setI32(size, i, -1);
  for (let i = 0; i < n; i++) {
    const r = findRoot(forest, i);
    if (i32At(size, r) == -1) setI32(size, r, count++);
    setI32(labels, i, i32At(size, r));
  }
  return count;
}
