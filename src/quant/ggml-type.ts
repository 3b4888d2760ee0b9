/**
 * The one table of ggml tensor types: type id, elements per block, bytes per block, and the
 * byte layout of each block's fields.
 *
 * Mirrors ggml/include/ggml.h (enum ggml_type) and ggml/src/ggml-common.h (block_* structs and
 * their static_asserts). Names are ggml's own, verbatim, so they grep across codebases.
 * This file only describes layouts; dequantize.ts / quantize.ts hold the arithmetic.
 */

export enum GGMLType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  // 4, 5: Q4_2, Q4_3 (removed upstream)
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
}

export const QK_K = 256;
export const K_SCALE_SIZE = 12;

/** One field of a block: byte offset inside the block and byte length. */
export interface BlockField {
  name: string;
  offset: number;
  bytes: number;
  /** element kind, for documentation and for the layout test */
  kind: 'f16' | 'f32' | 'u8' | 'i8' | 'i16' | 'u32';
}

export interface GGMLTypeInfo {
  type: GGMLType;
  name: string;
  /** elements per block (ggml's blck_size) */
  blockSize: number;
  /** bytes per block (ggml's type_size) */
  typeSize: number;
  /** bits per weight, as documented in ggml-common.h */
  bpw: number;
  fields: BlockField[];
  /** true when this runtime can dequantize it (read weights of this type) */
  supported: boolean;
}

function layout(...fs: [string, BlockField['kind'], number][]): BlockField[] {
  const size = { f16: 2, f32: 4, u8: 1, i8: 1, i16: 2, u32: 4 } as const;
  let offset = 0;
  return fs.map(([name, kind, count]) => {
    const f = { name, offset, bytes: size[kind] * count, kind };
    offset += f.bytes;
    return f;
  });
}

function info(type: GGMLType, blockSize: number, fields: BlockField[], supported = true): GGMLTypeInfo {
  const typeSize = fields.reduce((s, f) => s + f.bytes, 0);
  return { type, name: GGMLType[type], blockSize, typeSize, bpw: (typeSize * 8) / blockSize, fields, supported };
}

/** block layouts from ggml-common.h; sizes are asserted in test/quant-table.test.ts */
export const GGML_TYPES: ReadonlyMap<GGMLType, GGMLTypeInfo> = new Map(
  [
    info(GGMLType.F32, 1, layout(['value', 'f32', 1])),
    info(GGMLType.F16, 1, layout(['value', 'f16', 1])),
    info(GGMLType.BF16, 1, layout(['value', 'u8', 2])),
    // block_q4_0: d, qs[QK4_0/2]                 4.5 bpw
    info(GGMLType.Q4_0, 32, layout(['d', 'f16', 1], ['qs', 'u8', 16])),
    // block_q4_1: d, m, qs[QK4_1/2]              5.0 bpw
    info(GGMLType.Q4_1, 32, layout(['d', 'f16', 1], ['m', 'f16', 1], ['qs', 'u8', 16])),
    // block_q5_0: d, qh[4], qs[QK5_0/2]          5.5 bpw
    info(GGMLType.Q5_0, 32, layout(['d', 'f16', 1], ['qh', 'u8', 4], ['qs', 'u8', 16])),
    // block_q5_1: d, m, qh[4], qs[QK5_1/2]       6.0 bpw
    info(GGMLType.Q5_1, 32, layout(['d', 'f16', 1], ['m', 'f16', 1], ['qh', 'u8', 4], ['qs', 'u8', 16])),
    // block_q8_0: d, qs[QK8_0]                   8.5 bpw
    info(GGMLType.Q8_0, 32, layout(['d', 'f16', 1], ['qs', 'i8', 32])),
    // block_q8_1: d, s, qs[QK8_1]                (activations only)
    info(GGMLType.Q8_1, 32, layout(['d', 'f16', 1], ['s', 'f16', 1], ['qs', 'i8', 32])),
    // block_q2_K: scales[QK_K/16], qs[QK_K/4], d, dmin      2.625 bpw
    info(GGMLType.Q2_K, QK_K, layout(['scales', 'u8', 16], ['qs', 'u8', 64], ['d', 'f16', 1], ['dmin', 'f16', 1])),
    // block_q3_K: hmask[QK_K/8], qs[QK_K/4], scales[12], d  3.4375 bpw
    info(GGMLType.Q3_K, QK_K, layout(['hmask', 'u8', 32], ['qs', 'u8', 64], ['scales', 'u8', 12], ['d', 'f16', 1])),
    // block_q4_K: d, dmin, scales[K_SCALE_SIZE], qs[QK_K/2]  4.5 bpw
    info(GGMLType.Q4_K, QK_K, layout(['d', 'f16', 1], ['dmin', 'f16', 1], ['scales', 'u8', 12], ['qs', 'u8', 128])),
    // block_q5_K: d, dmin, scales[K_SCALE_SIZE], qh[QK_K/8], qs[QK_K/2]  5.5 bpw
    info(
      GGMLType.Q5_K,
      QK_K,
      layout(['d', 'f16', 1], ['dmin', 'f16', 1], ['scales', 'u8', 12], ['qh', 'u8', 32], ['qs', 'u8', 128]),
    ),
    // block_q6_K: ql[QK_K/2], qh[QK_K/4], scales[QK_K/16] (int8), d  6.5625 bpw
    info(GGMLType.Q6_K, QK_K, layout(['ql', 'u8', 128], ['qh', 'u8', 64], ['scales', 'i8', 16], ['d', 'f16', 1])),
    // block_q8_K: d (float), qs[QK_K], bsums[QK_K/16] (int16)  (activations for K-quant dots)
    info(GGMLType.Q8_K, QK_K, layout(['d', 'f32', 1], ['qs', 'i8', 256], ['bsums', 'i16', 16])),
    // types we can name (to report them) but not run
    info(GGMLType.IQ4_NL, 32, layout(['d', 'f16', 1], ['qs', 'u8', 16]), false),
    info(GGMLType.IQ4_XS, QK_K, layout(['d', 'f16', 1], ['scales_h', 'u8', 2], ['scales_l', 'u8', 4], ['qs', 'u8', 128]), false),
    info(GGMLType.IQ2_XXS, QK_K, layout(['d', 'f16', 1], ['qs', 'u8', 64]), false),
    info(GGMLType.IQ2_XS, QK_K, layout(['d', 'f16', 1], ['qs', 'u8', 64], ['scales', 'u8', 8]), false),
    info(GGMLType.IQ2_S, QK_K, layout(['d', 'f16', 1], ['qs', 'u8', 64], ['qh', 'u8', 8], ['scales', 'u8', 8]), false),
    info(GGMLType.IQ3_XXS, QK_K, layout(['d', 'f16', 1], ['qs', 'u8', 96]), false),
    info(GGMLType.IQ3_S, QK_K, layout(['d', 'f16', 1], ['qs', 'u8', 64], ['qh', 'u8', 8], ['signs', 'u8', 32], ['scales', 'u8', 4]), false),
    info(GGMLType.IQ1_S, QK_K, layout(['d', 'f16', 1], ['qs', 'u8', 32], ['qh', 'u8', 16]), false),
    info(GGMLType.IQ1_M, QK_K, layout(['qs', 'u8', 32], ['qh', 'u8', 16], ['scales', 'u8', 8]), false),
    info(GGMLType.TQ1_0, QK_K, layout(['qs', 'u8', 48], ['qh', 'u8', 4], ['d', 'f16', 1]), false),
    info(GGMLType.TQ2_0, QK_K, layout(['qs', 'u8', 64], ['d', 'f16', 1]), false),
    info(GGMLType.MXFP4, 32, layout(['e', 'u8', 1], ['qs', 'u8', 16]), false),
    info(GGMLType.I8, 1, layout(['value', 'i8', 1]), false),
    info(GGMLType.I16, 1, layout(['value', 'i16', 1]), false),
    info(GGMLType.I32, 1, layout(['value', 'u32', 1]), false),
    info(GGMLType.I64, 1, layout(['value', 'u32', 2]), false),
    info(GGMLType.F64, 1, layout(['value', 'u32', 2]), false),
  ].map((t) => [t.type, t]),
);

export function ggmlTypeInfo(type: number): GGMLTypeInfo | undefined {
  return GGML_TYPES.get(type as GGMLType);
}

export function ggmlTypeName(type: number): string {
  return GGML_TYPES.get(type as GGMLType)?.name ?? `unknown(${type})`;
}

export function ggmlTypeByName(name: string): GGMLType | undefined {
  for (const t of GGML_TYPES.values()) if (t.name.toLowerCase() === name.toLowerCase()) return t.type;
  return undefined;
}

/** Bytes of a row of `n` elements (ggml_row_size); throws if n is not a whole number of blocks. */
export function rowBytes(type: GGMLType, n: number): number {
  const t = GGML_TYPES.get(type);
  if (!t) throw new Error(`unknown ggml type ${type}`);
  if (n % t.blockSize !== 0) throw new Error(`${t.name}: row of ${n} elements is not a multiple of ${t.blockSize}`);
  return (n / t.blockSize) * t.typeSize;
}

/**
 * ggml-cpu's vec_dot_type: the type activations are converted to before a dot product with a
 * weight row of `type` (ggml-cpu.c type_traits_cpu). llama.cpp's results depend on this rounding.
 */
/** whether ggml multiplies a weight of `type` (it has a vec_dot_type): not the activation-only Q8_1 / Q8_K */
export function isWeightType(type: GGMLType): boolean {
  try {
    vecDotType(type);
    return true;
  } catch {
    return false;
  }
}

export function vecDotType(type: GGMLType): GGMLType {
  switch (type) {
    case GGMLType.F32: return GGMLType.F32;
    case GGMLType.F16: return GGMLType.F16;
    case GGMLType.BF16: return GGMLType.BF16;
    case GGMLType.Q4_0: case GGMLType.Q5_0: case GGMLType.Q8_0: return GGMLType.Q8_0;
    case GGMLType.Q4_1: case GGMLType.Q5_1: return GGMLType.Q8_1;
    case GGMLType.Q2_K: case GGMLType.Q3_K: case GGMLType.Q4_K: case GGMLType.Q5_K: case GGMLType.Q6_K: return GGMLType.Q8_K;
    default: throw new Error(`no vec_dot_type for ggml type ${GGMLType[type] ?? type}`);
  }
}
