import { describe, expect, it } from 'vitest';
import { floatData } from '../../src/onnx/model.js';
import { featureLayers, firstConvFilters, withLayerOutputs } from '../../src/onnx/layer-outputs.js';
import { quantizeGraph } from '../../src/onnx/qdq.js';
import { runSmallGraph, smallGraph } from '../helpers/small-graph.js';

describe('feature layers', () => {
  it("lists a graph's activations and poolings, and exposes their tensors as outputs the graph computes", async () => {
    const g = smallGraph();
    const layers = featureLayers(g.nodes);
    expect(layers).toEqual([
      { name: 'relu1', op: 'Relu', output: 'r1' },
      { name: 'pool', op: 'MaxPool', output: 'p' },
      { name: 'relu2', op: 'Relu', output: 'ra' },
    ]);
    const exposed = withLayerOutputs(g, layers);
    expect(exposed.outputs.map((o) => o.name)).toEqual(['y', 'r1', 'p', 'ra']);
    expect(withLayerOutputs(exposed, layers).outputs).toHaveLength(4);
    const x = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i));
    const [plain, viewed] = [await runSmallGraph(g, x), await runSmallGraph(exposed, x)];
    // The graph's own output is unchanged; the pooled map is the Relu's, max-pooled.
    expect(Buffer.from(viewed.y!.buffer).equals(Buffer.from(plain.y!.buffer))).toBe(true);
    expect(viewed.p).toHaveLength(4 * 2 * 2);
    expect(viewed.p![0]).toBe(Math.max(viewed.r1![0]!, viewed.r1![1]!, viewed.r1![4]!, viewed.r1![5]!));
  });

  it("reads the first convolution's filters, float or dequantized from int8 per output channel", () => {
    const g = smallGraph();
    const f = firstConvFilters(g)!;
    expect(f.dims).toEqual([4, 2, 3, 3]);
    expect(Buffer.from(f.data.buffer).equals(Buffer.from(floatData(g.initializers[0]!).buffer))).toBe(true);
    const ranges = new Map(['x', 'r1', 'c2', 'c3', 'ra'].map((t) => [t, [-2, 2] as const]));
    const q = firstConvFilters(quantizeGraph(g, ranges))!;
    expect(q.dims).toEqual([4, 2, 3, 3]);
    // Symmetric int8 per channel: within half a step (the channel's max |w| / 127 / 2) of the float weights.
    for (let c = 0; c < 4; c++) {
      const w = f.data.subarray(c * 18, (c + 1) * 18), d = q.data.subarray(c * 18, (c + 1) * 18);
      const step = Math.max(...Array.from(w, Math.abs)) / 127;
      w.forEach((v, i) => expect(Math.abs(d[i]! - v)).toBeLessThanOrEqual(step / 2 + 1e-7));
    }
  });
});
