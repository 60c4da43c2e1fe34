import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import sharp, { type PngOptions } from 'sharp';
import { describe, expect, it } from 'vitest';
import { convertColour } from '../../../../src/core/selective-search/colour-spaces.js';
import { felzenszwalb } from '../../../../src/core/selective-search/felzenszwalb.js';
import { colourBins, GROUPING_CHECK_EVERY, regionFeatures } from '../../../../src/core/selective-search/grouping.js';
import { MODES, rankProposals, rankRegions, runStrategies, selectiveSearch, selectiveSearchRegions, strategiesFor } from '../../../../src/core/selective-search/selective-search.js';
import { textureBins } from '../../../../src/core/selective-search/texture.js';
import { decodeImage } from '../../../../src/image/decode.js';
import { fixturePath } from '../../../helpers/fixtures.js';
import { islandsImage } from '../../../helpers/images.js';

const shapes = await decodeImage(readFileSync(fixturePath('images', 'shapes.png')));

describe('strategy sets', () => {
  it('have the paper\'s and OpenCV\'s sizes: 1, 8, 80, 12, 100 hierarchies', () => {
    expect(MODES.map((m) => strategiesFor(m).length)).toEqual([1, 8, 80, 12, 100]);
  });
});

describe('hierarchical grouping', () => {
  const hsv = convertColour(shapes.data, shapes.width, shapes.height, 'HSV');
  const seg = felzenszwalb(hsv.data, shapes.width, shapes.height, 3, { scale: 100, sigma: 0.8, minComponentSize: 100 });
  const features = regionFeatures(seg, colourBins(hsv), 3, textureBins(hsv));

  it('histograms are L1-normalised; sizes add up to the image', () => {
    expect(features.size.reduce((a, b) => a + b, 0)).toBe(shapes.width * shapes.height);
    for (let r = 0; r < features.count; r++) {
      const c = features.colour.subarray(r * features.colourLength, (r + 1) * features.colourLength).reduce((a, b) => a + b, 0);
      const t = features.texture.subarray(r * features.textureLength, (r + 1) * features.textureLength).reduce((a, b) => a + b, 0);
      expect(c).toBeCloseTo(1, 5);
      expect(t).toBeCloseTo(1, 5);
    }
  });
});

describe('selectiveSearch', () => {
  it('is deterministic for an image, options and seed, and the seed changes the ranking, not the set', () => {
    const a = selectiveSearch(shapes, { mode: 'fast', seed: 7 });
    const b = selectiveSearch(shapes, { mode: 'fast', seed: 7 });
    const c = selectiveSearch(shapes, { mode: 'fast', seed: 8 });
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
    const key = (x: Float32Array) => [...Array(x.length / 4).keys()].map((i) => Array.from(x.subarray(4 * i, 4 * i + 4)).join()).sort();
    expect(key(a)).toEqual(key(c));
  });

  it('gives pinned proposals, so that a faster kernel that changes them is a decision (same on Node 20 and 24)', async () => {
    const chelsea = await decodeImage(readFileSync(fixturePath('images', 'chelsea.png')));
    const pinned = [
      [shapes, 'single', 71, 'f326d8d2c738feb3e9fe9537c100af50c9ac4912ef1a4ddc3a051c320208705b'],
      [shapes, 'fast', 723, '65643e3aa28b19d46a292b11f35bf831438c7bcf75f5ddf184492dfa0e2de2ed'],
      [chelsea, 'single', 170, 'ffdb2d22941d7a2c428504bbc7c67e7d69ca83fed4fc5a009beb05751a546414'],
      [chelsea, 'fast', 1418, 'ed3ec9176dbe1a983afce821b55aad1ebb3081fb52d4fc9bc0c5879c7ea11314'],
    ] as const;
    for (const [image, mode, count, sha256] of pinned) {
      const boxes = selectiveSearch(image, { mode, seed: 0 });
      expect(boxes.length / 4).toBe(count);
      expect(createHash('sha256').update(Buffer.from(boxes.buffer, boxes.byteOffset, boxes.byteLength)).digest('hex')).toBe(sha256);
    }
  });

  it('boxes are unique, inside the image, and honour maxProposals and minSize', () => {
    const boxes = selectiveSearch(shapes, { mode: 'single', seed: 0, maxProposals: 50, minSize: 20 });
    expect(boxes.length / 4).toBeLessThanOrEqual(50);
    const seen = new Set<string>();
    for (let i = 0; i < boxes.length; i += 4) {
      const [x1, y1, x2, y2] = boxes.subarray(i, i + 4);
      expect(x2! - x1!).toBeGreaterThanOrEqual(20);
      expect(y2! - y1!).toBeGreaterThanOrEqual(20);
      expect(x1).toBeGreaterThanOrEqual(0);
      expect(x2).toBeLessThanOrEqual(shapes.width);
      expect(y2).toBeLessThanOrEqual(shapes.height);
      const k = `${x1},${y1},${x2},${y2}`;
      expect(seen.has(k)).toBe(false);
      seen.add(k);
    }
  });

  it('ranking follows the paper: with one hierarchy, larger positions (later merges) tend to come first', () => {
    // Position n - p times U[0,1): the whole image (value <= 1) ranks in the top few.
    const boxes = selectiveSearch(shapes, { mode: 'single', seed: 0 });
    const first = [...Array(10).keys()].map((i) => Array.from(boxes.subarray(4 * i, 4 * i + 4)).join());
    expect(first).toContain(`0,0,${shapes.width},${shapes.height}`);
    expect(rankProposals([], { seed: 0 }).length).toBe(0);
  });

  it("names each ranked region's origin: its strategy, and the merge that formed it (0: an initial segment)", () => {
    // Two hierarchies of 3 initial regions and 2 merges each: boxes 0-2 initial, 3-4 merged, 4 the whole 10 x 10 image.
    const hierarchy = (shift: number) => ({ boxes: Int32Array.from([0, 0, 2, 2, 3, 3, 5, 5, 6, 6, 8 + shift, 8, 0, 0, 5, 5, 0, 0, 10, 10]) });
    const ranked = rankRegions([hierarchy(0), hierarchy(1)], { seed: 3 });
    // The hierarchies differ in their third box only: 6 distinct boxes of 10.
    expect(ranked.boxes.length / 4).toBe(6);
    for (let i = 0; i < 6; i++) {
      const box = Array.from(ranked.boxes.subarray(4 * i, 4 * i + 4));
      const own = hierarchy(ranked.strategy[i]!).boxes;
      const position = ranked.level[i]! === 0 ? [0, 1, 2].find((p) => own.subarray(4 * p, 4 * p + 4).join() === box.join())! : ranked.level[i]! + 2;
      expect(Array.from(own.subarray(4 * position, 4 * position + 4))).toEqual(box);
      expect(ranked.merges[i]).toBe(2);
    }
    expect(Array.from(ranked.boxes)).toEqual(Array.from(rankProposals([hierarchy(0), hierarchy(1)], { seed: 3 })));
    // On an image: every level within its hierarchy's merges; the whole image's box formed by a late merge (a box can span the image before the last).
    const real = selectiveSearchRegions(shapes, { mode: 'fast', seed: 0 });
    expect(Array.from(real.boxes)).toEqual(Array.from(selectiveSearch(shapes, { mode: 'fast', seed: 0 })));
    const whole = [...real.level.keys()].find((i) => real.boxes.subarray(4 * i, 4 * i + 4).join() === `0,0,${shapes.width},${shapes.height}`)!;
    expect(real.level[whole]).toBeGreaterThan(real.merges[whole]! / 2);
    expect(real.level.every((l, i) => l >= 0 && l <= real.merges[i]!)).toBe(true);
    expect(new Set(real.strategy).size).toBe(strategiesFor('fast').length);
  });

  it('odd inputs give sensible proposals, no crash, no hang: 1x1, all black, a 10000 x 8 strip, greyscale, alpha, 16-bit', async () => {
    const make = async (w: number, h: number, channels: 3 | 4, options: { greyscale?: boolean; bitdepth?: 16 } = {}) => {
      let img = sharp({ create: { width: w, height: h, channels, background: { r: 10, g: 200, b: 90, alpha: 0.5 } } });
      if (options.greyscale) img = img.greyscale();
      const png = await img.png(options.bitdepth ? ({ bitdepth: 16 } as PngOptions) : {}).toBuffer();
      return decodeImage(png);
    };
    const one = selectiveSearch(await make(1, 1, 3), { mode: 'fast', seed: 0 });
    expect(Array.from(one)).toEqual([0, 0, 1, 1]);
    const black = selectiveSearch({ data: new Uint8Array(64 * 48 * 3), width: 64, height: 48 }, { mode: 'fast', seed: 0 });
    expect(Array.from(black)).toEqual([0, 0, 64, 48]);
    const t = performance.now();
    const strip = selectiveSearch(await make(10000, 8, 3), { mode: 'single', seed: 0 });
    expect(strip.length).toBeGreaterThanOrEqual(4);
    expect(performance.now() - t).toBeLessThan(20_000);
    for (const img of [await make(40, 30, 3, { greyscale: true }), await make(40, 30, 4), await make(40, 30, 3, { bitdepth: 16 })]) {
      expect(Array.from(selectiveSearch(img, { mode: 'single', seed: 0 }))).toEqual([0, 0, 40, 30]);
    }
  });

  it('checks its signal every 256 merges of each grouping, and stops when it throws', () => {
    const image = islandsImage(500);
    let calls = 0;
    const hierarchies = runStrategies(image, strategiesFor('fast'), 'fast', undefined, { throwIfAborted: () => void calls++ });
    expect(calls).toBe(hierarchies.reduce((n, h) => n + Math.floor(h.merges.length / 2 / GROUPING_CHECK_EVERY), 0));
    expect(calls).toBeGreaterThan(8);
    calls = 0;
    const stopAtThird = { throwIfAborted: () => { if (++calls === 3) throw new Error('stopped'); } };
    expect(() => selectiveSearch(image, { mode: 'fast', seed: 0, signal: stopAtThird })).toThrow('stopped');
    expect(calls).toBe(3);
  });

  it('a smooth gradient (most edge weights equal in float32, not in float64) takes time like a photo of its size', () => {
    const w = 400, h = 300;
    const data = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) {
      data[3 * i] = Math.floor(((i % w) * 255) / w);
      data[3 * i + 1] = Math.floor((Math.floor(i / w) * 255) / h);
      data[3 * i + 2] = 128;
    }
    const t = performance.now();
    const boxes = selectiveSearch({ data, width: w, height: h }, { mode: 'single', seed: 0 });
    expect(boxes.length).toBeGreaterThanOrEqual(4);
    // 473 runs of 33 to 84 edges share a float32 weight here: sorted by the exact doubles with a comparison sort.
    expect(performance.now() - t).toBeLessThan(10_000);
  });
});
