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
 * The weights of the graph's first convolution (in node order): a float32
 * initializer, or int8 ones behind a DequantizeLinear (a stored int8
 * package), dequantized; undefined where they are computed otherwise.
 */
export function firstConvFilters(m: EditableModel): ConvFilters | undefined {
  const conv = m.nodes.find((n) => n.opType === 'Conv');
  if (!conv) return undefined;
  const initializer = (name: string | undefined) => m.initializers.find((t) => t.name === name);
  const weights = initializer(conv.inputs[1]);
  if (weights) return weights.dataType === DataType.FLOAT && weights.dims.length === 4 ? { dims: weights.dims as ConvFilters['dims'], data: floatData(weights) } : undefined;
  const dq = m.nodes.find((n) => n.opType === 'DequantizeLinear' && n.outputs[0] === conv.inputs[1]);
  const [q, scale, zero] = (dq?.inputs ?? []).map(initializer);
  if (!dq || !q || !scale || q.dims.length !== 4 || (q.dataType !== DataType.INT8 && q.dataType !== DataType.UINT8) || scale.dataType !== DataType.FLOAT) return undefined;
  const values = q.dataType === DataType.INT8 ? new Int8Array(q.data.buffer, q.data.byteOffset, q.data.length) : q.data;
  const zeros = zero ? (zero.dataType === DataType.INT8 ? new Int8Array(zero.data.buffer, zero.data.byteOffset, zero.data.length) : zero.data) : undefined;
  const scales = floatData(scale);
  // Per output channel (axis 0, the quantizer's) or one scale for all.
  const perChannel = scales.length === q.dims[0];
  const size = values.length / q.dims[0]!;
  const data = Float32Array.from(values, (v, i) => {
    const c = perChannel ? Math.floor(i / size) : 0;
    return (v - (zeros?.[c] ?? 0)) * scales[c]!;
  });
  return { dims: q.dims as ConvFilters['dims'], data };
}
