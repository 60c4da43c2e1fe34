/**
 * The layer table of every graph of a package, for one image size: the
 * backbone on a [1, 3, H, W] image, the RPN head on the backbone's maps, and
 * the box heads per region (R = 1). Read from the ONNX files' structure only.
 */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { layerTable, type LayerTable } from './layer-summary.js';
import { graphsOf } from '../model/manifest.js';
import type { ModelManifest } from '../model/manifest-schema.js';
import { parseOnnx } from '../onnx/graph.js';

export interface PackageLayers {
  /** The backbone's input size the tables are for. */
  input: [number, number, number];
  /** By graph file, backbone first; the heads' multiply-adds are per region. */
  graphs: Record<string, LayerTable>;
  /** Parameters of all graphs together. */
  totals: { params: number };
}

/**
 * The whole classification network's table (the manifest's `classifier`, e.g.
 * AlexNet with its fc6-fc8 on a 224 x 224 image): the figures papers publish.
 * @param input [3, H, W]; default: the classifier's own input size.
 * @throws RangeError when the package names no classifier graph.
 */
export async function classifierLayers(dir: string, m: ModelManifest, input?: [number, number, number]): Promise<LayerTable & { input: [number, number, number] }> {
  if (!m.classifier) throw new RangeError(`${m.name} names no classifier graph (models/recipes/backbones/export_backbone.py --structure-only writes one)`);
  const size = input ?? m.classifier.inputSize;
  const graph = parseOnnx(await readFile(join(dir, m.classifier.file)));
  return { input: size, ...layerTable(graph, { [m.classifier.input]: [1, ...size] }) };
}

/**
 * @param input [3, H, W] of the backbone's image; default: a square at the model's minSize.
 * @throws RangeError when a graph has an op or shape the table cannot follow.
 */
export async function packageLayers(dir: string, m: ModelManifest, input?: [number, number, number]): Promise<PackageLayers> {
  const size: [number, number, number] = input ?? [3, m.input.minSize, m.input.minSize];
  const known: Record<string, number[]> = {};
  const graphs: Record<string, LayerTable> = {};
  for (const file of graphsOf(m).keys()) {
    const graph = parseOnnx(await readFile(join(dir, file)));
    const shapes: Record<string, number[]> = {};
    for (const i of graph.inputs) {
      if (known[i.name]) shapes[i.name] = known[i.name]!;
      else if (file === m.backbone.file) shapes[i.name] = [1, ...size];
      else shapes[i.name] = i.dims.map((d) => (typeof d === 'number' ? d : 1));
    }
    const table = layerTable(graph, shapes, new Set(m.quantization?.graphs[file]?.int8Nodes));
    Object.assign(known, table.outputs);
    graphs[file] = table;
  }
  return { input: size, graphs, totals: { params: Object.values(graphs).reduce((s, t) => s + t.totals.params, 0) } };
}
