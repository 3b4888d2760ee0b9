// phi3-ts WASM kernels: AssemblyScript, SIMD128, over an imported shared memory.
//
// What this is: the hot loops of the forward pass. Every kernel is pure —
// (outPtr, inPtrs…, sizes) → void — with no allocation and no globals, so any number of worker
// threads can run it on disjoint row ranges of the same memory. Each kernel's TypeScript twin is
// the reference backend's op of the same name (src/backend/ref/ops.ts: matmulRef, rmsnormRef,
// ropeRef, attentionRef, swigluRef) or the activation quantizer (src/quant/activations.ts:
// quantizeQ8_0Act, quantizeQ8KAct); test/kernels.test.ts holds every kernel to its twin.
//
// Two builds come from these files (asconfig.json): SIMD128, and relaxed SIMD, where
// `ASC_FEATURE_RELAXED_SIMD` switches the integer dots to i8×i7 dot instructions. The runtime
// picks relaxed only where the engine validates it and a start-up self-test agrees with SIMD128.
//
// Quantized matmuls follow ggml-cpu: the activation row is quantized once per op (Q8_0 for the
// legacy types, Q8_K for K-quants; see quantize_q8_0 / quantize_q8_K), then each weight block is
// dotted in integers and scaled once. Activations are kept as split arrays — qs (i8[n]),
// d (f32[n/32 or n/256], f16-rounded like ggml's block field) and, for Q8_K, bsums (i16[n/16]) —
// so loads are aligned and contiguous.
//
// Lane layouts are drawn where they matter; `r0..r1` is the row range of the calling thread.
//
// The files, one per weight format and a few shared ones (this file only names the exports):
//   lanes.ts        f16 conversions, horizontal sums, nibbles, vector constants
//   activations.ts  quantize_q8_0, quantize_q8_K (the activation row, once per op)
//   rows.ts         how weights stream: row runs, touches ahead, token chunks, BLOCKS4
//   ggml.ts         ggml type ids, for the drivers shared by several formats
//   q4_0.ts q8_0.ts                          one file each (Q4_0 with its interleaved Q4_0X4 form)
//   q2_K.ts q3_K.ts q4_K.ts q5_K.ts q6_K.ts  each format's block; k_common.ts, k_quants.ts the driver
//   legacy.ts       Q4_1, Q5_0, Q5_1 (one driver over three small blocks)
//   float.ts        F32, F16, BF16
//   small_ops.ts    rmsnorm, rope, swiglu, add
//   attention.ts    kv_store, attention

export { quantize_q8_0, quantize_q8_K } from './activations';
export { interleave_blocks4 } from './rows';
export { matmul_q4_0, repack_q4_0x4, matmul_q4_0x4 } from './q4_0';
export { matmul_q8_0 } from './q8_0';
export { matmul_q4_K, matmul_q5_K, matmul_q6_K, matmul_q2_K, matmul_q3_K } from './k_quants';
export { matmul_f32, matmul_f16, round_f16_row, f16_to_f32_row, matmul_bf16, round_bf16_row } from './float';
export { rmsnorm, rope, swiglu, add } from './small_ops';
export { kv_store, kv_store_f32, kv_store_q8_0, attention } from './attention';
export { matmul_q4_1, matmul_q5_0, matmul_q5_1 } from './legacy';
