/**
 * `npm run bench`: rcnn-serve against torchvision eager, same machine, same
 * script, same thread count. Not a test. Needs Debian's python3-torch and
 * python3-torchvision (run with /usr/bin/python3).
 *
 *   npm run bench -- [--threads N] [--repeats R] [--image PATH]
 *
 * 1. exports fasterrcnn_resnet50_fpn with seeded random weights to a temporary folder;
 * 2. test/bench/reference.py writes the shared inputs and times torchvision on them;
 * 3. this script times ours on the same inputs and prints ratios ours / torchvision:
 *    end to end per image at 800 px (target <= 0.8), NMS on 6000 and 12000
 *    RPN-like boxes (<= 1.0), RoIAlign 1000 RoIs x 256 ch x 7x7 (<= 1.5).
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { nms } from '../../src/core/nms.js';
import { roiAlign } from '../../src/core/roi/roi-align.js';
import { Detector } from '../../src/detector.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    repeats: { type: 'string', default: '5' },
    image: { type: 'string', default: join(root, 'test/fixtures/images/coffee.png') },
  },
});
const threads = Number(values.threads);
const repeats = Number(values.repeats);
const python = '/usr/bin/python3';
const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };

interface Timing {
  median: number;
  min: number;
}

async function time(fn: () => unknown, n: number): Promise<Timing> {
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    ts.push(performance.now() - t);
  }
  ts.sort((a, b) => a - b);
  return { median: ts[Math.floor(ts.length / 2)]!, min: ts[0]! };
}

function f32(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
}

const work = mkdtempSync(join(tmpdir(), 'rcnn-serve-bench-'));
try {
  const pkg = join(work, 'frcnn-r50-fpn-seeded');
  process.stderr.write(`exporting fasterrcnn_resnet50_fpn (seeded random weights) to ${pkg} ...\n`);
  execFileSync(python, [join(root, 'models/recipes/torchvision/export_torchvision.py'), '--arch', 'fasterrcnn_resnet50_fpn', '--weights', 'none', '--seed', '0', '--out', pkg], { env, stdio: ['ignore', 'ignore', 'ignore'] });
  process.stderr.write(`timing torchvision (${threads} thread(s)) ...\n`);
  const ref = JSON.parse(
    execFileSync(python, [join(root, 'test/bench/reference.py'), '--work', work, '--threads', String(threads), '--repeats', String(repeats), '--image', values.image!], {
      env,
      stdio: ['ignore', 'pipe', 'ignore'],
      maxBuffer: 1 << 20,
    }).toString(),
  );

  process.stderr.write('timing rcnn-serve ...\n');
  const rows: [string, Timing, Timing, string, string][] = [];

  const detector = await Detector.load(pkg, { intraOpThreads: threads });
  const warm = await detector.detect(values.image!);
  const e2e = await time(() => detector.detect(values.image!), repeats);
  const stages = (await detector.detect(values.image!)).timings;
  await detector.close();
  rows.push(['end to end, 1 image at 800 px', e2e, ref.e2e, '<= 0.8', `${warm.detections.length} vs ${ref.e2e.detections} detections`]);

  for (const n of [6000, 12000]) {
    const boxes = f32(join(work, `nms${n}_boxes.f32`));
    const scores = f32(join(work, `nms${n}_scores.f32`));
    const kept = nms(boxes, scores, 0.7).length;
    rows.push([`NMS, ${n} RPN-like boxes, IoU 0.7`, await time(() => nms(boxes, scores, 0.7), repeats * 4), ref[`nms${n}`], '<= 1.0', `kept ${kept} vs ${ref[`nms${n}`].kept}`]);
  }

  const feature = { data: f32(join(work, 'roi_feature_nhwc.f32')), channels: 256, height: 200, width: 267 };
  const rois = f32(join(work, 'roi_boxes.f32'));
  const align = () => roiAlign(feature, rois, { outputSize: [7, 7], spatialScale: 0.25, samplingRatio: 2, aligned: false });
  align();
  rows.push(['RoIAlign, 1000 RoIs x 256 ch x 7x7', await time(align, repeats), ref.roiAlign, '<= 1.5', '']);

  const ms = (t: Timing) => `${t.median.toFixed(1)} ms`;
  const lines = [
    `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores; Node ${process.version}; torch ${ref.torch}; ${threads} thread(s) each; medians of ${repeats} runs (NMS: ${repeats * 4}).`,
    '',
    '| benchmark | rcnn-serve | torchvision | ratio | target | note |',
    '|---|---|---|---|---|---|',
    ...rows.map(([name, ours, theirs, target, note]) => `| ${name} | ${ms(ours)} | ${ms(theirs)} | ${(ours.median / theirs.median).toFixed(2)} | ${target} | ${note} |`),
    '',
    `rcnn-serve stages (ms): ${Object.entries(stages).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
