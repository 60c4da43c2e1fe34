/**
 * A backbone's layers as feature views see them (Zeiler & Fergus 2014): the
 * outputs of its activations, poolings and normalisations, exposed as graph
 * outputs of the one graph the pipelines run (no second copy of its
 * weights), and its first convolution's filters.
 */

import { DataType, floatData, floatValueInfo, type EditableModel } from './model.js';

/** The ops whose outputs are views: what a layer hands on once its convolution, rectification or pooling is done. */
export const VIEWABLE_OPS: ReadonlySet<string> = new Set(['Relu', 'LeakyRelu', 'Clip', 'MaxPool', 'AveragePool', 'LRN']);

export interface FeatureLayer {
  /** The node's name, as `models inspect` and GET /v1/models/{name} list it (its output's where it has none). */
  name: string;
  op: string;
  /** The tensor it writes. */
  output: string;
}

/** The viewable layers of a graph's nodes, in graph order. */
export function featureLayers(nodes: readonly { name: string; opType: string; outputs: readonly string[] }[]): FeatureLayer[] {
  return nodes.filter((n) => VIEWABLE_OPS.has(n.opType) && n.outputs[0]).map((n) => ({ name: n.name || n.outputs[0]!, op: n.opType, output: n.outputs[0]! }));
}

/** The model with the layers' tensors added to its outputs (those it has already left as they are). */
export function withLayerOutputs(m: EditableModel, layers: readonly FeatureLayer[]): EditableModel {
  const present = new Set(m.outputs.map((o) => o.name));
  const added = layers.filter((l) => !present.has(l.output)).map((l) => ({ name: l.output, encoded: floatValueInfo(l.output) }));
  return { ...m, outputs: [...m.outputs, ...added] };
}

/** Filters as stored: [out channels, in channels, kh, kw], float32. */
export interface ConvFilters {
  dims: [number, number, number, number];
  data: Float32Array;
}

/**
 * The weights of the graph's first convolution (in node order) where they
 * are a float32 initializer; undefined where they are not (int8 behind a
 * DequantizeLinear, or computed).
 */
export function firstConvFilters(m: EditableModel): ConvFilters | undefined {
  const conv = m.nodes.find((n) => n.opType === 'Conv');
  const weights = conv && m.initializers.find((t) => t.name === conv.inputs[1]);
  if (!weights || weights.dataType !== DataType.FLOAT || weights.dims.length !== 4) return undefined;
  return { dims: weights.dims as [number, number, number, number], data: floatData(weights) };
}
