/**
 * Convert a float32 ONNX graph to float16, its inputs and outputs kept
 * float32 (what onnxconverter-common calls keep_io_types): the runtime feeds
 * and reads the same tensors as before, and every computation in between
 * runs in half precision where the execution provider has half kernels
 * (CUDA does for all of this project's ops; ONNX Runtime's CPU provider
 * inserts casts around the ones it lacks, so the graph also runs, slowly,
 * on a CPU, which is how the tests check it).
 *
 * The rewrite:
 * - float initializers become float16 (rounded to nearest, ties to even;
 *   finite values beyond ±65504 clamped, and counted);
 * - `Cast(to=FLOAT)` becomes `Cast(to=FLOAT16)`; a Constant or
 *   ConstantOfShape that makes a float tensor gets a Cast to float16 after it;
 * - the inputs ONNX types as float32 only (Resize's roi and scales,
 *   Upsample's scales) get a Cast back to float32 before them;
 * - each float graph input gets a Cast to float16 after it, each float graph
 *   output a Cast to float32 before it;
 * - float value_info entries are dropped (their type changed; ONNX Runtime
 *   infers them again).
 * Casts of constants are folded by ONNX Runtime when it loads the graph.
 */

import { QuantizeError } from '../errors.js';
import { toHalf } from '../core/float16.js';
import { readValueInfo } from './graph.js';
import { DataType, floatData, type EditableModel, type EditableNode } from './model.js';
import { checkOps } from './ops.js';

/** Ops ONNX defines no float16 form of. */
const NO_FLOAT16 = new Set(['Range']);
/** Inputs (by position) that ONNX allows only in float32 (or double), per op. */
const FLOAT32_INPUTS: Record<string, readonly number[]> = { Resize: [1, 2], Upsample: [1] };

export interface Float16Conversion {
  model: EditableModel;
  /** Float initializers converted. */
  initializers: number;
  /** Weights beyond ±65504, clamped. */
  clamped: number;
}

function cast(name: string, input: string, output: string, to: number): EditableNode {
  return { name, opType: 'Cast', domain: '', inputs: [input], outputs: [output], attributes: [{ name: 'to', value: to }] };
}

/** Whether a Constant or ConstantOfShape node makes a float tensor. */
function makesFloat(n: EditableNode): boolean {
  if (n.opType === 'ConstantOfShape') {
    const value = n.attributes.find((a) => a.name === 'value')?.value;
    return value === undefined || (typeof value === 'object' && !Array.isArray(value) && value.dataType === DataType.FLOAT);
  }
  return n.attributes.some((a) => {
    if (a.name === 'value_float' || a.name === 'value_floats') return true;
    const v = a.value;
    return a.name === 'value' && typeof v === 'object' && !Array.isArray(v) && v.dataType === DataType.FLOAT;
  });
}

/**
 * The float16 twin of a float32 graph, inputs and outputs still float32.
 * @throws QuantizeError ALREADY_QUANTIZED for a graph with float16 or int8 tensors, UNSUPPORTED_OP for an op it does not know.
 */
export function toFloat16Graph(source: EditableModel): Float16Conversion {
  checkOps(source, 'the float16 conversion', NO_FLOAT16);
  if (source.initializers.some((t) => t.dataType === DataType.FLOAT16)) throw new QuantizeError('ALREADY_QUANTIZED', 'the graph has float16 weights already; convert its fp32 source');

  let clamped = 0, initializers = 0;
  const converted = source.initializers.map((t) => {
    if (t.dataType !== DataType.FLOAT) return t;
    const half = toHalf(floatData(t));
    clamped += half.clamped;
    initializers++;
    return { ...t, dataType: DataType.FLOAT16, data: new Uint8Array(half.bits.buffer) };
  });

  const isInitializer = new Set(source.initializers.map((t) => t.name));
  const isFloat = (encoded: Uint8Array) => readValueInfo(encoded).elementType === DataType.FLOAT;
  const floatInputs = source.inputs.filter((i) => !isInitializer.has(i.name) && isFloat(i.encoded)).map((i) => i.name);
  const floatOutputs = source.outputs.filter((o) => isFloat(o.encoded)).map((o) => o.name);
  // Inside the graph, a float graph input or output is read and written under a new name.
  const renamed = new Map([...floatInputs, ...floatOutputs].map((name) => [name, `${name}_fp16`]));
  const rename = (t: string) => renamed.get(t) ?? t;

  const nodes: EditableNode[] = floatInputs.map((name) => cast(`${name}_to_fp16`, name, rename(name), DataType.FLOAT16));
  for (const original of source.nodes) {
    const n: EditableNode = { ...original, inputs: original.inputs.map(rename), outputs: original.outputs.map(rename), attributes: [...original.attributes] };
    if (n.opType === 'Cast' && n.attributes.some((a) => a.name === 'to' && a.value === DataType.FLOAT)) {
      n.attributes = n.attributes.map((a) => (a.name === 'to' ? { name: 'to', value: DataType.FLOAT16 } : a));
    }
    for (const slot of FLOAT32_INPUTS[n.opType] ?? []) {
      const input = n.inputs[slot];
      if (!input) continue;
      const name = `${n.name || n.outputs[0]}_input${slot}_fp32`;
      nodes.push(cast(name, input, name, DataType.FLOAT));
      n.inputs[slot] = name;
    }
    if ((n.opType === 'Constant' || n.opType === 'ConstantOfShape') && makesFloat(n)) {
      const out = n.outputs[0]!;
      n.outputs = [`${out}_fp32`];
      nodes.push(n, cast(`${out}_to_fp16`, `${out}_fp32`, out, DataType.FLOAT16));
      continue;
    }
    nodes.push(n);
  }
  for (const name of floatOutputs) nodes.push(cast(`${name}_to_fp32`, rename(name), name, DataType.FLOAT));

  const model: EditableModel = {
    ...source,
    nodes,
    initializers: converted,
    valueInfo: source.valueInfo.filter((v) => !isFloat(v.encoded)),
  };
  return { model, initializers, clamped };
}
