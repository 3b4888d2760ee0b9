/**
 * The WASM backend's layout for Q4_0 matrices (rows % 4 == 0): rows 4g..4g+3 keep their bytes
 * [4g·rowBytes, (4g+4)·rowBytes) but are stored block-major, 72 bytes per block of the group:
 *
 *     d0 d1 d2 d3 (f16) | qs0[16] | qs1[16] | qs2[16] | qs3[16]
 *
 * so a four-row pass of the matmul reads one sequential stream and its four scales in one load.
 * These are the TypeScript twins of the kernel repack_q4_0x4 (and what `embed` uses to read a row
 * back); test/kernels.test.ts holds the kernel to them.
 */
const BLOCK = 18; // Q4_0: d f16 | qs[16]

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
        out.set(src.subarray(s + 2, s + BLOCK), d + 8 + 16 * i);
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
    row.set(src.subarray(s + 8 + 16 * i, s + 24 + 16 * i), b * BLOCK + 2);
  }
  return row;
}
