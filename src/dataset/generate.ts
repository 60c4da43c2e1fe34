/**
 * Write a synthetic detection dataset: JPEG images under `images/` and a COCO
 * `annotations.json` whose file names are relative to the output folder and
 * whose category names are the labels the shipped model reports.
 *
 * Image i of seed s is the scene of seed mix(s, i): the first n images of a
 * seed do not depend on how many are asked for.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mixSeeds } from '../core/random.js';
import { encodeJpeg } from '../image/encode.js';
import { toXywh, type CocoDataset } from './coco.js';
import { renderScene } from './scene.js';
import { SHAPE_CLASSES } from './shapes.js';

/**
 * The fixed splits the shipped model was trained, tuned and tested on:
 * train-extra and train-extra2 double and triple the training images for the
 * later training rounds (the detector over-fits fewer).
 */
export const DATASET_SPLITS = Object.freeze({
  train: { seed: 1, count: 1600 },
  'train-extra': { seed: 11, count: 1600 },
  'train-extra2': { seed: 21, count: 1600 },
  val: { seed: 2, count: 200 },
  test: { seed: 3, count: 300 },
});

export interface GenerateOptions {
  seed: number;
  count: number;
  out: string;
  /** JPEG quality 1..100 (default 92). */
  quality?: number;
  onProgress?: (done: number, count: number) => void;
}

export async function generateDataset(options: GenerateOptions): Promise<CocoDataset> {
  const { seed, count, out } = options;
  await mkdir(join(out, 'images'), { recursive: true });
  const dataset: CocoDataset = {
    info: { description: 'rcnn-serve synthetic shapes', generator: 'rcnn-serve dataset', seed, count },
    images: [],
    annotations: [],
    categories: SHAPE_CLASSES.map((c, i) => ({ id: i + 1, name: c.name })),
  };
  for (let i = 0; i < count; i++) {
    const scene = renderScene(mixSeeds(seed, i));
    const fileName = `images/${String(i).padStart(6, '0')}.jpg`;
    const jpeg = await encodeJpeg({ data: scene.pixels, width: scene.width, height: scene.height }, options.quality ?? 92);
    await writeFile(join(out, fileName), jpeg);
    const imageId = i + 1;
    dataset.images.push({ id: imageId, file_name: fileName, width: scene.width, height: scene.height });
    for (const o of scene.objects) {
      dataset.annotations.push({ id: dataset.annotations.length + 1, image_id: imageId, category_id: o.classIndex + 1, bbox: toXywh(o.box), area: o.visibleArea, iscrowd: 0 });
    }
    options.onProgress?.(i + 1, count);
  }
  await writeFile(join(out, 'annotations.json'), JSON.stringify(dataset));
  return dataset;
}
