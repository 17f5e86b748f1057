/**
 * Just enough protobuf to write ONNX ModelProto files. ONNX's schema is stable and small, and
 * writing it ourselves keeps the builder dependency-free (field numbers from onnx/onnx.proto).
 */

class Writer {
  private chunks: Uint8Array[] = [];
  private cur: number[] = [];
  length = 0;

  private flush(): void {
    if (this.cur.length) {
      this.chunks.push(Uint8Array.from(this.cur));
      this.cur = [];
    }
  }
  byte(b: number): void {
    this.cur.push(b);
    this.length++;
  }
  varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      this.byte(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.byte(Number(x));
  }
  bytes(b: Uint8Array): void {
    this.flush();
    this.chunks.push(b);
    this.length += b.length;
  }
  finish(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

/** A message under construction: fields are appended in call order. */
export class Msg {
  private w = new Writer();
  int(field: number, v: number | bigint): this {
    this.w.varint((field << 3) | 0);
    this.w.varint(v);
    return this;
  }
  float(field: number, v: number): this {
    this.w.varint((field << 3) | 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.w.bytes(b);
    return this;
  }
  bytes(field: number, b: Uint8Array): this {
    this.w.varint((field << 3) | 2);
    this.w.varint(b.length);
    this.w.bytes(b);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field: number, m: Msg): this {
    return this.bytes(field, m.finish());
  }
  packedInts(field: number, vs: ArrayLike<number | bigint>): this {
    const inner = new Writer();
    for (let i = 0; i < vs.length; i++) inner.varint(vs[i]);
    return this.bytes(field, inner.finish());
  }
  packedFloats(field: number, vs: ArrayLike<number>): this {
    const b = new Uint8Array(vs.length * 4);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < vs.length; i++) dv.setFloat32(4 * i, vs[i], true);
    return this.bytes(field, b);
  }
  finish(): Uint8Array {
    return this.w.finish();
  }
}

/** onnx.TensorProto.DataType values we use. */
export const DType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9 } as const;
export type DTypeCode = (typeof DType)[keyof typeof DType];

/** onnx.AttributeProto.AttributeType values. */
export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;
