// The small ops: rmsnorm, rope (NEOX), swiglu, add. Twins: rmsnormRef, ropeRef, swigluRef
// (src/backend/ref/ops.ts).

// ── the small ops ──────────────────────────────────────────────────────────────────────────────

// out[t,:] = x[t,:] / sqrt(mean(x²) + eps) · w   (twin: rmsnormRef)
export function rmsnorm(outPtr: usize, xPtr: usize, wPtr: usize, T: i32, n: i32, eps: f32): void {
  for (let t = 0; t < T; t++) {
    const x = xPtr + (<usize>(t * n) << 2), o = outPtr + (<usize>(t * n) << 2);
    let ss: f64 = 0;
    for (let i = 0; i < n; i++) {
      const v = <f64>load<f32>(x + (<usize>i << 2));
      ss += v * v;
    }
    const scale = <f32>(1.0 / Math.sqrt(ss / <f64>n + <f64>eps));
    for (let i = 0; i < n; i++) store<f32>(o + (<usize>i << 2), load<f32>(x + (<usize>i << 2)) * scale * load<f32>(wPtr + (<usize>i << 2)));
  }
}

// NEOX rope over heads [h0, h1) of each token of qkv [T, qkvDim] (q heads then k heads);
// cos/sin tables [T, ropeDim/2] are computed by the caller (twin: ropeRef)
export function rope(qkvPtr: usize, cosPtr: usize, sinPtr: usize, T: i32, qkvDim: i32, headDim: i32, ropeDim: i32, h0: i32, h1: i32): void {
  const half = ropeDim >> 1;
  for (let t = 0; t < T; t++) {
    const c = cosPtr + (<usize>(t * half) << 2), s = sinPtr + (<usize>(t * half) << 2);
    for (let h = h0; h < h1; h++) {
      const o = qkvPtr + (<usize>(t * qkvDim + h * headDim) << 2);
      for (let i = 0; i < half; i++) {
        const a = o + (<usize>i << 2), b = o + (<usize>(i + half) << 2);
        const x0 = load<f32>(a), x1 = load<f32>(b);
        const cs = load<f32>(c + (<usize>i << 2)), sn = load<f32>(s + (<usize>i << 2));
        store<f32>(a, x0 * cs - x1 * sn);
        store<f32>(b, x0 * sn + x1 * cs);
      }
    }
  }
}

// out[t,i] = silu(gu[t,i]) · gu[t, hiddenDim+i]   (twin: swigluRef)
export function swiglu(outPtr: usize, guPtr: usize, T: i32, hiddenDim: i32, i0: i32, i1: i32): void {
  for (let t = 0; t < T; t++) {
    const g = guPtr + (<usize>(2 * t * hiddenDim) << 2), o = outPtr + (<usize>(t * hiddenDim) << 2);
    for (let i = i0; i < i1; i++) {
      const x = load<f32>(g + (<usize>i << 2));
      store<f32>(o + (<usize>i << 2), (x / (<f32>1.0 + Mathf.exp(-x))) * load<f32>(g + (<usize>(hiddenDim + i) << 2)));
    }
  }
}

// x += y over n floats
export function add(xPtr: usize, yPtr: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(xPtr + (<usize>i << 2), f32x4.add(v128.load(xPtr + (<usize>i << 2)), v128.load(yPtr + (<usize>i << 2))));
  for (; i < n; i++) store<f32>(xPtr + (<usize>i << 2), load<f32>(xPtr + (<usize>i << 2)) + load<f32>(yPtr + (<usize>i << 2)));
}
