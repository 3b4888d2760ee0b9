// `npm run kernels [-- types…] [--mb N] [--cols N]`: one thread, one matmul kernel at a time, in
// G MAC/s — a decode matrix×vector (T = 1) from DRAM (a matrix of --mb MB, default 1024: far
// beyond the last-level cache, as a model's weights are), from cache (256 rows), and prefill
// (T = 16, 256 rows), and batched decode (T = 2, 4, 8 sequences' tokens over the DRAM matrix). For kernel work only: model speed is `npm run bench`. Weights are real ggml
// blocks (64 distinct quantized rows, repeated), activations are quantized once as the backend does.
import { nodeKernels } from '../dist/src/backend/wasm/node-host.js';
import { instantiate, KERNEL_STATIC_BYTES, KERNEL_SCRATCH_BYTES } from '../dist/src/backend/wasm/kernels.js';
import { GGMLType, GGML_TYPES } from '../dist/src/quant/ggml-type.js';
import { quantize, canQuantize } from '../dist/src/quant/quantize.js';
import { randomTensor } from '../dist/src/synth/synth.js';
import { Rng } from '../dist/src/util/rng.js';

const args = process.argv.slice(2);
const opt = (k, d) => (args.includes(k) ? Number(args.splice(args.indexOf(k), 2)[1]) : d);
const MB = opt('--mb', 1024), COLS = opt('--cols', 3072), REPS = opt('--reps', 5);
const chosen = nodeKernels('auto');
// Q4_0X4's dot: by i32 dot-add (1) or by i16 pair-dots (0); default: what the backend picks here
const DOT_ADD = opt('--dot-add', chosen.dotAdd ? 1 : 0);
console.log(`kernels: ${chosen.level}, Q4_0x4 dot-add ${DOT_ADD} (picked here: ${chosen.dotAdd ? 1 : 0}), node ${process.version}`);
// default: the layouts the backend stores (…x4: rows interleaved in fours, src/backend/wasm/layout.ts);
// the plain names (Q4_0, Q8_0, Q4_K, …) measure ggml's row layout
const types = args.length ? args : ['Q4_0x4', 'Q8_0x4', 'Q4_Kx4', 'Q5_Kx4', 'Q6_Kx4'];

const kernels = {
  Q4_0: ['matmul_q4_0', 'q8_0'], Q8_0: ['matmul_q8_0', 'q8_0'], Q4_1: ['matmul_q4_1', 'q8_0'], Q5_0: ['matmul_q5_0', 'q8_0'],
  Q5_1: ['matmul_q5_1', 'q8_0'], Q4_0x4: ['matmul_q4_0x4', 'q8_0'], Q2_K: ['matmul_q2_K', 'q8_K'], Q3_K: ['matmul_q3_K', 'q8_K'], Q4_K: ['matmul_q4_K', 'q8_K'],
  Q5_K: ['matmul_q5_K', 'q8_K'], Q6_K: ['matmul_q6_K', 'q8_K'],
  Q8_0x4: ['matmul_q8_0', 'q8_0'], Q2_Kx4: ['matmul_q2_K', 'q8_K'], Q3_Kx4: ['matmul_q3_K', 'q8_K'], Q4_1x4: ['matmul_q4_1', 'q8_0'], Q5_0x4: ['matmul_q5_0', 'q8_0'], Q5_1x4: ['matmul_q5_1', 'q8_0'], Q4_Kx4: ['matmul_q4_K', 'q8_K'], Q5_Kx4: ['matmul_q5_K', 'q8_K'], Q6_Kx4: ['matmul_q6_K', 'q8_K'],
};
const T = 16;
const rowBytesOf = (type) => (COLS / GGML_TYPES.get(type).blockSize) * GGML_TYPES.get(type).typeSize;
/** rows in groups of four, block b of the group's rows side by side */
function interleave4(src, rows, rowBytes, blockBytes) {
  const out = new Uint8Array(src.length);
  for (let r = 0; r < rows; r += 4)
    for (let b = 0; b < rowBytes / blockBytes; b++)
      for (let k = 0; k < 4; k++) out.set(src.subarray((r + k) * rowBytes + b * blockBytes, (r + k) * rowBytes + (b + 1) * blockBytes), r * rowBytes + (4 * b + k) * blockBytes);
  return out;
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

for (const name of types) {
  const type = GGMLType[name.replace('x4', '')];
  const info = GGML_TYPES.get(type);
  const [fn, act] = kernels[name];
  const rowBytes = (COLS / info.blockSize) * info.typeSize;
  const ROWS = Math.ceil((MB << 20) / rowBytes / 64) * 64;
  const src = new Float32Array(64 * COLS).map(() => Math.random() * 2 - 1);
  // types without a quantizer here (Q2_K, Q3_K): synthetic random blocks with sane scales
  let rows64 = canQuantize(type) ? quantize(type, src) : randomTensor(type, 64 * COLS, 0.1, new Rng(1));
  // K-quants with rows interleaved in fours, block by block (the backend's layout for them)
  if (name.endsWith('x4') && name !== 'Q4_0x4') rows64 = interleave4(rows64, 64, rowBytesOf(type), info.typeSize);
  const wBytes = ROWS * rowBytes;
  const scratch = KERNEL_STATIC_BYTES, x = scratch + KERNEL_SCRATCH_BYTES, qs = x + T * COLS * 4, d = qs + T * COLS, bs = d + T * COLS, out = bs + T * COLS, w = out + T * ROWS * 4 + 64;
  const memory = new WebAssembly.Memory({ initial: Math.ceil((w + wBytes + 64 * rowBytes) / 65536), maximum: 65536, shared: true });
  const k = instantiate(chosen.module, memory);
  const u8 = new Uint8Array(memory.buffer);
  for (let r = 0; r < ROWS; r += 64) u8.set(rows64.subarray(0, Math.min(64, ROWS - r) * rowBytes), w + r * rowBytes);
  // the backend's layout for Q4_0, 64 rows at a time through a staging copy (as loading does)
  let sub = 0;
  if (name === 'Q4_0x4')
    for (let r = 0; r < ROWS; r += 64) {
      u8.copyWithin(w + wBytes, w + r * rowBytes, w + (r + 64) * rowBytes);
      sub += k.repack_q4_0x4(w + r * rowBytes, w + wBytes, 64, COLS);
    }
  new Float32Array(memory.buffer, x, T * COLS).set(new Float32Array(T * COLS).map(() => Math.random() * 2 - 1));
  for (let t = 0; t < T; t++) {
    if (act === 'q8_0') k.quantize_q8_0(qs + t * COLS, d + t * (COLS / 32) * 4, bs + t * (COLS / 8), x + t * COLS * 4, COLS);
    else k.quantize_q8_K(qs + t * COLS, d + t * (COLS / 256) * 4, bs + t * (COLS / 16) * 2, x + t * COLS * 4, COLS);
  }
  const run = (rows, TT) => {
    const times = [];
    for (let i = 0; i < REPS; i++) {
      const t0 = performance.now();
      if (name === 'Q4_0x4') k[fn](out, w, qs, d, bs, COLS, rows, 0, rows, TT, sub, scratch, DOT_ADD);
      else if (act === 'q8_0' && name !== 'Q4_0') k[fn](out, w, qs, d, COLS, rows, 0, rows, TT, scratch, name.endsWith('x4') ? 1 : 0);
      else k[fn](out, w, qs, d, bs, COLS, rows, 0, rows, TT, scratch, name.endsWith('x4') ? 1 : 0);
      times.push(performance.now() - t0);
    }
    return ((rows * COLS * TT) / median(times) / 1e6).toFixed(2);
  };
  run(256, 1); // compile and warm
  const dram = run(ROWS, 1), cache = run(256, 1), prefill = run(256, T);
  // a batched decode step of a few sequences: T = 2, 4, 8 over the whole matrix, from DRAM
  const batch = [2, 4, 8].map((tt) => `${tt}: ${run(ROWS, tt)}`).join('  ');
  console.log(`${name.padEnd(5)} ${fn.padEnd(12)} decode DRAM ${dram.padStart(6)}  cache ${cache.padStart(6)}  prefill(T=${T}) ${prefill.padStart(6)}  batch DRAM T=${batch}  G MAC/s`);
}
