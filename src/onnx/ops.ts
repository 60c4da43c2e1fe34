/**
 * The ONNX ops the graph converters (int8 in qdq.ts, float16 in fp16.ts)
 * know what to do with. A graph with any other op is refused: a converter
 * cannot tell what an unknown op does to ranges or types.
 */

import { QuantizeError } from '../errors.js';
import type { EditableModel } from './model.js';

/** Ops with constant weights that int8 runs in integer kernels. */
export const COMPUTE = new Set(['Conv', 'Gemm', 'MatMul']);
/** Ops that move values without changing them: a quantized input keeps its parameters through them. */
export const SAME_VALUES = new Set(['MaxPool', 'Flatten', 'Reshape', 'Transpose', 'Resize', 'Squeeze', 'Unsqueeze', 'Identity']);
/** Every other op the converters know. */
const FLOAT_OPS = new Set([
  'Relu', 'Add', 'Sub', 'Mul', 'Div', 'Concat', 'Split', 'Slice', 'Pad', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool',
  'BatchNormalization', 'LRN', 'Softmax', 'LogSoftmax', 'Sigmoid', 'Tanh', 'LeakyRelu', 'Clip', 'HardSigmoid', 'HardSwish', 'Erf',
  'Constant', 'ConstantOfShape', 'Shape', 'Gather', 'Cast', 'Dropout', 'ReduceMean', 'ReduceMax', 'Sqrt', 'Pow', 'Exp', 'Log',
  'Neg', 'Abs', 'Floor', 'Ceil', 'Min', 'Max', 'Equal', 'Less', 'Greater', 'Where', 'Not', 'Range', 'Expand', 'Tile', 'Upsample',
]);
const KNOWN_OPS = new Set([...COMPUTE, ...SAME_VALUES, ...FLOAT_OPS]);
/** Ops that mark a graph as quantized already. */
const QUANTIZED_OPS = new Set(['QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearMatMul', 'QLinearAdd', 'ConvInteger', 'MatMulInteger', 'DynamicQuantizeLinear', 'QGemm']);

/**
 * Refuse a graph a converter cannot rewrite: one quantized already, or with
 * an op it does not know (or, `except`, one it knows it cannot convert).
 * @param converter who refuses, for the message ("the quantizer").
 * @throws QuantizeError ALREADY_QUANTIZED or UNSUPPORTED_OP.
 */
export function checkOps(model: EditableModel, converter: string, except: ReadonlySet<string> = new Set()): void {
  const already = model.nodes.filter((n) => QUANTIZED_OPS.has(n.opType));
  if (already.length) throw new QuantizeError('ALREADY_QUANTIZED', `the graph is quantized already (it has ${[...new Set(already.map((n) => n.opType))].join(', ')})`);
  const unknown = model.nodes.filter((n) => (n.domain !== '' && n.domain !== 'ai.onnx') || !KNOWN_OPS.has(n.opType) || except.has(n.opType));
  if (unknown.length) {
    const ops = [...new Set(unknown.map((n) => (n.domain ? `${n.domain}.${n.opType}` : n.opType)))];
    const handled = [...KNOWN_OPS].filter((op) => !except.has(op)).sort();
    throw new QuantizeError('UNSUPPORTED_OP', `${converter} does not handle ${ops.join(', ')} (node ${JSON.stringify(unknown[0]!.name)}); it handles ${handled.join(', ')}`);
  }
}
