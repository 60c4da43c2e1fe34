import { describe, expect, it } from 'vitest';
import { multiScaleRoiAlign } from '../../src/core/roi/multi-scale-roi-align.js';
import { roiPool } from '../../src/core/roi/roi-pool.js';
import { roisByLevel } from '../../src/core/roi/level-mapper.js';
import { gatherBoxes } from '../../src/core/boxes.js';
import { DataType, floatValueInfo, tensorValueInfo, writeModel, type EditableModel } from '../../src/onnx/model.js';
import { roiBoxesInput, roiFeatureInput, WARP_BOXES, WARP_IMAGE, withRoiOp, withWarp } from '../../src/onnx/in-graph-roi.js';
import { contextBoxes, warpRegions } from '../../src/core/warp-regions.js';
import { withMirroredCrops } from '../../src/core/flip.js';
import { Writer } from '../../src/onnx/wire.js';
import { openGraph } from '../../src/runtime/session.js';
import { floats, node, rand } from '../helpers/small-graph.js';

const C = 8;

/** A box head: pooled [R, C, 7, 7] -> flatten -> fc (5 outputs). */
function head(opset = 16): EditableModel {
  return {
    modelFields: [new Writer().varint(1, 8).finish()],
    opsets: [{ domain: '', version: opset }],
    graphName: 'head',
    nodes: [node('flatten', 'Flatten', ['pooled'], ['f']), node('fc', 'Gemm', ['f', 'w', 'b'], ['logits'], { transB: 1 })],
    initializers: [floats('w', [5, C * 49]), floats('b', [5])],
    inputs: [{ name: 'pooled', encoded: tensorValueInfo('pooled', DataType.FLOAT, ['rois', C, 7, 7]) }],
    outputs: [{ name: 'logits', encoded: floatValueInfo('logits') }],
    valueInfo: [],
    graphFields: [],
  };
}

/** Two pyramid levels (strides 4 and 8) of a 64 x 96 input, NHWC. */
const levels = [
  { data: Float32Array.from({ length: 16 * 24 * C }, rand), channels: C, height: 16, width: 24 },
  { data: Float32Array.from({ length: 8 * 12 * C }, rand), channels: C, height: 8, width: 12 },
];
const scales = [1 / 4, 1 / 8];
const mapping = { canonicalScale: 32, canonicalLevel: 3 }; // so that small RoIs read level 0 and large ones level 1

describe('a box head with its RoI op inside its graph', () => {
  it('pools each level in ONNX Runtime as src/core/roi does, and runs the head on the RoIs level by level', async () => {
    const rois = Float32Array.of(2, 3, 20, 17, 5, 5, 60, 50, 30, 10, 41, 30, 0, 0, 95, 63, 10, 20, 13.5, 26);
    const byLevel = roisByLevel(rois, scales, mapping);
    expect(byLevel).toEqual([[0, 2, 4], [1, 3]]);
    const spec = { type: 'roi-align' as const, input: 'pooled', levels: 2, outputSize: [7, 7] as const, samplingRatio: 2, aligned: false };
    const weights = head(); // each call draws new weights
    const model = withRoiOp(weights, spec);
    expect(model.inputs.map((i) => i.name)).toEqual([roiFeatureInput(0), roiBoxesInput(0), roiFeatureInput(1), roiBoxesInput(1)]);
    const inGraph = await openGraph({ path: 'pooled-head.onnx', bytes: writeModel(model) }, { device: 'cpu', intraOpThreads: 1 });
    const plain = await openGraph({ path: 'head.onnx', bytes: writeModel(weights) }, { device: 'cpu', intraOpThreads: 1 });
    try {
      const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
      byLevel.forEach((members, l) => {
        feeds[roiFeatureInput(l)] = { data: levels[l]!.data, dims: [1, levels[l]!.height, levels[l]!.width, C] };
        feeds[roiBoxesInput(l)] = { data: gatherBoxes(rois, members).map((v) => v * scales[l]!), dims: [members.length, 4] };
      });
      const got = (await inGraph.run(feeds)).logits!;
      // The reference: TypeScript RoIAlign over the pyramid, then the plain head, in level order.
      const pooled = multiScaleRoiAlign(levels, rois, { scales, outputSize: [7, 7], samplingRatio: 2, aligned: false, ...mapping });
      const want = (await plain.run({ pooled: { data: pooled, dims: [5, C, 7, 7] } })).logits!;
      const order = byLevel.flat();
      expect(got.dims).toEqual([5, 5]);
      order.forEach((i, row) => {
        for (let k = 0; k < 5; k++) expect(got.data[row * 5 + k]).toBeCloseTo(want.data[i * 5 + k]!, 4);
      });
      // A level with no RoIs.
      const none = { ...feeds, [roiBoxesInput(1)]: { data: new Float32Array(0), dims: [0, 4] } };
      expect((await inGraph.run(none)).logits!.dims).toEqual([3, 5]);
    } finally {
      await Promise.all([inGraph.release(), plain.release()]);
    }
  });

  it("pools with MaxRoiPool as src/core/roi's RoIPool (torchvision's roi_pool) does, for Fast R-CNN's head", async () => {
    const rois = Float32Array.of(2, 3, 20, 17, 5, 5, 60, 50, 30.5, 10.5, 41.5, 30.5, 0, 0, 95, 63, 10, 20, 13.5, 26);
    const weights = head();
    const inGraph = await openGraph({ path: 'pooled-head.onnx', bytes: writeModel(withRoiOp(weights, { type: 'roi-pool', input: 'pooled', levels: 1, outputSize: [7, 7] })) }, { device: 'cpu', intraOpThreads: 1 });
    const plain = await openGraph({ path: 'head.onnx', bytes: writeModel(weights) }, { device: 'cpu', intraOpThreads: 1 });
    try {
      const map = levels[0]!;
      const got = (await inGraph.run({
        [roiFeatureInput(0)]: { data: map.data, dims: [1, map.height, map.width, C] },
        [roiBoxesInput(0)]: { data: rois.map((v) => v * scales[0]!), dims: [5, 4] },
      })).logits!;
      const pooled = roiPool(map, rois, { spatialScale: scales[0]!, outputSize: [7, 7] });
      const want = (await plain.run({ pooled: { data: pooled, dims: [5, C, 7, 7] } })).logits!;
      expect(got.dims).toEqual([5, 5]);
      got.data.forEach((v, i) => expect(v).toBeCloseTo(want.data[i]!, 4));
    } finally {
      await Promise.all([inGraph.release(), plain.release()]);
    }
  });

  it("warps R-CNN's crops, and their mirror images after them, inside the backbone's graph as core/warp-regions does", async () => {
    // A stand-in backbone: one 1x1 convolution over the crops, [B, 3, 12, 10] -> [B, 2, 12, 10].
    const backbone: EditableModel = {
      ...head(),
      graphName: 'backbone',
      nodes: [node('conv', 'Conv', ['image', 'k'], ['features'], { kernel_shape: [1, 1] })],
      initializers: [floats('k', [2, 3, 1, 1])],
      inputs: [{ name: 'image', encoded: tensorValueInfo('image', DataType.FLOAT, ['crops', 3, 12, 10]) }],
      outputs: [{ name: 'features', encoded: floatValueInfo('features') }],
    };
    const image = { data: Float32Array.from({ length: 30 * 40 * 3 }, rand), channels: 3, height: 30, width: 40 };
    const regions = Float32Array.of(3, 4, 20, 25, 0, 0, 39, 29, 30, 2, 45, 20); // the last one past the border: zeros there
    const warp = { size: [12, 10] as const, context: 2, samplingRatio: 2 };
    const plain = await openGraph({ path: 'backbone.onnx', bytes: writeModel(backbone) }, { device: 'cpu', intraOpThreads: 1 });
    try {
      for (const mirror of [false, true]) {
        const inGraph = await openGraph({ path: 'warping.onnx', bytes: writeModel(withWarp(backbone, { input: 'image', size: warp.size, samplingRatio: 2, mirror })) }, { device: 'cpu', intraOpThreads: 1 });
        try {
          const got = (await inGraph.run({ [WARP_IMAGE]: { data: image.data, dims: [1, 30, 40, 3] }, [WARP_BOXES]: { data: contextBoxes(regions, warp), dims: [3, 4] } })).features!;
          const crops = warpRegions(image, regions, warp);
          const want = (await plain.run({ image: { data: mirror ? withMirroredCrops(crops, 10) : crops, dims: [mirror ? 6 : 3, 3, 12, 10] } })).features!;
          expect(got.dims).toEqual(want.dims);
          got.data.forEach((v, i) => expect(Math.abs(v - want.data[i]!), `mirror ${mirror}, ${i}`).toBeLessThan(1e-5));
        } finally {
          await inGraph.release();
        }
      }
    } finally {
      await plain.release();
    }
  });

  it('refuses a graph without the named input, or RoiAlign before opset 16', () => {
    const spec = { type: 'roi-align' as const, input: 'pooled', levels: 1, outputSize: [7, 7] as const, samplingRatio: 2, aligned: true };
    expect(() => withRoiOp(head(), { ...spec, input: 'features' })).toThrow('the graph has no input features');
    expect(() => withRoiOp(head(13), spec)).toThrow("RoiAlign's aligned modes need opset 16; the graph is opset 13");
  });
});
