/**
 * `npm run parity`: export a torchvision Faster R-CNN with the project's
 * exporter, run torchvision and rcnn-serve on the same images, and report how
 * many detections match (same class, IoU >= 0.99, |score difference| <= 1e-3),
 * both ways. Not a test (needs Python); the committed parity test covers the
 * fixture package. Exit status 1 if any image is under 99% either way.
 *
 *   npm run parity -- --arch fasterrcnn_mobilenet_v3_large_fpn --seed 3 [--weights none|DEFAULT|FILE.pth]
 *                     [--logit-scale F] [--threads N] [--show] IMAGE...
 *
 * --show lists each unmatched torchvision detection next to our nearest one of the same class.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { boxIou } from '../../src/core/boxes.js';
import { Detector } from '../../src/detector.js';
import { matchedFraction } from '../helpers/parity.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    arch: { type: 'string', default: 'fasterrcnn_resnet50_fpn' },
    weights: { type: 'string', default: 'none' },
    seed: { type: 'string', default: '0' },
    'logit-scale': { type: 'string', default: '1' },
    threads: { type: 'string', default: '2' },
    show: { type: 'boolean', default: false },
  },
});
const images = positionals.length ? positionals : ['shapes.png', 'coffee.png', 'coffee-tall.png'].map((n) => join(root, 'test/fixtures/images', n));
const env = { ...process.env, OMP_NUM_THREADS: values.threads, OPENBLAS_NUM_THREADS: values.threads };
const work = mkdtempSync(join(tmpdir(), 'rcnn-serve-parity-'));
let worst = 1;
try {
  const pkg = join(work, 'package');
  const common = ['--arch', values.arch!, '--weights', values.weights!, '--seed', values.seed!, '--logit-scale', values['logit-scale']!];
  execFileSync('/usr/bin/python3', [join(root, 'models/recipes/torchvision/export_torchvision.py'), ...common, '--out', pkg], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const refFile = join(work, 'torchvision.json');
  execFileSync('/usr/bin/python3', [join(root, 'test/fixtures/torchvision_detect.py'), ...common, '--out', refFile, ...images], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const ref = JSON.parse(readFileSync(refFile, 'utf8'));
  const detector = await Detector.load(pkg, { intraOpThreads: Number(values.threads) });
  process.stdout.write(`${values.arch} weights=${values.weights} seed=${values.seed}\n`);
  for (const [i, path] of images.entries()) {
    const theirs = ref.results[i].detections;
    const ours = (await detector.detect(path)).detections;
    const forward = matchedFraction(theirs, ours);
    const backward = matchedFraction(ours, theirs);
    worst = Math.min(worst, forward, backward);
    process.stdout.write(`  ${path.split('/').pop()}: torchvision ${theirs.length}, ours ${ours.length}; matched ${(100 * forward).toFixed(1)}% / ${(100 * backward).toFixed(1)}%\n`);
    if (values.show) {
      // Each torchvision detection without a partner, next to our nearest of the same class.
      for (const d of theirs) {
        if (matchedFraction([d], ours) === 1) continue;
        const near = ours.filter((e) => e.classId === d.classId).map((e) => ({ e, iou: boxIou(Float64Array.from(d.box), Float64Array.from(e.box))[0]! })).sort((a, b) => b.iou - a.iou)[0];
        const fmt = (b: number[]) => `[${b.map((v) => v.toFixed(2)).join(', ')}]`;
        process.stdout.write(`    unmatched class ${d.classId} score ${d.score.toFixed(5)} ${fmt(d.box)}; nearest ours: ${near ? `score ${near.e.score.toFixed(5)} ${fmt(near.e.box)} IoU ${near.iou.toFixed(4)}` : 'none'}\n`);
      }
    }
  }
  await detector.close();
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.exitCode = worst >= 0.99 ? 0 : 1;
