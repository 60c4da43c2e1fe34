import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { activationParams, INT8_MAX, UINT8_MAX, type QuantParams } from '../../src/core/quantize.js';
import { QuantizeError } from '../../src/errors.js';
import { SHIPPED_MODELS_DIR } from '../../src/model/package.js';
import { bytesOf, DataType, floatValueInfo, readModel, tensorValueInfo, writeModel, type EditableModel, type EditableTensor } from '../../src/onnx/model.js';
import { planQuantization, quantizeGraph } from '../../src/onnx/qdq.js';
import { openGraph } from '../../src/runtime/session.js';
import { floats, node, rand, runSmallGraph, smallGraph } from '../helpers/small-graph.js';

const X = Float32Array.from({ length: 2 * 4 * 4 }, rand);

async function run(model: EditableModel, withOutputs: string[] = []): Promise<Record<string, Float32Array>> {
  return runSmallGraph({ ...model, outputs: [...model.outputs, ...withOutputs.map((name) => ({ name, encoded: floatValueInfo(name) }))] }, X);
}

/** The ranges calibration would measure: each planned tensor's extremes on X. */
async function calibrated(model: EditableModel): Promise<Map<string, [number, number]>> {
  const plan = planQuantization(model);
  const out = await run(model, plan.calibrate.filter((t) => t !== 'x'));
  return new Map(plan.calibrate.map((t) => {
    const v = t === 'x' ? X : out[t]!;
    return [t, [Math.min(...v), Math.max(...v)]];
  }));
}

const tensor = (m: EditableModel, name: string) => m.initializers.find((t) => t.name === name)!;
const view = (t: EditableTensor) => new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);

/** x -> QuantizeLinear -> DequantizeLinear with the given uint8 parameters, run in ONNX Runtime. */
async function quantizeDequantize(x: number[], p: QuantParams): Promise<number[]> {
  const pair: EditableModel = {
    ...smallGraph(),
    nodes: [node('q', 'QuantizeLinear', ['x', 's', 'z'], ['xq']), node('dq', 'DequantizeLinear', ['xq', 's', 'z'], ['y'])],
    initializers: [
      { name: 's', dims: [], dataType: DataType.FLOAT, data: bytesOf(Float32Array.of(p.scale)) },
      { name: 'z', dims: [], dataType: DataType.UINT8, data: Uint8Array.of(p.zeroPoint) },
    ],
  };
  const g = await openGraph({ path: 'pair.onnx', bytes: writeModel(pair) }, { device: 'cpu', intraOpThreads: 1 });
  try {
    return Array.from((await g.run({ x: { data: Float32Array.from(x), dims: [x.length] } })).y!.data);
  } finally {
    await g.release();
  }
}

describe('int8 arithmetic in ONNX Runtime', () => {
  it('quantizes and dequantizes a hand-computed case', async () => {
    // activationParams(-1, 3): scale 4/255, zero point 64 (core/quantize.test). 1.0 / scale = 63.75 -> 64, + 64 = 128,
    // back (128 - 64) * scale; -5 and 10 saturate at 0 and 255; 0 comes back exact (the padding value).
    const p = activationParams(-1, 3);
    const s = Math.fround(4 / 255);
    expect(await quantizeDequantize([1, -5, 10, 0], p)).toEqual([64, -64, 191, 0].map((q) => Math.fround(q * s)));
    // Halves round to even: x / scale = 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0 (-0 back).
    expect((await quantizeDequantize([0.5, 1.5, 2.5, -0.5], { scale: 1, zeroPoint: 10 })).map((v) => v + 0)).toEqual([0, 2, 2, 0]);
  });
});

describe('QDQ quantization of a graph', () => {
  it('plans int8 for Conv, residual Add and the head writing a graph output, ranges after folded Relus and none for the output', () => {
    const plan = planQuantization(smallGraph());
    expect(plan.int8Nodes).toEqual(['conv1', 'conv2', 'conv3', 'add', 'fc']);
    expect(plan.floatNodes).toEqual([]);
    // The input, conv1 after its Relu, the two branches, and the sum after its Relu; the pool and the flatten share
    // their input's range; the head's output stays float, so it needs none.
    expect(plan.calibrate).toEqual(['x', 'r1', 'c2', 'c3', 'ra']);
    expect(planQuantization(smallGraph(), new Set(['conv3'])).floatNodes.map((f) => f.node)).toEqual(['conv3']);
    // Only a 1x1 convolution or a matrix product writes a graph output from integers; a 3x3 one stays fp32.
    const wide = smallGraph();
    wide.nodes.splice(-2, 2, node('head', 'Conv', ['ra', 'w5'], ['y'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }));
    wide.initializers.push(floats('w5', [2, 3, 3, 3]));
    expect(planQuantization(wide).floatNodes).toEqual([{ node: 'head', op: 'Conv', reason: 'writes a graph output and is not a 1x1 convolution or matrix product: kept in fp32' }]);
  });

  it('writes the QDQ structure: int8 weights per output channel, int32 biases, uint8 activations, Relus folded', async () => {
    const source = smallGraph();
    const q = quantizeGraph(source, await calibrated(source));
    const ops = q.nodes.map((n) => n.opType);
    expect(ops.filter((o) => o === 'Relu')).toEqual([]); // both folded into a QuantizeLinear with zero point 0
    // x, r1, p (re-quantized after the pool), c2, c3, ra, f (after the flatten)
    expect(ops.filter((o) => o === 'QuantizeLinear')).toHaveLength(7);
    expect(ops.filter((o) => o === 'Conv')).toHaveLength(3);
    // Every Conv reads its weight and bias through a DequantizeLinear of an int8 / int32 initializer, axis 0.
    for (const conv of q.nodes.filter((n) => n.opType === 'Conv')) {
      const dq = q.nodes.find((n) => n.outputs[0] === conv.inputs[1])!;
      expect(dq.opType).toBe('DequantizeLinear');
      expect(dq.attributes).toEqual([{ name: 'axis', value: 0 }]);
      const [w, scale, zero] = dq.inputs.map((i) => tensor(q, i!));
      expect(w!.dataType).toBe(DataType.INT8);
      const channels = w!.dims[0]!;
      expect(scale!.dims).toEqual([channels]);
      expect(zero!.dataType).toBe(DataType.INT8);
      for (let c = 0; c < channels; c++) {
        expect(view(scale!).getFloat32(4 * c, true)).toBeGreaterThan(0);
        expect(view(zero!).getInt8(c)).toBe(0);
      }
      const values = new Int8Array(w!.data.buffer, w!.data.byteOffset, w!.data.length);
      expect(Math.max(...values.map(Math.abs))).toBe(INT8_MAX); // each channel's largest weight maps to 127
      if (conv.inputs[2]) {
        const bias = q.nodes.find((n) => n.outputs[0] === conv.inputs[2])!;
        expect(tensor(q, bias.inputs[0]!).dataType).toBe(DataType.INT32);
      }
    }
    // Activations: a float32 scalar scale > 0 and a uint8 zero point; after a folded Relu the zero point is 0.
    for (const qn of q.nodes.filter((n) => n.opType === 'QuantizeLinear')) {
      const scale = tensor(q, qn.inputs[1]!), zero = tensor(q, qn.inputs[2]!);
      expect(scale.dims).toEqual([]);
      expect(view(scale).getFloat32(0, true)).toBeGreaterThan(0);
      expect(zero.dataType).toBe(DataType.UINT8);
      expect(zero.data[0]).toBeLessThanOrEqual(UINT8_MAX);
    }
    const zeroPointOf = (t: string) => tensor(q, q.nodes.find((n) => n.opType === 'QuantizeLinear' && n.outputs[0] === `${t}_quantized`)!.inputs[2]!).data[0];
    expect(zeroPointOf('r1')).toBe(0);
    expect(zeroPointOf('ra')).toBe(0);
    // The pool's output is quantized with r1's own scale and zero point (ONNX Runtime then pools uint8).
    const pq = q.nodes.find((n) => n.opType === 'QuantizeLinear' && n.outputs[0] === 'p_quantized')!;
    expect(pq.inputs.slice(1)).toEqual(['r1_scale', 'r1_zero_point']);
    // No fp32 weight of a quantized node is left.
    expect(q.initializers.map((t) => t.name).filter((n) => ['w1', 'b1', 'w2', 'b2', 'w3', 'w4'].includes(n))).toEqual([]);
  });

  it('writes the head as an integer product with a float output: MatMulInteger on the uint8 input, then both scales and the float bias', async () => {
    const source = smallGraph();
    const ranges = await calibrated(source);
    const q = quantizeGraph(source, ranges);
    const producer = (t: string) => q.nodes.find((n) => n.outputs.includes(t))!;
    const add = producer('y');
    expect(add.opType).toBe('Add');
    expect(add.inputs[1]).toBe('b4'); // the bias as it was, float
    const mul = producer(add.inputs[0]!);
    expect(mul.opType).toBe('Mul');
    expect(producer(mul.inputs[0]!).opType).toBe('Cast');
    const mm = producer(producer(mul.inputs[0]!).inputs[0]!);
    expect(mm).toMatchObject({ name: 'fc', opType: 'MatMulInteger' });
    // It reads the flattened uint8 tensor itself, with ra's zero point: no DequantizeLinear of it is left.
    const [a, b, aZero, bZero] = mm.inputs;
    expect(producer(a!).opType).toBe('QuantizeLinear');
    expect(aZero).toBe('ra_zero_point');
    expect(q.nodes.some((n) => n.opType === 'DequantizeLinear' && n.inputs[0] === a)).toBe(false);
    // The weights: int8, K x N (Gemm's transB undone), each output column's largest at 127, zero point 0.
    const w = tensor(q, b!);
    expect(w).toMatchObject({ dataType: DataType.INT8, dims: [12, 5] });
    const values = new Int8Array(w.data.buffer, w.data.byteOffset, w.data.length);
    for (let col = 0; col < 5; col++) expect(Math.max(...Array.from({ length: 12 }, (_, k) => Math.abs(values[k * 5 + col]!)))).toBe(INT8_MAX);
    expect(tensor(q, bZero!)).toMatchObject({ dataType: DataType.INT8, dims: [] });
    expect(tensor(q, bZero!).data[0]).toBe(0);
    // Output scale per column: the input's scale times the column's weight scale, max|w| / 127.
    const source4 = source.initializers.find((t) => t.name === 'w4')!;
    const fp32 = new Float32Array(source4.data.buffer.slice(source4.data.byteOffset, source4.data.byteOffset + source4.data.byteLength));
    const inputScale = view(tensor(q, 'ra_scale')).getFloat32(0, true);
    const scales = tensor(q, mul.inputs[1]!);
    for (let col = 0; col < 5; col++) {
      const maxAbs = Math.max(...fp32.subarray(col * 12, col * 12 + 12).map(Math.abs));
      expect(view(scales).getFloat32(4 * col, true)).toBeCloseTo(inputScale * (maxAbs / INT8_MAX), 9);
    }
  });

  it("measures a quantized tensor's shape on its uint8 form, with no float copy made for it", async () => {
    const source = smallGraph();
    source.nodes.push(node('shape', 'Shape', ['c2'], ['s']));
    source.outputs.push({ name: 's', encoded: tensorValueInfo('s', DataType.INT64) });
    const q = quantizeGraph(source, await calibrated(smallGraph()));
    expect(q.nodes.find((n) => n.name === 'shape')!.inputs).toEqual(['c2_quantized']);
  });

  it('runs in ONNX Runtime close to the fp32 graph, and gives the same bytes every time', async () => {
    const source = smallGraph();
    const ranges = await calibrated(source);
    const bytes = writeModel(quantizeGraph(source, ranges));
    expect(Buffer.from(writeModel(quantizeGraph(source, ranges))).equals(bytes)).toBe(true);
    const [fp32, int8] = [(await run(source)).y!, (await run(quantizeGraph(source, ranges))).y!];
    const span = Math.max(...fp32) - Math.min(...fp32);
    const worst = Math.max(...fp32.map((v, i) => Math.abs(v - int8[i]!)));
    expect(worst).toBeGreaterThan(0); // it did quantize
    expect(worst).toBeLessThan(0.05 * span);
  });

  it('refuses a quantized graph, an op it does not know, an old opset and a missing range', async () => {
    const source = smallGraph();
    const q = quantizeGraph(source, await calibrated(source));
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return [(err as QuantizeError).code, (err as Error).message];
      }
      return undefined;
    };
    expect(code(() => planQuantization(q))).toEqual(['ALREADY_QUANTIZED', expect.stringContaining('QuantizeLinear')]);
    const odd = smallGraph();
    odd.nodes.splice(1, 0, node('strange', 'Einsum', ['c1'], ['e']));
    expect(code(() => planQuantization(odd))).toEqual(['UNSUPPORTED_OP', expect.stringMatching(/does not handle Einsum \(node "strange"\); it handles .*Conv/)]);
    expect(code(() => planQuantization(smallGraph(11)))).toEqual(['UNSUPPORTED_GRAPH', expect.stringContaining('opset 11')]);
    expect(() => quantizeGraph(source, new Map())).toThrow(/no calibrated range for tensor "x"/);
  });

  it('reads and writes the shipped graphs byte-stably', () => {
    for (const file of ['backbone.onnx', 'rpn_head.onnx']) {
      const once = writeModel(readModel(readFileSync(join(SHIPPED_MODELS_DIR, 'shapes-vgg', file))));
      expect(Buffer.from(writeModel(readModel(once))).equals(once)).toBe(true); // Buffer.equals: deep equality is slow on megabytes
    }
  });
});
