/**
 * Numerics modes: what the reference backend rounds, and where. One object says it all, so that
 * a logits file can state what it computed (`phi3 logits` writes the mode into its JSON).
 *
 * - `exact` (the ref backend's default) computes the model as its equations say, the way HF
 *   transformers in float64 does: F32 KV cache, activations never rounded to a weight's
 *   vec_dot_type, rope angles in f64, quantized weights dequantized to their exact value
 *   (d·sc·q − dmin·m in f64), every dot product summed in f64. Buffers between ops stay f32.
 * - `ggml` emulates llama.cpp's CPU defaults (non-flash attention, F16 KV cache): each matmul's
 *   input rounded through the weight type's vec_dot_type (Q8_0/Q8_1/Q8_K blocks, f16, bf16), K and V
 *   stored as f16, q (pre-scaled by 1/√headDim, as llama.cpp's phi3 graph does) rounded to f16 for
 *   q·k, the softmax weights rounded to f16 for ·V, rope angles in ggml's f32 steps, RMSNorm's
 *   scale in f32 as ggml_rms_norm, dequantization bit-exact with ggml's.
 */
export interface Numerics {
  readonly name: NumericsName;
  /** element type of the K and V cache (q8_0: ggml-cpu's x86 block quantizer, the twin of the wasm --kv-type q8_0) */
  readonly kv: 'f32' | 'f16' | 'q8_0';
  /** round each matmul's input through the weight type's vec_dot_type (ggml_mul_mat's src1 conversion) */
  readonly vecDotActivations: boolean;
  /** round q·(1/√headDim) to f16 before q·k and the softmax weights to f16 before ·V (ggml's mul_mat with f16 K/V) */
  readonly f16Attention: boolean;
  /** rope angles and rotations in f64 (else ggml_rope_cache_init's f32 steps) */
  readonly ropeF64: boolean;
  /** weights dequantized to their exact value in f64 (else ggml's f32 roundings, bit for bit) */
  readonly exactDequant: boolean;
  /** RMSNorm's 1/√(mean + eps) and x·scale rounded to f32 as ggml_rms_norm (then ·w as ggml_mul) */
  readonly ggmlRmsNorm: boolean;
}

export type NumericsName = 'exact' | 'ggml';

export const NUMERICS: Readonly<Record<NumericsName, Numerics>> = {
  exact: { name: 'exact', kv: 'f32', vecDotActivations: false, f16Attention: false, ropeF64: true, exactDequant: true, ggmlRmsNorm: false },
  ggml: { name: 'ggml', kv: 'f16', vecDotActivations: true, f16Attention: true, ropeF64: false, exactDequant: false, ggmlRmsNorm: true },
};

export function numericsByName(name: string): Numerics {
  const n = NUMERICS[name as NumericsName];
  if (!n) throw new RangeError(`unknown numerics mode '${name}' (expected ${Object.keys(NUMERICS).join(' or ')})`);
  return n;
}
