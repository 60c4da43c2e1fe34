import { describe, expect, it } from 'vitest';
import { FLOAT16_MAX, fromHalfBits, toHalf, toHalfBits } from '../../src/core/float16.js';
import { QuantizeError } from '../../src/errors.js';
import { toFloat16Graph } from '../../src/onnx/fp16.js';
import { bytesOf, DataType, floatValueInfo, writeModel, writeTensor, type EditableModel, type EditableNode } from '../../src/onnx/model.js';
import { planQuantization, quantizeGraph } from '../../src/onnx/qdq.js';
import { Writer } from '../../src/onnx/wire.js';
import { node, rand, runSmallGraph, smallGraph } from '../helpers/small-graph.js';

const f32 = (x: number) => Math.fround(x);

describe('float16 arithmetic', () => {
  it('gives back every half exactly, and rounds each midpoint to the even neighbour', () => {
    for (let h = 0; h <= 0xffff; h++) {
      const x = fromHalfBits(h);
      if (Number.isNaN(x)) {
        expect(Number.isNaN(fromHalfBits(toHalfBits(x)))).toBe(true);
        continue;
      }
      expect(toHalfBits(x)).toBe(h);
    }
    // Between neighbours a < b (positive, finite): the midpoint goes to the even one, anything off it to the nearer.
    for (let h = 0; h < 0x7bff; h++) {
      const a = fromHalfBits(h), b = fromHalfBits(h + 1), mid = (a + b) / 2;
      expect(f32(mid)).toBe(mid); // exact in float32: the test feeds what a float32 tensor holds
      expect(toHalfBits(mid)).toBe(h % 2 === 0 ? h : h + 1);
      expect(toHalfBits(-mid)).toBe((h % 2 === 0 ? h : h + 1) | 0x8000);
      const step = (b - a) / 64;
      expect(toHalfBits(f32(mid - step))).toBe(h);
      expect(toHalfBits(f32(mid + step))).toBe(h + 1);
    }
  });

  it('knows the landmarks; clamps finite values beyond ±65504 and keeps infinities and NaN', () => {
    expect([1, -2, 0.1, 65504, 2 ** -24, 2 ** -14, 0, -0].map(toHalfBits)).toEqual([0x3c00, 0xc000, 0x2e66, 0x7bff, 0x0001, 0x0400, 0, 0x8000]);
    expect(toHalfBits(2 ** -25)).toBe(0); // a tie between 0 and the smallest subnormal: 0 is even
    expect(toHalfBits(1.5 * 2 ** -25)).toBe(1);
    expect([65519, 65520, 1e6, -1e30].map(toHalfBits)).toEqual([0x7bff, 0x7bff, 0x7bff, 0xfbff]);
    expect([Infinity, -Infinity].map(toHalfBits)).toEqual([0x7c00, 0xfc00]);
    expect(toHalfBits(NaN) & 0x7c00).toBe(0x7c00);
    expect(toHalfBits(NaN) & 0x3ff).not.toBe(0);
    const { bits, clamped } = toHalf(Float32Array.of(1, FLOAT16_MAX, 70000, -1e9, Infinity));
    expect(Array.from(bits)).toEqual([0x3c00, 0x7bff, 0x7bff, 0xfbff, 0x7c00]);
    expect(clamped).toBe(2);
  });
});

/** A float Constant node, its tensor encoded as an exporter writes it. */
function floatConstant(name: string, output: string, values: number[]): EditableNode {
  const tensor = { name: '', dims: [values.length], dataType: DataType.FLOAT, data: bytesOf(Float32Array.from(values)) };
  const encoded = new Writer().string(1, 'value');
  writeTensor(encoded, 5, tensor);
  return { ...node(name, 'Constant', [], [output]), attributes: [{ name: 'value', value: { dims: tensor.dims, dataType: DataType.FLOAT, floats: values }, encoded: encoded.varint(20, 4).finish() }] };
}

/** smallGraph with a second output: its residual block upsampled twice by Resize, scales from a Constant. */
function withResize(): EditableModel {
  const m = smallGraph();
  return {
    ...m,
    nodes: [...m.nodes, floatConstant('scales', 'scales_value', [1, 1, 2, 2]), node('up', 'Resize', ['ra', '', 'scales_value'], ['u'])],
    outputs: [...m.outputs, { name: 'u', encoded: floatValueInfo('u') }],
  };
}

const X = Float32Array.from({ length: 2 * 4 * 4 }, rand);

const run = (model: EditableModel) => runSmallGraph(model, X);

describe('float16 conversion of a graph', () => {
  it('stores the weights in half, casts at the inputs and outputs and before float32-only inputs, and folds a float constant in', () => {
    const source = withResize();
    const { model, initializers, clamped } = toFloat16Graph(source);
    expect(initializers).toBe(source.initializers.length);
    expect(clamped).toBe(0);
    expect(model.initializers.every((t) => t.dataType === DataType.FLOAT16 && t.data.length === t.dims.reduce((a, b) => a * b, 1) * 2)).toBe(true);
    // The feeds and results keep their names and float32 types.
    expect(model.inputs).toEqual(source.inputs);
    expect(model.outputs).toEqual(source.outputs);
    const casts = (m: EditableModel) => m.nodes.filter((n) => n.opType === 'Cast').map((n) => `${n.inputs[0]} -> ${n.outputs[0]} (${n.attributes[0]!.value})`);
    expect(casts(model)).toEqual([
      `x -> x_fp16 (${DataType.FLOAT16})`,
      `scales_value_fp32 -> scales_value (${DataType.FLOAT16})`,
      `scales_value -> up_input2_fp32 (${DataType.FLOAT})`,
      `y_fp16 -> y (${DataType.FLOAT})`,
      `u_fp16 -> u (${DataType.FLOAT})`,
    ]);
    expect(model.nodes.find((n) => n.name === 'conv1')!.inputs[0]).toBe('x_fp16');
    expect(model.nodes.find((n) => n.name === 'up')!.inputs).toEqual(['ra', '', 'up_input2_fp32']);
    // Deterministic: the same graph gives the same bytes.
    expect(Buffer.from(writeModel(model)).equals(Buffer.from(writeModel(toFloat16Graph(source).model)))).toBe(true);
  });

  it('runs in ONNX Runtime within half precision of the float32 graph', async () => {
    const source = withResize(); // each call draws new weights
    const reference = await run(source);
    const half = await run(toFloat16Graph(source).model);
    for (const name of ['y', 'u']) {
      const a = reference[name]!, b = half[name]!;
      expect(b.length).toBe(a.length);
      const scale = Math.max(...a.map(Math.abs));
      // Half's unit roundoff is 2^-11 ~ 4.9e-4; a few layers of it, relative to the output's scale.
      a.forEach((v, i) => expect(Math.abs(v - b[i]!), `${name}[${i}]`).toBeLessThan(4e-3 * scale));
    }
  });

  it('refuses a graph that is float16 or int8 already, and ops it does not know or ONNX has no float16 form of', () => {
    const refusal = (m: EditableModel) => {
      try {
        toFloat16Graph(m);
      } catch (err) {
        return err instanceof QuantizeError ? `${err.code}: ${err.message}` : String(err);
      }
      return 'converted';
    };
    expect(refusal(toFloat16Graph(smallGraph()).model)).toMatch(/^ALREADY_QUANTIZED: the graph has float16 weights already/);
    const ranges = new Map(planQuantization(smallGraph()).calibrate.map((t) => [t, [-4, 4] as [number, number]]));
    expect(refusal(quantizeGraph(smallGraph(), ranges))).toMatch(/^ALREADY_QUANTIZED: the graph is quantized already \(it has QuantizeLinear, DequantizeLinear, MatMulInteger\)/);
    const m = smallGraph();
    expect(refusal({ ...m, nodes: [...m.nodes, node('range', 'Range', ['a', 'b', 'c'], ['r'])] })).toMatch(/^UNSUPPORTED_OP: the float16 conversion does not handle Range \(node "range"\)/);
    expect(refusal({ ...m, nodes: [...m.nodes, { ...node('custom', 'Gelu', ['y'], ['g']), domain: 'com.microsoft' }] })).toMatch(/^UNSUPPORTED_OP: the float16 conversion does not handle com\.microsoft\.Gelu/);
  });
});
