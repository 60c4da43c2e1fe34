/**
 * An ONNX model open for editing: its graph's nodes, initializers and
 * inputs/outputs as plain values, every other field kept byte for byte, and
 * written back deterministically (the same model and edits give the same
 * bytes). Enough to rewrite a graph (insert nodes, swap initializers, add
 * outputs), not a general protobuf library: unknown fields pass through.
 *
 * Field numbers are onnx.proto3's.
 */

import { readNodeProto, readValueInfo, type AttributeValue, type NodeProto } from './graph.js';
import { Reader, Writer } from './wire.js';

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, FLOAT16: 10 } as const;

export type OnnxAttribute = NodeProto['attributes'][number];

/** A node: an attribute without `encoded` (a new one) is written from its value. */
export type EditableNode = NodeProto;

export interface EditableTensor {
  name: string;
  dims: number[];
  dataType: number;
  /** Little-endian element bytes. */
  data: Uint8Array;
}

export interface EditableModel {
  /** ModelProto fields other than graph and opset_import, as read. */
  readonly modelFields: Uint8Array[];
  opsets: { domain: string; version: number }[];
  graphName: string;
  nodes: EditableNode[];
  /** In file order. */
  initializers: EditableTensor[];
  /** ValueInfoProto bytes of graph inputs (initializers listed as inputs included), by name. */
  inputs: { name: string; encoded: Uint8Array }[];
  outputs: { name: string; encoded: Uint8Array }[];
  valueInfo: { name: string; encoded: Uint8Array }[];
  /** GraphProto fields not modelled above (doc_string, annotations), as read. */
  readonly graphFields: Uint8Array[];
}

const ELEMENT_BYTES: Record<number, number> = { [DataType.FLOAT]: 4, [DataType.UINT8]: 1, [DataType.INT8]: 1, [DataType.INT32]: 4, [DataType.INT64]: 8, [DataType.FLOAT16]: 2 };

function readEditableTensor(buf: Uint8Array): EditableTensor {
  const t: EditableTensor = { name: '', dims: [], dataType: 0, data: new Uint8Array(0) };
  const floats: number[] = [], ints: number[] = [];
  let external = false;
  const r = new Reader(buf);
  r.fields((f, w) => {
    if (f === 1) r.varints(w, t.dims);
    else if (f === 2) t.dataType = r.varint();
    else if (f === 8) t.name = r.string();
    else if (f === 9) t.data = r.bytes().slice();
    else if (f === 4) r.floats(w, floats);
    else if (f === 5 || f === 7) r.varints(w, ints);
    else if (f === 14) external = r.varint() === 1; // data_location EXTERNAL
    else return true;
  });
  if (external) throw new RangeError(`initializer ${t.name} keeps its data in an external file; save the model with its weights inside`);
  const size = ELEMENT_BYTES[t.dataType];
  if (size === undefined) throw new RangeError(`initializer ${t.name} has data type ${t.dataType}, which this editor does not read`);
  if (t.data.length === 0 && (floats.length || ints.length)) {
    const count = t.dims.reduce((a, b) => a * b, 1);
    const view = new DataView(new ArrayBuffer(count * size));
    for (let i = 0; i < count; i++) {
      if (t.dataType === DataType.FLOAT) view.setFloat32(4 * i, floats[i]!, true);
      else if (t.dataType === DataType.INT64) view.setBigInt64(8 * i, BigInt(ints[i]!), true);
      else if (t.dataType === DataType.INT32) view.setInt32(4 * i, ints[i]!, true);
      else if (t.dataType === DataType.FLOAT16) view.setUint16(2 * i, ints[i]! & 0xffff, true); // a half's bits arrive in int32_data
      else view.setUint8(i, ints[i]! & 0xff); // int8 / uint8 arrive in int32_data
    }
    t.data = new Uint8Array(view.buffer);
  }
  return t;
}

function valueInfoName(buf: Uint8Array): string {
  let name = '';
  const r = new Reader(buf);
  r.fields((f) => {
    if (f !== 1) return true;
    name = r.string();
  });
  return name;
}

/** Read an ONNX model for editing. @throws RangeError on a malformed file or external weights. */
export function readModel(file: Uint8Array): EditableModel {
  // A Node Buffer's slice() is a view: read through a plain Uint8Array, whose slice() copies.
  const bytes = new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
  const modelFields: Uint8Array[] = [], graphFields: Uint8Array[] = [];
  const m: EditableModel = { modelFields, opsets: [], graphName: '', nodes: [], initializers: [], inputs: [], outputs: [], valueInfo: [], graphFields };
  let sawGraph = false;
  new Reader(bytes).rawFields((field, _wire, encoded, value) => {
    if (field === 8) {
      const op = new Reader(value());
      let domain = '', version = 0;
      op.fields((k) => {
        if (k === 1) domain = op.string();
        else if (k === 2) version = op.varint();
        else return true;
      });
      m.opsets.push({ domain, version });
    } else if (field === 7) {
      sawGraph = true;
      new Reader(value()).rawFields((k, _w, enc, val) => {
        if (k === 1) m.nodes.push(readNodeProto(val()));
        else if (k === 2) m.graphName = new TextDecoder().decode(val());
        else if (k === 5) m.initializers.push(readEditableTensor(val()));
        else if (k === 11 || k === 12 || k === 13) {
          const v = val().slice();
          (k === 11 ? m.inputs : k === 12 ? m.outputs : m.valueInfo).push({ name: valueInfoName(v), encoded: v });
        } else graphFields.push(enc.slice());
      });
    } else modelFields.push(encoded.slice());
  });
  if (!sawGraph) throw new RangeError('not an ONNX model: no graph');
  return m;
}

function writeAttribute(w: Writer, a: OnnxAttribute): void {
  if (a.encoded) {
    w.bytes(5, a.encoded);
    return;
  }
  w.message(5, (aw) => {
    aw.string(1, a.name);
    const v = a.value;
    if (typeof v === 'number' && Number.isInteger(v)) aw.varint(3, v).varint(20, 2); // INT
    else if (typeof v === 'number') aw.float32(2, v).varint(20, 1); // FLOAT
    else if (typeof v === 'string') aw.string(4, v).varint(20, 3); // STRING
    else if (Array.isArray(v)) aw.packedVarints(8, v).varint(20, 7); // INTS
    else throw new TypeError(`attribute ${a.name}: writing tensor attributes is not supported`);
  });
}

export function writeTensor(w: Writer, field: number, t: EditableTensor): void {
  w.message(field, (tw) => {
    if (t.dims.length) tw.packedVarints(1, t.dims);
    tw.varint(2, t.dataType).string(8, t.name).bytes(9, t.data);
  });
}

/** The model's bytes. */
export function writeModel(m: EditableModel): Uint8Array {
  const w = new Writer();
  for (const f of m.modelFields) w.raw(f);
  w.message(7, (g) => {
    for (const n of m.nodes) {
      g.message(1, (nw) => {
        for (const i of n.inputs) nw.string(1, i);
        for (const o of n.outputs) nw.string(2, o);
        if (n.name) nw.string(3, n.name);
        nw.string(4, n.opType);
        for (const a of n.attributes) writeAttribute(nw, a);
        if (n.domain) nw.string(7, n.domain);
      });
    }
    g.string(2, m.graphName);
    for (const t of m.initializers) writeTensor(g, 5, t);
    for (const i of m.inputs) g.bytes(11, i.encoded);
    for (const o of m.outputs) g.bytes(12, o.encoded);
    for (const v of m.valueInfo) g.bytes(13, v.encoded);
    for (const f of m.graphFields) g.raw(f);
  });
  for (const o of m.opsets) w.message(8, (ow) => (o.domain ? ow.string(1, o.domain).varint(2, o.version) : ow.varint(2, o.version)));
  return w.finish();
}

/** A tensor's ValueInfoProto: its element type, and its dims (numbers, or names of free axes) when given. */
export function tensorValueInfo(name: string, elementType: number, dims?: readonly (number | string)[]): Uint8Array {
  // ValueInfoProto { name, type: TypeProto { tensor_type: { elem_type, shape: { dim: [{ dim_value | dim_param }] } } } }
  return new Writer()
    .string(1, name)
    .message(2, (t) =>
      t.message(1, (tt) => {
        tt.varint(1, elementType);
        if (dims) tt.message(2, (shape) => dims.forEach((d) => shape.message(1, (dim) => (typeof d === 'number' ? dim.varint(1, d) : dim.string(2, d)))));
      }),
    )
    .finish();
}

/** A float graph output's ValueInfoProto with no fixed shape (for outputs added to a graph). */
export function floatValueInfo(name: string): Uint8Array {
  return tensorValueInfo(name, DataType.FLOAT);
}

/**
 * Free the first axis of each graph input that fixes it at 1 (exporters
 * write [1, 3, H, W] for one image), naming it `batch`, so that ONNX Runtime
 * takes several images at once. Only the inputs change: a graph whose nodes
 * assume one image gives outputs whose first axis says so.
 */
export function freeBatchAxis(m: EditableModel): EditableModel {
  const initializers = new Set(m.initializers.map((t) => t.name));
  const inputs = m.inputs.map((input) => {
    const info = readValueInfo(input.encoded);
    if (initializers.has(input.name) || info.dims[0] !== 1 || info.elementType === undefined) return input;
    return { name: input.name, encoded: tensorValueInfo(input.name, info.elementType, ['batch', ...info.dims.slice(1)]) };
  });
  return { ...m, inputs };
}

/** A FLOAT attribute, even for a whole number (a plain number attribute is written as INT when whole). */
export function floatAttribute(name: string, value: number): OnnxAttribute {
  return { name, value, encoded: new Writer().string(1, name).float32(2, value).varint(20, 1).finish() };
}

/** An INT64 initializer. */
export function int64Tensor(name: string, values: readonly number[], dims: number[]): EditableTensor {
  const data = new Uint8Array(8 * values.length);
  const view = new DataView(data.buffer);
  values.forEach((v, i) => view.setBigInt64(8 * i, BigInt(v), true));
  return { name, dims, dataType: DataType.INT64, data };
}

/** An attribute's value, or `fallback` when the node has none by that name. */
export function attribute(node: EditableNode, name: string, fallback: AttributeValue): AttributeValue {
  return node.attributes.find((a) => a.name === name)?.value ?? fallback;
}

/** A float tensor's values. */
export function floatData(t: EditableTensor): Float32Array {
  if (t.dataType !== DataType.FLOAT) throw new TypeError(`${t.name} is not a float tensor`);
  const copy = new Uint8Array(t.data);
  return new Float32Array(copy.buffer, 0, copy.length / 4);
}

export function bytesOf(values: Float32Array | Int32Array | Int8Array | Uint8Array): Uint8Array {
  return new Uint8Array(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}
