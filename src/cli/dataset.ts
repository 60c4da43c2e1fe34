/** `rcnn-serve dataset --out DIR`: a synthetic detection dataset, images and COCO annotations. */

import { DATASET_SPLITS, generateDataset } from '../dataset/generate.js';
import { numberFlag, parseCommand, UsageError, type CliIo } from './flags.js';

export const DATASET_USAGE = `dataset options:
  --split NAME             ${Object.entries(DATASET_SPLITS).map(([n, s]) => `${n} (seed ${s.seed}, ${s.count} images)`).join(', ')}
  --seed S --count N       any other seed and size (image i of a seed is the same whatever the count)
  --out DIR                writes DIR/images/NNNNNN.jpg and DIR/annotations.json`;

const FLAGS = {
  split: { type: 'string' },
  seed: { type: 'string' },
  count: { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function datasetCommand(argv: string[], io: CliIo, usage: string): Promise<number> {
  const { values } = parseCommand({ args: argv, options: FLAGS, strict: true });
  if (values.help) {
    io.out(usage);
    return 0;
  }
  if (!values.out) throw new UsageError('dataset needs --out DIR');
  let seed = numberFlag('seed', values.seed);
  let count = numberFlag('count', values.count);
  if (values.split !== undefined) {
    const split = DATASET_SPLITS[values.split as keyof typeof DATASET_SPLITS];
    if (!split) throw new UsageError(`--split ${JSON.stringify(values.split)} is unknown; allowed: ${Object.keys(DATASET_SPLITS).join(', ')}`);
    seed ??= split.seed;
    count ??= split.count;
  }
  if (seed === undefined || !Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new UsageError('dataset needs --split NAME or --seed S, an integer from 0 to 2^32-1');
  if (count === undefined || !Number.isInteger(count) || count < 1) throw new UsageError('dataset needs --count N, a positive integer (or --split NAME)');
  const started = performance.now();
  const written = await generateDataset({
    seed,
    count,
    out: values.out,
    onProgress: (done) => done % 100 === 0 && io.err(`${done}/${count} images`),
  });
  io.out(`${values.out}: ${written.images.length} images, ${written.annotations.length} objects, seed ${seed}, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}
