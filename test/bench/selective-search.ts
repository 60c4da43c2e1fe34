/**
 * `npm run bench:ss`: selective search against OpenCV ximgproc, same images,
 * same script, one thread each. Not a test; needs Debian's python3-opencv.
 *
 *   npm run bench:ss -- [--count N] [--seed S] [--modes single,fast,quality] [--rounds R]
 *   npm run bench:ss -- --photos [--modes ...] [--rounds R]    time only, on the fixture photos at 500 x 375
 *   npm run bench:ss -- --files a.jpg,b.png [--modes ...]        time only, on your photos at 500 x 375
 *
 * test/bench/selective_search_reference.py writes N seeded cluttered scenes
 * (500 x 375) with ground-truth boxes and runs OpenCV on them; this script
 * runs ours on the same files and prints, per mode, recall at IoU 0.5 and 0.7
 * and MABO (mean over objects of the best IoU) for both at the same number of
 * proposals per image (the smaller of the two counts), and the time ratio.
 * Our modes against OpenCV's: single -> single (ours: the paper's HSV, k 100;
 * OpenCV's: HSV, k 200), fast -> fast and opencv-fast, quality -> quality and
 * opencv-quality. Each side times every image R times (default 3) and keeps
 * the median; ours first runs every image once more before those (JIT
 * compilation is a one-time cost of a long-running process; OpenCV is
 * compiled ahead of time); those first runs' mean is reported in a column
 * of its own (the first image of the first mode runs in a fresh process).
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { selectiveSearch, type Mode } from '../../src/core/selective-search/selective-search.js';
import { decodeImage } from '../../src/image/decode.js';
import { proposalQuality } from '../../src/eval/proposal-recall.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '20' },
    seed: { type: 'string', default: '0' },
    modes: { type: 'string', default: 'single,fast' },
    photos: { type: 'boolean', default: false },
    files: { type: 'string' },
    rounds: { type: 'string', default: '3' },
  },
});
/** Time photos (no ground truth) rather than seeded scenes: the fixture photos, or the caller's. */
const photoMode = values.photos || values.files !== undefined;
const photos = values.files?.split(',') ?? ['chelsea.png', 'coffee.png', 'astronaut.png'].map((n) => join(root, 'test/fixtures/images', n));
const ours: Record<string, Mode[]> = { single: ['single'], fast: ['fast', 'opencv-fast'], quality: ['quality', 'opencv-quality'] };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Recall at 0.5 / 0.7 and ABO of the first n[i] proposals of image i (the ground truth has no classes here). */
function quality(gt: number[][][], proposals: number[][][], n: number[]) {
  const q = proposalQuality(gt.map((boxes, i) => ({ truth: { boxes, classes: boxes.map(() => 0) }, proposals: proposals[i]! })), n);
  return { r50: q.recall50, r70: q.recall70, mabo: q.abo, proposals: q.proposalsPerImage };
}

const work = mkdtempSync(join(tmpdir(), 'rcnn-serve-bench-ss-'));
try {
  const modes = values.modes!.split(',');
  process.stderr.write(`${photoMode ? 'writing the photos' : `writing ${values.count} scenes`} and running OpenCV (${modes.join(', ')}) ...\n`);
  const source = photoMode ? ['--photos', photos.join(',')] : ['--count', values.count!, '--seed', values.seed!];
  const rounds = Number(values.rounds);
  execFileSync('/usr/bin/python3', [join(root, 'test/bench/selective_search_reference.py'), '--out', work, ...source, '--modes', modes.join(','), '--rounds', String(rounds)], {
    env: { ...process.env, OMP_NUM_THREADS: '1' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const ref = JSON.parse(readFileSync(join(work, 'reference.json'), 'utf8'));
  const gt: number[][][] = ref.images.map((im: { boxes: number[][] }) => im.boxes);
  const images = await Promise.all(ref.images.map((im: { file: string }) => decodeImage(readFileSync(join(work, im.file)))));
  const lines = [
    photoMode
      ? `OpenCV ${ref.opencv} vs rcnn-serve, photos ${ref.images.map((im: { source: string }) => im.source).join(', ')} at 500 x 375, one thread each, median of ${rounds} runs per image (no ground truth: time only).`
      : `OpenCV ${ref.opencv} vs rcnn-serve, ${gt.length} scenes of 500 x 375, ${gt.flat().length} objects, one thread each, median of ${rounds} runs per image.`,
    'Recall and MABO at the same number of proposals per image (the smaller count of the pair).',
    '',
    '| ours | OpenCV | proposals | recall@0.5 ours / OpenCV | recall@0.7 ours / OpenCV | MABO ours / OpenCV | ms per image ours / OpenCV | time ratio | ours, first run (ms) |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const mode of modes) {
    const cv = ref.results[mode] as { ms: number; boxes: number[][] }[];
    const cvMs = cv.reduce((s, r) => s + r.ms, 0) / cv.length;
    for (const m of ours[mode] ?? []) {
      process.stderr.write(`running ours (${m}) ...\n`);
      let firstMs = 0;
      for (const img of images) {
        const t = performance.now();
        selectiveSearch(img, { mode: m, seed: 0 });
        firstMs += performance.now() - t;
      }
      const props: number[][][] = [];
      let ms = 0;
      for (const img of images) {
        let boxes: Float32Array = new Float32Array(0);
        const times: number[] = [];
        for (let r = 0; r < rounds; r++) {
          const t = performance.now();
          boxes = selectiveSearch(img, { mode: m, seed: 0 });
          times.push(performance.now() - t);
        }
        ms += median(times);
        const list: number[][] = [];
        for (let k = 0; k < boxes.length; k += 4) list.push([boxes[k]!, boxes[k + 1]!, boxes[k + 2]!, boxes[k + 3]!]);
        props.push(list);
      }
      const n = props.map((p, i) => Math.min(p.length, cv[i]!.boxes.length));
      const pct = (x: number) => (photoMode ? '-' : (100 * x).toFixed(1));
      const a = quality(gt, props, n);
      const b = quality(gt, cv.map((r) => r.boxes), n);
      lines.push(
        `| ${m} | ${mode} | ${a.proposals.toFixed(0)} (ours all: ${(props.flat().length / props.length).toFixed(0)}, OpenCV all: ${(cv.reduce((s, r) => s + r.boxes.length, 0) / cv.length).toFixed(0)}) | ${pct(a.r50)} / ${pct(b.r50)} | ${pct(a.r70)} / ${pct(b.r70)} | ${photoMode ? '-' : a.mabo.toFixed(3)} / ${photoMode ? '-' : b.mabo.toFixed(3)} | ${(ms / images.length).toFixed(0)} / ${cvMs.toFixed(0)} | ${(ms / images.length / cvMs).toFixed(2)} | ${(firstMs / images.length).toFixed(0)} |`,
      );
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
