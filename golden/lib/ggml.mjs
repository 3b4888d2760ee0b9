// The ggml oracle: libggml-base.so from node-llama-cpp's prebuilt package, called through koffi.
// quantize_row_<type>_ref / dequantize_row_<type> are ggml's own reference code (ggml-quants.c).
import koffi from 'koffi';
import * as fs from 'node:fs';
import * as path from 'node:path';


export function findLibggmlBase() {
  const here = path.dirname(new URL(import.meta.url).pathname);
  const p = path.join(here, '..', 'node_modules', '@node-llama-cpp', 'linux-x64', 'bins', 'linux-x64', 'libggml-base.so');
  if (!fs.existsSync(p)) throw new Error(`libggml-base.so not found at ${p}`);
  return p;
}

let lib;
export function ggml() {
  if (lib) return lib;
  const so = koffi.load(findLibggmlBase());
  const q = (name) => so.func(`void ${name}(const float *x, _Inout_ uint8_t *y, int64_t k)`);
  const dq = (name) => so.func(`void ${name}(const uint8_t *x, _Inout_ float *y, int64_t k)`);
  const quantize = {};
  const dequantize = {};
  for (const t of ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K', 'q8_K']) {
    quantize[t.toUpperCase()] = q(`quantize_row_${t}_ref`);
    dequantize[t.toUpperCase()] = dq(`dequantize_row_${t}`);
  }
  quantize.F16 = so.func('void ggml_fp32_to_fp16_row(const float *x, _Inout_ uint8_t *y, int64_t n)');
  dequantize.F16 = so.func('void ggml_fp16_to_fp32_row(const uint8_t *x, _Inout_ float *y, int64_t n)');
  quantize.BF16 = so.func('void ggml_fp32_to_bf16_row_ref(const float *x, _Inout_ uint8_t *y, int64_t n)');
  dequantize.BF16 = so.func('void ggml_bf16_to_fp32_row(const uint8_t *x, _Inout_ float *y, int64_t n)');
  lib = { quantize, dequantize };
  return lib;
}

/** block size and bytes per block, from ggml itself (ggml_blck_size / ggml_type_size) */
export function ggmlTypeTable() {
  const so = koffi.load(findLibggmlBase());
  const blck = so.func('int64_t ggml_blck_size(int type)');
  const size = so.func('size_t ggml_type_size(int type)');
  const name = so.func('const char * ggml_type_name(int type)');
  const out = [];
  for (let t = 0; t < 40; t++) {
    const n = name(t);
    if (!n || n === 'NONE') continue;
    out.push({ id: t, name: n, blockSize: Number(blck(t)), typeSize: Number(size(t)) });
  }
  return out;
}
