// Float weights: F32 (32 bits per weight), F16 and BF16 (16), dotted with f32 activations (rounded to
// f16 / bf16 first, ggml's vec_dot_type for those types). Twin: matmulRef (src/backend/ref/ops.ts).
import { f16_to_f32, f16x8_hi, f16x8_lo, hsum_f32, kv_f16x8_hi, kv_f16x8_lo, round_f16 } from './lanes';

// F32 weights × f32 activations
export function matmul_f32(outPtr: usize, wPtr: usize, xPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32): void {
  const rowBytes = <usize>cols << 2;
  for (let r = r0; r < r1; r++) {
    const w = wPtr + <usize>r * rowBytes;
    for (let t = 0; t < T; t++) {
      const x = xPtr + <usize>t * rowBytes;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
      let c = 0;
      for (; c + 8 <= cols; c += 8) {
        const o = <usize>c << 2;
        a0 = f32x4.add(a0, f32x4.mul(v128.load(w + o), v128.load(x + o)));
        a1 = f32x4.add(a1, f32x4.mul(v128.load(w + o + 16), v128.load(x + o + 16)));
      }
      let s = hsum_f32(f32x4.add(a0, a1));
      for (; c < cols; c++) s += load<f32>(w + (<usize>c << 2)) * load<f32>(x + (<usize>c << 2));
      store<f32>(outPtr + (<usize>(t * rows + r) << 2), s);
    }
  }
}

// F16 weights × activations rounded to f16 (ggml's vec_dot_type for F16); xPtr holds those
// rounded activations as f32 (see round_f16_row). cols % 8 == 0.
export function matmul_f16(outPtr: usize, wPtr: usize, xPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32): void {
  matmul_half(false, outPtr, wPtr, xPtr, cols, rows, r0, r1, T);
}

// F16 or BF16 (a constant at each call site) weights × f32 activations, one row at a time
@inline export function matmul_half(bf16: bool, outPtr: usize, wPtr: usize, xPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32): void {
  const rowBytes = <usize>cols << 1;
  for (let r = r0; r < r1; r++) {
    const w = wPtr + <usize>r * rowBytes;
    for (let t = 0; t < T; t++) {
      const x = xPtr + (<usize>t * <usize>cols << 2);
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
      for (let c = 0; c < cols; c += 8) {
        const h = v128.load(w + (<usize>c << 1));
        // bf16 is the top half of an f32
        const lo = bf16 ? i32x4.shl(i32x4.extend_low_i16x8_u(h), 16) : f16x8_lo(h);
        const hi = bf16 ? i32x4.shl(i32x4.extend_high_i16x8_u(h), 16) : f16x8_hi(h);
        a0 = f32x4.add(a0, f32x4.mul(lo, v128.load(x + (<usize>c << 2))));
        a1 = f32x4.add(a1, f32x4.mul(hi, v128.load(x + (<usize>c << 2) + 16)));
      }
      store<f32>(outPtr + (<usize>(t * rows + r) << 2), hsum_f32(f32x4.add(a0, a1)));
    }
  }
}

// x → f16-rounded values (as f32), for F16 matmuls
export function round_f16_row(outPtr: usize, xPtr: usize, n: i32): void {
  for (let i = 0; i < n; i++) store<f32>(outPtr + (<usize>i << 2), round_f16(load<f32>(xPtr + (<usize>i << 2))));
}

// n halves → f32 by the kernels' three conversions: path 0 scalar (f16_to_f32), 1 vector (f16x8_lo/hi,
// the weights' scales and F16 weights), 2 the KV cache's exact one (kv_f16x8_lo/hi), 3 its fast one
// (finite halves only); n a multiple of 8 for 1–3.
// For their twin test on every half. (twin: fp16ToFp32)
export function f16_to_f32_row(outPtr: usize, hPtr: usize, n: i32, path: i32): void {
  if (path === 0) {
    for (let i = 0; i < n; i++) store<f32>(outPtr + (<usize>i << 2), f16_to_f32(load<u16>(hPtr + (<usize>i << 1))));
    return;
  }
  for (let i = 0; i < n; i += 8) {
    const h = v128.load(hPtr + (<usize>i << 1));
    const o = outPtr + (<usize>i << 2);
    v128.store(o, path === 1 ? f16x8_lo(h) : path === 2 ? kv_f16x8_lo(h, true) : kv_f16x8_lo(h, false));
    v128.store(o, path === 1 ? f16x8_hi(h) : path === 2 ? kv_f16x8_hi(h, true) : kv_f16x8_hi(h, false), 16);
  }
}

// BF16 weights × activations rounded to bf16 (ggml's vec_dot_type for BF16), given as f32
export function matmul_bf16(outPtr: usize, wPtr: usize, xPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32): void {
  matmul_half(true, outPtr, wPtr, xPtr, cols, rows, r0, r1, T);
}

// x → bf16-rounded values (as f32): round to nearest even, NaN kept quiet (ggml_compute_fp32_to_bf16)
export function round_bf16_row(outPtr: usize, xPtr: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const u = load<u32>(xPtr + (<usize>i << 2));
    const h: u32 = (u & 0x7fffffff) > 0x7f800000 ? ((u >> 16) | 64) : ((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    store<u32>(outPtr + (<usize>i << 2), h << 16);
  }
}
