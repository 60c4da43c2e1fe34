/**
 * `rcnn-serve models inspect NAME_OR_DIR`: the layer table of each of a
 * package's graphs (type, kernel, stride, padding, output shape, parameters,
 * multiply-adds), from the ONNX structure.
 */

import type { ParseArgsConfig } from 'node:util';
import type { LayerTable } from '../inspect/layer-summary.js';
import { classifierLayers, packageLayers } from '../inspect/package-layers.js';
import { pipelineCosts, type PipelineCost } from '../inspect/pipeline-cost.js';
import { readManifest, resolveModelDir } from '../model/package.js';
import { parseCommand, UsageError } from './flags.js';

export const MODELS_USAGE = `models inspect options:
  --input CxHxW            the backbone's input (default: 3 x minSize x minSize of the package)
  --classifier             the whole classification network the backbone was cut from (packages that name one, e.g.
                           export_backbone.py's), at 3x224x224 unless --input: the totals papers publish
  --cost                   also the multiply-adds per image of each pipeline, for --image HxW (default 375x500) and
                           --proposals N regions (default 2000; Faster R-CNN: 300 and 1000 proposals)
  --json                   {"input","graphs":{FILE:{"layers":[...],"totals":{"params","macs"}}},"totals":{"params"}};
                           with --classifier {"input","layers":[...],"totals":{"params","macs"}}
  Each layer: name, type, kernel, stride, padding, outputShape, params, macs (multiply-adds; FLOPs are about twice).`;

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
    l.name, l.type, l.kernel?.join('x') ?? '', l.stride?.join('x') ?? '', l.padding?.join(',') ?? '', l.outputShape.join('x'), count(l.params), count(l.macs),
  ]);
  const head = ['layer', 'type', 'kernel', 'stride', 'padding', 'output', 'params', 'MACs'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i >= 6 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [`${file}`, line(head), ...rows.map(line), `total: ${count(t.totals.params)} parameters, ${count(t.totals.macs)} multiply-adds`, ''];
}

export async function modelsCommand(argv: string[], out: (line: string) => void): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'inspect') throw new UsageError(`models needs a subcommand: inspect NAME_OR_DIR`);
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
