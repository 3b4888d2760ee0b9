// Live oracle: our quantize/dequantize vs ggml's own (libggml-base.so), on random inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ggml } from '../lib/ggml.mjs';
import { quantize } from '../../dist/src/quant/quantize.js';
import { dequantize } from '../../dist/src/quant/dequantize.js';
import { GGML_TYPES, ggmlTypeByName } from '../../dist/src/quant/ggml-type.js';

const { quantize: gq, dequantize: gdq } = ggml();
const QUANTIZE = ['F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K', 'Q8_K'];
const DEQUANT_ONLY = ['Q2_K', 'Q3_K'];

// inputs: blocks of 256 with a per-block scale spanning tiny to large, zeros, constants and outliers
const block = fc.record({
  scale: fc.constantFrom(0, 1e-8, 1e-4, 0.02, 1, 300, 30000),
  kind: fc.constantFrom('normal', 'zero', 'const', 'outlier', 'positive'),
  values: fc.array(fc.float({ min: -1, max: 1, noNaN: true }), { minLength: 256, maxLength: 256 }),
});
const input = fc.array(block, { minLength: 1, maxLength: 3 }).map((bs) => {
  const x = new Float32Array(bs.length * 256);
  bs.forEach((b, i) => b.values.forEach((v, j) => {
    x[i * 256 + j] = b.kind === 'zero' ? 0 : b.kind === 'const' ? b.scale : b.kind === 'positive' ? Math.abs(v) * b.scale
      : b.kind === 'outlier' && j % 37 === 0 ? v * b.scale * 50 : v * b.scale;
  }));
  return x;
});

const bytesOf = (name, n) => { const t = GGML_TYPES.get(ggmlTypeByName(name)); return (n / t.blockSize) * t.typeSize; };

for (const name of QUANTIZE) {
  test(`quantize_row_${name}_ref and dequantize_row_${name}: bit-exact on random inputs`, () => {
    fc.assert(fc.property(input, (x) => {
      const want = new Uint8Array(bytesOf(name, x.length));
      gq[name](x, want, x.length);
      const got = quantize(ggmlTypeByName(name), x);
      const i = got.findIndex((b, k) => b !== want[k]);
      assert.equal(i, -1, `${name}: first differing byte ${i}`);
      const y = new Float32Array(x.length);
      gdq[name](want, y, x.length);
      const ours = dequantize(ggmlTypeByName(name), want, x.length);
      assert.deepEqual(new Uint32Array(ours.buffer), new Uint32Array(y.buffer));
    }), { numRuns: 200 });
  });
}
for (const name of DEQUANT_ONLY) {
  test(`dequantize_row_${name}: bit-exact on ggml-quantized random inputs`, () => {
    fc.assert(fc.property(input, (x) => {
      const q = new Uint8Array(bytesOf(name, x.length));
      gq[name](x, q, x.length);
      const y = new Float32Array(x.length);
      gdq[name](q, y, x.length);
      assert.deepEqual(new Uint32Array(dequantize(ggmlTypeByName(name), q, x.length).buffer), new Uint32Array(y.buffer));
    }), { numRuns: 200 });
  });
}
