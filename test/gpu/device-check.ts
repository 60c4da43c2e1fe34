/**
 * `npm run test:gpu`: the GPU path's one device script (docs/gpu.md). Not a
 * test of the suite: it needs a CUDA machine to mean anything, and writes
 * one results file. Run from the repository root:
 *
 *   npm run test:gpu -- [--out DIR] [--images N] [--repeats R] [--concurrency 8,32] [--workers W] [--max-batch B] [--skip-r50]
 *
 * On the device machine it runs from the offline bundle (`npm run
 * gpu:bundle`, scripts/gpu-bundle.ts), as `.gpu/node .gpu/device-check.mjs`.
 * Here, with no GPU, it is its own dry run: ONNX Runtime falls back to the
 * CPU with its warning, every section runs on the CPU, and the results say
 * so.
 *
 * 1. machine: the GPU (nvidia-smi), the CUDA libraries on the library path,
 *    Node, ONNX Runtime, Python's torch and torchvision and whether they see CUDA;
 * 2. provider: the default package opened with device cuda: where each graph runs;
 * 3. parity: the torchvision parity fixture (fixture-tiny-fpn) on CUDA against
 *    torchvision's detections, and the default package's three pipelines on
 *    CUDA against the CPU, on the same images, with the CPU parity tests'
 *    tolerances (every detection matched both ways at IoU >= 0.99, score
 *    within 1e-3);
 * 4. bench: per stage at batch 1, the default package (CPU; CUDA with the
 *    RoI ops on the host and inside the heads' graphs) and
 *    R50-FPN exported on the machine with seeded weights, fp32 and fp16,
 *    with RoIAlign on the host and inside the box head's graph;
 *    R50-FPN's images/s under concurrent requests through the worker pool,
 *    W workers one request each, and one worker batching B requests;
 *    its FLOP floor on the GPU where the GPU's peak is known (fp32 without
 *    TF32 when NVIDIA_TF32_OVERRIDE=0, as device-run.sh runs it); torchvision's
 *    own CUDA run on the same weights (test/gpu/torchvision_cuda.py).
 */

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Detector, PIPELINES, type DetectionResult, type DetectOptions } from '../../src/detector.js';
import { DEFAULT_DECODE_LIMITS } from '../../src/image/decode.js';
import { pipelineCosts } from '../../src/inspect/pipeline-cost.js';
import { readManifest, ROI_PLACEMENTS } from '../../src/model/package.js';
import { float16Package } from '../../src/quantize/float16-package.js';
import type { Device } from '../../src/runtime/device.js';
import { InferencePool } from '../../src/workers/inference-pool.js';
import { matchedFraction } from '../helpers/parity.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: join(tmpdir(), 'rcnn-serve-gpu') },
    images: { type: 'string', default: '4' },
    repeats: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '8,32' },
    workers: { type: 'string', default: '4' },
    'max-batch': { type: 'string', default: '8' },
    'skip-r50': { type: 'boolean', default: false },
    python: { type: 'string', default: process.env.PYTHON ?? 'python3' },
  },
});
const root = process.cwd();
if (!existsSync(join(root, 'models', 'shapes-vgg'))) throw new Error(`run from the repository root (no models/shapes-vgg under ${root})`);
const images = Number(values.images);
const repeats = Number(values.repeats);
const concurrency = values.concurrency.split(',').map(Number);
const workers = Number(values.workers);
const maxBatch = Number(values['max-batch']);
const python = values.python;
const started = performance.now();

/** What every section found, written to OUT/gpu-results.json. */
const results: Record<string, unknown> & { errors: string[] } = { date: new Date().toISOString(), errors: [] };

async function section(name: string, fn: () => Promise<unknown>): Promise<void> {
  const t = performance.now();
  console.log(`== ${name}`);
  try {
    results[name] = await fn();
  } catch (err) {
    const message = `${name}: ${(err as Error).stack ?? String(err)}`;
    results.errors.push(message);
    console.log(`   FAILED ${message}`);
  }
  console.log(`   (${((performance.now() - t) / 1000).toFixed(1)} s)`);
}

function command(file: string, args: string[], timeout = 60_000): string | undefined {
  try {
    return execFileSync(file, args, { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return undefined;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** Median of each stage's time (and the total) over the runs. */
function stageMedians(runs: DetectionResult[]): Record<string, number> {
  const stages = Object.keys(runs[0]!.timings);
  return Object.fromEntries(stages.map((s) => [s, Math.round(median(runs.map((r) => r.timings[s]!)) * 100) / 100]));
}

async function timed(detector: Detector, image: Uint8Array, options: DetectOptions, n: number): Promise<Record<string, number>> {
  for (let i = 0; i < 2; i++) await detector.detect(image, options); // warm-up: CUDA's first runs pick kernels
  const runs: DetectionResult[] = [];
  for (let i = 0; i < n; i++) runs.push(await detector.detect(image, options));
  return stageMedians(runs);
}

/** The library folders the dynamic loader searches first, and the CUDA libraries in them. */
function cudaLibraries(): Record<string, string[]> {
  const found: Record<string, string[]> = {};
  for (const dir of (process.env.LD_LIBRARY_PATH ?? '').split(delimiter).filter(Boolean)) {
    let files: string[] = [];
    try {
      files = readdirSync(dir);
    } catch {
      continue;
    }
    const cuda = files.filter((f) => /^lib(cudart|cublas|cublasLt|cudnn|curand|cufft|onnxruntime_providers_cuda)\.so/.test(f));
    if (cuda.length) found[dir] = cuda.sort();
  }
  return found;
}

let cuda = false;
const shippedImage = readFileSync(join(root, 'test/fixtures/images/shapes-val-000003.png'));

await section('machine', async () => {
  const torch = command(python, ['-c', 'import json, torch, torchvision; print(json.dumps({"torch": torch.__version__, "torchvision": torchvision.__version__, "cuda": torch.cuda.is_available(), "cudaVersion": torch.version.cuda, "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))']);
  const machine = {
    node: process.version,
    onnxruntime: JSON.parse(readFileSync(join(root, 'node_modules/onnxruntime-node/package.json'), 'utf8')).version as string,
    cpu: `${cpus()[0]?.model} x ${cpus().length}`,
    gpu: command('nvidia-smi', ['--query-gpu=name,driver_version,memory.total,clocks.max.sm', '--format=csv,noheader']) ?? 'none (no nvidia-smi)',
    cudaLibraries: cudaLibraries(),
    python: torch ? JSON.parse(torch) : 'no torch',
  };
  console.log(JSON.stringify(machine, null, 2));
  return machine;
});

await section('provider', async () => {
  const warnings: string[] = [];
  const detector = await Detector.load('shapes-vgg', { device: 'cuda', onWarning: (w) => warnings.push(w) });
  try {
    const graphs = Object.fromEntries([...detector.model.graphs].map(([file, g]) => [file, g.device]));
    cuda = Object.values(graphs).every((d) => d === 'cuda');
    const result = await detector.detect(shippedImage);
    console.log(`   graphs on ${cuda ? 'CUDA' : 'the CPU'}${warnings.length ? `; warning: ${warnings[0]}` : ''}; ${result.detections.length} detections`);
    return { cuda, graphs, warnings };
  } finally {
    await detector.close();
  }
});
const device: Device = 'cuda';

await section('parity', async () => {
  const out: Record<string, unknown> = {};
  // The torchvision parity fixture, as the CPU test runs it, on the GPU.
  const tiny = join(root, 'test/fixtures/packages/fixture-tiny-fpn');
  const reference = JSON.parse(readFileSync(join(root, 'test/fixtures/parity/fixture-tiny-fpn.json'), 'utf8')) as { results: { image: string; detections: { box: number[]; score: number; classId: number }[] }[] };
  const onGpu = await Detector.load(tiny, { device });
  try {
    const rows = [];
    for (const r of reference.results) {
      const ours = await onGpu.detect(join(root, 'test/fixtures/images', r.image));
      rows.push({ image: r.image, torchvision: r.detections.length, ours: ours.detections.length, forward: matchedFraction(r.detections, ours.detections), backward: matchedFraction(ours.detections, r.detections) });
    }
    out['fixture-tiny-fpn vs torchvision'] = { rows, pass: rows.every((r) => r.forward >= 0.99 && r.backward >= 0.99) };
  } finally {
    await onGpu.close();
  }
  // The default package, every pipeline, CUDA against the CPU on the same images.
  const files = readdirSync(join(root, 'test/fixtures/images')).filter((f) => f.startsWith('shapes')).sort().slice(0, images);
  const cpu = await Detector.load('shapes-vgg', { device: 'cpu' });
  const gpu = await Detector.load('shapes-vgg', { device });
  try {
    for (const pipeline of PIPELINES) {
      const rows = [];
      for (const file of files) {
        const bytes = readFileSync(join(root, 'test/fixtures/images', file));
        const [a, b] = [await cpu.detect(bytes, { pipeline }), await gpu.detect(bytes, { pipeline })];
        rows.push({ image: file, cpu: a.detections.length, cuda: b.detections.length, forward: matchedFraction(a.detections, b.detections), backward: matchedFraction(b.detections, a.detections) });
      }
      out[`shapes-vgg ${pipeline}: cuda vs cpu`] = { rows, pass: rows.every((r) => r.forward >= 0.99 && r.backward >= 0.99) };
    }
  } finally {
    await Promise.all([cpu.close(), gpu.close()]);
  }
  for (const [name, v] of Object.entries(out)) console.log(`   ${name}: ${(v as { pass: boolean }).pass ? 'pass' : 'FAIL'}`);
  return out;
});

await section('bench-default', async () => {
  const out: Record<string, unknown> = {};
  const runs = [['cpu', 'host'], [device, 'host'], [device, 'graph']] as const;
  for (const [d, roiPlacement] of runs) {
    const detector = await Detector.load('shapes-vgg', { device: d, roiPlacement });
    try {
      for (const pipeline of PIPELINES) {
        const key = `${d} ${pipeline}, RoI op on the ${roiPlacement}`;
        out[key] = await timed(detector, shippedImage, { pipeline }, d === 'cpu' ? Math.min(repeats, 3) : repeats);
        console.log(`   ${key}: ${JSON.stringify(out[key])}`);
      }
    } finally {
      await detector.close();
    }
  }
  return out;
});

/** Peak dense throughput, FLOP/s, of the GPUs whose figures are published (NVIDIA's data sheets; SXM parts). */
const PEAKS: Record<string, { fp32: number; tf32: number; fp16: number }> = {
  H200: { fp32: 67e12, tf32: 494.7e12, fp16: 989.4e12 },
  H100: { fp32: 67e12, tf32: 494.7e12, fp16: 989.4e12 },
  A100: { fp32: 19.5e12, tf32: 156e12, fp16: 312e12 },
};

if (!values['skip-r50']) {
  const work = join(values.out, 'r50');
  const coffee = readFileSync(join(root, 'test/fixtures/images/coffee.png'));
  await section('r50-export', async () => {
    mkdirSync(work, { recursive: true });
    const fp32 = join(work, 'fp32');
    if (!existsSync(fp32)) {
      execFileSync(python, ['models/recipes/torchvision/export_torchvision.py', '--arch', 'fasterrcnn_resnet50_fpn', '--weights', 'none', '--seed', '0', '--out', fp32], { stdio: 'inherit', timeout: 600_000 });
    }
    if (!existsSync(join(work, 'fp16'))) await float16Package(fp32, { out: join(work, 'fp16') });
    return { fp32, fp16: join(work, 'fp16') };
  });

  await section('bench-r50', async () => {
    const out: Record<string, unknown> = {};
    const poolWarnings = new Set<string>();
    const manifest = await readManifest(join(work, 'fp32'));
    const { height, width } = await sharp(coffee).metadata();
    // The multiply-adds of one image at its detection size, with torchvision's 1000 proposals.
    const [cost] = await pipelineCosts(join(work, 'fp32'), manifest, { image: [height!, width!], proposals: 0, rpnProposals: [1000] });
    const macs = cost!.macs;
    out.gmacs = macs / 1e9;
    const gpuName = String((results.machine as { gpu?: string } | undefined)?.gpu ?? '');
    const peak = Object.entries(PEAKS).find(([name]) => gpuName.includes(name))?.[1];
    // NVIDIA_TF32_OVERRIDE=0 (device-run.sh sets it) keeps cuBLAS and cuDNN from rounding fp32 products to TF32.
    const tf32 = process.env.NVIDIA_TF32_OVERRIDE !== '0';
    out.tf32 = tf32;
    for (const precision of ['fp32', 'fp16'] as const) {
      // Batch 1, RoIAlign in each placement: on the host in TypeScript (the feature maps come back from the
      // device), or inside the box head's graph on the device (the maps go back up; no pooled features come down).
      for (const roiPlacement of ROI_PLACEMENTS) {
        const detector = await Detector.load(join(work, precision), { device, roiPlacement });
        try {
          const stages = await timed(detector, coffee, {}, repeats);
          const floorMs = peak ? ((2 * macs) / (precision === 'fp16' ? peak.fp16 : tf32 ? peak.tf32 : peak.fp32)) * 1000 : undefined;
          const key = `${precision} RoIAlign on the ${roiPlacement}`;
          out[key] = { stages, imagesPerSecond: 1000 / stages.total!, floorMs, floorRatio: floorMs ? stages.total! / floorMs : undefined };
          console.log(`   ${key}, batch 1: ${JSON.stringify(out[key])}`);
        } finally {
          await detector.close();
        }
      }
      // Concurrent requests through the worker pool: `workers` workers each with its own sessions on the device,
      // one request at a time each; then one worker taking maxBatch requests at once, its graphs batched.
      for (const [label, poolWorkers, batch] of [[`${workers} workers`, workers, 1], [`1 worker, batches of ${maxBatch}`, 1, maxBatch]] as const) {
        const pool = new InferencePool({ workers: poolWorkers, maxQueue: 1024, tasksPerWorker: batch });
        pool.onWarning((m) => poolWarnings.add(m));
        try {
          const settings = { device, intraOpThreads: 2, limits: DEFAULT_DECODE_LIMITS, maxBatch: batch };
          const task = { modelDir: join(work, precision), bytes: coffee, options: {}, settings };
          await Promise.all(Array.from({ length: Math.max(workers, batch) * 2 }, () => pool.detect(task))); // every worker loads and warms up
          const loads: Record<string, number> = {};
          for (const c of concurrency) {
            const total = Math.max(c * 2, 16);
            const t = performance.now();
            let next = 0;
            await Promise.all(Array.from({ length: c }, async () => {
              while (next++ < total) await pool.detect(task);
            }));
            loads[`concurrency ${c}`] = total / ((performance.now() - t) / 1000);
          }
          out[`${precision} images/s, ${label}`] = loads;
          console.log(`   ${precision} under load, ${label}: ${JSON.stringify(loads)}`);
        } finally {
          await pool.close();
        }
      }
    }
    out.workerWarnings = [...poolWarnings];
    return out;
  });

  await section('torchvision', async () => {
    const args = ['test/gpu/torchvision_cuda.py', '--image', 'test/fixtures/images/coffee.png', '--repeats', String(repeats), '--concurrency', values.concurrency];
    const out = execFileSync(python, args, { encoding: 'utf8', timeout: 600_000, stdio: ['ignore', 'pipe', 'inherit'] });
    const parsed = JSON.parse(out.trim().split('\n').pop()!);
    console.log(`   ${JSON.stringify(parsed)}`);
    return parsed;
  });
}

const seconds = (performance.now() - started) / 1000;
results.seconds = seconds;
results.cuda = cuda;
mkdirSync(values.out, { recursive: true });
const file = join(values.out, 'gpu-results.json');
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
console.log(`${cuda ? 'CUDA' : 'DRY RUN (no CUDA: every section ran on the CPU)'}: ${results.errors.length} sections failed; results in ${file} (${seconds.toFixed(0)} s)`);
process.exit(results.errors.length ? 1 : 0);
