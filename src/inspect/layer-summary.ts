/**
 * A layer table computed from an ONNX graph: per node, its type, kernel,
 * stride, padding, output shape, parameters and multiply-adds, for given input
 * shapes. Shapes are propagated node by node (including the small integer
 * tensors of shape arithmetic: Shape, Gather, Slice, Concat, ...).
 *
 * Counting conventions (the seed's, and torchvision's published figures):
 * parameters are the initializer elements a node reads (weights and biases;
 * BatchNorm's scale and shift, not its running statistics); multiply-adds
 * (MACs) are counted for convolutions (Hout x Wout x Cout x kH x kW x Cin /
 * group) and fully connected layers (in x out), per image, and for nothing
 * else; FLOPs are about twice the MACs.
 */

import type { AttributeValue, OnnxGraph, OnnxNode } from '../onnx/graph.js';

export interface Layer {
  name: string;
  type: string;
  kernel?: number[];
  stride?: number[];
  /** [top, left, bottom, right] for 2-D ops. */
  padding?: number[];
  /** Without the batch dimension. */
  outputShape: number[];
  params: number;
  macs: number;
  /** Set where the layer runs in int8 (its weights int8 behind a DequantizeLinear, or listed int8 in model.json). */
  precision?: 'int8';
}

export interface LayerTable {
  layers: Layer[];
  /** int8Macs: the share of macs in int8 layers. */
  totals: { params: number; macs: number; int8Macs: number };
  /** The shape of each graph output, batch included. */
  outputs: Record<string, number[]>;
}

/** Nodes that only move shapes or values around get no row of their own (nor does arithmetic on shapes). */
const PLUMBING = new Set(['Constant', 'Shape', 'Gather', 'Slice', 'Unsqueeze', 'Squeeze', 'Cast', 'Identity', 'Dropout', 'QuantizeLinear', 'DequantizeLinear']);
const INT8 = 3;

interface Value {
  shape: number[];
  /** Known integer contents (shape arithmetic). */
  ints?: number[];
}

const prod = (a: number[]) => a.reduce((x, y) => x * y, 1);

function ints(node: OnnxNode, name: string, fallback: number[]): number[] {
  const v = node.attributes.get(name);
  return Array.isArray(v) ? (v as number[]) : fallback;
}

function int(node: OnnxNode, name: string, fallback: number): number {
  const v: AttributeValue | undefined = node.attributes.get(name);
  return typeof v === 'number' ? v : fallback;
}

function broadcast(a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const x = a[a.length - n + i] ?? 1, y = b[b.length - n + i] ?? 1;
    return x === 1 ? y : x;
  });
}

function elementwise(op: string, a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const x = a.length === 1 ? a[0]! : a[i]!, y = b.length === 1 ? b[0]! : b[i]!;
    return op === 'Add' ? x + y : op === 'Sub' ? x - y : op === 'Mul' ? x * y : Math.trunc(x / y);
  });
}

/** Spatial output size of a window op. */
function windowOut(size: number, k: number, s: number, padBegin: number, padEnd: number, d: number, ceil: boolean): number {
  const span = size + padBegin + padEnd - d * (k - 1) - 1;
  return (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
}

/**
 * @param inputShapes the shape of each graph input, batch included (dynamic dimensions resolved by the caller).
 * @throws RangeError naming the node whose op or shape cannot be handled.
 */
export function layerTable(graph: OnnxGraph, inputShapes: Record<string, number[]>, int8Nodes: ReadonlySet<string> = new Set()): LayerTable {
  const values = new Map<string, Value>();
  // QDQ graphs: a weight is an int8 initializer behind a DequantizeLinear; count it as the weight.
  const dequantized = new Map<string, string>();
  for (const n of graph.nodes) if (n.opType === 'DequantizeLinear' && graph.initializers.has(n.inputs[0]!)) dequantized.set(n.outputs[0]!, n.inputs[0]!);
  for (const [name, t] of graph.initializers) values.set(name, { shape: t.dims, ints: t.ints });
  for (const i of graph.inputs) {
    const shape = inputShapes[i.name];
    if (!shape) throw new RangeError(`layer table: no shape given for graph input ${i.name}`);
    values.set(i.name, { shape });
  }
  const layers: Layer[] = [];
  for (const node of graph.nodes) {
    const get = (k: number): Value => {
      const v = values.get(node.inputs[k]!);
      if (!v) throw new RangeError(`layer table: ${node.opType} ${node.name} reads ${node.inputs[k]}, which nothing computed`);
      return v;
    };
    const x = node.inputs.length ? get(0) : { shape: [] };
    const initializerOf = (k: number) => (node.inputs[k] ? graph.initializers.get(dequantized.get(node.inputs[k]!) ?? node.inputs[k]!) : undefined);
    const paramOf = (k: number) => (initializerOf(k) ? prod(initializerOf(k)!.dims) : 0);
    let out: Value;
    const row: Partial<Layer> = {};
    switch (node.opType) {
      case 'Conv': {
        const w = get(1).shape;
        const group = int(node, 'group', 1);
        const k = ints(node, 'kernel_shape', w.slice(2));
        const s = ints(node, 'strides', k.map(() => 1));
        const d = ints(node, 'dilations', k.map(() => 1));
        const p = ints(node, 'pads', [...k.map(() => 0), ...k.map(() => 0)]);
        const spatial = k.map((kk, i) => windowOut(x.shape[2 + i]!, kk, s[i]!, p[i]!, p[i + k.length]!, d[i]!, false));
        out = { shape: [x.shape[0]!, w[0]!, ...spatial] };
        row.kernel = k;
        row.stride = s;
        row.padding = p;
        row.params = paramOf(1) + paramOf(2);
        row.macs = prod(spatial) * w[0]! * prod(k) * (x.shape[1]! / group);
        break;
      }
      case 'MaxPool':
      case 'AveragePool': {
        const k = ints(node, 'kernel_shape', []);
        const s = ints(node, 'strides', k.map(() => 1));
        const d = ints(node, 'dilations', k.map(() => 1));
        const p = ints(node, 'pads', [...k.map(() => 0), ...k.map(() => 0)]);
        const ceil = int(node, 'ceil_mode', 0) === 1;
        out = { shape: [x.shape[0]!, x.shape[1]!, ...k.map((kk, i) => windowOut(x.shape[2 + i]!, kk, s[i]!, p[i]!, p[i + k.length]!, d[i]!, ceil))] };
        row.kernel = k;
        row.stride = s;
        row.padding = p;
        break;
      }
      case 'GlobalAveragePool':
      case 'GlobalMaxPool':
        out = { shape: [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map(() => 1)] };
        break;
      case 'Relu': case 'LeakyRelu': case 'Sigmoid': case 'Softmax': case 'Clip': case 'LRN': case 'Dropout': case 'Identity': case 'Cast': case 'Floor': case 'Ceil':
        out = { shape: x.shape, ints: x.ints };
        if (node.opType === 'LRN') row.kernel = [int(node, 'size', 1)];
        break;
      case 'BatchNormalization':
        out = { shape: x.shape };
        row.params = paramOf(1) + paramOf(2);
        break;
      case 'Add': case 'Sub': case 'Mul': case 'Div': {
        const y = get(1);
        out = { shape: broadcast(x.shape, y.shape), ints: x.ints && y.ints ? elementwise(node.opType, x.ints, y.ints) : undefined };
        row.params = paramOf(0) + paramOf(1);
        break;
      }
      case 'Concat': {
        const parts = node.inputs.map((_, k) => get(k));
        const axis = (int(node, 'axis', 0) + x.shape.length) % Math.max(1, x.shape.length);
        const shape = [...x.shape];
        shape[axis] = parts.reduce((s, v) => s + v.shape[axis]!, 0);
        out = { shape, ints: parts.every((v) => v.ints) ? parts.flatMap((v) => v.ints!) : undefined };
        break;
      }
      case 'Transpose': {
        const perm = ints(node, 'perm', x.shape.map((_, i) => x.shape.length - 1 - i));
        out = { shape: perm.map((i) => x.shape[i]!) };
        break;
      }
      case 'Flatten': {
        const axis = int(node, 'axis', 1);
        out = { shape: [prod(x.shape.slice(0, axis)), prod(x.shape.slice(axis))] };
        break;
      }
      case 'Reshape': {
        const target = get(1).ints;
        if (!target) throw new RangeError(`layer table: Reshape ${node.name} has a target shape that is not a constant`);
        const shape = target.map((v, i) => (v === 0 ? x.shape[i]! : v));
        const known = prod(shape.filter((v) => v !== -1));
        out = { shape: shape.map((v) => (v === -1 ? prod(x.shape) / known : v)) };
        break;
      }
      case 'Gemm': {
        const b = get(1).shape;
        const m = int(node, 'transA', 0) ? x.shape[1]! : x.shape[0]!;
        const kdim = int(node, 'transA', 0) ? x.shape[0]! : x.shape[1]!;
        const n = int(node, 'transB', 0) ? b[0]! : b[1]!;
        out = { shape: [m, n] };
        row.params = paramOf(1) + paramOf(2);
        row.macs = kdim * n;
        break;
      }
      case 'MatMul':
      case 'MatMulInteger': {
        const b = get(1).shape;
        out = { shape: [...x.shape.slice(0, -1), b[b.length - 1]!] };
        row.params = paramOf(1);
        row.macs = x.shape[x.shape.length - 1]! * b[b.length - 1]! * prod(x.shape.slice(1, -1));
        break;
      }
      case 'Constant': {
        const t = node.attributes.get('value') as { dims: number[]; ints?: number[] } | undefined;
        out = { shape: t?.dims ?? [], ints: t?.ints };
        break;
      }
      case 'Shape':
        out = { shape: [x.shape.length], ints: x.shape };
        break;
      case 'Gather': {
        const idx = get(1);
        if (!x.ints || !idx.ints) throw new RangeError(`layer table: Gather ${node.name} on a non-constant tensor`);
        const picked = idx.ints.map((i) => x.ints![i < 0 ? i + x.ints!.length : i]!);
        out = { shape: idx.shape, ints: picked };
        break;
      }
      case 'Unsqueeze': case 'Squeeze':
        out = { shape: node.opType === 'Unsqueeze' ? [...x.shape, 1].slice(0, Math.max(1, x.shape.length + 1)) : x.shape.filter((d) => d !== 1), ints: x.ints };
        if (x.shape.length === 0 && node.opType === 'Unsqueeze') out.shape = [1];
        break;
      case 'Slice': {
        const starts = get(1).ints, ends = get(2).ints;
        if (!x.ints || !starts || !ends) throw new RangeError(`layer table: Slice ${node.name} on a non-constant tensor`);
        const n = x.ints.length;
        const clamp = (v: number) => Math.min(n, Math.max(0, v < 0 ? v + n : v));
        const picked = x.ints.slice(clamp(starts[0]!), clamp(ends[0]!));
        out = { shape: [picked.length], ints: picked };
        break;
      }
      case 'Resize': {
        const sizes = node.inputs[3] ? get(3).ints : undefined;
        const scales = node.inputs[2] ? graph.initializers.get(node.inputs[2]!)?.floats : undefined;
        if (sizes?.length) out = { shape: sizes };
        else if (scales?.length) out = { shape: x.shape.map((d, i) => Math.floor(d * scales[i]!)) };
        else throw new RangeError(`layer table: Resize ${node.name} has neither constant sizes nor scales`);
        break;
      }
      case 'QuantizeLinear':
      case 'DequantizeLinear':
        out = { shape: x.shape };
        break;
      default:
        throw new RangeError(`layer table: op ${node.opType} (node ${node.name}) is not supported`);
    }
    node.outputs.forEach((o) => values.set(o, out));
    if ((PLUMBING.has(node.opType) || out.ints !== undefined) && !row.params) continue;
    const name = node.name || node.outputs[0]!;
    const int8 = int8Nodes.has(name) || (node.opType !== 'DequantizeLinear' && initializerOf(1)?.dataType === INT8);
    layers.push({
      name,
      type: node.opType,
      ...(row.kernel && { kernel: row.kernel }),
      ...(row.stride && { stride: row.stride }),
      ...(row.padding && { padding: row.padding }),
      outputShape: out.shape.slice(1),
      params: row.params ?? 0,
      macs: row.macs ?? 0,
      ...(int8 && { precision: 'int8' as const }),
    });
  }
  const outputs: Record<string, number[]> = {};
  for (const o of graph.outputs) outputs[o.name] = values.get(o.name)?.shape ?? [];
  const sum = (of: Layer[], key: 'params' | 'macs') => of.reduce((s, l) => s + l[key], 0);
  return { layers, totals: { params: sum(layers, 'params'), macs: sum(layers, 'macs'), int8Macs: sum(layers.filter((l) => l.precision === 'int8'), 'macs') }, outputs };
}
