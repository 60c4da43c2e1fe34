/**
 * `npm run bench`: rcnn-serve against torchvision eager, same machine, same
 * script, same thread count. Not a test. Needs Debian's python3-torch and
 * python3-torchvision (run with /usr/bin/python3).
 *
 *   npm run bench -- [--threads N] [--repeats R] [--image PATH] [--precision int8]
 *
 * 1. exports fasterrcnn_resnet50_fpn with seeded random weights to a temporary folder;
 * 2. test/bench/reference.py writes the shared inputs and times torchvision on them;
 * 3. this script times ours on the same inputs and prints ratios ours / torchvision:
 *    end to end per image at 800 px (target <= 0.8), NMS on 6000 and 12000
 *    RPN-like boxes (<= 1.0), RoIAlign 1000 RoIs x 256 ch x 7x7 (<= 1.5).
 *
 * --precision int8 (README, "int8") adds: the export quantized by `models
 * quantize` (calibrated on eight of scikit-image's photos, never the timed
 * one), timed end to end and per stage against torchvision fp32 (target
 * <= 0.25) and our fp32, with the agreement of its detections with our fp32
 * ones; then the default package's three pipelines in fp32 and int8 on the
 * test split (--limit N images; AP and seconds per image). The CPU's int8
 * instructions (VNNI or not) head the results.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { nms } from '../../src/core/nms.js';
import { roiAlign } from '../../src/core/roi/roi-align.js';
import { Detector, PIPELINES, type DetectionResult } from '../../src/detector.js';
import { detectionAgreement } from '../helpers/agreement.js';
import { DEFAULT_MODEL } from '../../src/model/package.js';
import { quantizePackage } from '../../src/quantize/quantize-package.js';
import { datasetSplit, scorePipeline } from './pipeline-ap.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    repeats: { type: 'string', default: '5' },
    image: { type: 'string', default: join(root, 'test/fixtures/images/coffee.png') },
    precision: { type: 'string', default: 'fp32' },
    limit: { type: 'string', default: '300' },
  },
});
if (values.precision !== 'fp32' && values.precision !== 'int8') throw new Error(`--precision is fp32 or int8; got ${values.precision}`);
const int8 = values.precision === 'int8';
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
  const extra: string[] = [];
  if (int8) {
    const q = await int8Comparison(pkg, work, values.image!, e2e, warm);
    rows.splice(1, 0, ['end to end, 1 image at 800 px, int8', q.e2e, ref.e2e, '<= 0.25', `${(q.e2e.median / e2e.median).toFixed(2)} of our fp32's time; ${q.agreement}`]);
    extra.push('', `rcnn-serve int8 stages (ms): ${Object.entries(q.stages).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}`, `int8 package: ${q.note}`, '', ...(await defaultPackageInt8()));
  }
  const lines = [
    `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores; int8 instructions: ${int8Features()}; Node ${process.version}; torch ${ref.torch}; ${threads} thread(s) each; medians of ${repeats} runs (NMS: ${repeats * 4}).`,
    '',
    '| benchmark | rcnn-serve | torchvision | ratio | target | note |',
    '|---|---|---|---|---|---|',
    ...rows.map(([name, ours, theirs, target, note]) => `| ${name} | ${ms(ours)} | ${ms(theirs)} | ${(ours.median / theirs.median).toFixed(2)} | ${target} | ${note} |`),
    '',
    `rcnn-serve stages (ms): ${Object.entries(stages).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}`,
    ...extra,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** The CPU's int8 dot-product instructions, from /proc/cpuinfo: what ONNX Runtime's u8s8 kernels use. */
function int8Features(): string {
  let flags: Set<string>;
  try {
    flags = new Set(/^flags\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? []);
  } catch {
    return 'unknown (no /proc/cpuinfo)';
  }
  const found = ['avx512_vnni', 'avx_vnni', 'amx_int8', 'avx512bw', 'avx2'].filter((f) => flags.has(f));
  const vnni = found.some((f) => f.endsWith('vnni'));
  return `${found.join(', ') || 'none of avx2, avx512bw, VNNI, AMX'} (${vnni ? 'VNNI: int8 dot products in one instruction' : 'no VNNI: ONNX Runtime falls back to slower int8 kernels'})`;
}

/** Eight of scikit-image's photos (Debian's python3-skimage), none the timed image: R50-FPN's calibration set. */
function calibrationPhotos(work: string, timed: string): string {
  const data = execFileSync(python, ['-c', 'import os, skimage; print(os.path.join(os.path.dirname(skimage.__file__), "data"))']).toString().trim();
  const photos = ['astronaut.png', 'chelsea.png', 'motorcycle_left.png', 'rocket.jpg', 'hubble_deep_field.jpg', 'retina.jpg', 'ihc.png', 'camera.png', 'coffee.png']
    .filter((f) => f !== basename(timed))
    .slice(0, 8)
    .map((f) => join(data, f));
  const manifest = join(work, 'calibration.txt');
  writeFileSync(manifest, `${photos.join('\n')}\n`);
  return manifest;
}

/** The agreement line of the int8 row. */
function agreement(fp32: DetectionResult, int8: DetectionResult): string {
  const a = detectionAgreement(fp32.detections, int8.detections);
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  return `int8 reproduces ${a.matched} of our fp32's ${fp32.detections.length} detections (${pct(a.ofFirst)}; same class, IoU >= 0.5), ${pct(a.ofSecond)} of its own ${int8.detections.length}`;
}

async function int8Comparison(pkg: string, work: string, image: string, fp32: Timing, fp32Result: DetectionResult) {
  const out = join(work, 'frcnn-r50-fpn-seeded-int8');
  process.stderr.write('quantizing it (percentile, 8 photos) ...\n');
  const report = await quantizePackage(pkg, { calibration: calibrationPhotos(work, image), out, count: 8, method: 'percentile' });
  const detector = await Detector.load(out, { intraOpThreads: threads });
  try {
    const first = await detector.detect(image);
    const e2e = await time(() => detector.detect(image), repeats);
    const stages = (await detector.detect(image)).timings;
    const sizes = Object.entries(report.graphs).map(([f, g]) => `${f} ${(g.bytesBefore / 1e6).toFixed(1)} -> ${(g.bytesAfter / 1e6).toFixed(1)} MB, ${g.int8Nodes} int8 / ${g.floatNodes} fp32 nodes`);
    return { e2e, stages, agreement: agreement(fp32Result, first), note: `calibrated in ${report.seconds.toFixed(0)} s; ${sizes.join('; ')}`, fp32 };
  } finally {
    await detector.close();
  }
}

/** The default package's pipelines, fp32 then int8, on the test split: AP and time per image. */
async function defaultPackageInt8(): Promise<string[]> {
  const split = await datasetSplit('test');
  const rows: string[] = [];
  let described = '';
  try {
    for (const pipeline of PIPELINES) {
      const [a, b] = [await scorePipeline(DEFAULT_MODEL, split, pipeline, { limit: Number(values.limit), threads, precision: 'fp32' }), await scorePipeline(DEFAULT_MODEL, split, pipeline, { limit: Number(values.limit), threads, precision: 'int8' })];
      described = `${a.images} images of ${split.label} (${a.objects} objects)`;
      const d = (x: number, y: number) => `${(100 * (y - x) >= 0 ? '+' : '')}${(100 * (y - x)).toFixed(1)}`;
      rows.push(`| ${pipeline} | ${(100 * a.ap50).toFixed(1)} / ${(100 * b.ap50).toFixed(1)} (${d(a.ap50, b.ap50)}) | ${(100 * a.ap).toFixed(1)} / ${(100 * b.ap).toFixed(1)} (${d(a.ap, b.ap)}) | ${a.secondsPerImage.toFixed(3)} / ${b.secondsPerImage.toFixed(3)} | ${(b.secondsPerImage / a.secondsPerImage).toFixed(2)} |`);
      process.stderr.write(`${rows.at(-1)}\n`);
    }
  } finally {
    split.dispose();
  }
  return [
    `${DEFAULT_MODEL}, fp32 / int8, ${described}, ${threads} thread(s):`,
    '',
    '| pipeline | AP50 | AP@[.5:.95] | s / image | int8 / fp32 time |',
    '|---|---|---|---|---|',
    ...rows,
  ];
}
