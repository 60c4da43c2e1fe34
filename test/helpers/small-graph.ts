/**
 * A small float graph built in code, for the graph converters' tests
 * (int8 in qdq.test.ts, float16 in float16.test.ts), with seeded weights.
 */

import { bytesOf, DataType, floatValueInfo, writeModel, type EditableModel, type EditableNode, type EditableTensor } from '../../src/onnx/model.js';
import { Writer } from '../../src/onnx/wire.js';
import { openGraph } from '../../src/runtime/session.js';

let seed = 7;
/** Seeded values in [-1, 1). */
export const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
export const floats = (name: string, dims: number[]): EditableTensor => ({ name, dims, dataType: DataType.FLOAT, data: bytesOf(Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, rand)) });
export const node = (name: string, opType: string, inputs: string[], outputs: string[], attributes: Record<string, number | number[]> = {}): EditableNode => ({
  name, opType, domain: '', inputs, outputs, attributes: Object.entries(attributes).map(([k, value]) => ({ name: k, value })),
});

/**
 * x -> conv1 -> relu -> maxpool -> (conv2, conv3) -> add -> relu -> flatten -> fc (a graph output).
 * A residual pattern, a value-preserving op and a head in a dozen nodes.
 */
export function smallGraph(opset = 16): EditableModel {
  return {
    modelFields: [new Writer().varint(1, 8).finish()], // ir_version 8
    opsets: [{ domain: '', version: opset }],
    graphName: 'small',
    nodes: [
      node('conv1', 'Conv', ['x', 'w1', 'b1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      node('relu1', 'Relu', ['c1'], ['r1']),
      node('pool', 'MaxPool', ['r1'], ['p'], { kernel_shape: [2, 2], strides: [2, 2] }),
      node('conv2', 'Conv', ['p', 'w2', 'b2'], ['c2'], { kernel_shape: [1, 1] }),
      node('conv3', 'Conv', ['p', 'w3'], ['c3'], { kernel_shape: [1, 1] }),
      node('add', 'Add', ['c2', 'c3'], ['a']),
      node('relu2', 'Relu', ['a'], ['ra']),
      node('flatten', 'Flatten', ['ra'], ['f']),
      node('fc', 'Gemm', ['f', 'w4', 'b4'], ['y'], { transB: 1 }),
    ],
    initializers: [floats('w1', [4, 2, 3, 3]), floats('b1', [4]), floats('w2', [3, 4, 1, 1]), floats('b2', [3]), floats('w3', [3, 4, 1, 1]), floats('w4', [5, 12]), floats('b4', [5])],
    inputs: [{ name: 'x', encoded: floatValueInfo('x') }],
    outputs: [{ name: 'y', encoded: floatValueInfo('y') }],
    valueInfo: [],
    graphFields: [],
  };
}

/** Run a graph whose input is smallGraph's x, [1, 2, 4, 4], in ONNX Runtime on the CPU: every output by name. */
export async function runSmallGraph(model: EditableModel, x: Float32Array): Promise<Record<string, Float32Array>> {
  const g = await openGraph({ path: 'small.onnx', bytes: writeModel(model) }, { device: 'cpu', intraOpThreads: 1 });
  try {
    const out = await g.run({ x: { data: x, dims: [1, 2, 4, 4] } });
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data]));
  } finally {
    await g.release();
  }
}
