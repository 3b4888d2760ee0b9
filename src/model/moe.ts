/**
 * Mixture-of-experts routing as llama.cpp's build_moe_ffn runs it for `phimoe` (softmax gating,
 * norm_w): each token's router logits (nExpert) → softmax → the k most probable experts → their
 * probabilities renormalised to sum to 1. Every step is rounded to f32 as ggml's CPU ops round it.
 *
 * (Hugging Face's PhimoeSparseMoeBlock routes by "sparsemixer" instead; llama.cpp, and so phi3-ts,
 * use the softmax top-k above.)
 */

export interface Routes {
  /** (T, k) chosen experts per token, most probable first (the order ggml sums them in) */
  experts: Int32Array;
  /** (T, k) their weights, summing to 1 per token */
  weights: Float32Array;
  /** the smallest gap, over the T tokens, between the k-th expert's probability and the next one's:
   *  near 0, another implementation's rounding may route that token to another expert */
  margin: number;
}

/** route T tokens: logits (T, nExpert) → the top-k experts and their renormalised softmax weights */
export function routeTopK(logits: Float32Array, T: number, nExpert: number, k: number): Routes {
  const experts = new Int32Array(T * k);
  const weights = new Float32Array(T * k);
  const p = new Float32Array(nExpert);
  const order = Array.from({ length: nExpert }, (_, i) => i);
  let margin = Infinity;
  for (let t = 0; t < T; t++) {
    const row = logits.subarray(t * nExpert, (t + 1) * nExpert);
    // ggml_soft_max: exp(x − max) in f32, summed in double, scaled by the f32 reciprocal
    let max = -Infinity;
    for (let e = 0; e < nExpert; e++) max = Math.max(max, row[e]!);
    let sum = 0;
    for (let e = 0; e < nExpert; e++) {
      p[e] = Math.exp(row[e]! - max);
      sum += p[e]!;
    }
    const inv = Math.fround(1 / sum);
    for (let e = 0; e < nExpert; e++) p[e] = p[e]! * inv;
    // ggml_top_k: the k largest, descending (ties: the lower expert index first)
    order.sort((a, b) => p[b]! - p[a]! || a - b);
    if (k < nExpert) margin = Math.min(margin, p[order[k - 1]!]! - p[order[k]!]!);
    // norm_w: weights / ggml_sum_rows(weights)
    let total = 0;
    for (let j = 0; j < k; j++) total += p[order[j]!]!;
    const sumW = Math.fround(total);
    for (let j = 0; j < k; j++) {
      experts[t * k + j] = order[j]!;
      weights[t * k + j] = p[order[j]!]! / sumW;
    }
  }
  return { experts, weights, margin };
}

/** for each expert, the (token, slot) pairs routed to it, tokens ascending: slot index t·k + j */
export function tokensPerExpert(r: Routes, nExpert: number): number[][] {
  const lists: number[][] = Array.from({ length: nExpert }, () => []);
  r.experts.forEach((e, slot) => lists[e]!.push(slot));
  return lists;
}
