/**
 * The WASM kernels' typed interface, and choosing a build: one compiled module (build/kernels.wasm
 * or build/kernels-relaxed.wasm, from assembly/index.ts), instantiated over a shared
 * WebAssembly.Memory per bank and per thread. Platform-free: the compiled builds come from a
 * KernelLoader (node-host.ts reads the files; the browser's worker fetches them).
 */

/** Exports of build/kernels.wasm; pointers are byte addresses in the instance's memory. */
export interface Kernels {
  /** the memory the instance works in (exported by the module) */
  readonly memory: WebAssembly.Memory;
  quantize_q8_0(qsPtr: number, dPtr: number, sumsPtr: number, xPtr: number, n: number): void;
  quantize_q8_K(qsPtr: number, dPtr: number, bsumsPtr: number, xPtr: number, n: number): void;
  matmul_q4_0(outPtr: number, wPtr: number, qsPtr: number, dPtr: number, sumsPtr: number, cols: number, rows: number, r0: number, r1: number, T: number): void;
  /** scratch: the thread's KERNEL_SCRATCH_BYTES (cols ≤ KERNEL_SCRATCH_BYTES / 16); dotAdd: 1 to dot by i32 dot-add (same bits, see selectKernels) */
  matmul_q4_0x4(outPtr: number, wPtr: number, qsPtr: number, dPtr: number, sumsPtr: number, cols: number, rows: number, r0: number, r1: number, T: number, subnormalScales: number, scratch: number, dotAdd: number): void;
  /** returns how many block scales are subnormal halves */
  repack_q4_0x4(dstPtr: number, srcPtr: number, rows: number, cols: number): number;
  interleave_blocks4(dstPtr: number, srcPtr: number, rows: number, rowBytes: number, blockBytes: number): void;
  matmul_q4_1(outPtr: number, wPtr: number, qsPtr: number, dPtr: number, cols: number, rows: number, r0: number, r1: number, T: number, scratch: number, x4: number): void;
  matmul_q5_0(outPtr: number, wPtr: number, qsPtr: number, dPtr: number, cols: number, rows: number, r0: number, r1: number, T: number, scratch: number, x4: number): void;
  matmul_q5_1(outPtr: number, wPtr: number, qsPtr: number, dPtr: number, cols: number, rows: number, r0: number, r1: number, T: number, scratch: number, x4: number): void;
  matmul_bf16(outPtr: number, wPtr: number, xPtr: number, cols: number, rows: number, r0: number, r1: number, T: number): void;
  round_bf16_row(outPtr: number, xPtr: number, n: number): void;
  matmul_q2_K(outPtr: number, wPtr: number, qsPtr: number, dPtr: number, bsPtr: number, cols: number, rows: number, r0: number, r1: number, T: number, scratch: number, x4: number): void;
  matmul_q3_K(outPtr: number, wPtr: number, qsPtr: number, dPtr: number, bsPtr: number, cols: number, rows: number, r0: number, r1: number, T: number, scratch: number, x4: number): void;
  matmul_q8_0(outPtr: number, wPtr: number, qsPtr: number, dPtr: number, cols: number, rows: number, r0: number, r1: number, T: number, scratch: number, x4: number): void;
  /** x4: 1 when the matrix is stored BLOCKS4 (layout.ts) */
  matmul_q4_K(outPtr: number, wPtr: number, qsPtr: number, dPtr: number, bsPtr: number, cols: number, rows: number, r0: number, r1: number, T: number, scratch: number, x4: number): void;
  matmul_q5_K(outPtr: number, wPtr: number, qsPtr: number, dPtr: number, bsPtr: number, cols: number, rows: number, r0: number, r1: number, T: number, scratch: number, x4: number): void;
  matmul_q6_K(outPtr: number, wPtr: number, qsPtr: number, dPtr: number, bsPtr: number, cols: number, rows: number, r0: number, r1: number, T: number, scratch: number, x4: number): void;
  matmul_f32(outPtr: number, wPtr: number, xPtr: number, cols: number, rows: number, r0: number, r1: number, T: number): void;
  matmul_f16(outPtr: number, wPtr: number, xPtr: number, cols: number, rows: number, r0: number, r1: number, T: number): void;
  round_f16_row(outPtr: number, xPtr: number, n: number): void;
  /** n halves → f32 by path 0 scalar, 1 vector (weights), 2 the KV cache's; for the twin test */
  f16_to_f32_row(outPtr: number, hPtr: number, n: number, path: number): void;
  rmsnorm(outPtr: number, xPtr: number, wPtr: number, T: number, n: number, eps: number): void;
  rope(qkvPtr: number, cosPtr: number, sinPtr: number, T: number, qkvDim: number, headDim: number, ropeDim: number, h0: number, h1: number): void;
  /** 1 if it stored an Inf/NaN half */
  kv_store(kPtr: number, vPtr: number, qkvPtr: number, T: number, pos0: number, qDim: number, nKvHeads: number, headDim: number, qkvDim: number, ctx: number): number;
  /** the f32 cache: K and V as computed */
  kv_store_f32(kPtr: number, vPtr: number, qkvPtr: number, T: number, pos0: number, qDim: number, nKvHeads: number, headDim: number, qkvDim: number, ctx: number): number;
  /** the q8_0 cache: blocks of 32 (f16 d, 32 i8) per head row; headDim % 32 == 0 */
  kv_store_q8_0(kPtr: number, vPtr: number, qkvPtr: number, T: number, pos0: number, qDim: number, nKvHeads: number, headDim: number, qkvDim: number, ctx: number): number;
  attention(
    outPtr: number, qkvPtr: number, kPtr: number, vPtr: number, attPtr: number, T: number, pos0: number,
    nHeads: number, nKvHeads: number, headDim: number, qkvDim: number, ctx: number, h0: number, h1: number, scale: number, window: number, exact: number, kvType: number,
  ): void;
  /** columns [i0, i1) of each token's silu(gate)·up */
  swiglu(outPtr: number, guPtr: number, T: number, hiddenDim: number, i0: number, i1: number): void;
  add(xPtr: number, yPtr: number, n: number): void;
}

/**
 * Bytes at the start of every memory that belong to the kernels: AssemblyScript places static data
 * (Mathf.exp's table) at address 1024, and every instantiation — one per thread and bank — writes
 * it again. Allocations start above this.
 */
export const KERNEL_STATIC_BYTES = 65536;
/**
 * per-thread scratch of the matmul kernels (assembly/rows.ts has the same number): four expanded
 * blocks for the Q8_0 and K-quant prefills (≤ 4 · 560 bytes); the activations' splats for Q4_0X4,
 * 4 · cols bytes a token (so the backend stores Q4_0 matrices as Q4_0X4 only up to
 * Q4_0X4_MAX_COLS columns)
 */
export const KERNEL_SCRATCH_BYTES = 262144;
export const Q4_0X4_MAX_COLS = KERNEL_SCRATCH_BYTES / 16;

/** which kernel build runs: SIMD128 everywhere, or relaxed SIMD (integer dot instructions) where the engine has it */
export type SimdLevel = 'simd128' | 'relaxed';

/**
 * A build's compiled module, or undefined where this engine cannot validate it (relaxed SIMD on an
 * engine without it). The loader caches; it throws when the build itself is missing.
 */
export type KernelLoader = (level: SimdLevel) => WebAssembly.Module | undefined;

/** the module of one build (throws if the engine cannot run it) */
export function kernelBuild(level: SimdLevel, load: KernelLoader): WebAssembly.Module {
  const m = load(level);
  if (!m) throw new Error(`this JavaScript engine cannot run the ${level} kernels`);
  return m;
}

/** the kernels chosen for this engine */
export interface KernelChoice {
  module: WebAssembly.Module;
  level: SimdLevel;
  /** Q4_0X4 dots by i32x4.relaxed_dot_i8x16_i7x16_add_s (see dotAddFaster) */
  dotAdd: boolean;
}

const chosen = new WeakMap<KernelLoader, KernelChoice>();

/**
 * The kernel module to run: the relaxed-SIMD build when the engine validates it and it passes a
 * start-up self-test against the SIMD128 build (integer dot products must agree), else SIMD128.
 */
export function selectKernels(prefer: SimdLevel | 'auto', load: KernelLoader): KernelChoice {
  if (prefer === 'simd128') return { module: kernelBuild('simd128', load), level: 'simd128', dotAdd: false };
  if (prefer === 'relaxed') return { module: kernelBuild('relaxed', load), level: 'relaxed', dotAdd: dotAddFaster(kernelBuild('relaxed', load)) };
  const have = chosen.get(load);
  if (have) return have;
  const base = kernelBuild('simd128', load);
  let relaxed: WebAssembly.Module | undefined;
  try {
    relaxed = load('relaxed');
  } catch {
    relaxed = undefined;
  }
  const pick: KernelChoice = relaxed && selfTest(base, relaxed) ? { module: relaxed, level: 'relaxed', dotAdd: dotAddFaster(relaxed) } : { module: base, level: 'simd128', dotAdd: false };
  chosen.set(load, pick);
  return pick;
}

const dotAddMeasured = new Map<WebAssembly.Module, boolean>();

/**
 * Whether this engine runs relaxed SIMD's i32 dot-add as one instruction. V8 ≥ 13 (Node 24) lowers
 * i32x4.relaxed_dot_i8x16_i7x16_add_s to AVX-VNNI's vpdpbusd where the CPU has it (Q4_0X4 prefill
 * ≈ 1.25× the pair-dots'); older V8 or other CPUs expand it to three instructions (≈ 0.6×). The two
 * give the same bits, so this only picks the faster: a few milliseconds of timing at start-up, the
 * dot-add taken only when clearly ahead.
 */
export function dotAddFaster(module: WebAssembly.Module): boolean {
  const known = dotAddMeasured.get(module);
  if (known !== undefined) return known;
  let faster = false;
  try {
    const cols = 1024, rows = 64, T = 16;
    const W = KERNEL_STATIC_BYTES, Q = W + rows * (cols / 32) * 18, D = Q + T * cols, S = D + T * (cols / 8), O = S + T * (cols / 8), X = O + T * rows * 4;
    const memory = new WebAssembly.Memory({ initial: Math.ceil((X + KERNEL_SCRATCH_BYTES) / 65536), maximum: 65536, shared: true });
    const k = instantiate(module, memory);
    const u8 = new Uint8Array(memory.buffer);
    for (let i = W; i < D; i++) u8[i] = (Math.imul(i, 2654435761) >>> 24) & 0xff; // any qs and activations
    const dv = new DataView(memory.buffer);
    for (let b = W; b < Q; b += 72) for (let i = 0; i < 4; i++) dv.setUint16(b + 2 * i, 0x2000, true); // weight scales 2^-7
    for (let i = 0; i < (T * cols) / 32; i++) dv.setFloat32(D + 4 * i, 0.01, true), dv.setInt32(S + 4 * i, 0, true);
    const run = (dotAdd: number) => {
      const t0 = performance.now();
      for (let n = 0; n < 4; n++) k.matmul_q4_0x4(O, W, Q, D, S, cols, rows, 0, rows, T, 0, X, dotAdd);
      return performance.now() - t0;
    };
    run(0), run(1); // compile both paths
    let best0 = Infinity, best1 = Infinity;
    for (let r = 0; r < 5; r++) (best0 = Math.min(best0, run(0))), (best1 = Math.min(best1, run(1)));
    faster = best1 < 0.85 * best0;
  } catch {
    faster = false;
  }
  dotAddMeasured.set(module, faster);
  return faster;
}

/** run the quantized matmuls of both builds on the same random data; they must agree to 1e-5 */
function selfTest(base: WebAssembly.Module, relaxed: WebAssembly.Module): boolean {
  try {
    const memory = new WebAssembly.Memory({ initial: 32, maximum: 65536, shared: true });
    const a = instantiate(base, memory), b = instantiate(relaxed, memory);
    const u8 = new Uint8Array(memory.buffer);
    const cols = 512, rows = 5, W = 65536, X = W + 200_000, Q = X + cols * 4, D = Q + cols, S = D + cols, O1 = S + cols, O2 = O1 + 64;
    let seed = 12345;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) / (1 << 24);
    for (let i = 0; i < 200_000; i++) u8[W + i] = (rnd() * 256) | 0;
    const x = new Float32Array(memory.buffer, X, cols);
    for (let i = 0; i < cols; i++) x[i] = rnd() * 2 - 1;
    const scales = (bytes: number, off: number[]) => {
      for (let blk = W; blk < W + rows * bytes * (cols / (bytes === 18 ? 32 : 256)); blk += bytes) for (const o of off) (u8[blk + o] = 0), (u8[blk + o + 1] = 0x20);
    };
    const close = (p: number, q: number, n: number) => {
      const f = new Float32Array(memory.buffer);
      for (let i = 0; i < n; i++) if (!(Math.abs(f[p / 4 + i]! - f[q / 4 + i]!) <= 1e-5 * (1 + Math.abs(f[p / 4 + i]!)))) return false;
      return true;
    };
    scales(18, [0]);
    a.quantize_q8_0(Q, D, S, X, cols);
    a.matmul_q4_0(O1, W, Q, D, S, cols, rows, 0, rows, 1);
    b.matmul_q4_0(O2, W, Q, D, S, cols, rows, 0, rows, 1);
    if (!close(O1, O2, rows)) return false;
    for (const [bytes, fa, fb] of [
      [144, a.matmul_q4_K, b.matmul_q4_K],
      [176, a.matmul_q5_K, b.matmul_q5_K],
    ] as const) {
      scales(bytes, [0, 2]);
      a.quantize_q8_K(Q, D, S, X, cols);
      fa(O1, W, Q, D, S, cols, rows, 0, rows, 1, O2 + 64, 0);
      fb(O2, W, Q, D, S, cols, rows, 0, rows, 1, O2 + 64, 0);
      if (!close(O1, O2, rows)) return false;
    }
    return true;
  } catch {
    return false;
  }
}

export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): Kernels {
  const inst = new WebAssembly.Instance(module, {
    env: {
      memory,
      abort: (_m: number, _f: number, line: number, col: number) => {
        throw new Error(`wasm abort at ${line}:${col}`);
      },
      seed: () => 0,
    },
  });
  return inst.exports as unknown as Kernels;
}
