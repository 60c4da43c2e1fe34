/**
 * One package's pipelines on a synthetic split: COCO AP50 and AP@[.5:.95],
 * seconds per image (wall clock, end to end, proposals included) and
 * regions per image. Shared by `npm run bench:pipelines` and the int8
 * comparison of `npm run bench -- --precision int8`.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CocoResult } from '../../src/dataset/coco.js';
import { DATASET_SPLITS, generateDataset } from '../../src/dataset/generate.js';
import { Detector, type DetectOptions } from '../../src/detector.js';
import { evaluateCoco } from '../../src/eval/coco-eval.js';
import { CocoIds, readCocoDataset } from '../../src/eval/coco-results.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface Split {
  /** Where the images and annotations.json are. */
  dir: string;
  /** "the test split" or "seed S". */
  label: string;
  /** Removes a temporary split. */
  dispose(): void;
}

/** A named split (data/NAME, written first if missing), or a fresh seed in a temporary folder. */
export async function datasetSplit(split: string, seed?: string, count = 300): Promise<Split> {
  if (seed !== undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'rcnn-serve-bench-split-'));
    process.stderr.write(`writing ${count} images of seed ${seed} ...\n`);
    await generateDataset({ seed: Number(seed), count, out: dir });
    return { dir, label: `seed ${seed}`, dispose: () => rmSync(dir, { recursive: true, force: true }) };
  }
  const spec = DATASET_SPLITS[split as keyof typeof DATASET_SPLITS];
  if (!spec) throw new Error(`the split must be one of ${Object.keys(DATASET_SPLITS).join(', ')}`);
  const dir = join(root, 'data', split);
  try {
    await access(join(dir, 'annotations.json'));
  } catch {
    process.stderr.write(`writing the ${split} split to ${dir} ...\n`);
    await generateDataset({ ...spec, out: dir });
  }
  return { dir, label: `the ${split} split`, dispose: () => {} };
}

export interface PipelineScore {
  ap50: number;
  ap: number;
  secondsPerImage: number;
  regionsPerImage: number;
  images: number;
  objects: number;
}

/** Run one pipeline (row `pipeline[:scales]`) of a model over a split's first `limit` images, and score it. */
export async function scorePipeline(model: string, split: Split, row: string, options: { limit?: number; threads?: number; precision?: DetectOptions['precision'] } = {}): Promise<PipelineScore> {
  const gtPath = join(split.dir, 'annotations.json');
  const truth = await readCocoDataset(gtPath);
  const images = truth.images.slice(0, options.limit);
  const kept = new Set(images.map((im) => im.id));
  const subset = { ...truth, images, annotations: truth.annotations.filter((a) => kept.has(a.image_id)) };
  const ids = new CocoIds({ dataset: truth, path: gtPath });
  const [pipeline, scales] = row.split(':');
  const detectOptions = { pipeline, scales, precision: options.precision } as DetectOptions; // checked by the detector
  const detector = await Detector.load(model, { intraOpThreads: options.threads ?? 0 });
  try {
    const results: CocoResult[] = [];
    let seconds = 0, regions = 0;
    await detector.detect(join(split.dir, images[0]!.file_name), detectOptions); // warm-up: JIT and ONNX Runtime's first-run allocations
    for (const [i, im] of images.entries()) {
      const path = join(split.dir, im.file_name);
      const started = performance.now();
      const r = await detector.detect(path, detectOptions);
      seconds += (performance.now() - started) / 1000;
      regions += r.regions;
      results.push(...ids.results(path, i, r));
      if ((i + 1) % 50 === 0) process.stderr.write(`${row}${options.precision ? ` ${options.precision}` : ''}: ${i + 1}/${images.length}\n`);
    }
    const m = evaluateCoco(subset, results);
    return { ap50: m.ap50, ap: m.ap, secondsPerImage: seconds / images.length, regionsPerImage: regions / images.length, images: images.length, objects: subset.annotations.length };
  } finally {
    await detector.close();
  }
}
