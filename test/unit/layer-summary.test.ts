import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { layerTable } from '../../src/inspect/layer-summary.js';
import { parseOnnx } from '../../src/onnx/graph.js';
import { DataType } from '../../src/onnx/model.js';
import { packageLayers } from '../../src/inspect/package-layers.js';
import { readManifest, SHIPPED_MODELS_DIR } from '../../src/model/package.js';
import { modelsWithFixtures } from '../helpers/packages.js';

const graph = (pkg: string, file: string) => parseOnnx(new Uint8Array(readFileSync(join(modelsWithFixtures(), pkg, file))));

describe('ONNX structure and layer tables', () => {
  it('reads ops, attributes, initializers and symbolic input dimensions', () => {
    const g = graph('fixture-tiny-fpn', 'backbone.onnx');
    expect(g.opset).toBe(16);
    expect(g.inputs).toEqual([{ name: 'image', elementType: DataType.FLOAT, dims: [1, 3, 'height', 'width'] }]);
    expect(g.outputs.map((o) => o.name)).toEqual(['feature_0', 'feature_1', 'feature_2', 'feature_3', 'feature_pool']);
    const conv = g.nodes.find((n) => n.opType === 'Conv')!;
    expect(conv.attributes.get('kernel_shape')).toEqual([3, 3]);
    expect(conv.attributes.get('strides')).toEqual([2, 2]);
    expect(g.initializers.get(conv.inputs[1]!)!.dims).toEqual([16, 3, 3, 3]);
  });

  it('follows an FPN graph (Shape, Gather, Resize) to the output shapes onnx.shape_inference gives', () => {
    const t = layerTable(graph('fixture-tiny-fpn', 'backbone.onnx'), { image: [1, 3, 320, 416] });
    // onnx.shape_inference.infer_shapes(data_prop=True) with the input fixed at 1x3x320x416:
    expect(t.outputs).toEqual({
      feature_0: [1, 80, 104, 48], feature_1: [1, 40, 52, 48], feature_2: [1, 20, 26, 48], feature_3: [1, 10, 13, 48], feature_pool: [1, 5, 7, 48],
    });
  });

  it("counts every weight once, and multiply-adds by the seed's formula", () => {
    const g = graph('shapes-vgg', 'backbone.onnx');
    const t = layerTable(g, { image: [1, 3, 224, 224] });
    const weights = [...g.initializers.values()].reduce((s, w) => s + w.dims.reduce((a, b) => a * b, 1), 0);
    expect(t.totals.params).toBe(weights);
    const first = t.layers[0]!;
    // conv 3x3 stride 2 pad 1, 3 -> 24 channels: 112 x 112 x 24 x 3 x 3 x 3 multiply-adds, 24 x 27 + 24 parameters.
    expect(first).toMatchObject({ type: 'Conv', kernel: [3, 3], stride: [2, 2], padding: [1, 1, 1, 1], outputShape: [24, 112, 112], params: 24 * 27 + 24, macs: 112 * 112 * 24 * 27 });
    const fc = layerTable(graph('shapes-vgg', 'box_head.onnx'), { pooled: [1, 128, 7, 7] }).layers.find((l) => l.type === 'Gemm')!;
    expect(fc).toMatchObject({ outputShape: [256], params: 6272 * 256 + 256, macs: 6272 * 256 });
  });

  it("a package: the RPN head reads the backbone's maps, the heads one region", async () => {
    const dir = join(SHIPPED_MODELS_DIR, 'shapes-vgg');
    const p = await packageLayers(dir, await readManifest(dir), [3, 256, 320]);
    expect(Object.keys(p.graphs)).toEqual(['backbone.onnx', 'rpn_head.onnx', 'box_head.onnx', 'fast_rcnn_head.onnx', 'rcnn_head.onnx']);
    expect(p.graphs['backbone.onnx']!.outputs.feature_0).toEqual([1, 32, 40, 128]);
    expect(p.graphs['rpn_head.onnx']!.outputs.objectness_0).toEqual([1, 15, 32, 40]);
    expect(p.graphs['rcnn_head.onnx']!.outputs.class_logits).toEqual([1, 9]);
    expect(p.totals.params).toBe(Object.values(p.graphs).reduce((s, g) => s + g.totals.params, 0));
  });

  it('an op it cannot follow is named', () => {
    const g = graph('shapes-vgg', 'backbone.onnx');
    g.nodes[0] = { ...g.nodes[0]!, opType: 'FancyConv' };
    expect(() => layerTable(g, { image: [1, 3, 64, 64] })).toThrow(/op FancyConv .* is not supported/);
  });
});
