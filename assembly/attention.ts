// Attention over the KV cache: kv_store (K and V rounded to f16 as ggml does, head-major; kv_store_f32
// keeps them f32, llama.cpp's -ctk f32 -ctv f32) and causal / sliding-window softmax attention per head
// over either. Twin: attentionRef (src/backend/ref/ops.ts) over RefKvCache f16 or f32.
import { f16_to_f32, f32_to_f16_bits, hsum_f32, kv_f16x4, kv_f16x8_hi, kv_f16x8_lo } from './lanes';
import { TOUCH_AHEAD } from './rows';
import { q8_0_block } from './activations';

// One layer's K (and V) cache is f16, head-major: [nKvHeads][ctx][headDim], so that attention reads
// each head's keys and values as one sequential stream (a position-major cache puts a head's
// 2·headDim bytes of every position kvDim·2 bytes apart: a stride the prefetcher does not follow).

// store k, v of T tokens (from qkv) as f16 at positions pos0… of one layer's cache; returns 1 if it
// stored a half of exponent 31 (±Inf or NaN: attention must then convert this layer exactly), else 0
export function kv_store(kPtr: usize, vPtr: usize, qkvPtr: usize, T: i32, pos0: i32, qDim: i32, nKvHeads: i32, headDim: i32, qkvDim: i32, ctx: i32): i32 {
  const kvDim = nKvHeads * headDim;
  let special: u32 = 0;
  for (let t = 0; t < T; t++) {
    const src = qkvPtr + (<usize>(t * qkvDim + qDim) << 2);
    for (let h = 0; h < nKvHeads; h++) {
      const at = <usize>((h * ctx + pos0 + t) * headDim) << 1;
      const dk = kPtr + at, dv = vPtr + at;
      const sk = src + (<usize>(h * headDim) << 2), sv = sk + (<usize>kvDim << 2);
      for (let i = 0; i < headDim; i++) {
        const hk = f32_to_f16_bits(load<f32>(sk + (<usize>i << 2))), hv = f32_to_f16_bits(load<f32>(sv + (<usize>i << 2)));
        store<u16>(dk + (<usize>i << 1), hk);
        store<u16>(dv + (<usize>i << 1), hv);
        special |= <u32>((hk & 0x7c00) == 0x7c00) | <u32>((hv & 0x7c00) == 0x7c00);
      }
    }
  }
  return <i32>special;
}

// store k, v of T tokens as f32 (the f32 cache: nothing rounded), same layout with 4-byte elements
export function kv_store_f32(kPtr: usize, vPtr: usize, qkvPtr: usize, T: i32, pos0: i32, qDim: i32, nKvHeads: i32, headDim: i32, qkvDim: i32, ctx: i32): i32 {
  const kvDim = nKvHeads * headDim;
  for (let t = 0; t < T; t++) {
    const src = qkvPtr + (<usize>(t * qkvDim + qDim) << 2);
    for (let h = 0; h < nKvHeads; h++) {
      const at = <usize>((h * ctx + pos0 + t) * headDim) << 2;
      const sk = src + (<usize>(h * headDim) << 2);
      memory.copy(kPtr + at, sk, <usize>headDim << 2);
      memory.copy(vPtr + at, sk + (<usize>kvDim << 2), <usize>headDim << 2);
    }
  }
  return 0;
}

// store k, v of T tokens as q8_0 (llama.cpp's -ctk q8_0 -ctv q8_0): each (head, position) row of headDim
// values is headDim/32 blocks of 34 bytes, an f16 d and 32 i8 q, quantized as ggml-cpu's x86
// quantize_row_q8_0 (d = amax/127, q = nearest-even(x·127/amax); twin: RefKvCache.storeRow). headDim % 32 == 0.
export function kv_store_q8_0(kPtr: usize, vPtr: usize, qkvPtr: usize, T: i32, pos0: i32, qDim: i32, nKvHeads: i32, headDim: i32, qkvDim: i32, ctx: i32): i32 {
  const kvDim = nKvHeads * headDim, nb = headDim >> 5;
  const rowBytes = <usize>(nb * Q8_0_BLOCK);
  for (let t = 0; t < T; t++) {
    const src = qkvPtr + (<usize>(t * qkvDim + qDim) << 2);
    for (let h = 0; h < nKvHeads; h++) {
      const at = <usize>(h * ctx + pos0 + t) * rowBytes;
      const sk = src + (<usize>(h * headDim) << 2);
      q8_0_row(kPtr + at, sk, nb);
      q8_0_row(vPtr + at, sk + (<usize>kvDim << 2), nb);
    }
  }
  return 0;
}
const Q8_0_BLOCK = 34;
@inline function q8_0_row(dst: usize, x: usize, nb: i32): void {
  for (let b = 0; b < nb; b++, x += 128, dst += Q8_0_BLOCK) store<u16>(dst, f32_to_f16_bits(q8_0_block(dst + 2, x) / 127.0));
}
// the 32 values of a q8_0 block, times s, into 8 f32x4 accumulated by the caller: lane group g of 0…7
@inline function q8_group(blk: usize, g: i32): v128 {
  const half = v128.load(blk + 2 + (<usize>(g >> 2) << 4));
  const w = (g & 2) ? i16x8.extend_high_i8x16_s(half) : i16x8.extend_low_i8x16_s(half);
  return f32x4.convert_i32x4_s((g & 1) ? i32x4.extend_high_i16x8_s(w) : i32x4.extend_low_i16x8_s(w));
}

// 4 cached values from dimension i of a K or V row: f32 as stored, or 4 halves widened
@inline function kv4(row: usize, i: i32, f32kv: bool, exact: bool): v128 {
  if (f32kv) return v128.load(row + (<usize>i << 2));
  return kv_f16x4(i32x4.shl(i32x4.extend_low_i16x8_s(v128.load64_zero(row + (<usize>i << 1))), 13), exact);
}
@inline function kv1(row: usize, i: i32, f32kv: bool): f32 {
  return f32kv ? load<f32>(row + (<usize>i << 2)) : f16_to_f32(load<u16>(row + (<usize>i << 1)));
}


// causal attention for query heads [h0, h1) of T tokens at positions pos0…:
// out[t, h·hd…] = Σ_{pos0+t-window < p ≤ pos0+t} softmax_p(q·k_p · scale) · v_p over one layer's f16 cache
// (window 0: every p ≤ pos0+t; window −1: every p < pos0+T, no causal mask).
// attPtr: scratch of (pos0+T) f32 per thread. (twin: attentionRef)
export const ATT_FLOOR: f32 = reinterpret<f32>(<u32>0x0d800000); // 2^-100
// exact: 1 when the layer's cache holds an Inf/NaN half (kv_store said so), for the exact conversion.
// kvType: 0 the f16 cache (kv_store), 1 f32 (kv_store_f32), 2 q8_0 (kv_store_q8_0).
export function attention(outPtr: usize, qkvPtr: usize, kPtr: usize, vPtr: usize, attPtr: usize, T: i32, pos0: i32, nHeads: i32, nKvHeads: i32, headDim: i32, qkvDim: i32, ctx: i32, h0: i32, h1: i32, scale: f32, window: i32, exact: i32, kvType: i32): void {
  if (kvType == 1) attention_heads(false, 1, outPtr, qkvPtr, kPtr, vPtr, attPtr, T, pos0, nHeads, nKvHeads, headDim, qkvDim, ctx, h0, h1, scale, window);
  else if (kvType == 2) attention_heads(false, 2, outPtr, qkvPtr, kPtr, vPtr, attPtr, T, pos0, nHeads, nKvHeads, headDim, qkvDim, ctx, h0, h1, scale, window);
  else if (exact != 0) attention_heads(true, 0, outPtr, qkvPtr, kPtr, vPtr, attPtr, T, pos0, nHeads, nKvHeads, headDim, qkvDim, ctx, h0, h1, scale, window);
  else attention_heads(false, 0, outPtr, qkvPtr, kPtr, vPtr, attPtr, T, pos0, nHeads, nKvHeads, headDim, qkvDim, ctx, h0, h1, scale, window);
}
@inline export function attention_heads(exact: bool, kind: i32, outPtr: usize, qkvPtr: usize, kPtr: usize, vPtr: usize, attPtr: usize, T: i32, pos0: i32, nHeads: i32, nKvHeads: i32, headDim: i32, qkvDim: i32, ctx: i32, h0: i32, h1: i32, scale: f32, window: i32): void {
  const group = nHeads / nKvHeads;
  const f32kv = kind == 1, q8kv = kind == 2;
  const rowBytes: usize = q8kv ? <usize>((headDim >> 5) * Q8_0_BLOCK) : <usize>headDim << (f32kv ? 2 : 1);
  let touched = i32x4.splat(0);
  for (let t = 0; t < T; t++) {
    // causal, and with a sliding window only the last `window` positions (0: all): positions p0 … n-1;
    // window −1: no mask, every query sees all pos0 + T positions (an encoder: vision/fast.ts)
    const n = window < 0 ? pos0 + T : pos0 + t + 1;
    const p0 = window > 0 && n > window ? n - window : 0;
    const m = n - p0, skip = <usize>p0 * rowBytes;
    for (let h = h0; h < h1; h++) {
      const q = qkvPtr + (<usize>(t * qkvDim + h * headDim) << 2);
      const head = <usize>((h / group) * ctx) * rowBytes; // this head's [ctx][headDim] in K and V
      // scores q·k_p · scale, and their max. Meanwhile the next KV head's k_p and v_p are touched
      // (one load per line), so that the next head finds its keys and values in cache (attention is
      // latency-bound: without touches 12 ms a token on mini, touching ahead in the same head 8.6,
      // the next head's 7); the first head of the range touches its own v_p (for the pass over V
      // below) and its keys TOUCH_AHEAD bytes on (see the matmuls).
      let max: f32 = -Infinity;
      let k = kPtr + head + skip;
      const kLast = kPtr + head + <usize>ctx * rowBytes - rowBytes;
      const first = h == h0, next: usize = h + 1 < h1 && (h + 1) / group != h / group ? <usize>ctx * rowBytes : 0;
      for (let p = 0, v = vPtr + head + skip; p < m; p++, k += rowBytes, v += rowBytes) {
        if (first) {
          const kt = k + TOUCH_AHEAD <= kLast ? k + TOUCH_AHEAD : k;
          for (let j: usize = 0; j < rowBytes; j += 64) {
            touched = i32x4.add(touched, v128.load32_zero(kt + j));
            touched = i32x4.add(touched, v128.load32_zero(v + j));
          }
        }
        if (next) {
          for (let j: usize = 0; j < rowBytes; j += 64) {
            touched = i32x4.add(touched, v128.load32_zero(k + next + j));
            touched = i32x4.add(touched, v128.load32_zero(v + next + j));
          }
        }
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
        let i = 0;
        if (q8kv) {
          for (let blk = k; i < headDim; i += 32, blk += Q8_0_BLOCK) {
            const dd = f32x4.splat(f16_to_f32(load<u16>(blk)));
            const qi = q + (<usize>i << 2);
            let s0 = f32x4.mul(v128.load(qi), q8_group(blk, 0)), s1 = f32x4.mul(v128.load(qi, 16), q8_group(blk, 1));
            s0 = f32x4.add(s0, f32x4.mul(v128.load(qi, 32), q8_group(blk, 2)));
            s1 = f32x4.add(s1, f32x4.mul(v128.load(qi, 48), q8_group(blk, 3)));
            s0 = f32x4.add(s0, f32x4.mul(v128.load(qi, 64), q8_group(blk, 4)));
            s1 = f32x4.add(s1, f32x4.mul(v128.load(qi, 80), q8_group(blk, 5)));
            s0 = f32x4.add(s0, f32x4.mul(v128.load(qi, 96), q8_group(blk, 6)));
            s1 = f32x4.add(s1, f32x4.mul(v128.load(qi, 112), q8_group(blk, 7)));
            a0 = f32x4.add(a0, f32x4.mul(s0, dd));
            a1 = f32x4.add(a1, f32x4.mul(s1, dd));
          }
        }
        for (; i + 8 <= headDim; i += 8) {
          if (f32kv) {
            a0 = f32x4.add(a0, f32x4.mul(v128.load(q + (<usize>i << 2)), v128.load(k + (<usize>i << 2))));
            a1 = f32x4.add(a1, f32x4.mul(v128.load(q + (<usize>i << 2), 16), v128.load(k + (<usize>i << 2), 16)));
          } else {
            const hk = v128.load(k + (<usize>i << 1));
            a0 = f32x4.add(a0, f32x4.mul(v128.load(q + (<usize>i << 2)), kv_f16x8_lo(hk, exact)));
            a1 = f32x4.add(a1, f32x4.mul(v128.load(q + (<usize>i << 2), 16), kv_f16x8_hi(hk, exact)));
          }
        }
        let d = hsum_f32(f32x4.add(a0, a1));
        for (; i < headDim; i++) d += load<f32>(q + (<usize>i << 2)) * kv1(k, i, f32kv);
        d *= scale;
        store<f32>(attPtr + (<usize>p << 2), d);
        if (d > max) max = d;
      }
      // softmax numerators and their sum. A numerator under 2^-100 counts as 0 (as in attentionRef):
      // beside the max's 1 it is far below f32 resolution, and the pass over V would otherwise
      // multiply by subnormal floats, ~100 cycles each (peaked attention: 1+ ms a token on mini)
      let sum: f32 = 0;
      for (let p = 0; p < m; p++) {
        const x = Mathf.exp(load<f32>(attPtr + (<usize>p << 2)) - max);
        const e = select<f32>(x, 0, x >= ATT_FLOOR);
        store<f32>(attPtr + (<usize>p << 2), e);
        sum += e;
      }
      const inv = f32x4.splat(<f32>1.0 / sum);
      // Σ_p e_p·v_p / sum, 32 dimensions per pass over the positions (one cache line of each v_p)
      const o = outPtr + (<usize>(t * nHeads * headDim + h * headDim) << 2);
      const vh = vPtr + head + skip;
      const eShift: usize = f32kv ? 2 : 1;
      let i = 0;
      for (; i + 32 <= headDim; i += 32) {
        let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        let v = q8kv ? vh + <usize>((i >> 5) * Q8_0_BLOCK) : vh + (<usize>i << eShift);
        for (let p = 0; p < m; p++, v += rowBytes) {
          if (q8kv) {
            const a = f32x4.splat(load<f32>(attPtr + (<usize>p << 2)) * f16_to_f32(load<u16>(v)));
            a0 = f32x4.add(a0, f32x4.mul(a, q8_group(v, 0)));
            a1 = f32x4.add(a1, f32x4.mul(a, q8_group(v, 1)));
            a2 = f32x4.add(a2, f32x4.mul(a, q8_group(v, 2)));
            a3 = f32x4.add(a3, f32x4.mul(a, q8_group(v, 3)));
            a4 = f32x4.add(a4, f32x4.mul(a, q8_group(v, 4)));
            a5 = f32x4.add(a5, f32x4.mul(a, q8_group(v, 5)));
            a6 = f32x4.add(a6, f32x4.mul(a, q8_group(v, 6)));
            a7 = f32x4.add(a7, f32x4.mul(a, q8_group(v, 7)));
            continue;
          }
          const a = v128.load32_splat(attPtr + (<usize>p << 2));
          if (f32kv) {
            a0 = f32x4.add(a0, f32x4.mul(a, v128.load(v)));
            a1 = f32x4.add(a1, f32x4.mul(a, v128.load(v, 16)));
            a2 = f32x4.add(a2, f32x4.mul(a, v128.load(v, 32)));
            a3 = f32x4.add(a3, f32x4.mul(a, v128.load(v, 48)));
            a4 = f32x4.add(a4, f32x4.mul(a, v128.load(v, 64)));
            a5 = f32x4.add(a5, f32x4.mul(a, v128.load(v, 80)));
            a6 = f32x4.add(a6, f32x4.mul(a, v128.load(v, 96)));
            a7 = f32x4.add(a7, f32x4.mul(a, v128.load(v, 112)));
          } else {
            const v0 = v128.load(v), v1 = v128.load(v, 16), v2 = v128.load(v, 32), v3 = v128.load(v, 48);
            a0 = f32x4.add(a0, f32x4.mul(a, kv_f16x8_lo(v0, exact)));
            a1 = f32x4.add(a1, f32x4.mul(a, kv_f16x8_hi(v0, exact)));
            a2 = f32x4.add(a2, f32x4.mul(a, kv_f16x8_lo(v1, exact)));
            a3 = f32x4.add(a3, f32x4.mul(a, kv_f16x8_hi(v1, exact)));
            a4 = f32x4.add(a4, f32x4.mul(a, kv_f16x8_lo(v2, exact)));
            a5 = f32x4.add(a5, f32x4.mul(a, kv_f16x8_hi(v2, exact)));
            a6 = f32x4.add(a6, f32x4.mul(a, kv_f16x8_lo(v3, exact)));
            a7 = f32x4.add(a7, f32x4.mul(a, kv_f16x8_hi(v3, exact)));
          }
        }
        const oi = o + (<usize>i << 2);
        v128.store(oi, f32x4.mul(a0, inv));
        v128.store(oi, f32x4.mul(a1, inv), 16);
        v128.store(oi, f32x4.mul(a2, inv), 32);
        v128.store(oi, f32x4.mul(a3, inv), 48);
        v128.store(oi, f32x4.mul(a4, inv), 64);
        v128.store(oi, f32x4.mul(a5, inv), 80);
        v128.store(oi, f32x4.mul(a6, inv), 96);
        v128.store(oi, f32x4.mul(a7, inv), 112);
      }
      for (; i + 8 <= headDim; i += 8) {
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
        let v = vh + (<usize>i << eShift);
        for (let p = 0; p < m; p++, v += rowBytes) {
          const a = v128.load32_splat(attPtr + (<usize>p << 2));
          a0 = f32x4.add(a0, f32x4.mul(a, kv4(v, 0, f32kv, exact)));
          a1 = f32x4.add(a1, f32x4.mul(a, kv4(v, 4, f32kv, exact)));
        }
        v128.store(o + (<usize>i << 2), f32x4.mul(a0, inv));
        v128.store(o + (<usize>i << 2), f32x4.mul(a1, inv), 16);
      }
      for (; i < headDim; i++) {
        let acc: f32 = 0;
        let v = vh + (<usize>i << eShift);
        for (let p = 0; p < m; p++, v += rowBytes) acc += load<f32>(attPtr + (<usize>p << 2)) * kv1(v, 0, f32kv);
        store<f32>(o + (<usize>i << 2), acc * f32x4.extract_lane(inv, 0));
      }
    }
  }
  if (T < 0) v128.store(outPtr, touched); // the touches must look used; T is never negative
}
