/**
 * The structure of an ONNX model, read straight from its protobuf: nodes
 * (op type, inputs, outputs, attributes), initializer shapes (and the values
 * of small integer tensors, which shape arithmetic needs), and the graph's
 * inputs and outputs with their dimensions. Weights are not read: a file
 * saved with external data (a few KB) is enough.
 *
 * Field numbers are onnx.proto3's (ModelProto, GraphProto, NodeProto,
 * AttributeProto, TensorProto, ValueInfoProto, TypeProto, TensorShapeProto).
 */

import { Reader } from './wire.js';

export type AttributeValue = number | number[] | string | OnnxTensor;

export interface OnnxTensor {
  dims: number[];
  dataType: number;
  /** Integer values of small INT32 / INT64 tensors (shapes, axes); undefined otherwise. */
  ints?: number[];
  /** Float values of small FLOAT tensors (scales); undefined otherwise. */
  floats?: number[];
}

export interface OnnxNode {
  name: string;
  opType: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, AttributeValue>;
}

export interface OnnxValueInfo {
  name: string;
  /** A tensor's element type (DataType), when the value is a tensor that states it. */
  elementType?: number;
  /** A number per fixed dimension, the parameter's name for a symbolic one. */
  dims: (number | string)[];
}

export interface OnnxGraph {
  nodes: OnnxNode[];
  initializers: Map<string, OnnxTensor>;
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  opset: number;
}

const INT32 = 6, INT64 = 7, FLOAT = 1;
const MAX_VALUES = 64;

function readTensor(buf: Uint8Array): OnnxTensor & { name: string } {
  const t = { name: '', dims: [] as number[], dataType: 0, ints: [] as number[], floats: [] as number[] };
  let raw: Uint8Array | undefined;
  const r = new Reader(buf);
  r.fields((f, w) => {
    if (f === 1) r.varints(w, t.dims);
    else if (f === 2) t.dataType = r.varint();
    else if (f === 8) t.name = r.string();
    else if (f === 9) raw = r.bytes();
    else if (f === 5 || f === 7) r.varints(w, t.ints); // int32_data, int64_data
    else if (f === 4) r.floats(w, t.floats);
    else return true;
  });
  const count = t.dims.reduce((a, b) => a * b, 1);
  const out: OnnxTensor & { name: string } = { name: t.name, dims: t.dims, dataType: t.dataType };
  if (count <= MAX_VALUES) {
    if (t.dataType === INT64 || t.dataType === INT32) {
      if (raw) {
        const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        out.ints = Array.from({ length: count }, (_, i) => (t.dataType === INT64 ? Number(view.getBigInt64(8 * i, true)) : view.getInt32(4 * i, true)));
      } else out.ints = t.ints;
    } else if (t.dataType === FLOAT) {
      if (raw) {
        const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        out.floats = Array.from({ length: count }, (_, i) => view.getFloat32(4 * i, true));
      } else out.floats = t.floats;
    }
  }
  return out;
}

function readAttribute(buf: Uint8Array): [string, AttributeValue] {
  let name = '';
  let value: AttributeValue = 0;
  const ints: number[] = [], floats: number[] = [];
  let type = 0;
  const r = new Reader(buf);
  r.fields((f, w) => {
    if (f === 1) name = r.string();
    else if (f === 2) value = r.float32();
    else if (f === 3) value = r.varint();
    else if (f === 4) value = r.string();
    else if (f === 5) value = readTensor(r.bytes());
    else if (f === 7) r.floats(w, floats);
    else if (f === 8) r.varints(w, ints);
    else if (f === 20) type = r.varint();
    else return true;
  });
  if (type === 7) value = ints; // INTS
  else if (type === 6) value = floats; // FLOATS
  return [name, value];
}

/** A NodeProto as written: its attributes in order, each with its bytes (for a graph being edited). */
export interface NodeProto {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: { name: string; value: AttributeValue; encoded?: Uint8Array }[];
}

export function readNodeProto(buf: Uint8Array): NodeProto {
  const node: NodeProto = { name: '', opType: '', domain: '', inputs: [], outputs: [], attributes: [] };
  const r = new Reader(buf);
  r.fields((f) => {
    if (f === 1) node.inputs.push(r.string());
    else if (f === 2) node.outputs.push(r.string());
    else if (f === 3) node.name = r.string();
    else if (f === 4) node.opType = r.string();
    else if (f === 7) node.domain = r.string();
    else if (f === 5) {
      const encoded = r.bytes().slice();
      const [name, value] = readAttribute(encoded);
      node.attributes.push({ name, value, encoded });
    } else return true; // doc_string and the like
  });
  return node;
}

function readNode(buf: Uint8Array): OnnxNode {
  const { name, opType, inputs, outputs, attributes } = readNodeProto(buf);
  return { name, opType, inputs, outputs, attributes: new Map(attributes.map((a) => [a.name, a.value])) };
}

/** A ValueInfoProto's name, element type and dims. */
export function readValueInfo(buf: Uint8Array): OnnxValueInfo {
  const info: OnnxValueInfo = { name: '', dims: [] };
  const r = new Reader(buf);
  r.fields((f) => {
    if (f === 1) info.name = r.string();
    else if (f === 2) {
      // TypeProto.tensor_type (1) -> TypeProto.Tensor.shape (2) -> TensorShapeProto.dim (1)
      const type = new Reader(r.bytes());
      type.fields((tf) => {
        if (tf !== 1) return true;
        const tensor = new Reader(type.bytes());
        tensor.fields((sf) => {
          if (sf === 1) {
            info.elementType = tensor.varint();
            return;
          }
          if (sf !== 2) return true;
          const shape = new Reader(tensor.bytes());
          shape.fields((df) => {
            if (df !== 1) return true;
            const dim = new Reader(shape.bytes());
            let d: number | string = '?';
            dim.fields((k) => {
              if (k === 1) d = dim.varint();
              else if (k === 2) d = dim.string();
              else return true;
            });
            info.dims.push(d);
          });
        });
      });
    } else return true;
  });
  return info;
}

/** Parse an ONNX model file's bytes. */
export function parseOnnx(bytes: Uint8Array): OnnxGraph {
  const graph: OnnxGraph = { nodes: [], initializers: new Map(), inputs: [], outputs: [], opset: 0 };
  const model = new Reader(bytes);
  model.fields((f) => {
    if (f === 8) {
      // OperatorSetIdProto: domain (1), version (2); the default domain's is the opset.
      const op = new Reader(model.bytes());
      let domain = '', version = 0;
      op.fields((k) => {
        if (k === 1) domain = op.string();
        else if (k === 2) version = op.varint();
        else return true;
      });
      if (domain === '' || domain === 'ai.onnx') graph.opset = version;
    } else if (f === 7) {
      const g = new Reader(model.bytes());
      g.fields((k) => {
        if (k === 1) graph.nodes.push(readNode(g.bytes()));
        else if (k === 5) {
          const t = readTensor(g.bytes());
          graph.initializers.set(t.name, t);
        } else if (k === 11) graph.inputs.push(readValueInfo(g.bytes()));
        else if (k === 12) graph.outputs.push(readValueInfo(g.bytes()));
        else return true;
      });
    } else return true;
  });
  // Initializers may also be listed as inputs (older exporters): those are not the graph's inputs.
  graph.inputs = graph.inputs.filter((i) => !graph.initializers.has(i.name));
  return graph;
}
