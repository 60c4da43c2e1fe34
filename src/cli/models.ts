/**
 * `rcnn-serve models inspect NAME_OR_DIR`: the layer table of each of a
 * package's graphs (type, kernel, stride, padding, output shape, parameters,
 * multiply-adds, int8 or not), from the ONNX structure.
 * `rcnn-serve models quantize PACKAGE --calibration SRC --out DIR`: an int8
 * package from an fp32 one (quantize/quantize-package.ts); with
 * `--precision fp16` a float16 one (quantize/float16-package.ts).
 */

import type { parseArgs, ParseArgsConfig } from 'node:util';
import type { LayerTable } from '../inspect/layer-summary.js';
import { classifierLayers, packageLayers } from '../inspect/package-layers.js';
import { pipelineCosts, type PipelineCost } from '../inspect/pipeline-cost.js';
import { CALIBRATION_METHODS, DEFAULT_PERCENTILE, type CalibrationMethod } from '../core/quantize.js';
import { precisionsOf } from '../model/manifest.js';
import { readManifest, resolveModelDir } from '../model/package.js';
import { DEFAULT_CALIBRATION_IMAGES, MIN_CALIBRATION_IMAGES } from '../quantize/calibration-images.js';
import { float16Package } from '../quantize/float16-package.js';
import { quantizePackage } from '../quantize/quantize-package.js';
import { parseCommand, UsageError, type CliIo } from './flags.js';

export const MODELS_USAGE = `models inspect options:
  --input CxHxW            the backbone's input (default: 3 x minSize x minSize of the package)
  --classifier             the whole classification network the backbone was cut from (packages that name one, e.g.
                           export_backbone.py's), at 3x224x224 unless --input: the totals papers publish
  --cost                   also the multiply-adds per image of each pipeline, for --image HxW (default 375x500) and
                           --proposals N regions (default 2000; Faster R-CNN: 300 and 1000 proposals)
  --json                   {"input","graphs":{FILE:{"layers":[...],"totals":{"params","macs"}}},"totals":{"params"}};
                           with --classifier {"input","layers":[...],"totals":{"params","macs"}}
  Each layer: name, type, kernel, stride, padding, outputShape, params, macs (multiply-adds; FLOPs are about twice),
  and precision "int8" where the layer runs in int8 (stored, or built at load for --precision int8).

models quantize PACKAGE --calibration DIR_OR_MANIFEST --out DIR [options]:
  an int8 package from an fp32 one: every graph in QDQ form (weights int8 per output channel, activations uint8 per
  tensor), activation ranges calibrated by running the package's own pipelines on the images
models quantize PACKAGE --precision fp16 --out DIR:
  a float16 package from an fp32 one, for GPUs: weights and activations in half precision, each graph's inputs and
  outputs still float32; no calibration (README, "GPU")
  --precision P            int8 (default) or fp16
  --calibration SRC        a folder of images (recursive, sorted), a manifest (one path per line) or a COCO
                           annotations file
  --out DIR                the new package's folder; must not exist (written whole or not at all)
  --count N                calibrate on the first N images (default ${DEFAULT_CALIBRATION_IMAGES}, at least ${MIN_CALIBRATION_IMAGES})
  --method M               ${CALIBRATION_METHODS.join('|')}: ranges from the extremes, from the P-th percentile of |x|
                           (--percentile, default ${DEFAULT_PERCENTILE}), or by least KL divergence (default percentile)
  --keep-fp32              keep the fp32 graphs and record the ranges: the package serves both precisions
                           (precision=int8 per request), int8 built at load; a fraction of the size of two copies
  --keep-float NODES       comma-separated Conv/Gemm/MatMul nodes to leave in fp32 (names as models inspect shows them)
  --json                   the report as JSON`;

const QUANTIZE_OPTIONS = {
  precision: { type: 'string' },
  calibration: { type: 'string' },
  out: { type: 'string' },
  count: { type: 'string' },
  method: { type: 'string' },
  percentile: { type: 'string' },
  'keep-fp32': { type: 'boolean' },
  'keep-float': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];
type QuantizeValues = ReturnType<typeof parseArgs<{ options: typeof QUANTIZE_OPTIONS; allowPositionals: true; strict: true }>>['values'];

const OPTIONS = {
  input: { type: 'string' },
  classifier: { type: 'boolean' },
  cost: { type: 'boolean' },
  image: { type: 'string' },
  proposals: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const count = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(n));

function table(file: string, t: LayerTable): string[] {
  const rows = t.layers.map((l) => [
    l.name, l.type, l.kernel?.join('x') ?? '', l.stride?.join('x') ?? '', l.padding?.join(',') ?? '', l.outputShape.join('x'), count(l.params), count(l.macs), l.precision ?? '',
  ]);
  const head = ['layer', 'type', 'kernel', 'stride', 'padding', 'output', 'params', 'MACs', t.totals.int8Macs ? 'precision' : ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i >= 6 && i < 8 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const int8 = t.totals.int8Macs ? `, ${count(t.totals.int8Macs)} of them in int8` : '';
  return [`${file}`, line(head), ...rows.map(line), `total: ${count(t.totals.params)} parameters, ${count(t.totals.macs)} multiply-adds${int8}`, ''];
}

async function quantizeCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand({ args, options: QUANTIZE_OPTIONS, allowPositionals: true, strict: true });
  if (values.help) {
    io.out(MODELS_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('models quantize needs one PACKAGE (a name or a folder)');
  const precision = values.precision ?? 'int8';
  if (precision !== 'int8' && precision !== 'fp16') throw new UsageError(`--precision is ${JSON.stringify(values.precision)}; allowed: int8, fp16`);
  if (precision === 'fp16') return float16Command(positionals[0]!, values, io);
  if (!values.calibration) throw new UsageError('models quantize needs --calibration DIR_OR_MANIFEST: the images whose activations set the int8 ranges');
  if (!values.out) throw new UsageError('models quantize needs --out DIR: the new package\'s folder');
  const method = (values.method ?? 'percentile') as CalibrationMethod;
  if (!CALIBRATION_METHODS.includes(method)) throw new UsageError(`--method is ${JSON.stringify(values.method)}; allowed: ${CALIBRATION_METHODS.join(', ')}`);
  const count = Number(values.count ?? DEFAULT_CALIBRATION_IMAGES);
  if (!Number.isInteger(count) || count < MIN_CALIBRATION_IMAGES || count > 100000) throw new UsageError(`--count needs an integer from ${MIN_CALIBRATION_IMAGES} to 100000; got ${JSON.stringify(values.count)}`);
  const percentile = values.percentile === undefined ? undefined : Number(values.percentile);
  if (percentile !== undefined && (method !== 'percentile' || !(percentile > 50 && percentile <= 100))) {
    throw new UsageError(`--percentile goes with --method percentile and is in (50, 100]; got ${JSON.stringify(values.percentile)}`);
  }
  const report = await quantizePackage(positionals[0]!, {
    calibration: values.calibration,
    out: values.out,
    count,
    method,
    percentile,
    keepFp32: values['keep-fp32'],
    keepFloat: values['keep-float']?.split(',').map((s) => s.trim()).filter(Boolean),
    onProgress: values.json ? undefined : (done, total) => io.err(`calibrated on ${done}/${total} images`),
  });
  if (values.json) {
    io.out(JSON.stringify(report));
    return 0;
  }
  io.out(`${report.out}: ${report.name}, calibrated (${report.calibration.method}) on ${report.calibration.count} images of ${report.calibration.images} through ${report.calibration.pipelines.join(', ')} in ${report.seconds.toFixed(1)} s`);
  for (const [file, g] of Object.entries(report.graphs)) {
    io.out(`  ${file}: ${g.int8Nodes} int8 nodes, ${g.floatNodes} kept fp32; ${(g.bytesBefore / 1e6).toFixed(2)} -> ${(g.bytesAfter / 1e6).toFixed(2)} MB`);
  }
  return 0;
}

async function float16Command(pkg: string, values: QuantizeValues, io: CliIo): Promise<number> {
  const int8Only = (['calibration', 'count', 'method', 'percentile', 'keep-fp32', 'keep-float'] as const).filter((k) => values[k] !== undefined);
  if (int8Only.length) throw new UsageError(`${int8Only.map((k) => `--${k}`).join(', ')} ${int8Only.length > 1 ? 'are' : 'is'} for int8; --precision fp16 takes only --out and --json`);
  if (!values.out) throw new UsageError('models quantize needs --out DIR: the new package\'s folder');
  const report = await float16Package(pkg, { out: values.out });
  if (values.json) {
    io.out(JSON.stringify(report));
    return 0;
  }
  io.out(`${report.out}: ${report.name}, converted to float16 in ${report.seconds.toFixed(1)} s`);
  for (const [file, g] of Object.entries(report.graphs)) {
    const clamped = g.clamped ? `, ${g.clamped} weights beyond ±65504 clamped` : '';
    io.out(`  ${file}: ${g.initializers} tensors in float16${clamped}; ${(g.bytesBefore / 1e6).toFixed(2)} -> ${(g.bytesAfter / 1e6).toFixed(2)} MB`);
  }
  return 0;
}

export async function modelsCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  const out = io.out;
  if (sub === 'quantize') return quantizeCommand(rest, io);
  if (sub !== 'inspect') throw new UsageError(`models needs a subcommand: inspect NAME_OR_DIR, or quantize PACKAGE --calibration SRC --out DIR`);
  const { values, positionals } = parseCommand({ args: rest, options: OPTIONS, allowPositionals: true, strict: true });
  if (values.help) {
    out(MODELS_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('models inspect needs one NAME_OR_DIR');
  let input: [number, number, number] | undefined;
  if (values.input !== undefined) {
    const dims = values.input.split('x').map(Number);
    if (dims.length !== 3 || !dims.every((d) => Number.isInteger(d) && d > 0)) throw new UsageError(`--input needs CxHxW, e.g. 3x224x224; got ${JSON.stringify(values.input)}`);
    input = dims as [number, number, number];
  }
  const dir = await resolveModelDir(positionals[0]!);
  const manifest = await readManifest(dir);
  if (values.classifier) {
    let t;
    try {
      t = await classifierLayers(dir, manifest, input);
    } catch (err) {
      if (err instanceof RangeError) throw new UsageError(err.message);
      throw err;
    }
    if (values.json) out(JSON.stringify({ input: t.input, layers: t.layers, totals: t.totals }));
    else {
      out(`${dir}: the classification network, input ${t.input.join('x')}; multiply-adds per image (FLOPs are about twice)`);
      out('');
      table(manifest.classifier!.file, t).forEach(out);
    }
    return 0;
  }
  const layers = await packageLayers(dir, manifest, input);
  let costs: PipelineCost[] | undefined;
  if (values.cost) {
    const image = (values.image ?? '375x500').split('x').map(Number);
    if (image.length !== 2 || !image.every((d) => Number.isInteger(d) && d > 0)) throw new UsageError(`--image needs HxW, e.g. 375x500; got ${JSON.stringify(values.image)}`);
    const proposals = Number(values.proposals ?? 2000);
    if (!Number.isInteger(proposals) || proposals < 1) throw new UsageError(`--proposals needs a positive integer; got ${JSON.stringify(values.proposals)}`);
    costs = await pipelineCosts(dir, manifest, { image: image as [number, number], proposals });
  }
  if (values.json) {
    out(JSON.stringify(costs ? { ...layers, costs } : layers));
    return 0;
  }
  out(`${dir}: input ${layers.input.join('x')}; multiply-adds per image for the backbone, per region for the heads (FLOPs are about twice)`);
  out(precisionLine(manifest));
  out('');
  for (const [file, t] of Object.entries(layers.graphs)) table(file, t).forEach(out);
  out(`all graphs: ${count(layers.totals.params)} parameters`);
  if (costs) {
    out('');
    out(`multiply-adds per ${values.image ?? '375x500'} image, by pipeline:`);
    for (const c of costs) out(`  ${c.pipeline.padEnd(11)} ${String(c.regions).padStart(5)} regions  ${count(c.macs).padStart(9)}  = ${c.terms.map((t) => `${t.times > 1 ? `${t.times} x ` : ''}${count(t.macs)} (${t.stage})`).join(' + ')}`);
  }
  return 0;
}

/** What precisions a package serves, and how its int8 graphs were made. */
function precisionLine(m: Awaited<ReturnType<typeof readManifest>>): string {
  const precisions = precisionsOf(m);
  const q = m.quantization;
  if (!q) return `precision: ${precisions.join(', ')}`;
  const c = q.calibration;
  const how = `${m.precision === 'int8' ? 'stored' : 'built at load from the fp32 graphs'}; calibrated (${c.method}${c.percentile ? ` ${c.percentile}` : ''}) on ${c.count} images of ${c.images} through ${c.pipelines.join(', ')}`;
  return `precision: ${precisions.join(', ')} (int8 ${how})`;
}
