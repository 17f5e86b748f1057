import { closeSync, openSync, writeSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AttrType, DType, type DTypeCode, Msg } from './proto.js';

/** Dimension: a fixed size or a symbolic name such as "batch". */
export type Dim = number | string;
export type AttrValue = number | string | number[] | { float: number } | { floats: number[] };

interface Initializer {
  name: string;
  dims: number[];
  dtype: DTypeCode;
  /** inline (small constants) */
  raw?: Uint8Array;
  /** weights: produced on demand when the external data file is written */
  load?: () => Float32Array;
  /** or streamed in chunks of float32 bytes, so a large matrix is never whole in memory */
  stream?: (onChunk: (bytes: Uint8Array) => void) => void;
}

interface NodeDef {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
  domain: string;
}

interface ValueInfo {
  name: string;
  dtype: DTypeCode;
  dims: Dim[];
}

/** ORT memory-maps external tensors whose offset is aligned to the allocation granularity. */
const EXTERNAL_ALIGN = 65536;
/** Below this many bytes a weight is stored inline: a page per bias is wasteful. */
const INLINE_LIMIT = 4096;

/**
 * Builds an ONNX graph op by op. Values are named by strings; `op()` returns the output names,
 * so model code reads like the forward pass it describes.
 */
export class GraphBuilder {
  private nodes: NodeDef[] = [];
  private inits: Initializer[] = [];
  private inputs: ValueInfo[] = [];
  private outputs: ValueInfo[] = [];
  private counter = 0;
  private constCache = new Map<string, string>();

  constructor(readonly name: string, readonly opset: number) {}

  input(name: string, dtype: DTypeCode, dims: Dim[]): string {
    this.inputs.push({ name, dtype, dims });
    return name;
  }

  output(value: string, name: string, dtype: DTypeCode, dims: Dim[]): void {
    const out = value === name ? value : this.op('Identity', [value], {}, name);
    this.outputs.push({ name: out, dtype, dims });
  }

  /**
   * A float weight whose data is produced when the model is saved; `stream`, when given, is used
   * for the external data file instead of `load`.
   */
  weight(name: string, dims: number[], load: () => Float32Array, stream?: Initializer['stream']): string {
    const bytes = dims.reduce((a, b) => a * b, 1) * 4;
    if (bytes <= INLINE_LIMIT) {
      const d = load();
      this.inits.push({ name, dims, dtype: DType.FLOAT, raw: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) });
    } else {
      this.inits.push({ name, dims, dtype: DType.FLOAT, load, stream });
    }
    return name;
  }

  constInt64(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const b = new BigInt64Array(values.map((v) => BigInt(v)));
    const name = `const_${this.counter++}`;
    this.inits.push({ name, dims, dtype: DType.INT64, raw: new Uint8Array(b.buffer) });
    this.constCache.set(key, name);
    return name;
  }

  constFloat(values: number[], dims: number[] = [values.length]): string {
    const key = `f32:${dims.join('x')}:${values.join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const b = new Float32Array(values);
    const name = `const_${this.counter++}`;
    this.inits.push({ name, dims, dtype: DType.FLOAT, raw: new Uint8Array(b.buffer) });
    this.constCache.set(key, name);
    return name;
  }

  /** Append a node; returns its single output name (see opN for several outputs). */
  op(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outName?: string): string {
    return this.opN(op, inputs, 1, attrs, outName ? [outName] : undefined)[0];
  }

  opN(op: string, inputs: string[], nOut: number, attrs: Record<string, AttrValue> = {}, outNames?: string[]): string[] {
    const id = this.counter++;
    const outputs = outNames ?? Array.from({ length: nOut }, (_, i) => `${op.toLowerCase()}_${id}${nOut > 1 ? `_${i}` : ''}`);
    this.nodes.push({ op, inputs, outputs, attrs, domain: '' });
    return outputs;
  }

  /**
   * Serialize. Weights with `load` go to `dataFile` (beside the .onnx, referenced by its base name),
   * each aligned so ORT can memory-map it; without a data file they are stored inline.
   */
  serialize(dataFile?: { path: string; location: string }): { model: Uint8Array; wroteData: boolean } {
    let fd: number | undefined;
    let pos = 0;
    try {
      const g = new Msg();
      for (const n of this.nodes) g.msg(1, nodeProto(n));
      g.str(2, this.name);
      for (const init of this.inits) {
        const t = new Msg();
        for (const d of init.dims) t.int(1, d);
        t.int(2, init.dtype);
        t.str(8, init.name);
        if (init.raw) {
          t.bytes(9, init.raw);
        } else {
          if (!dataFile) {
            // a self-contained model (only sensible below protobuf's 2 GB limit)
            const d = init.load!();
            t.bytes(9, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
            g.msg(5, t);
            continue;
          }
          if (fd === undefined) fd = openSync(dataFile.path, 'w');
          const expect = init.dims.reduce((a, b) => a * b, 1) * 4;
          const pad = (EXTERNAL_ALIGN - (pos % EXTERNAL_ALIGN)) % EXTERNAL_ALIGN;
          if (pad) {
            writeSync(fd, new Uint8Array(pad), 0, pad, pos);
            pos += pad;
          }
          const start = pos;
          const put = (chunk: Uint8Array) => {
            let done = 0;
            while (done < chunk.length) done += writeSync(fd!, chunk, done, chunk.length - done, pos + done);
            pos += chunk.length;
          };
          if (init.stream) init.stream(put);
          else {
            const data = init.load!();
            put(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
          }
          if (pos - start !== expect) throw new Error(`weight ${init.name}: ${pos - start} bytes, expected ${expect}`);
          t.msg(13, new Msg().str(1, 'location').str(2, dataFile.location));
          t.msg(13, new Msg().str(1, 'offset').str(2, String(start)));
          t.msg(13, new Msg().str(1, 'length').str(2, String(expect)));
          t.int(14, 1); // data_location = EXTERNAL
        }
        g.msg(5, t);
      }
      for (const v of this.inputs) g.msg(11, valueInfo(v));
      for (const v of this.outputs) g.msg(12, valueInfo(v));
      const m = new Msg();
      m.int(1, 10); // IR version 10 (ONNX 1.16+), understood by onnxruntime >= 1.17
      m.str(2, 'logitlens');
      m.str(3, '1');
      m.msg(7, g);
      m.msg(8, new Msg().str(1, '').int(2, this.opset));
      return { model: m.finish(), wroteData: fd !== undefined };
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /**
   * Write `<dir>/<file>` (and its data file) atomically: temp names first, renamed at the end,
   * so a killed run leaves no half-written model under the final name.
   */
  save(dir: string, file: string, dataFileName?: string): void {
    const tmpTag = `.tmp-${process.pid}-${Date.now()}`;
    const dataName = dataFileName ?? `${file}.data`;
    // data is written under a temp name but referenced by its final name
    const tmpData = join(dir, dataName + tmpTag);
    const tmpModel = join(dir, file + tmpTag);
    try {
      const { model, wroteData } = this.serialize({ path: tmpData, location: dataName });
      const fd = openSync(tmpModel, 'w');
      try {
        let done = 0;
        while (done < model.length) done += writeSync(fd, model, done, model.length - done);
      } finally {
        closeSync(fd);
      }
      if (wroteData) renameSync(tmpData, join(dir, dataName));
      renameSync(tmpModel, join(dir, file));
    } finally {
      rmSync(tmpData, { force: true });
      rmSync(tmpModel, { force: true });
    }
  }

  /** Serialize with every weight inline (no data file written). */
  toBytes(): Uint8Array {
    return this.serialize().model;
  }
}

function nodeProto(n: NodeDef): Msg {
  const m = new Msg();
  for (const i of n.inputs) m.str(1, i);
  for (const o of n.outputs) m.str(2, o);
  m.str(3, n.outputs[0]);
  m.str(4, n.op);
  for (const [k, v] of Object.entries(n.attrs)) {
    const a = new Msg().str(1, k);
    if (typeof v === 'number') {
      a.int(3, v).int(20, AttrType.INT);
    } else if (typeof v === 'string') {
      a.str(4, v).int(20, AttrType.STRING);
    } else if (Array.isArray(v)) {
      a.packedInts(8, v).int(20, AttrType.INTS);
    } else if ('float' in v) {
      a.float(2, v.float).int(20, AttrType.FLOAT);
    } else {
      a.packedFloats(7, v.floats).int(20, AttrType.FLOATS);
    }
    m.msg(5, a);
  }
  if (n.domain) m.str(7, n.domain);
  return m;
}

function valueInfo(v: ValueInfo): Msg {
  const shape = new Msg();
  for (const d of v.dims) shape.msg(1, typeof d === 'number' ? new Msg().int(1, d) : new Msg().str(2, d));
  const tensorType = new Msg().int(1, v.dtype).msg(2, shape);
  return new Msg().str(1, v.name).msg(2, new Msg().msg(1, tensorType));
}
