import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { nodeKernelBuild, nodeKernels } from '../src/backend/wasm/node-host.js';
import { instantiate, kernelBuild, KERNEL_SCRATCH_BYTES, KERNEL_STATIC_BYTES, type Kernels, type SimdLevel } from '../src/backend/wasm/kernels.js';
import { matmulRef, rmsnormRef, swigluRef, ropeRef, ropeCacheRef, attentionRef, RefOps } from '../src/backend/ref/ops.js';
import { NUMERICS } from '../src/backend/numerics.js';
import { quantizeQ8_0Act, quantizeQ8KAct } from '../src/quant/activations.js';
import { quantize, canQuantize } from '../src/quant/quantize.js';
import { dequantize } from '../src/quant/dequantize.js';
import { randomTensor } from '../src/synth/synth.js';
import { GGML_TYPES, GGMLType } from '../src/quant/ggml-type.js';
import { Rng } from '../src/util/rng.js';
import { fp16ToFp32 } from '../src/quant/fp16.js';
import { repackQ4_0x4, q4_0x4Row, interleaveBlocks4, blocks4Row } from '../src/backend/wasm/layout.js';

/** one instance over a fresh shared memory, with a bump allocator */
let LEVEL: SimdLevel = 'simd128';
function harness(bytes = 64 << 20) {
  const memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / 65536), maximum: 65536, shared: true });
  const k: Kernels = instantiate(kernelBuild(LEVEL, nodeKernelBuild), memory);
  let top = KERNEL_STATIC_BYTES; // page 0 holds the kernels' static data
  const alloc = (n: number) => {
    const p = Math.ceil(top / 64) * 64;
    top = p + n;
    return p;
  };
  const put = (data: ArrayBufferView) => {
    const p = alloc(data.byteLength);
    new Uint8Array(memory.buffer, p, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return p;
  };
  const f32 = (p: number, n: number) => new Float32Array(memory.buffer, p, n).slice();
  return { memory, k, alloc, put, f32 };
}

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

describe('activation quantizers = their TS twins, bit for bit', () => {
  it('quantize_q8_0 (x86 SIMD arithmetic: 127/amax, round half to even)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer(), fc.constantFrom(0, 1e-7, 0.01, 1, 1000), (nb, seed, scale) => {
        const h = harness(1 << 20);
        const n = nb * 32;
        const x = randn(new Rng(seed), n, scale);
        if (seed % 5 === 0) x.fill(0, 0, 32); // a zero block
        const xp = h.put(x), qp = h.alloc(n), dp = h.alloc(nb * 4), sp = h.alloc(nb * 4);
        h.k.quantize_q8_0(qp, dp, sp, xp, n);
        const qs = new Int8Array(n), d = new Float32Array(nb), sums = new Int32Array(nb);
        quantizeQ8_0Act(x, 0, n, qs, d, sums);
        expect(new Int8Array(h.memory.buffer, qp, n)).toEqual(qs);
        expect(h.f32(dp, nb)).toEqual(d);
        expect(new Int32Array(h.memory.buffer, sp, nb)).toEqual(sums);
        expect(sums[0]).toBe(qs.subarray(0, 32).reduce((a, b) => a + b, 0));
      }),
      { numRuns: 200 },
    );
  });
  it('quantize_q8_K (= quantize_row_q8_K_ref)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer(), fc.constantFrom(0, 1e-7, 0.01, 1, 1000), (nb, seed, scale) => {
        const h = harness(1 << 20);
        const n = nb * 256;
        const x = randn(new Rng(seed), n, scale);
        const xp = h.put(x), qp = h.alloc(n), dp = h.alloc(nb * 4), bp = h.alloc(nb * 32);
        h.k.quantize_q8_K(qp, dp, bp, xp, n);
        const qs = new Int8Array(n), d = new Float32Array(nb), bs = new Int16Array(nb * 16);
        quantizeQ8KAct(x, 0, n, qs, d, bs);
        expect(new Int8Array(h.memory.buffer, qp, n)).toEqual(qs);
        expect(h.f32(dp, nb)).toEqual(d);
        expect(new Int16Array(h.memory.buffer, bp, nb * 16)).toEqual(bs);
      }),
      { numRuns: 100 },
    );
  });
});

const KQ = new Set([GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K]);
const MATMULS: [GGMLType, keyof Kernels][] = [
  [GGMLType.Q4_0, 'matmul_q4_0'],
  [GGMLType.Q8_0, 'matmul_q8_0'],
  [GGMLType.Q4_K, 'matmul_q4_K'],
  [GGMLType.Q5_K, 'matmul_q5_K'],
  [GGMLType.Q6_K, 'matmul_q6_K'],
  [GGMLType.F32, 'matmul_f32'],
  [GGMLType.F16, 'matmul_f16'],
  [GGMLType.BF16, 'matmul_bf16'],
  [GGMLType.Q4_1, 'matmul_q4_1'],
  [GGMLType.Q5_0, 'matmul_q5_0'],
  [GGMLType.Q5_1, 'matmul_q5_1'],
  [GGMLType.Q2_K, 'matmul_q2_K'],
  [GGMLType.Q3_K, 'matmul_q3_K'],
];

const LEVELS: SimdLevel[] = nodeKernels('auto').level === 'relaxed' ? ['simd128', 'relaxed'] : ['simd128'];
for (const level of LEVELS)
describe(`[${level}] matmul kernels = matmulRef (same activation rounding), within 1e-5 of Σ|w·x|`, () => {
  for (const [type, name] of MATMULS) {
    it(`${name}`, () => {
      LEVEL = level;
      const info = GGML_TYPES.get(type)!;
      const bs = Math.max(info.blockSize, 32);
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 3 }), // blocks per row (of 256 for K-quants)
          fc.integer({ min: 1, max: 41 }), // rows (over 32: the decode loops' eight runs hold several groups)
          fc.integer({ min: 1, max: 3 }), // tokens
          fc.integer(),
          fc.constantFrom(1e-3, 1, 50),
          (nb, rows, T, seed, scale) => {
            const rng = new Rng(seed);
            const cols = nb * (KQ.has(type) ? 256 : bs);
            const wf = randn(rng, rows * cols, 0.1);
            if (seed % 7 === 0) wf.fill(0, 0, cols); // a zero row
            // weights: quantized from floats where we have ggml's quantizer, else random blocks
            const wq = canQuantize(type) ? quantize(type, wf) : randomTensor(type, rows * cols, 0.1, rng);
            const wd = dequantize(type, wq, rows * cols);
            const x = randn(rng, T * cols, scale);
            const h = harness(8 << 20);
            const wp = h.put(wq), xp = h.put(x), out = h.alloc(T * rows * 4);
            const qp = h.alloc(T * cols), dp = h.alloc(T * cols), bp = h.alloc(T * cols);
            if (KQ.has(type)) for (let t = 0; t < T; t++) h.k.quantize_q8_K(qp + t * cols, dp + (t * cols) / 64, bp + (t * cols) / 8, xp + t * cols * 4, cols);
            else if (type !== GGMLType.F32 && type !== GGMLType.F16 && type !== GGMLType.BF16) for (let t = 0; t < T; t++) h.k.quantize_q8_0(qp + t * cols, dp + (t * cols) / 8, bp + (t * cols) / 8, xp + t * cols * 4, cols);
            const xh = h.alloc(T * cols * 4);
            if (type === GGMLType.F16) h.k.round_f16_row(xh, xp, T * cols);
            if (type === GGMLType.BF16) h.k.round_bf16_row(xh, xp, T * cols);
            const f = h.k[name] as (...a: number[]) => void;
            if (type === GGMLType.Q4_0 || KQ.has(type)) f(out, wp, qp, dp, bp, cols, rows, 0, rows, T, h.alloc(KERNEL_SCRATCH_BYTES), 0);
            else if (type === GGMLType.F32) f(out, wp, xp, cols, rows, 0, rows, T);
            else if (type === GGMLType.F16 || type === GGMLType.BF16) f(out, wp, xh, cols, rows, 0, rows, T);
            else f(out, wp, qp, dp, cols, rows, 0, rows, T, h.alloc(KERNEL_SCRATCH_BYTES), 0);
            const got = h.f32(out, T * rows);
            const want = new Float32Array(T * rows);
            matmulRef(want, { name: 'w', type, rows, cols, bytes: wq, rowBytes: wq.length / rows }, x, T);
            // budget: 1e-5 of Σ|w|·max|x| per output (f32 accumulation in another order)
            const wAbs = new Float32Array(T * rows);
            for (let r = 0; r < rows; r++) {
              let s = 0;
              for (let c = 0; c < cols; c++) s += Math.abs(wd[r * cols + c]!);
              for (let t = 0; t < T; t++) wAbs[t * rows + r] = s * scale * 5;
            }
            for (let i = 0; i < T * rows; i++)
              expect(Math.abs(got[i]! - want[i]!), `${name} out[${i}] wasm ${got[i]} ref ${want[i]}`).toBeLessThanOrEqual(1e-5 * wAbs[i]! + 1e-30);
          },
        ),
        { numRuns: 60 },
      );
      LEVEL = 'simd128';
    });
  }
});

for (const level of LEVELS)
describe(`[${level}] Q4_0 rows interleaved in fours (the backend's Q4_0 layout)`, () => {
  it('repack_q4_0x4 = repackQ4_0x4; q4_0x4Row reads every row back', () => {
    LEVEL = level;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), fc.integer(), (groups, nb, seed) => {
        const rows = 4 * groups, cols = 32 * nb;
        const wq = quantize(GGMLType.Q4_0, randn(new Rng(seed), rows * cols, seed & 1 ? 1e-5 : 1)); // 1e-5: subnormal scales
        const h = harness(1 << 20);
        const wp = h.put(wq), dst = h.alloc(wq.length);
        const subnormal = h.k.repack_q4_0x4(dst, wp, rows, cols);
        const packed = repackQ4_0x4(wq, rows, cols);
        let want = 0;
        for (let o = 0; o < wq.length; o += 18) if (!(wq[o + 1]! & 0x7c) && (wq[o]! | (wq[o + 1]! & 3))) want++;
        expect(subnormal).toBe(want);
        expect(new Uint8Array(h.memory.buffer, dst, wq.length)).toEqual(packed);
        const rowBytes = wq.length / rows;
        for (let r = 0; r < rows; r++) expect(q4_0x4Row(packed, r, cols)).toEqual(wq.subarray(r * rowBytes, (r + 1) * rowBytes));
      }),
      { numRuns: 50 },
    );
    LEVEL = 'simd128';
  });
  it('matmul_q4_0x4 = matmul_q4_0 bit for bit (decode, prefill, any row range of whole groups, both dots)', () => {
    LEVEL = level;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 9 }), fc.integer(), fc.constantFrom(1e-3, 1, 50), (groups, nb, T, seed, scale) => {
        const rng = new Rng(seed);
        const rows = 4 * groups, cols = 32 * nb;
        const wf = randn(rng, rows * cols, seed % 3 === 0 ? 1e-5 : 0.1); // 1e-5: subnormal scales
        if (seed % 5 === 0) wf.fill(0, 0, 4 * cols); // a zero group
        const wq = quantize(GGMLType.Q4_0, wf);
        const x = randn(rng, T * cols, scale);
        const h = harness(4 << 20);
        const wp = h.put(wq), wx = h.put(repackQ4_0x4(wq, rows, cols)), xp = h.put(x);
        const qp = h.alloc(T * cols), dp = h.alloc(T * cols), sp = h.alloc(T * cols);
        for (let t = 0; t < T; t++) h.k.quantize_q8_0(qp + t * cols, dp + (t * cols) / 8, sp + (t * cols) / 8, xp + t * cols * 4, cols);
        const o1 = h.alloc(T * rows * 4), o2 = h.alloc(T * rows * 4);
        h.k.matmul_q4_0(o1, wp, qp, dp, sp, cols, rows, 0, rows, T);
        // two row ranges, as two threads would take them
        const mid = 4 * (seed & 1 ? Math.floor(groups / 2) : groups);
        // both scale conversions (the fast one is exact too, only slow on subnormal scales), both dots
        const scratch = h.alloc(KERNEL_SCRATCH_BYTES);
        for (const subnormalScales of [0, 1])
          for (const dotAdd of [0, 1]) {
            new Float32Array(h.memory.buffer, o2, T * rows).fill(NaN);
            h.k.matmul_q4_0x4(o2, wx, qp, dp, sp, cols, rows, 0, mid, T, subnormalScales, scratch, dotAdd);
            h.k.matmul_q4_0x4(o2, wx, qp, dp, sp, cols, rows, mid, rows, T, subnormalScales, scratch, dotAdd);
            expect(h.f32(o2, T * rows)).toEqual(h.f32(o1, T * rows));
          }
      }),
      { numRuns: 80 },
    );
    // a larger matrix: the decode loop's eight runs hold several groups each, unevenly (two ranges
    // of 37 and 27 groups); prefill over more than one chunk of tokens
    const rows = 256, cols = 2048, rng = new Rng(9);
    const wq = quantize(GGMLType.Q4_0, randn(rng, rows * cols, 0.1));
    for (const T of [1, 2, 21]) {
      const h = harness(8 << 20);
      const scratch = h.alloc(KERNEL_SCRATCH_BYTES);
      const wp = h.put(wq), wx = h.put(repackQ4_0x4(wq, rows, cols)), xp = h.put(randn(rng, T * cols));
      const qp = h.alloc(T * cols), dp = h.alloc(T * cols), sp = h.alloc(T * cols);
      for (let t = 0; t < T; t++) h.k.quantize_q8_0(qp + t * cols, dp + (t * cols) / 8, sp + (t * cols) / 8, xp + t * cols * 4, cols);
      const o1 = h.alloc(T * rows * 4), o2 = h.alloc(T * rows * 4);
      h.k.matmul_q4_0(o1, wp, qp, dp, sp, cols, rows, 0, rows, T);
      for (const dotAdd of [0, 1]) {
        new Float32Array(h.memory.buffer, o2, T * rows).fill(NaN);
        h.k.matmul_q4_0x4(o2, wx, qp, dp, sp, cols, rows, 0, 148, T, 0, scratch, dotAdd);
        h.k.matmul_q4_0x4(o2, wx, qp, dp, sp, cols, rows, 148, rows, T, 0, scratch, dotAdd);
        expect(h.f32(o2, T * rows)).toEqual(h.f32(o1, T * rows));
      }
    }
    LEVEL = 'simd128';
  });
});

for (const level of LEVELS)
describe(`[${level}] rows interleaved in fours, block by block (the backend's BLOCKS4 layout)`, () => {
  const BLOCKS4 = [[GGMLType.Q4_1, 'matmul_q4_1'], [GGMLType.Q5_0, 'matmul_q5_0'], [GGMLType.Q5_1, 'matmul_q5_1'], [GGMLType.Q8_0, 'matmul_q8_0'], [GGMLType.Q2_K, 'matmul_q2_K'], [GGMLType.Q3_K, 'matmul_q3_K'], [GGMLType.Q4_K, 'matmul_q4_K'], [GGMLType.Q5_K, 'matmul_q5_K'], [GGMLType.Q6_K, 'matmul_q6_K']] as const;
  // weights quantized from floats where we have ggml's quantizer, else random blocks (Q2_K, Q3_K)
  const weights = (type: GGMLType, n: number, rng: Rng) => (canQuantize(type) ? quantize(type, randn(rng, n, 0.1)) : randomTensor(type, n, 0.1, rng));
  it('interleave_blocks4 = interleaveBlocks4; blocks4Row reads every row back', () => {
    LEVEL = level;
    for (const [type] of BLOCKS4)
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer(), (groups, nb, seed) => {
          const info = GGML_TYPES.get(type)!, blockBytes = info.typeSize, rows = 4 * groups, cols = 256 * nb, rowBytes = (cols / info.blockSize) * blockBytes;
          const wq = weights(type, rows * cols, new Rng(seed));
          const h = harness(1 << 20);
          const wp = h.put(wq), dst = h.alloc(wq.length);
          h.k.interleave_blocks4(dst, wp, rows, rowBytes, blockBytes);
          const packed = interleaveBlocks4(wq, rows, rowBytes, blockBytes);
          expect(new Uint8Array(h.memory.buffer, dst, wq.length)).toEqual(packed);
          for (let r = 0; r < rows; r++) expect(blocks4Row(packed, r, rowBytes, blockBytes)).toEqual(wq.subarray(r * rowBytes, (r + 1) * rowBytes));
        }),
        { numRuns: 20 },
      );
    LEVEL = 'simd128';
  });
  it('the kernels give the same results, bit for bit, from either layout (decode, prefill, any row range of whole groups)', () => {
    LEVEL = level;
    for (const [type, name] of BLOCKS4) {
      const info = GGML_TYPES.get(type)!, blockBytes = info.typeSize, q8_0 = !KQ.has(type); // Q8_0-quantized activations
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 2 }), fc.constantFrom(1, 2, 3, 17), fc.integer(), (groups, nb, T, seed) => {
          const rng = new Rng(seed);
          const rows = 4 * groups, cols = 256 * nb, rowBytes = (cols / info.blockSize) * blockBytes;
          const wq = weights(type, rows * cols, rng);
          const h = harness(4 << 20);
          const wp = h.put(wq), wx = h.put(interleaveBlocks4(wq, rows, rowBytes, blockBytes)), xp = h.put(randn(rng, T * cols));
          const qp = h.alloc(T * cols), dp = h.alloc(T * cols), bp = h.alloc(T * cols), scratch = h.alloc(KERNEL_SCRATCH_BYTES);
          for (let t = 0; t < T; t++)
            if (q8_0) h.k.quantize_q8_0(qp + t * cols, dp + (t * cols) / 8, bp + (t * cols) / 8, xp + t * cols * 4, cols);
            else h.k.quantize_q8_K(qp + t * cols, dp + (t * cols) / 64, bp + (t * cols) / 8, xp + t * cols * 4, cols);
          const f = h.k[name] as (...a: number[]) => void;
          const call = (out: number, w: number, r0: number, r1: number, x4: number) =>
            q8_0 ? f(out, w, qp, dp, cols, rows, r0, r1, T, scratch, x4) : f(out, w, qp, dp, bp, cols, rows, r0, r1, T, scratch, x4);
          const o1 = h.alloc(T * rows * 4), o2 = h.alloc(T * rows * 4);
          call(o1, wp, 0, rows, 0);
          // two row ranges, as two threads would take them
          const mid = 4 * (seed & 1 ? Math.floor(groups / 2) : groups);
          call(o2, wx, 0, mid, 1);
          call(o2, wx, mid, rows, 1);
          expect(h.f32(o2, T * rows), name).toEqual(h.f32(o1, T * rows));
        }),
        { numRuns: 25 },
      );
    }
    LEVEL = 'simd128';
  });
});

for (const level of LEVELS)
it(`[${level}] a batch gives each token what it alone gives (prefill paths = decode paths, bit for bit)`, () => {
  LEVEL = level;
  for (const [type, name] of [[GGMLType.Q4_0, 'matmul_q4_0'], [GGMLType.Q8_0, 'matmul_q8_0'], [GGMLType.Q5_1, 'matmul_q5_1'], [GGMLType.Q2_K, 'matmul_q2_K'], [GGMLType.Q3_K, 'matmul_q3_K'], [GGMLType.Q4_K, 'matmul_q4_K'], [GGMLType.Q5_K, 'matmul_q5_K'], [GGMLType.Q6_K, 'matmul_q6_K']] as const) {
    const rows = 10, cols = 512, T = 19; // more than one prefill chunk (T_CHUNK = 16), an odd count
    const rng = new Rng(11);
    const wq = canQuantize(type) ? quantize(type, randn(rng, rows * cols, 0.1)) : randomTensor(type, rows * cols, 0.1, rng);
    const h = harness(4 << 20);
    const wp = h.put(wq), xp = h.put(randn(rng, T * cols));
    const qp = h.alloc(T * cols), dp = h.alloc(T * cols), bp = h.alloc(T * cols), scratch = h.alloc(KERNEL_SCRATCH_BYTES);
    const kq = KQ.has(type);
    for (let t = 0; t < T; t++)
      if (kq) h.k.quantize_q8_K(qp + t * cols, dp + (t * cols) / 64, bp + (t * cols) / 8, xp + t * cols * 4, cols);
      else h.k.quantize_q8_0(qp + t * cols, dp + (t * cols) / 8, bp + (t * cols) / 8, xp + t * cols * 4, cols);
    const f = h.k[name] as (...a: number[]) => void;
    const call = (out: number, t0: number, n: number) =>
      !kq && type !== GGMLType.Q4_0
        ? f(out, wp, qp + t0 * cols, dp + (t0 * cols) / 8, cols, rows, 0, rows, n, scratch, 0)
        : f(out, wp, qp + t0 * cols, dp + (t0 * cols) / (kq ? 64 : 8), bp + (t0 * cols) / 8, cols, rows, 0, rows, n, scratch, 0);
    const batch = h.alloc(T * rows * 4), one = h.alloc(rows * 4);
    call(batch, 0, T);
    for (let t = 0; t < T; t++) {
      call(one, t, 1);
      expect(h.f32(batch + t * rows * 4, rows), `${name} token ${t}`).toEqual(h.f32(one, rows));
    }
    if (type === GGMLType.Q4_0) {
      const wx = h.put(repackQ4_0x4(wq.subarray(0, 8 * (wq.length / rows)), 8, cols));
      for (const dotAdd of [0, 1]) {
        h.k.matmul_q4_0x4(batch, wx, qp, dp, bp, cols, 8, 0, 8, T, 0, scratch, dotAdd);
        for (let t = 0; t < T; t++) {
          h.k.matmul_q4_0x4(one, wx, qp + t * cols, dp + (t * cols) / 8, bp + (t * cols) / 8, cols, 8, 0, 8, 1, 0, scratch, dotAdd);
          expect(h.f32(batch + t * 8 * 4, 8), `matmul_q4_0x4 token ${t}`).toEqual(h.f32(one, 8));
        }
      }
    }
  }
  LEVEL = 'simd128';
});

for (const level of LEVELS)
it(`[${level}] matmul_q8_0 reads a weight of −128 (which ggml never writes) as −127`, () => {
  LEVEL = level;
  const rows = 5, cols = 64, T = 2; // decode path (the fifth row) and prefill path (the first four)
  const rng = new Rng(3);
  const wq = quantize(GGMLType.Q8_0, randn(rng, rows * cols, 0.1));
  const clamped = wq.slice();
  for (let r = 0; r < rows; r++) for (const j of [0, 17, 40]) {
    const o = r * 68 + (j >> 5) * 34 + 2 + (j & 31);
    wq[o] = 0x80; // −128
    clamped[o] = 0x81; // −127
  }
  const x = randn(rng, T * cols).map((v, i) => (i % 3 ? -Math.abs(v) : v)); // negative where the weights are
  const h = harness(1 << 20);
  const wp = h.put(wq), xp = h.put(x), qp = h.alloc(T * cols), dp = h.alloc(T * cols), sp = h.alloc(T * cols), out = h.alloc(T * rows * 4);
  for (let t = 0; t < T; t++) h.k.quantize_q8_0(qp + t * cols, dp + (t * cols) / 8, sp + (t * cols) / 8, xp + t * cols * 4, cols);
  h.k.matmul_q8_0(out, wp, qp, dp, cols, rows, 0, rows, T, h.alloc(KERNEL_SCRATCH_BYTES));
  const want = new Float32Array(T * rows);
  matmulRef(want, { name: 'w', type: GGMLType.Q8_0, rows, cols, bytes: clamped, rowBytes: 68 }, x, T);
  h.f32(out, T * rows).forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want[i]!))));
  LEVEL = 'simd128';
});

it('the relaxed-SIMD build is chosen only where it runs and agrees with SIMD128', () => {
  const k = nodeKernels('auto');
  expect(['simd128', 'relaxed']).toContain(k.level);
  // Node 20 on x86-64 with the flag: relaxed is available here
  if (process.arch === 'x64') expect(k.level).toBe('relaxed');
  // V8 before 13 expands the i32 dot-add into three instructions (slower than the pair-dots by
  // ≈ 40 %), so the start-up timing must not pick it there
  if (process.arch === 'x64' && Number(process.versions.v8.split('.')[0]) < 13) expect(k.dotAdd).toBe(false);
});

describe('small kernels = their twins', () => {
  it('rmsnorm, swiglu, add', () => {
    const rng = new Rng(5);
    const h = harness(1 << 20);
    const T = 3, n = 96;
    const x = randn(rng, T * n, 3), w = randn(rng, n), gu = randn(rng, T * 2 * n, 4);
    const xp = h.put(x), wp = h.put(w), out = h.alloc(T * n * 4), gp = h.put(gu);
    h.k.rmsnorm(out, xp, wp, T, n, 1e-5);
    const want = new Float32Array(T * n);
    rmsnormRef(want, x, w, T, n, 1e-5);
    h.f32(out, T * n).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));
    h.k.swiglu(out, gp, T, n, 0, 3); // two column ranges, as two threads would take them
    h.k.swiglu(out, gp, T, n, 3, n);
    swigluRef(want, gu, T, n);
    h.f32(out, T * n).forEach((v, i) => expect(Math.abs(v - want[i]!), `swiglu[${i}] ${v} vs ${want[i]}`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want[i]!))));
    h.k.add(xp, out, T * n - 1); // odd length: vector loop + scalar tail
    const sum = h.f32(xp, T * n);
    for (let i = 0; i < T * n - 1; i++) expect(sum[i]).toBeCloseTo(x[i]! + want[i]!, 4);
    expect(sum[T * n - 1]).toBe(x[T * n - 1]);
  });
});

describe('rope and attention kernels = ropeRef / attentionRef', () => {
  it('over random shapes (MHA and GQA, partial rope, several positions)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(8, 16, 24, 40, 96), // headDim (96: three 32-wide passes)
        fc.integer({ min: 1, max: 3 }), // kv heads
        fc.integer({ min: 1, max: 3 }), // group
        fc.integer({ min: 1, max: 4 }), // T
        fc.integer({ min: 0, max: 9 }), // pos0
        fc.boolean(), // partial rope
        fc.boolean(), // LongRoPE factors and attn_factor
        fc.integer({ min: -1, max: 6 }), // sliding window (0: none; −1: no causal mask, an encoder's)
        fc.integer(),
        (headDim, nKvHeads, group, T, pos0, partial, longRope, window, seed) => {
          const nHeads = nKvHeads * group;
          const ropeDim = partial ? headDim / 2 : headDim;
          const rng = new Rng(seed);
          const ropeFreqFactors = longRope ? Float32Array.from({ length: ropeDim / 2 }, (_, i) => 1 + i * rng.next() * 3) : undefined;
          const s = {
            nHeads, nKvHeads, headDim, ropeDim, ropeFreqBase: 10000, ropeFreqScale: 1, ropeFreqFactors, ropeAttnFactor: longRope ? 1.190238 : 1,
            window, qkvDim: (nHeads + 2 * nKvHeads) * headDim,
          };
          const ctx = pos0 + T;
          const kvDim = nKvHeads * headDim;
          const h = harness(4 << 20);
          // reference: a ref KV cache filled by earlier positions, then this batch
          const ref = new RefOps(NUMERICS.ggml); // an f16 cache, as the kernels'
          const cache = ref.kvCache(1, ctx, kvDim) as unknown as { k: Uint16Array[]; v: Uint16Array[] };
          const early = randn(rng, pos0 * s.qkvDim, 1);
          if (pos0) attentionRef(new Float32Array(pos0 * nHeads * headDim), early, cache as never, 0, pos0, 0, s);
          const qkv = randn(rng, T * s.qkvDim, 1);
          // wasm: the same cache contents and the same rope tables
          // the WASM cache is head-major ([nKvHeads][ctx][headDim]); the reference one position-major
          const headMajor = (c: Uint16Array) => {
            const o = new Uint16Array(c.length);
            for (let p = 0; p < ctx; p++) for (let hh = 0; hh < nKvHeads; hh++) o.set(c.subarray(p * kvDim + hh * headDim, p * kvDim + (hh + 1) * headDim), (hh * ctx + p) * headDim);
            return o;
          };
          const kp = h.put(headMajor(cache.k[0]!)), vp = h.put(headMajor(cache.v[0]!));
          const qp = h.put(qkv);
          const half = ropeDim / 2;
          const cos = new Float32Array(T * half), sin = new Float32Array(T * half);
          ropeCacheRef(cos, sin, T, pos0, s);
          h.k.rope(qp, h.put(cos), h.put(sin), T, s.qkvDim, headDim, ropeDim, 0, nHeads + nKvHeads);
          ropeRef(qkv, T, pos0, s);
          const roped = h.f32(qp, T * s.qkvDim);
          roped.forEach((v, i) => expect(Math.abs(v - qkv[i]!)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(qkv[i]!))));
          expect(h.k.kv_store(kp, vp, qp, T, pos0, nHeads * headDim, nKvHeads, headDim, s.qkvDim, ctx), 'no Inf/NaN stored').toBe(0);
          const out = h.alloc(T * nHeads * headDim * 4), att = h.alloc(ctx * 4);
          // the exact conversion (a cache with Inf/NaN) gives the same bits as the fast one on finite halves
          h.k.attention(out, qp, kp, vp, att, T, pos0, nHeads, nKvHeads, headDim, s.qkvDim, ctx, 0, nHeads, 1 / Math.sqrt(headDim), window, 1);
          const exact = h.f32(out, T * nHeads * headDim).slice();
          h.k.attention(out, qp, kp, vp, att, T, pos0, nHeads, nKvHeads, headDim, s.qkvDim, ctx, 0, nHeads, 1 / Math.sqrt(headDim), window, 0);
          expect(h.f32(out, exact.length)).toEqual(exact);
          const want = new Float32Array(T * nHeads * headDim);
          attentionRef(want, roped, cache as never, 0, T, pos0, s); // same roped input on both sides
          // K and V as stored: bit-identical f16 (same inputs, same ggml rounding)
          expect(new Uint16Array(h.memory.buffer, kp, ctx * kvDim)).toEqual(headMajor(cache.k[0]!));
          expect(new Uint16Array(h.memory.buffer, vp, ctx * kvDim)).toEqual(headMajor(cache.v[0]!));
          h.f32(out, want.length).forEach((v, i) => expect(Math.abs(v - want[i]!), `attention[${i}]`).toBeLessThanOrEqual(2e-5 * (1 + Math.abs(want[i]!))));
          // and both against a brute-force masked softmax in f64 (mask[t][p] = -∞ where p is in the
          // future or, with a window, window or more positions back; window −1: no mask)
          const K = cache.k[0]!, V = cache.v[0]!;
          for (let t = 0; t < T; t++)
            for (let hh = 0; hh < nHeads; hh++) {
              const kvh = Math.floor(hh / group) * headDim, q = t * s.qkvDim + hh * headDim;
              const logit = Array.from({ length: ctx }, (_, p) => {
                const masked = window < 0 ? false : p > pos0 + t || (window > 0 && pos0 + t - p >= window);
                if (masked) return -Infinity;
                let d = 0;
                for (let i = 0; i < headDim; i++) d += roped[q + i]! * fp16ToFp32(K[p * kvDim + kvh + i]!);
                return d / Math.sqrt(headDim);
              });
              const mx = Math.max(...logit), e = logit.map((x) => Math.exp(x - mx)), z = e.reduce((a, b) => a + b, 0);
              for (let i = 0; i < headDim; i++) {
                let acc = 0;
                for (let p = 0; p < ctx; p++) acc += (e[p]! / z) * fp16ToFp32(V[p * kvDim + kvh + i]!);
                const got = want[t * nHeads * headDim + hh * headDim + i]!;
                expect(Math.abs(got - acc), `masked softmax t ${t} head ${hh} dim ${i} window ${window}`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(acc)));
              }
            }
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('f16 → f32 in the kernels', () => {
  it('all three conversions equal the TS twin bit for bit on every one of the 65536 halves (Inf and NaN stay IEEE)', () => {
    const halves = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const want = new Uint32Array(Float32Array.from(halves, (h) => fp16ToFp32(h)).buffer);
    // the twin itself: exponent 31 is Inf (mantissa 0) or NaN with the payload shifted, quieted (as
    // F16C's vcvtph2ps, and as every JS number is); the kernels keep a signalling NaN's quiet bit
    // clear, which arithmetic quiets at its first use: NaNs compare with the quiet bit set
    expect(want[0x7c00]).toBe(0x7f800000);
    expect(want[0xfc00]).toBe(0xff800000);
    expect(want[0x7e00]).toBe(0x7fc00000);
    expect(want[0xfc01]).toBe(0xffc02000);
    const quiet = (b: number) => ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff ? (b | 0x400000) >>> 0 : b);
    for (const level of ['simd128', 'relaxed'] as const) {
      LEVEL = level;
      const h = harness(1 << 20);
      const hp = h.put(halves), out = h.alloc(65536 * 4);
      for (const path of [0, 1, 2, 3]) {
        new Uint32Array(h.memory.buffer, out, 65536).fill(0xdeadbeef);
        h.k.f16_to_f32_row(out, hp, 65536, path);
        const got = new Uint32Array(h.memory.buffer, out, 65536);
        // path 3, the KV cache's fast conversion, is exact on every finite half (attention uses it
        // for layers whose kv_store stored no Inf/NaN)
        const bad = got.findIndex((b, i) => (path < 3 || (i & 0x7c00) !== 0x7c00) && quiet(b) !== want[i]);
        expect(bad, `${level} path ${path}: half 0x${bad.toString(16)} → 0x${got[bad]?.toString(16)}, want 0x${want[bad]?.toString(16)}`).toBe(-1);
        if (path === 3) expect(Number.isFinite(new Float32Array(got.buffer, out, 65536)[0x7c00]), "the fast path is finite on Inf: hence kv_store's flag").toBe(true);
      }
    }
    LEVEL = 'simd128';
  });
  it('kv_store reports an Inf/NaN half, and attention over that cache with exact = 1 propagates it', () => {
    const h = harness(1 << 20);
    const nHeads = 2, nKvHeads = 1, headDim = 64, qkvDim = (nHeads + 2 * nKvHeads) * headDim, ctx = 4;
    const qkv = new Float32Array(2 * qkvDim).fill(0.25);
    qkv[qkvDim + nHeads * headDim + headDim + 3] = Infinity; // token 1's v[3]
    const kp = h.alloc(ctx * headDim * 2), vp = h.alloc(ctx * headDim * 2), qp = h.put(qkv);
    expect(h.k.kv_store(kp, vp, qp, 1, 0, nHeads * headDim, nKvHeads, headDim, qkvDim, ctx)).toBe(0);
    expect(h.k.kv_store(kp, vp, qp + 4 * qkvDim, 1, 1, nHeads * headDim, nKvHeads, headDim, qkvDim, ctx)).toBe(1);
    const out = h.alloc(2 * nHeads * headDim * 4), att = h.alloc(ctx * 4);
    h.k.attention(out, qp, kp, vp, att, 2, 0, nHeads, nKvHeads, headDim, qkvDim, ctx, 0, nHeads, 1 / 8, 0, 1);
    const o = h.f32(out, 2 * nHeads * headDim);
    expect(o[3]).toBe(0.25); // token 0 sees only itself
    expect(o[nHeads * headDim + 3]).toBe(Infinity); // token 1 averages in the Inf
    // the fast conversion would have turned the Inf into a finite 2^16-ish value
    h.k.attention(out, qp, kp, vp, att, 2, 0, nHeads, nKvHeads, headDim, qkvDim, ctx, 0, nHeads, 1 / 8, 0, 0);
    expect(Number.isFinite(h.f32(out, 2 * nHeads * headDim)[nHeads * headDim + 3])).toBe(true);
  });
});
