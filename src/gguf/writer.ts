/**
 * GGUF writer: everything the reader reads, laid out as llama.cpp's gguf_write_to_file does
 * (header, kv pairs, tensor infos, padding to `general.alignment`, each tensor's data padded to
 * the alignment). write → read is exact.
 *
 * Tensor data can be given as bytes or as a function producing them, so multi-GiB files are
 * written one tensor at a time without holding the model in memory.
 */
import * as fs from 'node:fs';
import { GGML_TYPES, GGMLType } from '../quant/ggml-type.js';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUFValueType, type GGUFArray, type GGUFKV } from './types.js';

export interface GGUFTensorSpec {
  name: string;
  /** ggml ne[] (ne[0] = row length) */
  shape: number[];
  type: GGMLType;
  /** exactly the tensor's bytes, or a producer called once when the tensor is written */
  data: Uint8Array | (() => Uint8Array);
}

export interface GGUFSpec {
  version?: 2 | 3;
  /** insertion order is file order */
  metadata: Map<string, GGUFKV> | [string, GGUFKV][];
  tensors: GGUFTensorSpec[];
}

/** Growable little-endian byte buffer for the header. */
class Bytes {
  private buf = new Uint8Array(1 << 16);
  private dv = new DataView(this.buf.buffer);
  length = 0;
  private readonly enc = new TextEncoder();
  private grow(n: number): number {
    if (this.length + n > this.buf.length) {
      const nb = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      nb.set(this.buf.subarray(0, this.length));
      this.buf = nb;
      this.dv = new DataView(nb.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  /** grow first, then write: growing may replace this.buf and this.dv */
  private put(n: number, write: (dv: DataView, at: number) => void): void {
    const at = this.grow(n);
    write(this.dv, at);
  }
  u8(v: number) { this.put(1, (d, at) => d.setUint8(at, v)); }
  i8(v: number) { this.put(1, (d, at) => d.setInt8(at, v)); }
  u16(v: number) { this.put(2, (d, at) => d.setUint16(at, v, true)); }
  i16(v: number) { this.put(2, (d, at) => d.setInt16(at, v, true)); }
  u32(v: number) { this.put(4, (d, at) => d.setUint32(at, v, true)); }
  i32(v: number) { this.put(4, (d, at) => d.setInt32(at, v, true)); }
  f32(v: number) { this.put(4, (d, at) => d.setFloat32(at, v, true)); }
  f64(v: number) { this.put(8, (d, at) => d.setFloat64(at, v, true)); }
  u64(v: bigint | number) { this.put(8, (d, at) => d.setBigUint64(at, BigInt(v), true)); }
  i64(v: bigint | number) { this.put(8, (d, at) => d.setBigInt64(at, BigInt(v), true)); }
  str(s: string) {
    const b = this.enc.encode(s);
    this.u64(b.length);
    const at = this.grow(b.length); // grow first: it may replace this.buf
    this.buf.set(b, at);
  }
  pad(alignment: number) {
    const n = (alignment - (this.length % alignment)) % alignment;
    const at = this.grow(n);
    this.buf.fill(0, at, this.length);
  }
  bytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function writeScalar(b: Bytes, type: GGUFValueType, v: unknown): void {
  switch (type) {
    case GGUFValueType.UINT8: return b.u8(v as number);
    case GGUFValueType.INT8: return b.i8(v as number);
    case GGUFValueType.UINT16: return b.u16(v as number);
    case GGUFValueType.INT16: return b.i16(v as number);
    case GGUFValueType.UINT32: return b.u32(v as number);
    case GGUFValueType.INT32: return b.i32(v as number);
    case GGUFValueType.FLOAT32: return b.f32(v as number);
    case GGUFValueType.BOOL: return b.u8(v ? 1 : 0);
    case GGUFValueType.STRING: return b.str(v as string);
    case GGUFValueType.UINT64: return b.u64(v as bigint);
    case GGUFValueType.INT64: return b.i64(v as bigint);
    case GGUFValueType.FLOAT64: return b.f64(v as number);
    case GGUFValueType.ARRAY: return writeArray(b, v as GGUFArray);
  }
}

function writeArray(b: Bytes, a: GGUFArray): void {
  b.u32(a.itemType);
  b.u64(a.items.length);
  for (let i = 0; i < a.items.length; i++) writeScalar(b, a.itemType, a.items[i]);
}

function alignmentOf(metadata: Map<string, GGUFKV>): number {
  const a = metadata.get('general.alignment');
  return a && a.type === GGUFValueType.UINT32 ? (a.value as number) : GGUF_DEFAULT_ALIGNMENT;
}

function tensorBytes(t: GGUFTensorSpec): number {
  const info = GGML_TYPES.get(t.type);
  if (!info) throw new Error(`tensor ${t.name}: unknown ggml type ${t.type}`);
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.shape[0]! % info.blockSize !== 0) throw new Error(`tensor ${t.name}: row ${t.shape[0]} not a multiple of ${info.blockSize}`);
  return (n / info.blockSize) * info.typeSize;
}

/** Header bytes (up to and including the padding before tensor data) and each tensor's offset. */
export function ggufHeader(spec: GGUFSpec): { header: Uint8Array; offsets: number[]; sizes: number[]; alignment: number } {
  const metadata = spec.metadata instanceof Map ? spec.metadata : new Map(spec.metadata);
  const alignment = alignmentOf(metadata);
  const b = new Bytes();
  b.u32(GGUF_MAGIC);
  b.u32(spec.version ?? 3);
  b.u64(spec.tensors.length);
  b.u64(metadata.size);
  for (const [key, kv] of metadata) {
    b.str(key);
    b.u32(kv.type);
    writeScalar(b, kv.type, kv.value);
  }
  const offsets: number[] = [];
  const sizes: number[] = [];
  let offset = 0;
  for (const t of spec.tensors) {
    const size = tensorBytes(t);
    b.str(t.name);
    b.u32(t.shape.length);
    for (const d of t.shape) b.u64(d);
    b.u32(t.type);
    b.u64(offset);
    offsets.push(offset);
    sizes.push(size);
    offset += Math.ceil(size / alignment) * alignment;
  }
  b.pad(alignment);
  return { header: b.bytes(), offsets, sizes, alignment };
}

function produce(t: GGUFTensorSpec, size: number): Uint8Array {
  return sized(t, typeof t.data === 'function' ? t.data() : t.data, size);
}

/** a tensor's bytes, checked against the size its shape and type give */
function sized(t: GGUFTensorSpec, data: Uint8Array, size: number): Uint8Array {
  if (data.length !== size) throw new Error(`tensor ${t.name}: got ${data.length} bytes, expected ${size}`);
  return data;
}

/** Serialize a whole GGUF in memory (tests, small files). */
export function serializeGguf(spec: GGUFSpec): Uint8Array {
  const { header, offsets, sizes, alignment } = ggufHeader(spec);
  const last = spec.tensors.length ? offsets.at(-1)! + Math.ceil(sizes.at(-1)! / alignment) * alignment : 0;
  const out = new Uint8Array(header.length + last);
  out.set(header);
  spec.tensors.forEach((t, i) => out.set(produce(t, sizes[i]!), header.length + offsets[i]!));
  return out;
}

/** Write a GGUF file tensor by tensor (constant memory beyond the largest tensor). */
export function writeGguf(path: string, spec: GGUFSpec): void {
  const { header, sizes, alignment } = ggufHeader(spec);
  const fd = fs.openSync(path, 'w');
  try {
    writeAll(fd, header);
    spec.tensors.forEach((t, i) => writeTensor(fd, produce(t, sizes[i]!), alignment));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * writeGguf() with tensors produced asynchronously (e.g. on worker threads): `produce(t, i)` is started
 * for up to `ahead` tensors beyond the one being written, and the tensors are written in order.
 */
export async function writeGgufAsync(path: string, spec: GGUFSpec, produce: (t: GGUFTensorSpec, i: number) => Promise<Uint8Array> | Uint8Array, ahead = 2): Promise<void> {
  const { header, sizes, alignment } = ggufHeader(spec);
  const fd = fs.openSync(path, 'w');
  const started: Promise<Uint8Array>[] = [];
  const start = (i: number) => {
    if (i >= spec.tensors.length || started[i]) return;
    started[i] = Promise.resolve().then(() => produce(spec.tensors[i]!, i));
    started[i].catch(() => {}); // a tensor ahead may fail before it is awaited: its error comes when it is
  };
  try {
    writeAll(fd, header);
    for (let i = 0; i < spec.tensors.length; i++) {
      for (let k = i; k <= i + ahead; k++) start(k);
      const data = await started[i]!;
      delete started[i];
      writeTensor(fd, sized(spec.tensors[i]!, data, sizes[i]!), alignment);
    }
  } finally {
    fs.closeSync(fd);
    // after a failure, the tensors already started finish before the error goes on
    await Promise.allSettled(started.filter(Boolean));
  }
}

/** one tensor's bytes and the padding to the next */
function writeTensor(fd: number, data: Uint8Array, alignment: number): void {
  writeAll(fd, data);
  const pad = (alignment - (data.length % alignment)) % alignment;
  if (pad) writeAll(fd, new Uint8Array(pad));
}

function writeAll(fd: number, data: Uint8Array): void {
  for (let done = 0; done < data.length; ) done += fs.writeSync(fd, data, done, Math.min(data.length - done, 1 << 30));
}

// ── helpers to build metadata tersely ─────────────────────────────────────────────────────────

export const kv = {
  str: (value: string): GGUFKV => ({ type: GGUFValueType.STRING, value }),
  u32: (value: number): GGUFKV => ({ type: GGUFValueType.UINT32, value }),
  i32: (value: number): GGUFKV => ({ type: GGUFValueType.INT32, value }),
  f32: (value: number): GGUFKV => ({ type: GGUFValueType.FLOAT32, value }),
  bool: (value: boolean): GGUFKV => ({ type: GGUFValueType.BOOL, value }),
  arr: (itemType: GGUFValueType, items: GGUFArray['items']): GGUFKV => ({ type: GGUFValueType.ARRAY, value: { itemType, items } }),
};
