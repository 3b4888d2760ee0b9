/**
 * The WASM kernels' typed interface, and loading: one compiled module (build/kernels.wasm, from
 * assembly/index.ts), instantiated over a shared WebAssembly.Memory per bank and per thread.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Exports of build/kernels.wasm; pointers are byte addresses in the instance's memory. */
export interface Kernels {
  quantize_q8_0(qsPtr: number, dPtr: number, xPtr: number, n: number): void;
  quantize_q8_K(qsPtr: number, dPtr: number, bsumsPtr: number, xPtr: number, n: number): void;
  matmul_q4_0(outPtr: number, wPtr: number, qsPtr: number, dPtr: number, cols: number, rows: number, r0: number, r1: number, T: number): void;
  matmul_q8_0(outPtr: number, wPtr: number, qsPtr: number, dPtr: number, cols: number, rows: number, r0: number, r1: number, T: number): void;
  matmul_q4_K(outPtr: number, wPtr: number, qsPtr: number, dPtr: number, bsPtr: number, cols: number, rows: number, r0: number, r1: number, T: number): void;
  matmul_q5_K(outPtr: number, wPtr: number, qsPtr: number, dPtr: number, bsPtr: number, cols: number, rows: number, r0: number, r1: number, T: number): void;
  matmul_q6_K(outPtr: number, wPtr: number, qsPtr: number, dPtr: number, cols: number, rows: number, r0: number, r1: number, T: number): void;
  matmul_f32(outPtr: number, wPtr: number, xPtr: number, cols: number, rows: number, r0: number, r1: number, T: number): void;
  matmul_f16(outPtr: number, wPtr: number, xPtr: number, cols: number, rows: number, r0: number, r1: number, T: number): void;
  round_f16_row(outPtr: number, xPtr: number, n: number): void;
  rmsnorm(outPtr: number, xPtr: number, wPtr: number, T: number, n: number, eps: number): void;
  rope(qkvPtr: number, cosPtr: number, sinPtr: number, T: number, qkvDim: number, headDim: number, ropeDim: number, h0: number, h1: number): void;
  kv_store(kPtr: number, vPtr: number, qkvPtr: number, T: number, pos0: number, qDim: number, kvDim: number, qkvDim: number): void;
  attention(
    outPtr: number, qkvPtr: number, kPtr: number, vPtr: number, attPtr: number, T: number, pos0: number,
    nHeads: number, nKvHeads: number, headDim: number, qkvDim: number, h0: number, h1: number, scale: number,
  ): void;
  swiglu(outPtr: number, guPtr: number, T: number, hiddenDim: number): void;
  add(xPtr: number, yPtr: number, n: number): void;
}

/** the package root (where build/ and dist/ live), from this module's location in src/ or dist/src/ */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj) && JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'phi3-ts') return dir;
    dir = path.dirname(dir);
  }
  throw new Error('phi3-ts: cannot find the package root from ' + import.meta.url);
}

/**
 * Bytes at the start of every memory that belong to the kernels: AssemblyScript places static data
 * (Mathf.exp's table) at address 1024, and every instantiation — one per thread and bank — writes
 * it again. Allocations start above this.
 */
export const KERNEL_STATIC_BYTES = 65536;

let compiled: WebAssembly.Module | undefined;

/** the compiled kernel module (SIMD128; validated before use) */
export function kernelModule(): WebAssembly.Module {
  if (compiled) return compiled;
  const file = path.join(packageRoot(), 'build', 'kernels.wasm');
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\``);
  const bytes = fs.readFileSync(file);
  if (!WebAssembly.validate(bytes)) throw new Error(`${file}: this JavaScript engine cannot run WASM SIMD128 with threads`);
  compiled = new WebAssembly.Module(bytes);
  return compiled;
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
