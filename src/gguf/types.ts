/**
 * GGUF value types and the shapes the reader returns and the writer takes.
 *
 * Mirrors ggml/docs/gguf.md and ggml/include/gguf.h (enum gguf_type), names verbatim.
 */
import type { GGMLType } from '../quant/ggml-type.js';

export enum GGUFValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** Items of an array, typed by its item type (numbers in typed arrays, 64-bit ints as bigints). */
export type GGUFArrayItems =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array
  | boolean[]
  | string[]
  | GGUFArray[];

export interface GGUFArray {
  itemType: GGUFValueType;
  items: GGUFArrayItems;
}

export type GGUFScalar = number | bigint | boolean | string;

/** One metadata value with its GGUF type, so that write(read(x)) is byte-exact. */
export type GGUFKV =
  | { type: Exclude<GGUFValueType, GGUFValueType.ARRAY>; value: GGUFScalar }
  | { type: GGUFValueType.ARRAY; value: GGUFArray };

export interface GGUFTensorInfo {
  name: string;
  /** ggml ne[]: ne[0] is the row length (fastest-varying) */
  shape: number[];
  type: GGMLType;
  /** offset from the start of the tensor data section */
  offset: number;
  /** bytes of tensor data (ggml_nbytes) */
  byteSize: number;
  /** number of elements */
  nElements: number;
}

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGML_MAX_DIMS = 4;

/** Typed error for every malformed-file condition: names the file, byte offset and key or tensor. */
export class GgufError extends Error {
  override name = 'GgufError';
  constructor(
    message: string,
    readonly offset: number,
    readonly detail: { file?: string; key?: string; tensor?: string } = {},
  ) {
    const where = [
      detail.file ? `${detail.file}` : undefined,
      `offset ${offset}`,
      detail.key ? `key '${detail.key}'` : undefined,
      detail.tensor ? `tensor '${detail.tensor}'` : undefined,
    ]
      .filter(Boolean)
      .join(', ');
    super(`${message} (${where})`);
  }
}
