// phi3-ts WASM kernels (AssemblyScript, SIMD128, imported shared memory).
// Pure functions: (outPtr, inPtrs…, sizes) → void; no allocation, no globals.
// Each kernel's TS reference twin lives in src/backend/ref/ops.ts.

/** rmsnorm: out[i] = x[i] / sqrt(mean(x²) + eps) * w[i]   (twin: rmsnormRef) */
export function rmsnorm(outPtr: usize, xPtr: usize, wPtr: usize, n: i32, eps: f32): void {
  let ss: f32 = 0;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(xPtr + (<usize>i << 2));
    ss += v * v;
  }
  const scale: f32 = <f32>1.0 / Mathf.sqrt(ss / <f32>n + eps);
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(outPtr + o, load<f32>(xPtr + o) * scale * load<f32>(wPtr + o));
  }
}
