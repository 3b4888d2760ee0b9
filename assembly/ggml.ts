// ggml's type ids (ggml.h, enum ggml_type), as src/quant/ggml-type.ts has them: the kernels shared by
// several formats (k_quants.ts, legacy.ts) take one as a compile-time constant and branch on it.
export const GGML_TYPE_Q4_1: i32 = 3;
export const GGML_TYPE_Q5_0: i32 = 6;
export const GGML_TYPE_Q5_1: i32 = 7;
export const GGML_TYPE_Q2_K: i32 = 10;
export const GGML_TYPE_Q3_K: i32 = 11;
export const GGML_TYPE_Q4_K: i32 = 12;
export const GGML_TYPE_Q5_K: i32 = 13;
export const GGML_TYPE_Q6_K: i32 = 14;
