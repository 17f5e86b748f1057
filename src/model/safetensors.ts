import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { LogitlensError } from '../errors.js';

/** dtypes we can turn into float32; anything else in a checkpoint is an error when we need it. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** absolute byte offset of the tensor's data in the file */
  offset: number;
  byteLength: number;
}

export interface SafetensorsFile {
  path: string;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  fileSize: number;
}

/** The header is JSON describing every tensor; real checkpoints keep it far below this. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

function bad(path: string, why: string): LogitlensError {
  return new LogitlensError(
    `${path} is not a valid safetensors file: ${why}. Re-download or re-save the checkpoint.`,
  );
}

/**
 * Read and validate a safetensors header without loading tensor data. Every offset and length
 * is checked against the file size before anything is allocated, so truncated or hostile
 * files fail with an error instead of a crash or a huge allocation.
 */
export function readSafetensorsHeader(path: string): SafetensorsFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new LogitlensError(`cannot open ${path}: ${(e as Error).message}`);
  }
  try {
    const fileSize = fstatSync(fd).size;
    if (fileSize < 8) throw bad(path, `file is ${fileSize} bytes, too short for the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = lenBuf.readBigUInt64LE(0);
    if (headerLen < 2n || headerLen > BigInt(MAX_HEADER_BYTES)) {
      throw bad(path, `header length ${headerLen} is implausible`);
    }
    const hlen = Number(headerLen);
    if (8 + hlen > fileSize) {
      throw bad(path, `header claims ${hlen} bytes but the file has only ${fileSize - 8} after the length (truncated?)`);
    }
    const hbuf = Buffer.alloc(hlen);
    const got = readSync(fd, hbuf, 0, hlen, 8);
    if (got !== hlen) throw bad(path, 'short read of header');
    let header: unknown;
    try {
      header = JSON.parse(hbuf.toString('utf8'));
    } catch {
      throw bad(path, 'header is not valid JSON');
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) {
      throw bad(path, 'header is not a JSON object');
    }
    const dataStart = 8 + hlen;
    const dataLen = fileSize - dataStart;
    const tensors = new Map<string, TensorInfo>();
    let metadata: Record<string, string> = {};
    const spans: Array<[number, number, string]> = [];
    for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (typeof raw === 'object' && raw !== null) metadata = raw as Record<string, string>;
        continue;
      }
      if (typeof raw !== 'object' || raw === null) throw bad(path, `entry ${name} is not an object`);
      const { dtype, shape, data_offsets: offs } = raw as Record<string, unknown>;
      if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
        throw bad(path, `tensor ${name} has unsupported dtype ${JSON.stringify(dtype)}`);
      }
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        throw bad(path, `tensor ${name} has an invalid shape ${JSON.stringify(shape)}`);
      }
      if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        throw bad(path, `tensor ${name} has invalid data_offsets ${JSON.stringify(offs)}`);
      }
      const [begin, end] = offs as [number, number];
      if (end < begin || end > dataLen) {
        throw bad(path, `tensor ${name} spans bytes ${begin}..${end} but the data section has ${dataLen} bytes (truncated?)`);
      }
      const elems = (shape as number[]).reduce((a, b) => a * b, 1);
      const bytes = elems * DTYPE_BYTES[dtype as SafetensorsDtype];
      if (!Number.isSafeInteger(bytes) || bytes !== end - begin) {
        throw bad(path, `tensor ${name} has shape [${shape.join(', ')}] ${dtype} (${bytes} bytes) but its data is ${end - begin} bytes`);
      }
      tensors.set(name, {
        name, dtype: dtype as SafetensorsDtype, shape: shape as number[], offset: dataStart + begin, byteLength: end - begin,
      });
      spans.push([begin, end, name]);
    }
    spans.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) {
      if (spans[i][0] < spans[i - 1][1]) throw bad(path, `tensors ${spans[i - 1][2]} and ${spans[i][2]} overlap`);
    }
    return { path, tensors, metadata, fileSize };
  } finally {
    closeSync(fd);
  }
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Read one tensor as float32, converting F16/BF16/F64. */
export function readTensorF32(file: SafetensorsFile, info: TensorInfo): Float32Array {
  const out = new Float32Array(info.byteLength / DTYPE_BYTES[info.dtype]);
  const bytes = new Uint8Array(out.buffer);
  let pos = 0;
  streamTensorF32(file, info, (chunk) => {
    bytes.set(chunk, pos);
    pos += chunk.length;
  });
  return out;
}

/**
 * Stream one tensor as float32 bytes in bounded chunks (the chunk buffer is reused: consume it
 * before returning). Building a model this way never holds a whole weight matrix in memory.
 */
export function streamTensorF32(file: SafetensorsFile, info: TensorInfo, onChunk: (bytes: Uint8Array) => void, chunkElems = 1 << 20): void {
  const width = DTYPE_BYTES[info.dtype];
  if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) {
    throw new LogitlensError(`tensor ${info.name} in ${file.path} has dtype ${info.dtype}; only floating-point weights (F32, F16, BF16, F64) are supported`);
  }
  const count = info.byteLength / width;
  const fd = openSync(file.path, 'r');
  try {
    const raw = Buffer.allocUnsafe(Math.min(count, chunkElems) * width);
    const out = info.dtype === 'F32' ? undefined : new Float32Array(Math.min(count, chunkElems));
    for (let start = 0; start < count; start += chunkElems) {
      const n = Math.min(chunkElems, count - start);
      const bytes = n * width;
      let done = 0;
      while (done < bytes) {
        const got = readSync(fd, raw, done, bytes - done, info.offset + start * width + done);
        if (got === 0) throw bad(file.path, `unexpected end of file in tensor ${info.name}`);
        done += got;
      }
      if (!out) {
        onChunk(raw.subarray(0, bytes));
        continue;
      }
      const f = out.subarray(0, n);
      widen(info.dtype, raw, f);
      onChunk(new Uint8Array(f.buffer, 0, n * 4));
    }
  } finally {
    closeSync(fd);
  }
}

function widen(dtype: SafetensorsDtype, raw: Uint8Array, out: Float32Array): void {
  const n = out.length;
  if (dtype === 'F16') {
    const lut = f16Table();
    for (let i = 0; i < n; i++) out[i] = lut[raw[2 * i] | (raw[2 * i + 1] << 8)];
  } else if (dtype === 'BF16') {
    // bfloat16 is the top half of a float32: widen by shifting into the high bytes
    const u32 = new Uint32Array(out.buffer, out.byteOffset, n);
    for (let i = 0; i < n; i++) u32[i] = (raw[2 * i] | (raw[2 * i + 1] << 8)) << 16;
  } else {
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
  }
}

let F16_TABLE: Float32Array | undefined;
function f16Table(): Float32Array {
  if (!F16_TABLE) {
    F16_TABLE = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) F16_TABLE[i] = f16ToF32(i);
  }
  return F16_TABLE;
}

/** Encode tensors as a safetensors file (used by tests and the benchmark to make checkpoints). */
export function encodeSafetensors(
  tensors: Array<{ name: string; dtype: 'F32' | 'F16' | 'BF16'; shape: number[]; data: Float32Array }>,
  metadata: Record<string, string> = { format: 'pt' },
): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const parts: Buffer[] = [];
  let off = 0;
  for (const t of tensors) {
    const buf = t.dtype === 'F32' ? Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)
      : t.dtype === 'F16' ? toF16(t.data) : toBF16(t.data);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + buf.length] };
    parts.push(buf);
    off += buf.length;
  }
  let json = JSON.stringify(header);
  // pad the header so the data section starts 8-byte aligned, as the reference writer does
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json), ...parts]);
}

export function toF16(data: Float32Array): Buffer {
  const out = Buffer.alloc(data.length * 2);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < data.length; i++) {
    f[0] = data[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = ((x >>> 23) & 0xff) - 127 + 15;
    let mant = x & 0x7fffff;
    let h: number;
    if (exp <= 0) {
      if (exp < -10) h = sign;
      else {
        mant |= 0x800000;
        const shift = 14 - exp;
        h = sign | ((mant + (1 << (shift - 1))) >> shift);
      }
    } else if (exp >= 31) {
      h = sign | 0x7c00;
    } else {
      h = sign | (exp << 10) | (mant >> 13);
      if (mant & 0x1000) h += 1; // round half up; carries into the exponent correctly
    }
    out.writeUInt16LE(h & 0xffff, 2 * i);
  }
  return out;
}

export function toBF16(data: Float32Array): Buffer {
  const out = Buffer.alloc(data.length * 2);
  const u = new Uint32Array(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < data.length; i++) {
    const x = u[i];
    const rounded = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16; // round to nearest even
    out.writeUInt16LE(rounded & 0xffff, 2 * i);
  }
  return out;
}
