/**
 * `npm run bench:pipelines`: the papers' comparison, reproduced. The three
 * pipelines of one package on the held-out test split of the synthetic
 * dataset (or on any other seed): COCO AP50 and AP@[.5:.95], seconds per
 * image (wall clock, end to end, proposals included) and regions scored per
 * image, next to the published PASCAL VOC 2007 figures for context.
 *
 *   npm run bench:pipelines -- [--model DIR_OR_NAME] [--split test | --seed S --count N] [--limit N]
 *                              [--pipelines rcnn,fast-rcnn,faster-rcnn,faster-rcnn:single] [--threads N]
 *
 * `faster-rcnn:single` is Faster R-CNN at the package's one input size
 * (the request option scales=single), as the papers test; plain
 * `faster-rcnn` at its test scales, where it has them.
 *
 * --split test (default) reads data/test, writing it first if missing; --seed
 * writes a fresh set to a temporary folder (seeds the model never saw).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { CocoResult } from '../../src/dataset/coco.js';
import { DATASET_SPLITS, generateDataset } from '../../src/dataset/generate.js';
import { Detector, PIPELINES, type DetectOptions } from '../../src/detector.js';
import { evaluateCoco } from '../../src/eval/coco-eval.js';
import { CocoIds, readCocoDataset } from '../../src/eval/coco-results.js';
import { DEFAULT_MODEL } from '../../src/model/package.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: DEFAULT_MODEL },
    split: { type: 'string', default: 'test' },
    seed: { type: 'string' },
    count: { type: 'string', default: '300' },
    limit: { type: 'string' },
    pipelines: { type: 'string', default: [...PIPELINES, 'faster-rcnn:single'].join(',') },
    threads: { type: 'string', default: '0' },
  },
});

/** Published PASCAL VOC 2007 test figures (VGG16; R-CNN with box regression, Fast R-CNN trained on 07+12, Faster R-CNN 07+12). */
const PUBLISHED: Record<string, string> = {
  rcnn: '66.0% mAP, 47 s/image (K40, VGG16)',
  'fast-rcnn': '66.9% mAP (07 train), 0.32 s/image + selective search (~2 s, CPU)',
  'faster-rcnn': '69.9% mAP (07 train), 0.198 s/image (K40, VGG16)',
  'faster-rcnn:single': '69.9% mAP (07 train), 0.198 s/image (K40, VGG16)',
};

let temp: string | undefined;
let dir: string;
if (values.seed !== undefined) {
  temp = mkdtempSync(join(tmpdir(), 'rcnn-serve-bench-pipelines-'));
  dir = temp;
  process.stderr.write(`writing ${values.count} images of seed ${values.seed} ...\n`);
  await generateDataset({ seed: Number(values.seed), count: Number(values.count), out: dir });
} else {
  const split = DATASET_SPLITS[values.split as keyof typeof DATASET_SPLITS];
  if (!split) throw new Error(`--split must be one of ${Object.keys(DATASET_SPLITS).join(', ')}`);
  dir = join(root, 'data', values.split!);
  try {
    await access(join(dir, 'annotations.json'));
  } catch {
    process.stderr.write(`writing the ${values.split} split to ${dir} ...\n`);
    await generateDataset({ ...split, out: dir });
  }
}

try {
  const gtPath = join(dir, 'annotations.json');
  const truth = await readCocoDataset(gtPath);
  const images = truth.images.slice(0, values.limit ? Number(values.limit) : undefined);
  const subset = { ...truth, images, annotations: truth.annotations.filter((a) => images.some((im) => im.id === a.image_id)) };
  const ids = new CocoIds({ dataset: truth, path: gtPath });
  const rows: string[] = [];
  for (const row of values.pipelines!.split(',')) {
    const [pipeline, scales] = row.split(':');
    const options = { pipeline, scales } as DetectOptions; // checked by the detector
    const detector = await Detector.load(values.model!, { intraOpThreads: Number(values.threads) });
    try {
      const results: CocoResult[] = [];
      let seconds = 0, regions = 0;
      await detector.detect(join(dir, images[0]!.file_name), options); // warm-up: JIT and ONNX Runtime's first-run allocations
      for (const [i, im] of images.entries()) {
        const path = join(dir, im.file_name);
        const started = performance.now();
        const r = await detector.detect(path, options);
        seconds += (performance.now() - started) / 1000;
        regions += r.regions;
        results.push(...ids.results(path, i, r));
        if ((i + 1) % 50 === 0) process.stderr.write(`${row}: ${i + 1}/${images.length}\n`);
      }
      const m = evaluateCoco(subset, results);
      const line = `| ${row} | ${(100 * m.ap50).toFixed(1)} | ${(100 * m.ap).toFixed(1)} | ${(seconds / images.length).toFixed(3)} | ${(regions / images.length).toFixed(0)} | ${PUBLISHED[row]} |`;
      process.stderr.write(`${line}\n`);
      rows.push(line);
    } finally {
      await detector.close();
    }
  }
  const lines = [
    `${values.model}, ${images.length} images of ${values.seed !== undefined ? `seed ${values.seed}` : `the ${values.split} split`} (${subset.annotations.length} objects); one process, ONNX Runtime threads ${values.threads === '0' ? 'default' : values.threads}.`,
    '',
    '| pipeline | AP50 | AP@[.5:.95] | s / image | regions / image | published, VOC07 test |',
    '|---|---|---|---|---|---|',
    ...rows,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  if (temp) rmSync(temp, { recursive: true, force: true });
}
