// Row runs: how the matmuls stream their weights — the row-range contract, touching ahead, eight
// runs side by side in decode, token chunks in prefill, the per-thread scratch, and the BLOCKS4
// layout (four rows' blocks side by side). Twin of the layout: src/backend/wasm/layout.ts.

// ── matmuls: out[t·rows + r] = Σ_c W[r,c]·x[t,c] for r in [r0, r1), t in [0, T) ────────────────
// W rows are ggml blocks as stored in the GGUF; rowBytes = bytes per row.

// A matrix×vector streams every weight byte once, and a loop that computes on one or two streams
// reads DRAM at about half the rate it computes in cache: the hardware prefetcher does not run far
// enough ahead of it, and stops at 4 KiB pages. The matrices stored interleaved (layout.ts) are read
// as eight runs side by side (see RUNS); the rest — K-quant matrices with rows % 4 ≠ 0 — and the
// attention's keys are touched TOUCH_AHEAD bytes ahead of the block being read (a 4-byte load per
// cache line or so, result unused; bench/kernels.mjs: Q6_K +58 % from DRAM).
export const TOUCH_AHEAD: usize = 16384;

// V8's wasm compiler keeps loads in program order but computes pure SIMD values as late as it
// can, so a straight run of four rows' dots becomes all their loads first, then the arithmetic —
// and more live vectors than registers, spilled to the stack. A store of each row's sum as soon as
// it is made (to the thread's scratch; nothing reads it) makes that row's arithmetic come before
// the next row's loads: Q8_0 prefill, 1 thread, in cache, AMD EPYC Zen 3, A/B in one process:
// T = 16 21.2 → 26.6 G MAC/s, T = 64 18.8 → 24.1.
@inline export function in_order(at: usize, v: v128): void {
  v128.store(at, v);
}

// the f16 scales (first 2 bytes) of four blocks, in lanes 0..3
@inline export function scales4(b0: usize, b1: usize, b2: usize, b3: usize): v128 {
  let dh = i16x8.splat(0);
  dh = v128.load16_lane(b0, dh, 0);
  dh = v128.load16_lane(b1, dh, 1);
  dh = v128.load16_lane(b2, dh, 2);
  return v128.load16_lane(b3, dh, 3);
}

// rows in ggml's layout at srcPtr → BLOCKS4 at dstPtr (another place): the other types' layout, each
// group's four rows block by block side by side, blocks unchanged (twin: interleaveBlocks4; see
// matmul_kq). rows % 4 == 0.
export function interleave_blocks4(dstPtr: usize, srcPtr: usize, rows: i32, rowBytes: i32, blockBytes: i32): void {
  const rb = <usize>rowBytes, bb = <usize>blockBytes, nb = rb / bb;
  for (let g: usize = 0; g < <usize>rows; g += 4)
    for (let b: usize = 0; b < nb; b++)
      for (let i: usize = 0; i < 4; i++) memory.copy(dstPtr + g * rb + (4 * b + i) * bb, srcPtr + (g + i) * rb + b * bb, bb);
}

// Decode reads eight streams per thread: the thread's groups are cut into eight runs, and step i
// reads group i of every run, block by block, side by side. The hardware prefetcher follows each
// sequential stream, and eight in flight bring the weights at close to memory bandwidth (one
// thread, 1 GB matrix, two processes: two streams with touches ahead 16.9 G MAC/s, eight 23.7; a
// loop over the runs instead of eight written out: 20.4). A run that has no group i reads run 0's
// again (cached) into a sink.
export const RUNS = 8;

// Prefill takes the tokens in chunks: a chunk's activations (T_CHUNK rows of cols bytes and their
// scales) stay in cache while every block of a group of rows meets them; all T tokens at once
// (128 · 3072 B) would not.
export const T_CHUNK = 16;

// each thread's scratch (src/backend/wasm/kernels.ts: KERNEL_SCRATCH_BYTES, the same number): four
// expanded blocks for the K-quant and Q8_0 prefills, a chunk's splats (4 · cols bytes a token) for
// Q4_0X4 (whose matrices the backend keeps to cols ≤ KERNEL_SCRATCH_BYTES / 16)
export const KERNEL_SCRATCH_BYTES: usize = 262144;
@inline export function run_w(k: i32, q: i32, i: i32, nG: i32, w: usize, stride: usize): usize {
  return k * q + i < nG ? w + <usize>k * stride : w;
}
@inline export function run_o(k: i32, q: i32, i: i32, nG: i32, o: usize, sink: usize): usize {
  return k * q + i < nG ? o + (<usize>(k * q) << 4) : sink + (<usize>k << 4);
}
