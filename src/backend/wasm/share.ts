/**
 * What one thread computes of an op: its slice of the rows (matmuls, in whole groups of four
 * rows, so a row is always computed by the same code path) or heads (attention).
 * Shared by the main thread and the workers, so every thread splits work the same way; each
 * output element is computed by exactly one thread in a fixed order, so results are bit-identical
 * for any number of threads.
 */
import { KERNEL_SCRATCH_BYTES, type Kernels } from './kernels.js';
import { Layout } from './layout.js';

export enum Op {
  MATMUL_Q4_0 = 1,
  MATMUL_Q8_0,
  MATMUL_Q4_K,
  MATMUL_Q5_K,
  MATMUL_Q6_K,
  MATMUL_F32,
  MATMUL_F16,
  ATTENTION,
  MATMUL_Q4_1,
  MATMUL_Q5_0,
  MATMUL_Q5_1,
  MATMUL_BF16,
  MATMUL_Q2_K,
  MATMUL_Q3_K,
  MATMUL_Q4_0X4,
  LOAD,
  SWIGLU,
}

/** [start, end) of `n` items for thread `i` of `k`, in whole multiples of `align` */
export function split(n: number, i: number, k: number, align = 1): [number, number] {
  const units = Math.ceil(n / align);
  const lo = Math.floor((units * i) / k) * align;
  const hi = Math.min(n, Math.floor((units * (i + 1)) / k) * align);
  return [Math.min(lo, n), hi];
}

/** the kernels runShare calls by one shared argument list: Q8_0-quantized activations… */
const KERNEL_Q8_0: Partial<Record<Op, 'matmul_q4_1' | 'matmul_q5_0' | 'matmul_q5_1' | 'matmul_q8_0'>> = {
  [Op.MATMUL_Q4_1]: 'matmul_q4_1',
  [Op.MATMUL_Q5_0]: 'matmul_q5_0',
  [Op.MATMUL_Q5_1]: 'matmul_q5_1',
  [Op.MATMUL_Q8_0]: 'matmul_q8_0',
};
/** …and Q8_K activations with their bsums */
const KERNEL_Q8_K: Partial<Record<Op, 'matmul_q2_K' | 'matmul_q3_K' | 'matmul_q4_K' | 'matmul_q5_K' | 'matmul_q6_K'>> = {
  [Op.MATMUL_Q2_K]: 'matmul_q2_K',
  [Op.MATMUL_Q3_K]: 'matmul_q3_K',
  [Op.MATMUL_Q4_K]: 'matmul_q4_K',
  [Op.MATMUL_Q5_K]: 'matmul_q5_K',
  [Op.MATMUL_Q6_K]: 'matmul_q6_K',
};

/**
 * Positional reads of an open file descriptor into dst[offset…] (node-host.ts): `length` bytes at
 * `position`, fewer only at the end of the file; returns the bytes read. Op.LOAD needs it.
 */
export type ReadFd = (fd: number, dst: Uint8Array, offset: number, length: number, position: number) => number;

/** args: [op, bank, …op arguments]; readFd for Op.LOAD (a platform whose files have descriptors) */
export function runShare(kernels: Kernels[], a: Float64Array | number[], i: number, k: number, readFd?: ReadFd): void {
  const K = kernels[a[1]!]!;
  switch (a[0] as Op) {
    case Op.MATMUL_Q4_1:
    case Op.MATMUL_Q5_0:
    case Op.MATMUL_Q5_1:
    case Op.MATMUL_Q8_0: {
      // out, w, qs, d, cols, rows, T, the bank's scratch (Q8_0's prefill uses it), 1 if stored BLOCKS4
      const [r0, r1] = split(a[7]!, i, k, 4);
      if (r0 >= r1) return;
      K[KERNEL_Q8_0[a[0] as Op]!](a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, r0, r1, a[8]!, a[9]! + i * KERNEL_SCRATCH_BYTES, a[10]!);
      return;
    }
    case Op.MATMUL_Q4_0X4: {
      // out, w, qs, d, block sums, cols, rows, T, subnormal scales, the bank's scratch, dot-add
      const [r0, r1] = split(a[8]!, i, k, 4);
      if (r0 >= r1) return;
      K.matmul_q4_0x4(a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, r0, r1, a[9]!, a[10]!, a[11]! + i * KERNEL_SCRATCH_BYTES, a[12]!);
      return;
    }
    case Op.MATMUL_Q4_0: {
      // out, w, qs, d, block sums, cols, rows, T
      const [r0, r1] = split(a[8]!, i, k, 4);
      if (r0 >= r1) return;
      K.matmul_q4_0(a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, r0, r1, a[9]!);
      return;
    }
    case Op.MATMUL_Q2_K:
    case Op.MATMUL_Q3_K:
    case Op.MATMUL_Q4_K:
    case Op.MATMUL_Q5_K:
    case Op.MATMUL_Q6_K: {
      // out, w, qs, d, bsums, cols, rows, T, the bank's scratch, 1 if the matrix is stored BLOCKS4
      const [r0, r1] = split(a[8]!, i, k, 4);
      if (r0 >= r1) return;
      const scratch = a[10]! + i * KERNEL_SCRATCH_BYTES; // this thread's
      K[KERNEL_Q8_K[a[0] as Op]!](a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, r0, r1, a[9]!, scratch, a[11]!);
      return;
    }
    case Op.MATMUL_F32:
    case Op.MATMUL_F16:
    case Op.MATMUL_BF16: {
      // out, w, x, cols, rows, T
      const [r0, r1] = split(a[6]!, i, k, 4);
      if (r0 >= r1) return;
      (a[0] === Op.MATMUL_F32 ? K.matmul_f32 : a[0] === Op.MATMUL_F16 ? K.matmul_f16 : K.matmul_bf16)(a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, r0, r1, a[7]!);
      return;
    }
    case Op.ATTENTION: {
      // out, qkv, k, v, att (per-thread stride in a[14]), T, pos0, nHeads, nKvHeads, headDim, qkvDim, scale, stride, ctx, window, exact, kvF32
      const [h0, h1] = split(a[9]!, i, k);
      if (h0 >= h1) return;
      K.attention(a[2]!, a[3]!, a[4]!, a[5]!, a[6]! + i * a[14]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!, a[12]!, a[15]!, h0, h1, a[13]!, a[16]!, a[17]!, a[18]!);
      return;
    }
    case Op.SWIGLU: {
      // out, gate|up, T, hiddenDim: each thread its columns
      const [i0, i1] = split(a[5]!, i, k, 4);
      if (i0 < i1) K.swiglu(a[2]!, a[3]!, a[4]!, a[5]!, i0, i1);
      return;
    }
    case Op.LOAD: {
      // a tensor read from the file into place, the threads side by side (the copy and the page
      // faults of fresh memory are most of a load): fd, position, ptr, rows, rowBytes, cols, layout,
      // block bytes, staging (in the tensor's bank), staging bytes per thread, results in bank 0
      // ([bytes read, subnormal scales] per thread, f64)
      const [fd, position, ptr, rows, rowBytes, cols, layout, blockBytes, staging, stagingBytes, results] = [a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!, a[12]!];
      if (!readFd) throw new Error('Op.LOAD needs file reads by descriptor, which this platform has not given');
      const readFully = readFd;
      const u8 = new Uint8Array(K.memory.buffer);
      let got = 0, subnormal = 0;
      if (layout === Layout.ROWS) {
        const [b0, b1] = split(rows * rowBytes, i, k, 1 << 16);
        got = readFully(fd, u8, ptr + b0, b1 - b0, position + b0);
      } else {
        // whole groups of four rows, piece by piece through this thread's staging, reordered into place
        const [r0, r1] = split(rows, i, k, 4);
        const tmp = staging + i * stagingBytes, piece = Math.floor(stagingBytes / rowBytes / 4) * 4;
        for (let r = r0; r < r1; r += piece) {
          const n = Math.min(piece, r1 - r);
          const m = readFully(fd, u8, tmp, n * rowBytes, position + r * rowBytes);
          got += m;
          if (m < n * rowBytes) break;
          if (layout === Layout.Q4_0X4) subnormal += K.repack_q4_0x4(ptr + r * rowBytes, tmp, n, cols);
          else K.interleave_blocks4(ptr + r * rowBytes, tmp, n, rowBytes, blockBytes);
        }
      }
      new Float64Array(kernels[0]!.memory.buffer, results + i * 16, 2).set([got, subnormal]); // in bank 0
      return;
    }
    default:
      throw new Error(`unknown op ${a[0]}`);
  }
}
