/**
 * The RoI ops inside the graphs (roiPlacement 'graph'), so that on a GPU
 * they run there too (the placements docs/gpu.md compares with the
 * TypeScript ops on the host):
 *
 * - `withRoiOp`: a head that pools its own RoI features from the feature
 *   maps, with ONNX's RoiAlign (Faster R-CNN's FPN levels, one op per level)
 *   or MaxRoiPool (Fast R-CNN's RoI max pooling). Inputs, for each level l:
 *   `roi_feature_l`, the map as the backbone gives it ([1, h, w, C], NHWC),
 *   and `roi_boxes_l`, that level's RoIs already in the map's cells
 *   ([R_l, 4], xyxy: the caller multiplies by the level's scale, as
 *   torchvision's ops do before sampling, so the graph needs no per-image
 *   scale). Outputs: the head's, for the RoIs of level 0, then level 1, ...
 * - `withWarp`: R-CNN's backbone warping its own crops out of the image
 *   (RoiAlign, aligned, on the normalised image; core/warp-regions.ts), each
 *   followed by its mirror image when the pipeline mirrors. Inputs
 *   `warp_image` ([1, H, W, 3], NHWC) and `warp_boxes` ([B, 4], the regions
 *   grown for context, in pixels); outputs: the backbone's, for the B crops
 *   then, mirroring, their B mirror images.
 *
 * ONNX's RoiAlign (opset 16) with coordinate_transformation_mode
 * output_half_pixel is torchvision's aligned=False, half_pixel its
 * aligned=True; MaxRoiPool rounds the box to cells as torchvision's
 * roi_pool. ONNX Runtime's CPU kernels agree with src/core's
 * (test/unit/in-graph-roi.test.ts).
 */

import { DataType, floatAttribute, int64Tensor, tensorValueInfo, type EditableModel, type EditableNode } from './model.js';

export type InGraphRoiOp = {
  /** The head's pooled-features input, which the pooling now computes. */
  input: string;
  /** Pyramid levels pooled from. */
  levels: number;
  outputSize: readonly [number, number];
} & ({ type: 'roi-align'; samplingRatio: number; aligned: boolean } | { type: 'roi-pool' });

export interface InGraphWarp {
  /** The backbone's image input, which the warp now computes. */
  input: string;
  size: readonly [number, number];
  samplingRatio: number;
  mirror: boolean;
}

export const roiFeatureInput = (level: number) => `roi_feature_${level}`;
export const roiBoxesInput = (level: number) => `roi_boxes_${level}`;
export const WARP_IMAGE = 'warp_image';
export const WARP_BOXES = 'warp_boxes';

/** Initializers the nodes below read. */
const CONSTANTS = [int64Tensor('roi_op/zero', [0], []), int64Tensor('roi_op/axis0', [0], [1]), int64Tensor('roi_op/one', [1], [1]), int64Tensor('roi_op/minus_one', [-1], [1]), int64Tensor('roi_op/before_first', [-(2 ** 53)], [1]), int64Tensor('roi_op/axis3', [3], [1])];

const node = (name: string, opType: string, inputs: string[], outputs: string[], attributes: EditableNode['attributes'] = []): EditableNode => ({ name, opType, domain: '', inputs, outputs, attributes });

/** NHWC `feature` to NCHW, and the count of `boxes`' rows as a 1-d int64 tensor: `${p}/feature`, `${p}/count_1d`. */
function prologue(p: string, feature: string, boxes: string): EditableNode[] {
  return [
    node(`${p}/to_nchw`, 'Transpose', [feature], [`${p}/feature`], [{ name: 'perm', value: [0, 3, 1, 2] }]),
    node(`${p}/shape`, 'Shape', [boxes], [`${p}/shape`]),
    node(`${p}/count`, 'Gather', [`${p}/shape`, 'roi_op/zero'], [`${p}/count`]),
    node(`${p}/count_1d`, 'Unsqueeze', [`${p}/count`, 'roi_op/axis0'], [`${p}/count_1d`]),
  ];
}

/** RoiAlign of `boxes` (every one on image 0) from the NHWC `feature` into `out`. */
function roiAlignNodes(p: string, feature: string, boxes: string, out: string, o: { outputSize: readonly [number, number]; samplingRatio: number; aligned: boolean }): EditableNode[] {
  return [
    ...prologue(p, feature, boxes),
    node(`${p}/zeros`, 'ConstantOfShape', [`${p}/count_1d`], [`${p}/zeros`]),
    node(`${p}/batch`, 'Cast', [`${p}/zeros`], [`${p}/batch`], [{ name: 'to', value: DataType.INT64 }]),
    node(p, 'RoiAlign', [`${p}/feature`, boxes, `${p}/batch`], [out], [
      { name: 'mode', value: 'avg' },
      { name: 'output_height', value: o.outputSize[0] },
      { name: 'output_width', value: o.outputSize[1] },
      { name: 'sampling_ratio', value: o.samplingRatio },
      floatAttribute('spatial_scale', 1),
      { name: 'coordinate_transformation_mode', value: o.aligned ? 'half_pixel' : 'output_half_pixel' },
    ]),
  ];
}

/** MaxRoiPool of `boxes` from the NHWC `feature` into `out` (it reads [R, 5] rows: the image index, then the box). */
function maxRoiPoolNodes(p: string, feature: string, boxes: string, out: string, outputSize: readonly [number, number]): EditableNode[] {
  return [
    ...prologue(p, feature, boxes),
    node(`${p}/column_shape`, 'Concat', [`${p}/count_1d`, 'roi_op/one'], [`${p}/column_shape`], [{ name: 'axis', value: 0 }]),
    node(`${p}/zeros`, 'ConstantOfShape', [`${p}/column_shape`], [`${p}/zeros`]),
    node(`${p}/rows`, 'Concat', [`${p}/zeros`, boxes], [`${p}/rows`], [{ name: 'axis', value: 1 }]),
    node(p, 'MaxRoiPool', [`${p}/feature`, `${p}/rows`], [out], [{ name: 'pooled_shape', value: [...outputSize] }, floatAttribute('spatial_scale', 1)]),
  ];
}

/** `graph` with `replaced` (one of its inputs) computed by `nodes` from `inputs` instead. */
function computeInput(graph: EditableModel, replaced: string, nodes: EditableNode[], inputs: { name: string; dims: (number | string)[] }[], needsOpset16: boolean): EditableModel {
  if (!graph.inputs.some((i) => i.name === replaced)) throw new RangeError(`the graph has no input ${replaced}`);
  const opset = graph.opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0;
  if (needsOpset16 && opset < 16) throw new RangeError(`RoiAlign's aligned modes need opset 16; the graph is opset ${opset}`);
  return {
    ...graph,
    nodes: [...nodes, ...graph.nodes],
    initializers: [...graph.initializers, ...CONSTANTS],
    inputs: [...graph.inputs.filter((i) => i.name !== replaced), ...inputs.map((i) => ({ name: i.name, encoded: tensorValueInfo(i.name, DataType.FLOAT, i.dims) }))],
  };
}

/** The head graph with its RoI op per level before it (see the module comment). */
export function withRoiOp(head: EditableModel, spec: InGraphRoiOp): EditableModel {
  const nodes: EditableNode[] = [];
  const pooled: string[] = [];
  for (let l = 0; l < spec.levels; l++) {
    const p = `roi_op_${l}`;
    nodes.push(...(spec.type === 'roi-align' ? roiAlignNodes(p, roiFeatureInput(l), roiBoxesInput(l), `${p}/pooled`, spec) : maxRoiPoolNodes(p, roiFeatureInput(l), roiBoxesInput(l), `${p}/pooled`, spec.outputSize)));
    pooled.push(`${p}/pooled`);
  }
  nodes.push(node('roi_op/concat', 'Concat', pooled, [spec.input], [{ name: 'axis', value: 0 }]));
  const inputs = Array.from({ length: spec.levels }, (_, l) => [
    { name: roiFeatureInput(l), dims: [1, `h_${l}`, `w_${l}`, 'channels'] },
    { name: roiBoxesInput(l), dims: [`rois_${l}`, 4] },
  ]).flat();
  return computeInput(head, spec.input, nodes, inputs, spec.type === 'roi-align');
}

/** R-CNN's backbone with the crops' warp (and mirror images) before it (see the module comment). */
export function withWarp(backbone: EditableModel, spec: InGraphWarp): EditableModel {
  const crops = spec.mirror ? 'warp/crops' : spec.input;
  const nodes = roiAlignNodes('warp', WARP_IMAGE, WARP_BOXES, crops, { outputSize: spec.size, samplingRatio: spec.samplingRatio, aligned: true });
  if (spec.mirror) {
    // Each crop's columns in reverse (a step of -1 along the width), after all the crops.
    nodes.push(
      node('warp/mirror', 'Slice', [crops, 'roi_op/minus_one', 'roi_op/before_first', 'roi_op/axis3', 'roi_op/minus_one'], ['warp/mirrored']),
      node('warp/with_mirrored', 'Concat', [crops, 'warp/mirrored'], [spec.input], [{ name: 'axis', value: 0 }]),
    );
  }
  return computeInput(backbone, spec.input, nodes, [{ name: WARP_IMAGE, dims: [1, 'height', 'width', 3] }, { name: WARP_BOXES, dims: ['regions', 4] }], true);
}
