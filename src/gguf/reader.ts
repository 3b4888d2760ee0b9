/**
 * GGUF reader: header, metadata and tensor table by positional reads; tensor bytes on demand.
 *
 * Mirrors ggml/src/gguf.cpp (gguf_init_from_file_impl) and its checks, and follows huggingface.js
 * packages/gguf in spirit: small readers over an explicit offset. Never reads the whole file into
 * the JS heap: a 1 MiB window slides over the header, and tensor bytes go straight into a caller's
 * buffer (later: WASM memory). Every count, length, dimension, type id and offset is bounded by the
 * file size before anything is allocated; all failures are a GgufError naming offset and key/tensor.
 * Versions 2 and 3, little-endian only (big-endian files are detected and refused).
 * Platform-free: bytes come from a ByteSource (a Node file in file-source.ts, a Blob or the Origin
 * Private File System in src/browser/sources.ts, a buffer here).
 */
import { GGML_TYPES, GGMLType, ggmlTypeName } from '../quant/ggml-type.js';
import {
  GGML_MAX_DIMS,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GgufError,
  GGUFValueType,
  type GGUFArray,
  type GGUFArrayItems,
  type GGUFKV,
  type GGUFTensorInfo,
} from './types.js';

/** Random-access bytes: a file (positional reads) or an in-memory buffer. */
export interface ByteSource {
  readonly size: number;
  readonly name: string;
  /** copy `dst.length` bytes at `position` into dst; returns bytes read */
  readInto(dst: Uint8Array, position: number): number;
  close(): void;
  /** an open file descriptor that worker threads of this process may read too (Node files only; −1 once closed) */
  readonly fd?: number;
}

export class BufferSource implements ByteSource {
  readonly size: number;
  constructor(
    private readonly bytes: Uint8Array,
    readonly name = '<buffer>',
  ) {
    this.size = bytes.length;
  }
  readInto(dst: Uint8Array, position: number): number {
    const n = Math.max(0, Math.min(dst.length, this.size - position));
    dst.set(this.bytes.subarray(position, position + n));
    return n;
  }
  close(): void {}
}

const MIN_ITEM_BYTES: Record<GGUFValueType, number> = {
  [GGUFValueType.UINT8]: 1,
  [GGUFValueType.INT8]: 1,
  [GGUFValueType.UINT16]: 2,
  [GGUFValueType.INT16]: 2,
  [GGUFValueType.UINT32]: 4,
  [GGUFValueType.INT32]: 4,
  [GGUFValueType.FLOAT32]: 4,
  [GGUFValueType.BOOL]: 1,
  [GGUFValueType.STRING]: 8,
  [GGUFValueType.ARRAY]: 12,
  [GGUFValueType.UINT64]: 8,
  [GGUFValueType.INT64]: 8,
  [GGUFValueType.FLOAT64]: 8,
};
const MAX_ARRAY_DEPTH = 8;
const WINDOW = 1 << 20;

/** A cursor over a ByteSource with a sliding window; every read is bounds-checked. */
class Cursor {
  pos = 0;
  private buf = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private bufStart = 0;
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
  private readonly utf8Strict = new TextDecoder('utf-8', { ignoreBOM: true, fatal: true });
  key: string | undefined;
  tensor: string | undefined;

  constructor(readonly src: ByteSource) {}

  fail(message: string, offset = this.pos): never {
    throw new GgufError(message, offset, { file: this.src.name, key: this.key, tensor: this.tensor });
  }

  get remaining(): number {
    return this.src.size - this.pos;
  }

  /** make [pos, pos+n) addressable in this.buf; returns the index of pos in it */
  private ensure(n: number, what: string): number {
    if (n > this.remaining) this.fail(`unexpected end of file reading ${what}: need ${n} bytes, ${this.remaining} left`);
    const rel = this.pos - this.bufStart;
    if (rel >= 0 && rel + n <= this.buf.length) return rel;
    const len = Math.min(Math.max(n, WINDOW), this.src.size - this.pos);
    this.buf = new Uint8Array(len);
    this.view = new DataView(this.buf.buffer);
    this.bufStart = this.pos;
    if (this.src.readInto(this.buf, this.pos) !== len) this.fail(`short read of ${what}`);
    return 0;
  }

  u8(): number {
    const i = this.ensure(1, 'u8');
    this.pos += 1;
    return this.buf[i]!;
  }
  u32(what = 'u32'): number {
    const i = this.ensure(4, what);
    this.pos += 4;
    return this.view.getUint32(i, true);
  }
  u64(what = 'u64'): bigint {
    const i = this.ensure(8, what);
    this.pos += 8;
    return this.view.getBigUint64(i, true);
  }
  /** a u64 that must fit in [0, limit]: a count or size bounded by the file */
  u64Bounded(what: string, limit: number): number {
    const at = this.pos;
    const v = this.u64(what);
    if (v > BigInt(limit)) this.fail(`${what} ${v} exceeds what the file can hold (max ${limit})`, at);
    return Number(v);
  }
  bytes(n: number, what: string): Uint8Array {
    const i = this.ensure(n, what);
    this.pos += n;
    return this.buf.subarray(i, i + n);
  }
  string(what = 'string'): string {
    const n = this.u64Bounded(`${what} length`, this.remaining - 8);
    return this.utf8.decode(this.bytes(n, what));
  }
  /** a string that must be valid UTF-8 (tensor names: ggml compares their bytes), with its byte length */
  strictString(what: string): { text: string; bytes: number } {
    const at = this.pos;
    const n = this.u64Bounded(`${what} length`, this.remaining - 8);
    const b = this.bytes(n, what);
    try {
      return { text: this.utf8Strict.decode(b), bytes: n };
    } catch {
      return this.fail(`${what} is not valid UTF-8`, at);
    }
  }

  scalar(type: GGUFValueType): number | bigint | boolean | string {
    const at = this.pos;
    switch (type) {
      case GGUFValueType.UINT8:
        return this.u8();
      case GGUFValueType.INT8:
        return (this.u8() << 24) >> 24;
      case GGUFValueType.UINT16: {
        const i = this.ensure(2, 'u16');
        this.pos += 2;
        return this.view.getUint16(i, true);
      }
      case GGUFValueType.INT16: {
        const i = this.ensure(2, 'i16');
        this.pos += 2;
        return this.view.getInt16(i, true);
      }
      case GGUFValueType.UINT32:
        return this.u32();
      case GGUFValueType.INT32: {
        const i = this.ensure(4, 'i32');
        this.pos += 4;
        return this.view.getInt32(i, true);
      }
      case GGUFValueType.FLOAT32: {
        const i = this.ensure(4, 'f32');
        this.pos += 4;
        return this.view.getFloat32(i, true);
      }
      case GGUFValueType.BOOL: {
        const b = this.u8();
        if (b > 1) this.fail(`bool value ${b} is neither 0 nor 1`, at);
        return b === 1;
      }
      case GGUFValueType.STRING:
        return this.string();
      case GGUFValueType.UINT64:
        return this.u64();
      case GGUFValueType.INT64: {
        const i = this.ensure(8, 'i64');
        this.pos += 8;
        return this.view.getBigInt64(i, true);
      }
      case GGUFValueType.FLOAT64: {
        const i = this.ensure(8, 'f64');
        this.pos += 8;
        return this.view.getFloat64(i, true);
      }
      default:
        return this.fail(`unknown value type ${type as number}`, at);
    }
  }

  valueType(): GGUFValueType {
    const at = this.pos;
    const t = this.u32('value type');
    if (t > GGUFValueType.FLOAT64) this.fail(`unknown value type ${t} (expected 0..12)`, at);
    return t as GGUFValueType;
  }

  array(depth: number): GGUFArray {
    if (depth > MAX_ARRAY_DEPTH) this.fail(`arrays nested deeper than ${MAX_ARRAY_DEPTH}`);
    const itemType = this.valueType();
    const n = this.u64Bounded('array length', Math.floor((this.remaining - 8) / MIN_ITEM_BYTES[itemType]));
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const numeric = (Ctor: new (n: number) => GGUFArrayItems, size: number, get: (dv: DataView, o: number) => unknown) => {
      const out = new Ctor(n) as unknown as unknown[];
      const CH = WINDOW;
      for (let done = 0; done < n; ) {
        const m = Math.min(n - done, Math.floor(CH / size));
        const i = this.ensure(m * size, 'array items');
        for (let k = 0; k < m; k++) out[done + k] = get(this.view, i + k * size);
        this.pos += m * size;
        done += m;
      }
      return out as unknown as GGUFArrayItems;
    };
    let items: GGUFArrayItems;
    switch (itemType) {
      case GGUFValueType.UINT8:
        items = numeric(Uint8Array, 1, (d, o) => d.getUint8(o));
        break;
      case GGUFValueType.INT8:
        items = numeric(Int8Array, 1, (d, o) => d.getInt8(o));
        break;
      case GGUFValueType.UINT16:
        items = numeric(Uint16Array, 2, (d, o) => d.getUint16(o, true));
        break;
      case GGUFValueType.INT16:
        items = numeric(Int16Array, 2, (d, o) => d.getInt16(o, true));
        break;
      case GGUFValueType.UINT32:
        items = numeric(Uint32Array, 4, (d, o) => d.getUint32(o, true));
        break;
      case GGUFValueType.INT32:
        items = numeric(Int32Array, 4, (d, o) => d.getInt32(o, true));
        break;
      case GGUFValueType.FLOAT32:
        items = numeric(Float32Array, 4, (d, o) => d.getFloat32(o, true));
        break;
      case GGUFValueType.FLOAT64:
        items = numeric(Float64Array, 8, (d, o) => d.getFloat64(o, true));
        break;
      case GGUFValueType.UINT64:
        items = numeric(BigUint64Array, 8, (d, o) => d.getBigUint64(o, true));
        break;
      case GGUFValueType.INT64:
        items = numeric(BigInt64Array, 8, (d, o) => d.getBigInt64(o, true));
        break;
      case GGUFValueType.BOOL: {
        const out: boolean[] = [];
        for (let k = 0; k < n; k++) out.push(this.scalar(GGUFValueType.BOOL) as boolean);
        items = out;
        break;
      }
      case GGUFValueType.STRING: {
        const out: string[] = [];
        for (let k = 0; k < n; k++) out.push(this.string('array string'));
        items = out;
        break;
      }
      case GGUFValueType.ARRAY: {
        const out: GGUFArray[] = [];
        for (let k = 0; k < n; k++) out.push(this.array(depth + 1));
        items = out;
        break;
      }
    }
    return { itemType, items } as GGUFArray;
  }
}

export interface GGUFHeader {
  version: number;
  alignment: number;
  metadata: Map<string, GGUFKV>;
  tensors: GGUFTensorInfo[];
  /** absolute file offset where tensor data starts */
  dataOffset: number;
  fileSize: number;
}

/** Parse header, metadata and tensor table from a byte source. Throws GgufError. */
export function parseGguf(src: ByteSource): GGUFHeader {
  const c: Cursor = new Cursor(src);
  const magic = c.u32('magic');
  if (magic !== GGUF_MAGIC) {
    const s = [magic & 0xff, (magic >> 8) & 0xff, (magic >> 16) & 0xff, magic >>> 24].map((b) => String.fromCharCode(b)).join('');
    c.fail(`not a GGUF file: magic ${JSON.stringify(s)} (expected "GGUF")`, 0);
  }
  const version = c.u32('version');
  if (version === 0x02000000 || version === 0x03000000) c.fail(`big-endian GGUF (version ${version >>> 24}) is not supported`, 4);
  if (version === 1) c.fail('GGUF version 1 is not supported (expected 2 or 3)', 4);
  if (version !== 2 && version !== 3) c.fail(`unsupported GGUF version ${version} (expected 2 or 3)`, 4);

  // every tensor info needs ≥ 24 bytes (name length, n_dims, one dim, type, offset), every kv ≥ 13
  const nTensors = c.u64Bounded('tensor count', Math.floor(c.remaining / 24));
  const nKv = c.u64Bounded('metadata kv count', Math.floor((c.remaining - 8) / 13));

  const metadata = new Map<string, GGUFKV>();
  for (let i = 0; i < nKv; i++) {
    c.key = undefined;
    const keyAt = c.pos;
    const key = c.string('key');
    c.key = key;
    if (metadata.has(key)) c.fail('duplicate metadata key', keyAt);
    const type = c.valueType();
    if (type === GGUFValueType.ARRAY) metadata.set(key, { type, value: c.array(0) });
    else metadata.set(key, { type, value: c.scalar(type) } as GGUFKV);
  }
  c.key = undefined;

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = metadata.get('general.alignment');
  if (al) {
    c.key = 'general.alignment';
    if (al.type !== GGUFValueType.UINT32) c.fail(`general.alignment has type ${GGUFValueType[al.type]} (expected UINT32)`);
    const a = al.value as number;
    if (a === 0 || (a & (a - 1)) !== 0) c.fail(`general.alignment ${a} is not a power of two`);
    alignment = a;
    c.key = undefined;
  }

  const tensors: GGUFTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    c.tensor = undefined;
    const at = c.pos;
    const { text: name, bytes } = c.strictString('tensor name');
    c.tensor = name;
    if (bytes >= 64) c.fail(`tensor name is ${bytes} bytes (ggml's limit is 63)`, at);
    if (names.has(name)) c.fail('duplicate tensor name', at);
    names.add(name);
    const dimsAt = c.pos;
    const nDims = c.u32('n_dims');
    if (nDims < 1 || nDims > GGML_MAX_DIMS) c.fail(`n_dims ${nDims} (expected 1..${GGML_MAX_DIMS})`, dimsAt);
    const shape: number[] = [];
    let nElements = 1;
    for (let d = 0; d < nDims; d++) {
      const neAt = c.pos;
      const ne = c.u64('ne');
      // bound each dimension (and the product) by what any file this size could hold: ≤ 8 × size
      // elements (1-bit types need at least size/8 bytes); the exact check follows below
      const limit = Math.max(8 * src.size, 1);
      if (ne === 0n) c.fail(`dimension ${d} is 0`, neAt);
      if (ne > BigInt(limit)) c.fail(`dimension ${d} = ${ne} exceeds what the file can hold`, neAt);
      nElements *= Number(ne);
      if (nElements > limit) c.fail(`tensor of ${nElements} elements exceeds what the file can hold`, neAt);
      shape.push(Number(ne));
    }
    const typeAt = c.pos;
    const type = c.u32('ggml type');
    const ti = GGML_TYPES.get(type as GGMLType);
    if (!ti) c.fail(`unknown ggml type ${type}`, typeAt);
    if (shape[0]! % ti.blockSize !== 0)
      c.fail(`row length ${shape[0]} of ${ti.name} is not a multiple of its block size ${ti.blockSize}`, typeAt);
    const offAt = c.pos;
    const offset = c.u64Bounded('tensor data offset', src.size);
    if (offset % alignment !== 0) c.fail(`tensor data offset ${offset} is not a multiple of the alignment ${alignment}`, offAt);
    const byteSize = (nElements / ti.blockSize) * ti.typeSize;
    tensors.push({ name, shape, type: type as GGMLType, offset, byteSize, nElements });
  }
  c.tensor = undefined;

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const dataSize = src.size - dataOffset;
  // tensors must lie inside the data section and not overlap (ggml lays them out in order)
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  let end = 0;
  for (const t of sorted) {
    if (t.offset < end)
      throw new GgufError(`tensor data at ${t.offset} overlaps the previous tensor (ends at ${end})`, dataOffset + t.offset, {
        file: src.name,
        tensor: t.name,
      });
    end = t.offset + t.byteSize;
    if (end > dataSize)
      throw new GgufError(
        `tensor data [${t.offset}, ${end}) of ${ggmlTypeName(t.type)} ${JSON.stringify(t.shape)} runs past the end of the file (data section is ${Math.max(0, dataSize)} bytes)`,
        dataOffset + t.offset,
        { file: src.name, tensor: t.name },
      );
  }
  return { version, alignment, metadata, tensors, dataOffset, fileSize: src.size };
}

/** An open GGUF file: parsed header plus positional access to tensor bytes. */
export class GGUFFile {
  readonly header: GGUFHeader;
  private readonly byName: Map<string, GGUFTensorInfo>;

  private constructor(private readonly src: ByteSource) {
    try {
      this.header = parseGguf(src);
    } catch (e) {
      src.close();
      throw e;
    }
    this.byName = new Map(this.header.tensors.map((t) => [t.name, t]));
  }

  /** parse the header of any byte source (it is closed if the header is bad); openGguf(path) for a Node file */
  static fromSource(src: ByteSource): GGUFFile {
    return new GGUFFile(src);
  }

  static fromBytes(bytes: Uint8Array, name = '<buffer>'): GGUFFile {
    return new GGUFFile(new BufferSource(bytes, name));
  }

  get path(): string {
    return this.src.name;
  }

  /** where tensor `t`'s bytes are for positional reads by other threads: the file descriptor and the
   * absolute position; undefined when the GGUF is not an open file (fromBytes) */
  fileRange(t: GGUFTensorInfo): { fd: number; position: number } | undefined {
    const fd = this.src.fd;
    if (fd === undefined || fd < 0) return undefined;
    return { fd, position: this.header.dataOffset + t.offset };
  }
  get metadata(): Map<string, GGUFKV> {
    return this.header.metadata;
  }
  get tensors(): GGUFTensorInfo[] {
    return this.header.tensors;
  }

  tensor(name: string): GGUFTensorInfo | undefined {
    return this.byName.get(name);
  }

  /** Read a tensor's bytes into `dst` (e.g. a view of WASM memory). No JS-heap copy of the file. */
  readTensorInto(t: GGUFTensorInfo, dst: Uint8Array): void {
    if (dst.length < t.byteSize) throw new RangeError(`buffer of ${dst.length} bytes is too small for ${t.name} (${t.byteSize})`);
    const n = this.src.readInto(dst.subarray(0, t.byteSize), this.header.dataOffset + t.offset);
    if (n !== t.byteSize)
      throw new GgufError(`short read: got ${n} of ${t.byteSize} bytes`, this.header.dataOffset + t.offset, {
        file: this.src.name,
        tensor: t.name,
      });
  }

  /** Read part of a tensor: `length` bytes starting `start` bytes into it. */
  readTensorRange(t: GGUFTensorInfo, start: number, dst: Uint8Array): void {
    if (start < 0 || start + dst.length > t.byteSize) throw new RangeError(`range [${start}, ${start + dst.length}) outside ${t.name}`);
    const n = this.src.readInto(dst, this.header.dataOffset + t.offset + start);
    if (n !== dst.length)
      throw new GgufError(`short read: got ${n} of ${dst.length} bytes`, this.header.dataOffset + t.offset + start, {
        file: this.src.name,
        tensor: t.name,
      });
  }

  readTensor(t: GGUFTensorInfo): Uint8Array {
    const out = new Uint8Array(t.byteSize);
    this.readTensorInto(t, out);
    return out;
  }

  // ── typed metadata accessors ──────────────────────────────────────────────────────────────

  has(key: string): boolean {
    return this.metadata.has(key);
  }

  private need(key: string): GGUFKV {
    const kv = this.metadata.get(key);
    if (!kv) throw new GgufError('missing metadata key', 0, { file: this.src.name, key });
    return kv;
  }

  private wrongType(key: string, kv: GGUFKV, expected: string): never {
    throw new GgufError(`metadata has type ${GGUFValueType[kv.type]} (expected ${expected})`, 0, { file: this.src.name, key });
  }

  getString(key: string): string {
    const kv = this.need(key);
    if (kv.type !== GGUFValueType.STRING) this.wrongType(key, kv, 'STRING');
    return kv.value as string;
  }

  /** Any integer or float type, as a JS number (64-bit ints must be exact). */
  getNumber(key: string): number {
    const kv = this.need(key);
    if (kv.type === GGUFValueType.UINT64 || kv.type === GGUFValueType.INT64) {
      const v = kv.value as bigint;
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) this.wrongType(key, kv, 'a number below 2^53');
      return Number(v);
    }
    if (typeof kv.value !== 'number') this.wrongType(key, kv, 'a number');
    return kv.value;
  }

  getBool(key: string): boolean {
    const kv = this.need(key);
    if (kv.type !== GGUFValueType.BOOL) this.wrongType(key, kv, 'BOOL');
    return kv.value as boolean;
  }

  getArray(key: string): GGUFArray {
    const kv = this.need(key);
    if (kv.type !== GGUFValueType.ARRAY) this.wrongType(key, kv, 'ARRAY');
    return kv.value as GGUFArray;
  }

  getStringArray(key: string): string[] {
    const a = this.getArray(key);
    if (a.itemType !== GGUFValueType.STRING) this.wrongType(key, this.need(key), 'ARRAY of STRING');
    return a.items as string[];
  }

  optString(key: string): string | undefined {
    return this.has(key) ? this.getString(key) : undefined;
  }
  optNumber(key: string): number | undefined {
    return this.has(key) ? this.getNumber(key) : undefined;
  }
  optBool(key: string): boolean | undefined {
    return this.has(key) ? this.getBool(key) : undefined;
  }

  close(): void {
    this.src.close();
  }
}
