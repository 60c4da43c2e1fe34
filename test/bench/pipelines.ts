/**
 * `npm run bench:pipelines`: the papers' comparison, reproduced. The three
 * pipelines of one package on the held-out test split of the synthetic
 * dataset (or on any other seed): COCO AP50 and AP@[.5:.95], seconds per
 * image (wall clock, end to end, proposals included) and regions scored per
 * image, next to the published PASCAL VOC 2007 figures for context.
 *
 *   npm run bench:pipelines -- [--model DIR_OR_NAME] [--split test | --seed S --count N] [--limit N]
 *                              [--pipelines rcnn,fast-rcnn,faster-rcnn,faster-rcnn:single] [--threads N]
 *                              [--precision fp32|int8]
 *
 * `faster-rcnn:single` is Faster R-CNN at the package's one input size
 * (the request option scales=single), as the papers test; plain
 * `faster-rcnn` at its test scales, where it has them.
 *
 * --split test (default) reads data/test, writing it first if missing; --seed
 * writes a fresh set to a temporary folder (seeds the model never saw).
 */

import { parseArgs } from 'node:util';
import { PIPELINES, type DetectOptions } from '../../src/detector.js';
import { DEFAULT_MODEL } from '../../src/model/package.js';
import { datasetSplit, scorePipeline } from './pipeline-ap.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: DEFAULT_MODEL },
    split: { type: 'string', default: 'test' },
    seed: { type: 'string' },
    count: { type: 'string', default: '300' },
    limit: { type: 'string' },
    pipelines: { type: 'string', default: [...PIPELINES, 'faster-rcnn:single'].join(',') },
    threads: { type: 'string', default: '0' },
    precision: { type: 'string' },
  },
});

/** Published PASCAL VOC 2007 test figures (VGG16; R-CNN with box regression, Fast R-CNN trained on 07+12, Faster R-CNN 07+12). */
const PUBLISHED: Record<string, string> = {
  rcnn: '66.0% mAP, 47 s/image (K40, VGG16)',
  'fast-rcnn': '66.9% mAP (07 train), 0.32 s/image + selective search (~2 s, CPU)',
  'faster-rcnn': '69.9% mAP (07 train), 0.198 s/image (K40, VGG16)',
  'faster-rcnn:single': '69.9% mAP (07 train), 0.198 s/image (K40, VGG16)',
};

const split = await datasetSplit(values.split!, values.seed, Number(values.count));
try {
  const rows: string[] = [];
  let described = '';
  for (const row of values.pipelines!.split(',')) {
    const s = await scorePipeline(values.model!, split, row, {
      limit: values.limit ? Number(values.limit) : undefined,
      threads: Number(values.threads),
      precision: values.precision as DetectOptions['precision'],
    });
    described = `${s.images} images of ${split.label} (${s.objects} objects)`;
    const line = `| ${row} | ${(100 * s.ap50).toFixed(1)} | ${(100 * s.ap).toFixed(1)} | ${s.secondsPerImage.toFixed(3)} | ${s.regionsPerImage.toFixed(0)} | ${PUBLISHED[row]} |`;
    process.stderr.write(`${line}\n`);
    rows.push(line);
  }
  const lines = [
    `${values.model}${values.precision ? ` (${values.precision})` : ''}, ${described}; one process, ONNX Runtime threads ${values.threads === '0' ? 'default' : values.threads}.`,
    '',
    '| pipeline | AP50 | AP@[.5:.95] | s / image | regions / image | published, VOC07 test |',
    '|---|---|---|---|---|---|',
    ...rows,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  split.dispose();
}
