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

interface IntegerOutput {
  tensor: string;
  relu?: EditableNode;
  floatOutput: boolean;
}

interface Analysis {
  plan: QuantizationPlan;
  /** Quantized tensor -> the tensor whose parameters it shares (itself when calibrated). */
  paramsOf: Map<string, string>;
  /** int8 node name -> the tensor it writes after folding a Relu, the Relu folded, and whether that tensor stays float (a graph output). */
  outputs: Map<string, IntegerOutput>;
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
  const outputs = new Map<string, IntegerOutput>();
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
      // A head's or the RPN's result: its products run in integers, its output stays float (no rounding to 8 bits).
      const why = isAdd || relu ? 'writes a graph output through a Relu or a sum: kept in fp32' : integerProductRefusal(n, initializers);
      if (why) {
        plan.floatNodes.push({ node: name, op: n.opType, reason: why });
        return;
      }
    }
    for (const input of isAdd ? n.inputs : [n.inputs[0]!]) if (!paramsOf.has(input)) calibrate(input);
    if (!graphOutputs.has(written)) calibrate(written);
    outputs.set(name, { tensor: written, relu, floatOutput: graphOutputs.has(written) });
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

/**
 * Why a node writing a graph output cannot run as an integer product with a
 * float output (MatMulInteger on the uint8 input and int8 weights, then the
 * two scales and the float bias), or undefined: a 1x1 convolution, a Gemm or
 * a MatMul can.
 */
function integerProductRefusal(n: EditableNode, initializers: ReadonlyMap<string, EditableTensor>): string | undefined {
  const kept = 'writes a graph output and is not a 1x1 convolution or matrix product: kept in fp32';
  const allOnes = (name: string) => (attribute(n, name, []) as number[]).every((v) => v === 1);
  if (n.opType === 'Conv') {
    const w = initializers.get(n.inputs[1]!)!;
    const plain = w.dims.length === 4 && w.dims[2] === 1 && w.dims[3] === 1 && attribute(n, 'group', 1) === 1 && allOnes('strides') && allOnes('dilations')
      && (attribute(n, 'pads', []) as number[]).every((v) => v === 0) && ['NOTSET', 'VALID'].includes(attribute(n, 'auto_pad', 'NOTSET') as string);
    if (!plain) return kept;
  }
  const bias = n.inputs[2] ? initializers.get(n.inputs[2]) : undefined;
  if (n.inputs[2] && (!bias || bias.dataType !== DataType.FLOAT || bias.dims.length !== 1)) return 'writes a graph output and its bias is not a float vector: kept in fp32';
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

  const initializers = new Initializers(model.initializers);
  const weights = new Map<string, { output: string; scales: Float32Array }>();
  const products = new Map<string, { name: string; scales: Float32Array }>();
  const scalar = (name: string, p: QuantParams): [string, string] => {
    if (!initializers.has(`${name}_scale`)) {
      for (const t of [
        { name: `${name}_scale`, dims: [], dataType: DataType.FLOAT, data: bytesOf(Float32Array.of(p.scale)) },
        { name: `${name}_zero_point`, dims: [], dataType: DataType.UINT8, data: Uint8Array.of(p.zeroPoint) },
      ]) initializers.add(t);
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
    if (out!.floatOutput) {
      const p = paramsFor(input);
      const [, zeroPoint] = scalar(paramsOf.get(input)!, p);
      rewritten.push(...integerProduct(n, `${n.inputs[0]!}_quantized`, p.scale, zeroPoint, initializers, products));
      return;
    }
    if (n.opType !== 'Add') {
      rewritten.push(...quantizeNodeWeights(n, paramsFor(input).scale, initializers, weights));
    }
    // Output: the op writes `<t>_float`; its QuantizeLinear (with a folded Relu's clamp) and DequantizeLinear give `t` back.
    const t = out!.tensor;
    n.outputs[0] = `${t}_float`;
    rewritten.push(n, ...qdq(t, `${t}_float`, t));
    dequantizedInputs.set(t, t);
  });

  model.nodes = withoutUnreadDequantize(shapesFromQuantized(rewritten), model);
  // The fp32 weights and biases no node reads any more are dropped (a float node may still read one;
  // an initializer an old exporter also lists as a graph input stays, or it would become a feed).
  const kept = new Set([...model.nodes.flatMap((n) => n.inputs), ...model.inputs.map((i) => i.name), ...model.outputs.map((o) => o.name)]);
  model.initializers = [...model.initializers, ...initializers.added].filter((t) => kept.has(t.name));
  // Tensors that no longer exist (a folded Relu's input, a float weight) lose their value_info.
  const live = new Set(model.nodes.flatMap((n) => n.outputs));
  model.valueInfo = model.valueInfo.filter((v) => live.has(v.name));
  return model;
}

/**
 * Shape (and Size) read a dequantized tensor's quantized twin instead: the
 * same dimensions, and no float copy made only to be measured. In the FPN's
 * top-down path each lateral's Shape fed Resize its size, and ONNX Runtime
 * dequantized (and transposed back from its NHWC layout) the whole 256-channel
 * map for it: 20 ms of R50-FPN's int8 backbone at 800 x 1216, measured.
 */
function shapesFromQuantized(nodes: EditableNode[]): EditableNode[] {
  const quantizedOf = new Map(nodes.filter((n) => n.opType === 'DequantizeLinear' && n.inputs[0]!.endsWith('_quantized')).map((n) => [n.outputs[0]!, n.inputs[0]!]));
  for (const n of nodes) {
    const twin = quantizedOf.get(n.inputs[0] ?? '');
    if ((n.opType === 'Shape' || n.opType === 'Size') && twin) n.inputs[0] = twin;
  }
  return nodes;
}

/** The DequantizeLinear nodes nothing reads any more (integer products read the uint8 tensor itself) left out. */
function withoutUnreadDequantize(nodes: EditableNode[], model: EditableModel): EditableNode[] {
  const read = new Set([...nodes.flatMap((n) => n.inputs), ...model.outputs.map((o) => o.name)]);
  return nodes.filter((n) => n.opType !== 'DequantizeLinear' || read.has(n.outputs[0]!));
}

/**
 * A node that writes a graph output, as an integer product with a float
 * output: MatMulInteger of the uint8 input (`quantized`, its zero point
 * `zeroPoint`) and the weights in int8 as a K x N matrix (symmetric, per
 * output channel, quantized once per initializer), then Cast, Mul by input
 * scale x channel scale and Add of the float bias. A 1x1 convolution runs on
 * its input transposed to channels-last and transposes the result back;
 * ONNX Runtime keeps its int8 convolutions' outputs channels-last, so the
 * first Transpose cancels out. The output is not rounded to 8 bits: for the
 * RPN this is what keeps its objectness ranking, and it is the float
 * DequantizeLinear -> fp32 product of before, less the 8-bit weights, at
 * 35 ms less for R50-FPN's RPN at 800 x 1216 (measured; the float kernels
 * re-laid out a dequantized copy of the input).
 */
function integerProduct(
  n: EditableNode,
  quantized: string,
  inputScale: number,
  zeroPoint: string,
  initializers: Initializers,
  products: Map<string, { name: string; scales: Float32Array }>,
): EditableNode[] {
  const name = nodeName(n);
  const wName = n.inputs[1]!;
  let w = products.get(wName);
  if (!w) {
    const fp32 = initializers.get(wName)!;
    // As K x N (inputs x outputs): a Conv's [N, K, 1, 1] and a Gemm's transB [N, K] are transposed.
    const transposed = n.opType === 'Conv' || (n.opType === 'Gemm' && attribute(n, 'transB', 0) === 1);
    const [k, cols] = transposed ? [fp32.dims[1]!, fp32.dims[0]!] : [fp32.dims[0]!, fp32.dims[1]!];
    const src = floatData(fp32);
    const kn = transposed ? Float32Array.from({ length: k * cols }, (_, i) => src[(i % cols) * k + Math.floor(i / cols)]!) : src;
    const q = quantizeWeights(kn, [k, cols], 1);
    w = { name: `${wName}_int8_kn`, scales: q.scales };
    initializers.add({ name: w.name, dims: [k, cols], dataType: DataType.INT8, data: bytesOf(q.values) });
    initializers.add({ name: `${w.name}_zero_point`, dims: [], dataType: DataType.INT8, data: new Uint8Array(1) });
    products.set(wName, w);
  }
  const scales = w.scales.map((s) => Math.fround(inputScale * s));
  initializers.add({ name: `${name}_output_scale`, dims: [scales.length], dataType: DataType.FLOAT, data: bytesOf(scales) });
  const conv = n.opType === 'Conv';
  const node = (suffix: string, opType: string, inputs: string[], output: string, attributes: EditableNode['attributes'] = []): EditableNode =>
    ({ name: suffix ? `${name}_${suffix}` : name, opType, domain: '', inputs, outputs: [output], attributes });
  const result = conv ? `${name}_nhwc_result` : n.outputs[0]!;
  const nodes = [
    ...(conv ? [node('to_nhwc', 'Transpose', [quantized], `${name}_nhwc`, [{ name: 'perm', value: [0, 2, 3, 1] }])] : []),
    node('', 'MatMulInteger', [conv ? `${name}_nhwc` : quantized, w.name, zeroPoint, `${w.name}_zero_point`], `${name}_int32`),
    node('cast', 'Cast', [`${name}_int32`], `${name}_product`, [{ name: 'to', value: DataType.FLOAT }]),
    node('scale', 'Mul', [`${name}_product`, `${name}_output_scale`], n.inputs[2] ? `${name}_scaled` : result),
    ...(n.inputs[2] ? [node('bias', 'Add', [`${name}_scaled`, n.inputs[2]], result)] : []),
    ...(conv ? [node('to_nchw', 'Transpose', [result], n.outputs[0]!, [{ name: 'perm', value: [0, 3, 1, 2] }])] : []),
  ];
  return nodes;
}

/** A graph's initializers by name, and those a rewrite adds to them, in order. */
class Initializers {
  private readonly byName: Map<string, EditableTensor>;
  readonly added: EditableTensor[] = [];

  constructor(existing: readonly EditableTensor[]) {
    this.byName = new Map(existing.map((t) => [t.name, t]));
  }

  get(name: string): EditableTensor | undefined {
    return this.byName.get(name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  add(t: EditableTensor): void {
    this.byName.set(t.name, t);
    this.added.push(t);
  }
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
  initializers: Initializers,
  weights: Map<string, { output: string; scales: Float32Array }>,
): EditableNode[] {
  const nodes: EditableNode[] = [];
  const axis = weightAxis(n);
  const deq = (base: string, values: EditableTensor, scales: Float32Array, zeroType: number, dqAxis: number) => {
    initializers.add(values);
    initializers.add({ name: `${base}_scale`, dims: [scales.length], dataType: DataType.FLOAT, data: bytesOf(scales) });
    initializers.add({ name: `${base}_zero_point`, dims: [scales.length], dataType: zeroType, data: new Uint8Array(scales.length * (zeroType === DataType.INT32 ? 4 : 1)) });
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
