/**
 * safetensors: Hugging Face's tensor file (https://huggingface.co/docs/safetensors), read and written.
 *
 * Layout: u64 little-endian N, then N bytes of JSON
 *   { "__metadata__": { string: string }, "<name>": { "dtype": "F32", "shape": [rows, cols], "data_offsets": [begin, end] }, … }
 * then the byte buffer; offsets are relative to its start, row-major, little-endian.
 *
 * The header is checked as the GGUF header is: its size against the file, every dtype, shape and
 * offset pair, each tensor's byte size against dtype × elements, no overlaps and no unindexed bytes
 * (the reference library's rules). Errors name the file, the tensor and what was expected vs found.
 * Tensor bytes are read on demand (positioned reads), never the whole file at once.
 */
import * as fs from 'node:fs';
import { bf16ToFp32, fp16ToFp32 } from '../quant/fp16.js';

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/** bytes per element of each safetensors dtype this runtime reads */
export const DTYPE_BYTES: Readonly<Record<string, number>> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
/** dtypes whose values can become model weights */
export const FLOAT_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type FloatDtype = (typeof FLOAT_DTYPES)[number];

/** a header bigger than this is refused (the reference implementation's limit is 100 MB) */
const MAX_HEADER = 100_000_000;

export interface SafetensorsTensor {
  name: string;
  dtype: string;
  shape: number[];
  nElements: number;
  /** absolute byte offset in the file */
  offset: number;
  byteSize: number;
}

export class SafetensorsFile {
  readonly tensors = new Map<string, SafetensorsTensor>();
  readonly metadata: Record<string, string> = {};
  private fd: number | undefined;

  private constructor(
    readonly path: string,
    fd: number,
    readonly fileSize: number,
  ) {
    this.fd = fd;
  }

  static open(path: string): SafetensorsFile {
    const fd = fs.openSync(path, 'r');
    try {
      const f = new SafetensorsFile(path, fd, fs.fstatSync(fd).size);
      f.parseHeader();
      return f;
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  private fail(msg: string): never {
    throw new SafetensorsError(`${this.path}: ${msg}`);
  }

  private parseHeader(): void {
    if (this.fileSize < 8) this.fail(`file is ${this.fileSize} bytes, shorter than the 8-byte header size`);
    const head = Buffer.alloc(8);
    fs.readSync(this.fd!, head, 0, 8, 0);
    const n = head.readBigUInt64LE(0);
    if (n > BigInt(this.fileSize - 8)) this.fail(`header size ${n} at offset 0 runs past the end of the ${this.fileSize}-byte file`);
    if (n > BigInt(MAX_HEADER)) this.fail(`header size ${n} is above the ${MAX_HEADER}-byte limit`);
    const len = Number(n);
    if (len < 2) this.fail(`header size ${len} is too small for a JSON object`);
    const text = Buffer.alloc(len);
    fs.readSync(this.fd!, text, 0, len, 8);
    let json: unknown;
    try {
      json = JSON.parse(text.toString('utf8'));
    } catch (e) {
      this.fail(`header (bytes 8..${8 + len}) is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) this.fail('header is not a JSON object');
    const dataStart = 8 + len;
    const dataSize = this.fileSize - dataStart;
    const spans: [number, number, string][] = [];
    for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail('__metadata__ is not an object');
        for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
          if (typeof s !== 'string') this.fail(`__metadata__.${k} is a ${typeof s}, expected a string`);
          this.metadata[k] = s;
        }
        continue;
      }
      const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof t !== 'object' || t === null) this.fail(`tensor '${name}': entry is not an object`);
      if (typeof t.dtype !== 'string' || !(t.dtype in DTYPE_BYTES))
        this.fail(`tensor '${name}': dtype ${JSON.stringify(t.dtype)} is not one of ${Object.keys(DTYPE_BYTES).join(', ')}`);
      if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
        this.fail(`tensor '${name}': shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
      const o = t.data_offsets;
      if (!Array.isArray(o) || o.length !== 2 || !o.every((d) => Number.isSafeInteger(d) && d >= 0) || o[0] > o[1])
        this.fail(`tensor '${name}': data_offsets ${JSON.stringify(o)} is not [begin, end] with 0 ≤ begin ≤ end`);
      const shape = t.shape as number[];
      const nElements = shape.reduce((a, d) => a * d, 1);
      const byteSize = nElements * DTYPE_BYTES[t.dtype]!;
      const [b, e] = o as [number, number];
      if (e - b !== byteSize) this.fail(`tensor '${name}': ${t.dtype} [${shape.join(', ')}] is ${byteSize} bytes, but data_offsets [${b}, ${e}] hold ${e - b}`);
      if (e > dataSize) this.fail(`tensor '${name}': data_offsets end ${e} runs past the ${dataSize}-byte data section (file offset ${dataStart + e} > ${this.fileSize})`);
      this.tensors.set(name, { name, dtype: t.dtype, shape, nElements, offset: dataStart + b, byteSize });
      spans.push([b, e, name]);
    }
    spans.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    let end = 0;
    for (const [b, e, name] of spans) {
      if (b < end) this.fail(`tensor '${name}' (bytes ${b}..${e}) overlaps the tensor before it (ending at ${end})`);
      if (b > end) this.fail(`bytes ${end}..${b} of the data section belong to no tensor (before '${name}')`);
      end = e;
    }
    if (end !== dataSize) this.fail(`the data section is ${dataSize} bytes but its tensors end at ${end}`);
  }

  tensor(name: string): SafetensorsTensor {
    const t = this.tensors.get(name);
    if (!t) this.fail(`no tensor '${name}'`);
    return t;
  }

  /** the raw little-endian bytes of a tensor */
  read(name: string): Uint8Array {
    const t = this.tensor(name);
    if (this.fd === undefined) this.fail('file is closed');
    const buf = new Uint8Array(t.byteSize);
    let done = 0;
    while (done < t.byteSize) {
      const n = fs.readSync(this.fd, buf, done, t.byteSize - done, t.offset + done);
      if (n === 0) this.fail(`tensor '${name}': the file ended at ${t.offset + done}, ${t.byteSize - done} bytes short`);
      done += n;
    }
    return buf;
  }

  /** a float tensor's values as f32 (F16/BF16 widened exactly; F64 rounded) */
  readF32(name: string): Float32Array {
    const t = this.tensor(name);
    const b = this.read(name);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const out = new Float32Array(t.nElements);
    switch (t.dtype) {
      case 'F32':
        for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(4 * i, true);
        break;
      case 'F64':
        for (let i = 0; i < out.length; i++) out[i] = dv.getFloat64(8 * i, true);
        break;
      case 'F16':
        for (let i = 0; i < out.length; i++) out[i] = fp16ToFp32(dv.getUint16(2 * i, true));
        break;
      case 'BF16':
        for (let i = 0; i < out.length; i++) out[i] = bf16ToFp32(dv.getUint16(2 * i, true));
        break;
      default:
        this.fail(`tensor '${name}' is ${t.dtype}, not a float tensor`);
    }
    return out;
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** little-endian bytes, dtype × elements long */
  data: Uint8Array;
}

/** write a safetensors file: tensors in the order given, the header padded with spaces to 8 bytes */
export function writeSafetensors(path: string, tensors: SafetensorsEntry[], metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header['__metadata__'] = metadata;
  let at = 0;
  for (const t of tensors) {
    const want = t.shape.reduce((a, d) => a * d, 1) * (DTYPE_BYTES[t.dtype] ?? NaN);
    if (t.data.byteLength !== want) throw new SafetensorsError(`${path}: tensor '${t.name}' ${t.dtype} [${t.shape.join(', ')}] needs ${want} bytes, got ${t.data.byteLength}`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + want] };
    at += want;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const fd = fs.openSync(path, 'w');
  try {
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    fs.writeSync(fd, size);
    fs.writeSync(fd, json);
    for (const t of tensors) fs.writeSync(fd, t.data);
  } finally {
    fs.closeSync(fd);
  }
}
