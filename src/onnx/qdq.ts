/**
 * Quantize a float ONNX graph into QDQ form: QuantizeLinear/DequantizeLinear
 * pairs around the tensors that convolutions, fully connected layers and
 * residual additions read and write, and int8 weights behind a
 * DequantizeLinear. ONNX Runtime fuses each DQ -> op -> Q group into an
 * integer kernel (QLinearConv, QGemm, QLinearAdd); the graph itself stays
 * standard ONNX (opset >= 13, for per-channel axes).
 *
 * Two steps, so that calibration can run in between:
 * - `planQuantization(model)`: which nodes become int8 (and why the others
 *   stay float), and which tensors need a calibrated range;
 * - `quantizeGraph(model, plan, ranges)`: the rewrite, given those ranges.
 *
 * Rules (README, "int8"):
 * - Conv, Gemm and MatMul with constant weights are quantized: weights int8
 *   symmetric per output channel, biases int32, inputs and outputs uint8
 *   per tensor. A Relu that alone reads such an output is folded into the
 *   output's QuantizeLinear (zero point 0 clamps at 0 exactly as Relu does).
 * - A node that writes a graph output stays float: the heads' logits and
 *   deltas and the RPN's scores are tiny layers whose rounding moves the
 *   results most.
 * - Add is quantized where both of its inputs already are (residual blocks).
 * - MaxPool, Flatten, Reshape, Transpose and nearest Resize move values
 *   without changing them: a tensor they produce from a quantized one gets
 *   the same parameters, so ONNX Runtime runs them on uint8 too.
 * - Every other known op runs in float, fed by the DequantizeLinear before it.
 */

import { QuantizeError } from '../errors.js';
import { activationParams, quantizeBias, quantizeWeights, type QuantParams } from '../core/quantize.js';
import { attribute, bytesOf, DataType, floatData, type EditableModel, type EditableNode, type EditableTensor } from './model.js';
import { checkOps, COMPUTE, SAME_VALUES } from './ops.js';

/** The minimum opset: per-channel DequantizeLinear (its `axis`) came with 13. */
export const MIN_QDQ_OPSET = 13;


export interface FloatNode {
  node: string;
  op: string;
  reason: string;
}

export interface QuantizationPlan {
  /** Nodes run in int8, by name, in graph order. */
  int8Nodes: string[];
  /** Conv, Gemm and MatMul nodes left in float, with why. */
  floatNodes: FloatNode[];
  /** Tensors whose range calibration must measure, in graph order. */
  calibrate: string[];
}

interface Analysis {
  plan: QuantizationPlan;
  /** Quantized tensor -> the tensor whose parameters it shares (itself when calibrated). */
  paramsOf: Map<string, string>;
  /** int8 node name -> the tensor it writes after folding a Relu, and the Relu folded. */
  outputs: Map<string, { tensor: string; relu?: EditableNode }>;
}

/** A node's name as model.json and the layer tables give it: its own, else its first output's. */
function nodeName(n: EditableNode): string {
  return n.name || n.outputs[0]!;
}

function analyse(model: EditableModel, keepFloat: ReadonlySet<string>): Analysis {
  const opset = model.opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0;
  checkOps(model, 'the quantizer');
  if (opset < MIN_QDQ_OPSET) throw new QuantizeError('UNSUPPORTED_GRAPH', `the graph is opset ${opset}; per-channel int8 needs opset ${MIN_QDQ_OPSET} or later: export it again with a newer opset`);

  const initializers = new Map(model.initializers.map((t) => [t.name, t]));
  const graphOutputs = new Set(model.outputs.map((o) => o.name));
  const consumers = new Map<string, EditableNode[]>();
  for (const n of model.nodes) for (const i of n.inputs) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);

  const plan: QuantizationPlan = { int8Nodes: [], floatNodes: [], calibrate: [] };
  const paramsOf = new Map<string, string>();
  const outputs = new Map<string, { tensor: string; relu?: EditableNode }>();
  const calibrated = new Set<string>();
  const calibrate = (t: string) => {
    if (!calibrated.has(t)) plan.calibrate.push(t);
    calibrated.add(t);
    paramsOf.set(t, t);
  };
  model.nodes.forEach((n) => {
    const name = nodeName(n);
    const out = n.outputs[0]!;
    if (SAME_VALUES.has(n.opType)) {
      const nearest = n.opType !== 'Resize' || attribute(n, 'mode', 'nearest') === 'nearest';
      const source = paramsOf.get(n.inputs[0]!);
      if (nearest && source !== undefined && n.outputs.length === 1) paramsOf.set(out, source);
      return;
    }
    const isAdd = n.opType === 'Add';
    if (!COMPUTE.has(n.opType) && !isAdd) return;
    if (isAdd) {
      if (n.inputs.length !== 2 || n.inputs.some((t) => !paramsOf.has(t) || initializers.has(t))) return;
    } else {
      const weight = initializers.get(n.inputs[1] ?? '');
      const why = computeRefusal(n, weight, keepFloat.has(name));
      if (why) {
        plan.floatNodes.push({ node: name, op: n.opType, reason: why });
        return;
      }
    }
    // The tensor the node's results are quantized at: after a Relu that alone reads its output.
    const readers = consumers.get(out) ?? [];
    const relu = readers.length === 1 && readers[0]!.opType === 'Relu' && !graphOutputs.has(out) ? readers[0] : undefined;
    const written = relu ? relu.outputs[0]! : out;
    if (graphOutputs.has(written)) {
      plan.floatNodes.push({ node: name, op: n.opType, reason: 'writes a graph output (a head or RPN result): kept in fp32' });
      return;
    }
    for (const input of isAdd ? n.inputs : [n.inputs[0]!]) if (!paramsOf.has(input)) calibrate(input);
    calibrate(written);
    outputs.set(name, { tensor: written, relu });
    plan.int8Nodes.push(name);
  });
  return { plan, paramsOf, outputs };
}

/** Why a Conv, Gemm or MatMul cannot be quantized, or undefined. */
function computeRefusal(n: EditableNode, weight: EditableTensor | undefined, kept: boolean): string | undefined {
  if (kept) return 'kept in fp32 on request';
  if (!weight || weight.dataType !== DataType.FLOAT) return 'its weights are not a float initializer';
  if (n.opType === 'Gemm') {
    if (attribute(n, 'transA', 0) !== 0 || attribute(n, 'alpha', 1) !== 1 || attribute(n, 'beta', 1) !== 1) return 'Gemm with transA, alpha or beta set';
    if (weight.dims.length !== 2) return 'its weights are not a matrix';
  }
  if (n.opType === 'MatMul' && weight.dims.length !== 2) return 'its weights are not a matrix';
  return undefined;
}

/** The plan for a graph: what becomes int8, what stays float, what calibration must measure. @throws QuantizeError */
export function planQuantization(model: EditableModel, keepFloat: ReadonlySet<string> = new Set()): QuantizationPlan {
  return analyse(model, keepFloat).plan;
}

/** The output-channel axis of a node's weights. */
function weightAxis(n: EditableNode): number {
  if (n.opType === 'Conv') return 0;
  if (n.opType === 'Gemm') return attribute(n, 'transB', 0) === 1 ? 0 : 1;
  return 1; // MatMul: [K, N]
}

/**
 * Rewrite a float graph into QDQ form with calibrated ranges (each tensor
 * of `plan.calibrate`). Returns a new model; the input is not changed.
 * @throws QuantizeError as planQuantization; RangeError for a missing range.
 */
export function quantizeGraph(source: EditableModel, ranges: ReadonlyMap<string, readonly [number, number]>, keepFloat: ReadonlySet<string> = new Set()): EditableModel {
  const model: EditableModel = { ...source, nodes: source.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs] })), initializers: [...source.initializers] };
  const { plan, paramsOf, outputs } = analyse(model, keepFloat);
  const params = new Map<string, QuantParams>();
  const paramsFor = (t: string): QuantParams => {
    const key = paramsOf.get(t)!;
    let p = params.get(key);
    if (!p) {
      const r = ranges.get(key);
      if (!r) throw new RangeError(`no calibrated range for tensor ${JSON.stringify(key)}`);
      const reluFolded = [...outputs.values()].some((o) => o.tensor === key && o.relu);
      p = activationParams(reluFolded ? Math.max(0, r[0]) : r[0], r[1]);
      params.set(key, p);
    }
    return p;
  };

  const initializers = new Map(model.initializers.map((t) => [t.name, t]));
  const added: EditableTensor[] = [];
  const weights = new Map<string, { output: string; scales: Float32Array }>();
  const scalar = (name: string, p: QuantParams): [string, string] => {
    if (!initializers.has(`${name}_scale`)) {
      for (const t of [
        { name: `${name}_scale`, dims: [], dataType: DataType.FLOAT, data: bytesOf(Float32Array.of(p.scale)) },
        { name: `${name}_zero_point`, dims: [], dataType: DataType.UINT8, data: Uint8Array.of(p.zeroPoint) },
      ]) {
        initializers.set(t.name, t);
        added.push(t);
      }
    }
    return [`${name}_scale`, `${name}_zero_point`];
  };
  const qdq = (tensor: string, from: string, to: string): EditableNode[] => {
    const [scale, zp] = scalar(paramsOf.get(tensor)!, paramsFor(tensor));
    return [
      { name: `${to}_QuantizeLinear`, opType: 'QuantizeLinear', domain: '', inputs: [from, scale, zp], outputs: [`${to}_quantized`], attributes: [] },
      { name: `${to}_DequantizeLinear`, opType: 'DequantizeLinear', domain: '', inputs: [`${to}_quantized`, scale, zp], outputs: [to], attributes: [] },
    ];
  };

  const rewritten: EditableNode[] = [];
  const dequantizedInputs = new Map<string, string>();
  const int8 = new Set(plan.int8Nodes);
  model.nodes.forEach((n) => {
    const name = nodeName(n);
    const out = outputs.get(name);
    if (!int8.has(name)) {
      if ([...outputs.values()].some((o) => o.relu === n)) return; // folded into the producer's QuantizeLinear
      // A value-preserving op fed by a quantized tensor hands on its parameters: quantize its output again (same scale).
      if (SAME_VALUES.has(n.opType) && paramsOf.has(n.outputs[0]!) && readByInt8(model, n.outputs[0]!, int8)) {
        const t = n.outputs[0]!;
        n.outputs[0] = `${t}_float`;
        rewritten.push(n, ...qdq(t, `${t}_float`, t));
        dequantizedInputs.set(t, t);
      } else rewritten.push(n);
      return;
    }
    // Inputs: a tensor not yet in QDQ form gets a pair of its own, read by int8 nodes only.
    const input = n.inputs[0]!;
    const dataInputs = n.opType === 'Add' ? [0, 1] : [0];
    for (const k of dataInputs) {
      const t = n.inputs[k]!;
      if (dequantizedInputs.has(t)) {
        n.inputs[k] = dequantizedInputs.get(t)!;
        continue;
      }
      const deq = `${t}_dequantized`;
      rewritten.push(...qdq(t, t, deq));
      dequantizedInputs.set(t, deq);
      n.inputs[k] = deq;
    }
    if (n.opType !== 'Add') {
      rewritten.push(...quantizeNodeWeights(n, paramsFor(input).scale, initializers, added, weights));
    }
    // Output: the op writes `<t>_float`; its QuantizeLinear (with a folded Relu's clamp) and DequantizeLinear give `t` back.
    const t = out!.tensor;
    n.outputs[0] = `${t}_float`;
    rewritten.push(n, ...qdq(t, `${t}_float`, t));
    dequantizedInputs.set(t, t);
  });

  model.nodes = rewritten;
  // The fp32 weights and biases no node reads any more are dropped (a float node may still read one;
  // an initializer an old exporter also lists as a graph input stays, or it would become a feed).
  const kept = new Set([...rewritten.flatMap((n) => n.inputs), ...model.inputs.map((i) => i.name), ...model.outputs.map((o) => o.name)]);
  model.initializers = [...model.initializers, ...added].filter((t) => kept.has(t.name));
  // Tensors that no longer exist (a folded Relu's input, a float weight) lose their value_info.
  const live = new Set(rewritten.flatMap((n) => n.outputs));
  model.valueInfo = model.valueInfo.filter((v) => live.has(v.name));
  return model;
}

function readByInt8(model: EditableModel, t: string, int8: ReadonlySet<string>): boolean {
  return model.nodes.some((m, i) => m.inputs.includes(t) && int8.has(nodeName(m)));
}

/**
 * Point a node at int8 weights (quantized once per initializer, however many
 * nodes share it: the RPN head runs one conv over every FPN level) and an
 * int32 bias of its own (its scale depends on the node's input scale),
 * each behind a DequantizeLinear; returns the new nodes, to go before it.
 */
function quantizeNodeWeights(
  n: EditableNode,
  inputScale: number,
  initializers: Map<string, EditableTensor>,
  added: EditableTensor[],
  weights: Map<string, { output: string; scales: Float32Array }>,
): EditableNode[] {
  const nodes: EditableNode[] = [];
  const axis = weightAxis(n);
  const add = (t: EditableTensor) => {
    initializers.set(t.name, t);
    added.push(t);
  };
  const deq = (base: string, values: EditableTensor, scales: Float32Array, zeroType: number, dqAxis: number) => {
    add(values);
    add({ name: `${base}_scale`, dims: [scales.length], dataType: DataType.FLOAT, data: bytesOf(scales) });
    add({ name: `${base}_zero_point`, dims: [scales.length], dataType: zeroType, data: new Uint8Array(scales.length * (zeroType === DataType.INT32 ? 4 : 1)) });
    nodes.push({ name: `${base}_DequantizeLinear`, opType: 'DequantizeLinear', domain: '', inputs: [values.name, `${base}_scale`, `${base}_zero_point`], outputs: [`${base}_dequantized`], attributes: [{ name: 'axis', value: dqAxis }] });
    return `${base}_dequantized`;
  };
  const wName = n.inputs[1]!;
  let w = weights.get(wName);
  if (!w) {
    const fp32 = initializers.get(wName)!;
    const q = quantizeWeights(floatData(fp32), fp32.dims, axis);
    const output = deq(wName, { name: `${wName}_quantized`, dims: fp32.dims, dataType: DataType.INT8, data: bytesOf(q.values) }, q.scales, DataType.INT8, axis);
    weights.set(wName, (w = { output, scales: q.scales }));
  }
  n.inputs[1] = w.output;
  const channels = w.scales.length;
  const b = n.inputs[2] ? initializers.get(n.inputs[2]) : undefined;
  if (b && b.dataType === DataType.FLOAT && b.dims.length === 1 && b.dims[0] === channels) {
    const qb = quantizeBias(floatData(b), inputScale, w.scales);
    const base = `${nodeName(n)}_bias`;
    n.inputs[2] = deq(base, { name: `${base}_quantized`, dims: b.dims, dataType: DataType.INT32, data: bytesOf(qb.values) }, qb.scales, DataType.INT32, 0);
  }
  return nodes;
}
