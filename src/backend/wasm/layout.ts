/**
 * How the WASM backend stores a matrix's rows (rows % 4 == 0; other matrices keep ggml's layout).
 * Rows 4g..4g+3 keep their bytes [4g·rowBytes, (4g+4)·rowBytes), reordered block-major, so that a
 * four-row pass of a matmul reads one sequential stream (and the decode kernels can read eight
 * such streams side by side):
 *
 * - Q4_0X4 (Q4_0): 72 bytes per block of the group — the four scales, then the four rows' qs
 *   interleaved four bytes at a time (so that one i8 dot gives each row's sum in its own lane):
 *
 *       d0 d1 d2 d3 (f16) | v0 | v1 | v2 | v3      v_m = qs0[4m..4m+3] qs1[4m..4m+3] qs2[…] qs3[…]
 *
 * - BLOCKS4 (Q4_1, Q5_0, Q5_1, Q8_0 and the K-quants): the four rows' blocks b side by side, each
 *   unchanged.
 *
 * These are the TypeScript twins of the kernels repack_q4_0x4 and interleave_blocks4 (and what
 * `embed` uses to read a row back); test/kernels.test.ts holds the kernels to them.
 */
export enum Layout {
  ROWS = 0,
  Q4_0X4 = 1,
  BLOCKS4 = 2,
}

const BLOCK = 18; // Q4_0: d f16 | qs[16]

/** where qs byte j of row i of a group lands among the 64 qs bytes of a Q4_0X4 block */
const qsAt = (i: number, j: number) => 16 * (j >> 2) + 4 * i + (j & 3);

/** rows in ggml's layout → the interleaved layout (a new array) */
export function repackQ4_0x4(src: Uint8Array, rows: number, cols: number): Uint8Array {
  const nb = cols / 32, rowBytes = nb * BLOCK;
  const out = new Uint8Array(rows * rowBytes);
  for (let g = 0; g < rows; g += 4)
    for (let b = 0; b < nb; b++)
      for (let i = 0; i < 4; i++) {
        const s = (g + i) * rowBytes + b * BLOCK, d = g * rowBytes + b * 72;
        out[d + 2 * i] = src[s]!;
        out[d + 2 * i + 1] = src[s + 1]!;
        for (let j = 0; j < 16; j++) out[d + 8 + qsAt(i, j)] = src[s + 2 + j]!;
      }
  return out;
}

/** row r of an interleaved matrix, in ggml's layout (a new array of rowBytes) */
export function q4_0x4Row(src: Uint8Array, r: number, cols: number): Uint8Array {
  const nb = cols / 32, rowBytes = nb * BLOCK;
  const g = (r & ~3) * rowBytes, i = r & 3;
  const row = new Uint8Array(rowBytes);
  for (let b = 0; b < nb; b++) {
    const s = g + b * 72;
    row[b * BLOCK] = src[s + 2 * i]!;
    row[b * BLOCK + 1] = src[s + 2 * i + 1]!;
    for (let j = 0; j < 16; j++) row[b * BLOCK + 2 + j] = src[s + 8 + qsAt(i, j)]!;
  }
  return row;
}

/** rows in ggml's layout → BLOCKS4 (a new array) */
export function interleaveBlocks4(src: Uint8Array, rows: number, rowBytes: number, blockBytes: number): Uint8Array {
  const out = new Uint8Array(rows * rowBytes);
  for (let g = 0; g < rows; g += 4)
    for (let b = 0; b < rowBytes / blockBytes; b++)
      for (let i = 0; i < 4; i++) {
        const s = (g + i) * rowBytes + b * blockBytes;
        out.set(src.subarray(s, s + blockBytes), g * rowBytes + (4 * b + i) * blockBytes);
      }
  return out;
}

/** row r of a BLOCKS4 matrix, in ggml's layout (a new array of rowBytes) */
export function blocks4Row(src: Uint8Array, r: number, rowBytes: number, blockBytes: number): Uint8Array {
  const g = (r & ~3) * rowBytes, i = r & 3;
  const row = new Uint8Array(rowBytes);
  for (let b = 0; b < rowBytes / blockBytes; b++) row.set(src.subarray(g + (4 * b + i) * blockBytes, g + (4 * b + i + 1) * blockBytes), b * blockBytes);
  return row;
}
