/**
 * `npm run test:backbones`: every package models/recipes/backbones/export_backbone.py
 * builds (the seed's six networks, seeded random weights, 224-320 px inputs)
 * through all three pipelines, end to end, on the CLI and the API; Faster
 * R-CNN against torchvision's FasterRCNN on the same weights; and, per
 * pipeline, the estimated multiply-adds next to the measured time. Needs
 * Debian's python3-torch, python3-torchvision and python3-onnx (.ci/run
 * installs them) and about 1 GB of disk: one package at a time (VGG16's),
 * each deleted after its runs unless --keep.
 *
 *   npm run test:backbones [-- --arch alexnet,vgg16] [--out DIR] [--keep]
 *
 * Fails (exit 1) on a malformed result, a pipeline that does not run, or a
 * Faster R-CNN detection without its torchvision twin (same class, IoU >= 0.99
 * or every coordinate within 0.05 px, |score difference| <= 1e-3, both ways).
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import type { DetectionResult } from '../../src/detector.js';
import { readManifest } from '../../src/model/package.js';
import { pipelineCosts } from '../../src/inspect/pipeline-cost.js';
import { matchedFraction, type RefDetection } from '../helpers/parity.js';
import { CLI, freePort, startServer } from '../helpers/processes.js';

const ARCHS = ['alexnet', 'alexnet-paper', 'zfnet', 'vgg16', 'googlenet', 'resnet50'];
/** R-CNN runs the whole network once per region: few regions for the large ones. */
const RCNN_REGIONS: Record<string, number> = { alexnet: 20, 'alexnet-paper': 20, zfnet: 10, vgg16: 4, googlenet: 20, resnet50: 8 };
const FAST_REGIONS = 100;
const SIZES = ['--min-size', '224', '--max-size', '320'];
/**
 * Untrained AlexNet-style heads score every class alike; spreading their logits gives detections that can be
 * compared one by one. The deeper networks' random logits are spread already (scaled, they saturate at 1.0 and
 * ties make the order, and so NMS, arbitrary).
 */
const LOGIT_SCALE: Record<string, string> = { alexnet: '10', 'alexnet-paper': '10', zfnet: '10', vgg16: '10', googlenet: '1', resnet50: '1' };

const root = fileURLToPath(new URL('../..', import.meta.url));
const { values } = parseArgs({ options: { arch: { type: 'string', default: ARCHS.join(',') }, out: { type: 'string' }, keep: { type: 'boolean' } } });
const archs = values.arch!.split(',');
const out = values.out ?? mkdtempSync(join(tmpdir(), 'rcnn-serve-backbones-'));
const image = join(root, 'test/fixtures/images/shapes-val-000003.png');
const { width, height } = await sharp(image).metadata();
const python = (script: string, args: string[]) =>
  execFileSync('/usr/bin/python3', [join(root, script), ...args], { env: { ...process.env, OMP_NUM_THREADS: '2' }, stdio: ['ignore', 'ignore', 'inherit'] });
const failures: string[] = [];
const fail = (what: string) => {
  failures.push(what);
  process.stderr.write(`FAIL ${what}\n`);
};

/** Every detection well-formed: a box inside the image, a known class, a score in (0, 1]. */
function checkResult(where: string, r: DetectionResult, classes: string[]): void {
  if (!Array.isArray(r.detections)) return fail(`${where}: no detections array`);
  for (const d of r.detections) {
    const [x1, y1, x2, y2] = d.box;
    const inside = [x1, y1, x2, y2].every(Number.isFinite) && x1! >= 0 && y1! >= 0 && x1! <= x2! && y1! <= y2! && x2! <= width! && y2! <= height!;
    if (!inside) return fail(`${where}: box ${JSON.stringify(d.box)} outside the ${width}x${height} image`);
    if (!(d.classId >= 1 && d.classId < classes.length) || d.label !== classes[d.classId]) return fail(`${where}: class ${d.classId} ${d.label}`);
    if (!(d.score > 0 && d.score <= 1)) return fail(`${where}: score ${d.score}`);
  }
}

/** The API on a server serving the package: each pipeline once, the same detections as the CLI, the layer tables. */
async function checkApi(arch: string, dir: string, classes: string[]): Promise<void> {
  const manifest = await readManifest(dir);
  const server = await startServer(freePort(), { MODELS_DIR: dirname(dir), WORKERS: '1', ORT_THREADS: '2', REQUEST_TIMEOUT_MS: '600000' }, 600_000);
  try {
    const info = (await (await fetch(`${server.url}/v1/models/${arch}`)).json()) as { layers?: { graphs: Record<string, unknown> } };
    if (Object.keys(info.layers?.graphs ?? {}).length !== 4) fail(`${arch} GET /v1/models/${arch}: layers of ${Object.keys(info.layers?.graphs ?? {}).length} graphs`);
    for (const pipeline of ['rcnn', 'fast-rcnn', 'faster-rcnn'] as const) {
      const regions = pipeline === 'rcnn' ? RCNN_REGIONS[arch]! : pipeline === 'fast-rcnn' ? FAST_REGIONS : undefined;
      const scoreThreshold = String(manifest.pipelines[pipeline]!.postprocess.scoreThreshold); // as the CLI's run above
      const query = new URLSearchParams({ model: arch, pipeline, scoreThreshold, ...(regions ? { maxProposals: String(regions) } : {}) });
      const res = await fetch(`${server.url}/v1/detect?${query}`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: readFileSync(image) });
      const where = `${arch} ${pipeline} (API)`;
      if (res.status !== 200) {
        fail(`${where}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
        continue;
      }
      const result = (await res.json()) as DetectionResult;
      checkResult(where, result, classes);
      const cli = cliResults.get(`${arch} ${pipeline}`);
      if (cli && Math.min(matchedFraction(result.detections, cli.detections, 0.999, 1e-5), matchedFraction(cli.detections, result.detections, 0.999, 1e-5)) < 1) fail(`${where}: not the CLI's detections`);
    }
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
}

const rows: string[] = [];
const cliResults = new Map<string, DetectionResult>();
for (const arch of archs) {
  // The package in a folder of its own: the API's server is given that folder as MODELS_DIR.
  const dir = join(out, arch, arch);
  if (!existsSync(join(dir, 'model.json'))) {
    process.stderr.write(`building ${arch} ...\n`);
    python('models/recipes/backbones/export_backbone.py', ['--arch', arch, '--weights', 'none', '--seed', '0', ...SIZES, '--logit-scale', LOGIT_SCALE[arch]!, '--rcnn-proposals', String(RCNN_REGIONS[arch]), '--out', dir]);
  }
  const manifest = await readManifest(dir);
  const megabytes = (readFileSync(join(dir, 'model.json')).length + ['backbone', 'rpn_head', 'box_head', 'rcnn_head'].reduce((s, g) => s + readFileSync(join(dir, `${g}.onnx`)).length, 0)) / 1e6;
  const refFile = join(out, `torchvision-${arch}.json`);
  python('test/fixtures/backbone_reference.py', ['--arch', arch, '--seed', '0', ...SIZES, '--logit-scale', LOGIT_SCALE[arch]!, '--out', refFile, image]);
  const reference = JSON.parse(readFileSync(refFile, 'utf8')) as { results: { detections: RefDetection[] }[] };
  for (const pipeline of ['rcnn', 'fast-rcnn', 'faster-rcnn'] as const) {
    const regions = pipeline === 'rcnn' ? RCNN_REGIONS[arch]! : pipeline === 'fast-rcnn' ? FAST_REGIONS : undefined;
    // torchvision's detections are those over its box_score_thresh: the model's evaluation threshold, not the CLI's display default.
    const threshold = String(manifest.pipelines[pipeline]!.postprocess.scoreThreshold);
    const args = ['detect', image, '--model', dir, '--pipeline', pipeline, '--threads', '2', '--json', '--score-threshold', threshold, ...(regions ? ['--max-proposals', String(regions)] : [])];
    const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
    const where = `${arch} ${pipeline} (CLI)`;
    if (run.status !== 0) {
      fail(`${where}: exit ${run.status}: ${run.stderr.slice(0, 500)}`);
      continue;
    }
    const result = JSON.parse(run.stdout) as DetectionResult & { regions?: number };
    cliResults.set(`${arch} ${pipeline}`, result);
    checkResult(where, result, manifest.classes);
    if (regions !== undefined && result.regions !== regions) fail(`${where}: ${result.regions} regions scored, asked ${regions}`);
    let parity = '';
    if (pipeline === 'faster-rcnn') {
      const ref = reference.results[0]!.detections;
      // Random heads make some boxes a fraction of a pixel high: those match by coordinates (within 0.05 px).
      const both = Math.min(matchedFraction(result.detections, ref, 0.99, 1e-3, 0.05), matchedFraction(ref, result.detections, 0.99, 1e-3, 0.05));
      parity = `${result.detections.length} / ${ref.length} matched ${(100 * both).toFixed(1)}%`;
      if (both < 1 || ref.length === 0) fail(`${where}: torchvision parity ${parity}`);
    }
    const [cost] = (await pipelineCosts(dir, manifest, { image: [height!, width!], proposals: regions ?? 0, rpnProposals: [result.regions ?? 300] })).filter((c) => c.pipeline === pipeline);
    rows.push(`| ${arch} | ${megabytes.toFixed(0)} | ${pipeline} | ${result.regions ?? ''} | ${result.detections.length} | ${(cost!.macs / 1e9).toFixed(1)} | ${((result.timings.total ?? NaN) / 1000).toFixed(2)} | ${parity} |`);
  }
  await checkApi(arch, dir, manifest.classes);
  // One package on disk at a time (VGG16's is 1 GB), unless kept.
  if (!values.keep) rmSync(dirname(dir), { recursive: true, force: true });
}

console.log(`Seed networks as backbones: seeded random weights, ${SIZES[1]}-${SIZES[3]} px inputs (shorter-longer side), ${width}x${height} image, ORT 2 threads, one process`);
console.log('| arch | package MB | pipeline | regions | detections | GMACs (est.) | s / image | Faster R-CNN vs torchvision |');
console.log('|---|---|---|---|---|---|---|---|');
rows.forEach((r) => console.log(r));
if (!values.keep && !values.out) rmSync(out, { recursive: true, force: true });
if (failures.length) {
  console.log(`${failures.length} failed:\n${failures.join('\n')}`);
  process.exitCode = 1;
} else console.log(`${archs.length} packages x 3 pipelines, CLI and API: all passed`);
