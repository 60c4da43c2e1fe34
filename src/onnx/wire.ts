/**
 * Protocol Buffers' wire format, the little of it ONNX files need: a reader
 * over one message's bytes and a writer that builds one. Field numbers are
 * the callers' (onnx.proto3); nothing here knows ONNX.
 */

const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** A protobuf wire-format reader over one message's bytes. */
export class Reader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): number {
    let result = 0, shift = 1, byte: number;
    do {
      if (this.pos >= this.buf.length) throw new RangeError('truncated varint');
      byte = this.buf[this.pos++]!;
      result += (byte & 0x7f) * shift;
      shift *= 128;
    } while (byte & 0x80);
    // int64 negatives arrive as 10-byte two's complement: map them back (exact for small magnitudes).
    return result >= 2 ** 63 ? result - 2 ** 64 : result;
  }

  bytes(): Uint8Array {
    const n = this.varint();
    if (this.pos + n > this.buf.length) throw new RangeError('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  string(): string {
    return utf8.decode(this.bytes());
  }

  float32(): number {
    if (this.pos + 4 > this.buf.length) throw new RangeError('truncated float');
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new RangeError(`unsupported wire type ${wire}`);
    if (this.pos > this.buf.length) throw new RangeError('truncated field');
  }

  /** Each field of the message: its number and wire type; the callback reads the value, or returns true to skip it. */
  fields(on: (field: number, wire: number) => boolean | void): void {
    while (!this.done) {
      const key = this.varint();
      const field = Math.floor(key / 8), wire = key & 7;
      if (on(field, wire) !== true) continue;
      this.skip(wire);
    }
  }

  /**
   * Each field of the message with its complete encoding (key and value),
   * for a caller that keeps most fields byte for byte and rewrites a few.
   */
  rawFields(on: (field: number, wire: number, encoded: Uint8Array, value: () => Uint8Array) => void): void {
    while (!this.done) {
      const start = this.pos;
      const key = this.varint();
      const field = Math.floor(key / 8), wire = key & 7;
      const valueStart = this.pos;
      this.skip(wire);
      const end = this.pos;
      const encoded = this.buf.subarray(start, end);
      on(field, wire, encoded, () => new Reader(this.buf.subarray(valueStart, end)).bytes());
    }
  }

  /** A repeated varint field, packed (wire 2) or not (wire 0). */
  varints(wire: number, into: number[]): void {
    if (wire === 2) {
      const r = new Reader(this.bytes());
      while (!r.done) into.push(r.varint());
    } else into.push(this.varint());
  }

  /** A repeated float field, packed (wire 2) or not (wire 5). */
  floats(wire: number, into: number[]): void {
    if (wire === 2) {
      const r = new Reader(this.bytes());
      while (!r.done) into.push(r.float32());
    } else into.push(this.float32());
  }
}

/** Builds one message: fields are written in call order; `finish()` gives the bytes. */
export class Writer {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  private push(chunk: Uint8Array): this {
    this.chunks.push(chunk);
    this.length += chunk.length;
    return this;
  }

  private static varintBytes(value: number): Uint8Array {
    // int64 negatives are written as 10-byte two's complement.
    let v = BigInt.asUintN(64, BigInt(value));
    const out: number[] = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      out.push(byte);
    } while (v !== 0n);
    return Uint8Array.from(out);
  }

  private key(field: number, wire: number): this {
    return this.push(Writer.varintBytes(field * 8 + wire));
  }

  varint(field: number, value: number): this {
    return this.key(field, 0).push(Writer.varintBytes(value));
  }

  float32(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    return this.key(field, 5).push(b);
  }

  bytes(field: number, value: Uint8Array): this {
    return this.key(field, 2).push(Writer.varintBytes(value.length)).push(value);
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8Encoder.encode(value));
  }

  message(field: number, build: (w: Writer) => void): this {
    const w = new Writer();
    build(w);
    return this.bytes(field, w.finish());
  }

  /** A packed repeated varint field. */
  packedVarints(field: number, values: readonly number[]): this {
    return this.bytes(field, concat(values.map((v) => Writer.varintBytes(v))));
  }

  /** Bytes already encoded as whole fields (from Reader.rawFields). */
  raw(encoded: Uint8Array): this {
    return this.push(encoded);
  }

  finish(): Uint8Array {
    return concat(this.chunks, this.length);
  }
}

function concat(chunks: readonly Uint8Array[], length = chunks.reduce((n, c) => n + c.length, 0)): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
