/**
 * A box head with its RoI op inside: the graph pools its own RoI features
 * from the feature maps, with ONNX's RoiAlign (Faster R-CNN's FPN levels,
 * one op per level) or MaxRoiPool (Fast R-CNN's RoI max pooling), and runs
 * the head on them, so that on a GPU the pooling runs there too (the
 * placement docs/gpu.md compares with the TypeScript ops on the host).
 *
 * Inputs, for each level l: `roi_feature_l`, the map as the backbone gives
 * it ([1, h, w, C], NHWC), and `roi_boxes_l`, that level's RoIs already in
 * the map's cells ([R_l, 4], xyxy: the caller multiplies by the level's
 * scale, exactly as torchvision's RoIAlign does before sampling, so the
 * graph needs no per-image scale). Outputs: the head's, for the RoIs of
 * level 0, then level 1, and so on.
 *
 * ONNX's RoiAlign (opset 16) with coordinate_transformation_mode
 * output_half_pixel is torchvision's aligned=False, half_pixel its
 * aligned=True; MaxRoiPool rounds the box to cells as torchvision's
 * roi_pool. ONNX Runtime's CPU kernels agree with src/core/roi's
 * (test/unit/roi-head.test.ts).
 */

import { DataType, floatAttribute, int64Tensor, tensorValueInfo, type EditableModel, type EditableNode } from './model.js';

export type InGraphRoiOp = {
  /** The head's pooled-features input, which the pooling now computes. */
  input: string;
  /** Pyramid levels pooled from. */
  levels: number;
  outputSize: readonly [number, number];
} & ({ type: 'roi-align'; samplingRatio: number; aligned: boolean } | { type: 'roi-pool' });

export const roiFeatureInput = (level: number) => `roi_feature_${level}`;
export const roiBoxesInput = (level: number) => `roi_boxes_${level}`;

/** The head graph with its RoI op per level before it (see the module comment). */
export function withRoiOp(head: EditableModel, spec: InGraphRoiOp): EditableModel {
  if (!head.inputs.some((i) => i.name === spec.input)) throw new RangeError(`the head has no input ${spec.input}`);
  const opset = head.opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0;
  if (spec.type === 'roi-align' && opset < 16) throw new RangeError(`RoiAlign's aligned modes need opset 16; the head is opset ${opset}`);
  const node = (name: string, opType: string, inputs: string[], outputs: string[], attributes: EditableNode['attributes'] = []): EditableNode => ({ name, opType, domain: '', inputs, outputs, attributes });
  const nodes: EditableNode[] = [];
  const pooled: string[] = [];
  for (let l = 0; l < spec.levels; l++) {
    const p = `roi_op_${l}`;
    nodes.push(
      node(`${p}/to_nchw`, 'Transpose', [roiFeatureInput(l)], [`${p}/feature`], [{ name: 'perm', value: [0, 3, 1, 2] }]),
      // Every RoI reads image 0: a zero per RoI, as many as the level has.
      node(`${p}/shape`, 'Shape', [roiBoxesInput(l)], [`${p}/shape`]),
      node(`${p}/count`, 'Gather', [`${p}/shape`, 'roi_op/zero'], [`${p}/count`]),
      node(`${p}/count_1d`, 'Unsqueeze', [`${p}/count`, 'roi_op/axis0'], [`${p}/count_1d`]),
    );
    if (spec.type === 'roi-align') {
      nodes.push(
        node(`${p}/zeros`, 'ConstantOfShape', [`${p}/count_1d`], [`${p}/zeros`]),
        node(`${p}/batch`, 'Cast', [`${p}/zeros`], [`${p}/batch`], [{ name: 'to', value: DataType.INT64 }]),
        node(p, 'RoiAlign', [`${p}/feature`, roiBoxesInput(l), `${p}/batch`], [`${p}/pooled`], [
          { name: 'mode', value: 'avg' },
          { name: 'output_height', value: spec.outputSize[0] },
          { name: 'output_width', value: spec.outputSize[1] },
          { name: 'sampling_ratio', value: spec.samplingRatio },
          floatAttribute('spatial_scale', 1),
          { name: 'coordinate_transformation_mode', value: spec.aligned ? 'half_pixel' : 'output_half_pixel' },
        ]),
      );
    } else {
      // MaxRoiPool reads [R, 5] rows: the image index, then the box.
      nodes.push(
        node(`${p}/column_shape`, 'Concat', [`${p}/count_1d`, 'roi_op/one'], [`${p}/column_shape`], [{ name: 'axis', value: 0 }]),
        node(`${p}/zeros`, 'ConstantOfShape', [`${p}/column_shape`], [`${p}/zeros`]),
        node(`${p}/rows`, 'Concat', [`${p}/zeros`, roiBoxesInput(l)], [`${p}/rows`], [{ name: 'axis', value: 1 }]),
        node(p, 'MaxRoiPool', [`${p}/feature`, `${p}/rows`], [`${p}/pooled`], [{ name: 'pooled_shape', value: [...spec.outputSize] }, floatAttribute('spatial_scale', 1)]),
      );
    }
    pooled.push(`${p}/pooled`);
  }
  nodes.push(node('roi_op/concat', 'Concat', pooled, [spec.input], [{ name: 'axis', value: 0 }]));
  const inputs = [
    ...head.inputs.filter((i) => i.name !== spec.input),
    ...Array.from({ length: spec.levels }, (_, l) => [
      { name: roiFeatureInput(l), encoded: tensorValueInfo(roiFeatureInput(l), DataType.FLOAT, [1, `h_${l}`, `w_${l}`, 'channels']) },
      { name: roiBoxesInput(l), encoded: tensorValueInfo(roiBoxesInput(l), DataType.FLOAT, [`rois_${l}`, 4]) },
    ]).flat(),
  ];
  return {
    ...head,
    nodes: [...nodes, ...head.nodes],
    initializers: [...head.initializers, int64Tensor('roi_op/zero', [0], []), int64Tensor('roi_op/axis0', [0], [1]), int64Tensor('roi_op/one', [1], [1])],
    inputs,
  };
}
