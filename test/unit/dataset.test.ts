import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { mixSeeds } from '../../src/core/random.js';
import type { CocoDataset } from '../../src/dataset/coco.js';
import { generateDataset } from '../../src/dataset/generate.js';
import { renderScene, SCENE_LIMITS } from '../../src/dataset/scene.js';
import { SHAPE_CLASSES } from '../../src/dataset/shapes.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('synthetic scenes', () => {
  it('are a pure function of the seed, pinned so a change to the generator is a decision', () => {
    const a = renderScene(mixSeeds(3, 0));
    expect(sha256(renderScene(mixSeeds(3, 0)).pixels)).toBe(sha256(a.pixels));
    // Image 0 of the test split (seed 3): the split the README's table is measured on.
    expect([a.width, a.height]).toEqual([431, 331]);
    expect(a.objects).toEqual([
      { classIndex: 0, box: [343, 38, 426, 128], visibleArea: 5906 },
      { classIndex: 0, box: [31, 110, 51, 135], visibleArea: 392 },
    ]);
    expect(sha256(a.pixels)).toBe('22119afbf56f490107e12db638d6c2a8d483793c63feffa7ca8b2c782c241c84');
    expect(sha256(renderScene(mixSeeds(3, 1)).pixels)).not.toBe(sha256(a.pixels));
  });

  it('cover every class, the size range and several objects per image, inside the frame', () => {
    const seen = new Set<number>();
    let small = 0, large = 0, objects = 0;
    for (let i = 0; i < 40; i++) {
      const s = renderScene(mixSeeds(77, i));
      expect(s.width).toBeGreaterThanOrEqual(SCENE_LIMITS.minWidth);
      expect(s.height).toBeLessThanOrEqual(SCENE_LIMITS.maxHeight);
      expect(s.pixels.length).toBe(s.width * s.height * 3);
      for (const o of s.objects) {
        seen.add(o.classIndex);
        const [x1, y1, x2, y2] = o.box;
        expect(x1).toBeGreaterThanOrEqual(0);
        expect(y1).toBeGreaterThanOrEqual(0);
        expect(x2).toBeLessThanOrEqual(s.width);
        expect(y2).toBeLessThanOrEqual(s.height);
        const side = Math.max(x2 - x1, y2 - y1);
        if (side < 32) small++;
        if (side > 150) large++;
        objects++;
        expect(o.visibleArea).toBeGreaterThan(0);
      }
    }
    expect(seen.size).toBe(SHAPE_CLASSES.length);
    expect(SHAPE_CLASSES.length).toBeGreaterThanOrEqual(8);
    expect(small).toBeGreaterThan(0);
    expect(large).toBeGreaterThan(0);
    expect(objects / 40).toBeGreaterThan(3);
  });
});

describe('generateDataset', () => {
  it('writes JPEGs and a COCO file with relative names; image i does not depend on the count', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rcnn-serve-dataset-'));
    try {
      await generateDataset({ seed: 5, count: 3, out: join(dir, 'a') });
      await generateDataset({ seed: 5, count: 2, out: join(dir, 'b') });
      const a = JSON.parse(await readFile(join(dir, 'a', 'annotations.json'), 'utf8')) as CocoDataset;
      const b = JSON.parse(await readFile(join(dir, 'b', 'annotations.json'), 'utf8')) as CocoDataset;
      expect(a.images.map((im) => im.file_name)).toEqual(['images/000000.jpg', 'images/000001.jpg', 'images/000002.jpg']);
      expect(a.categories.map((c) => c.name)).toEqual(SHAPE_CLASSES.map((c) => c.name));
      expect(b.annotations).toEqual(a.annotations.filter((x) => x.image_id <= 2));
      for (const im of a.images) {
        const meta = await sharp(join(dir, 'a', im.file_name)).metadata();
        expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', im.width, im.height]);
      }
      expect(await readFile(join(dir, 'b', 'images/000001.jpg'))).toEqual(await readFile(join(dir, 'a', 'images/000001.jpg')));
      for (const ann of a.annotations) {
        expect(ann.iscrowd).toBe(0);
        expect(ann.bbox[2]).toBeGreaterThan(0);
        expect(ann.area).toBeLessThanOrEqual(ann.bbox[2] * ann.bbox[3]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
