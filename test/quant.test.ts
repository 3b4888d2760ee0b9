import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GGML_TYPES, GGMLType, ggmlTypeByName } from '../src/quant/ggml-type.js';
import { dequantize } from '../src/quant/dequantize.js';
import { quantize, canQuantize } from '../src/quant/quantize.js';
import { fp16ToFp32, fp32ToFp16, fp32ToBf16, bf16ToFp32 } from '../src/quant/fp16.js';
import { f32FromB64, firstBitDiff, fromB64, golden, tmpDir } from './helpers.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { scaleStats } from '../src/quant/check.js';
import { trainedTensor, trainedValues } from '../src/synth/trained.js';
import { PRESETS, randomTensor, writeSynth } from '../src/synth/synth.js';
import { writeSynthAsync } from '../src/synth/write-node.js';
import { Rng } from '../src/util/rng.js';

interface QuantGolden {
  types: { id: number; name: string; blockSize: number; typeSize: number }[];
  cases: { type: string; recipe: string; x: string; q: string; y: string }[];
}
const G = golden<QuantGolden>('quant.json');

describe('ggml type table', () => {
  it('block size and bytes per block match ggml for every type we name', () => {
    let checked = 0;
    for (const g of G.types) {
      const ours = GGML_TYPES.get(g.id as GGMLType);
      if (!ours) continue;
      expect(ours.name.toLowerCase(), `type ${g.id}`).toBe(g.name.toLowerCase());
      expect([ours.blockSize, ours.typeSize], g.name).toEqual([g.blockSize, g.typeSize]);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(30);
  });
  it('fields tile each block exactly', () => {
    for (const t of GGML_TYPES.values()) {
      let off = 0;
      for (const f of t.fields) {
        expect(f.offset, `${t.name}.${f.name}`).toBe(off);
        off += f.bytes;
      }
      expect(off, t.name).toBe(t.typeSize);
    }
  });
});

describe('bit-exact with ggml (golden/data/quant.json)', () => {
  const types = [...new Set(G.cases.map((c) => c.type))];
  it('covers every required type', () => {
    expect(types.sort()).toEqual(
      ['BF16', 'F16', 'Q2_K', 'Q3_K', 'Q4_0', 'Q4_1', 'Q4_K', 'Q5_0', 'Q5_1', 'Q5_K', 'Q6_K', 'Q8_0', 'Q8_K'].sort(),
    );
  });
  for (const name of types) {
    const type = ggmlTypeByName(name)!;
    const cases = G.cases.filter((c) => c.type === name);
    it(`dequantize_row_${name}`, () => {
      for (const c of cases) {
        const want = f32FromB64(c.y);
        const got = dequantize(type, fromB64(c.q), want.length);
        const i = firstBitDiff(got, want);
        expect(i, `${name}/${c.recipe}: first differing element ${i}: ours ${got[i]} ggml ${want[i]}`).toBe(-1);
      }
    });
    if (canQuantize(type)) {
      it(`quantize_row_${name}_ref`, () => {
        for (const c of cases) {
          const x = f32FromB64(c.x);
          const want = fromB64(c.q);
          const got = quantize(type, x);
          const i = got.findIndex((b, k) => b !== want[k]);
          expect(i, `${name}/${c.recipe}: first differing byte ${i}: ours ${got[i]} ggml ${want[i]}`).toBe(-1);
        }
      });
    }
  }
});

describe('fp16 / bf16', () => {
  it('fp16 → fp32 → fp16 is the identity on every non-NaN half', () => {
    for (let h = 0; h < 65536; h++) {
      const f = fp16ToFp32(h);
      if (Number.isNaN(f)) continue;
      expect(fp32ToFp16(f)).toBe(h);
    }
  });
  it('fp32 → fp16 rounds to nearest even (property)', () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true, min: -60000, max: 60000 }), (x) => {
        const h = fp32ToFp16(x);
        const y = fp16ToFp32(h);
        // no other half is closer
        for (const n of [h - 1, h + 1]) {
          const z = fp16ToFp32(n & 0xffff);
          if (Number.isFinite(z) && (n & 0x7c00) !== 0x7c00) expect(Math.abs(z - x)).toBeGreaterThanOrEqual(Math.abs(y - x));
        }
      }),
      { numRuns: 2000 },
    );
  });
  it('bf16 round trip', () => {
    for (const v of [0, 1, -1, 3.140625, 1e30, -2.5e-20]) expect(bf16ToFp32(fp32ToBf16(v))).toBe(bf16ToFp32(fp32ToBf16(bf16ToFp32(fp32ToBf16(v)))));
    expect(bf16ToFp32(fp32ToBf16(1.00390625))).toBe(1); // tie → even
  });
});

describe("benchmark files drawn like a trained model's (synth --weights trained)", () => {
  it('scaleStats counts the f16 scale fields of each block, and which are subnormal or zero', () => {
    // three Q8_0 blocks (d at bytes 0–1): subnormal 0x0001, zero, normal 1.0; −0 counts as zero
    const q8 = new Uint8Array(4 * 34);
    [0x0001, 0x0000, 0x3c00, 0x8000].forEach((h, b) => ((q8[b * 34] = h & 0xff), (q8[b * 34 + 1] = h >> 8)));
    expect(scaleStats(GGMLType.Q8_0, q8)).toEqual({ scales: 4, subnormal: 1, zero: 2 });
    // a Q4_K block: d (bytes 0–1) the largest subnormal 0x03ff, dmin (2–3) the smallest normal 0x0400
    const q4k = new Uint8Array(144);
    q4k.set([0xff, 0x03, 0x00, 0x04]);
    expect(scaleStats(GGMLType.Q4_K, q4k)).toEqual({ scales: 2, subnormal: 1, zero: 0 });
    // Q6_K's d sits at the block's end (bytes 208–209)
    const q6k = new Uint8Array(210);
    q6k[208] = 0x10;
    expect(scaleStats(GGMLType.Q6_K, q6k)).toEqual({ scales: 1, subnormal: 1, zero: 0 });
    expect(scaleStats(GGMLType.F16, new Uint8Array(8))).toEqual({ scales: 0, subnormal: 0, zero: 0 });
  });

  it('values: the RMS asked for, heavy tails, outlier channels, the same bytes from the same seed', () => {
    const rows = 256, cols = 1024, rms = 0.02;
    const w = trainedValues(rows, cols, rms, new Rng(3));
    const m2 = w.reduce((a, v) => a + v * v, 0) / w.length;
    expect(Math.sqrt(m2) / rms).toBeGreaterThan(0.9);
    expect(Math.sqrt(m2) / rms).toBeLessThan(1.1);
    const kurtosis = w.reduce((a, v) => a + v ** 4, 0) / w.length / m2 ** 2;
    expect(kurtosis).toBeGreaterThan(3.5); // a normal's is 3
    const colRms = Array.from({ length: cols }, (_, c) => Math.sqrt(Array.from({ length: rows }, (_, r) => w[r * cols + c]! ** 2).reduce((a, b) => a + b) / rows));
    const median = [...colRms].sort((a, b) => a - b)[cols >> 1]!;
    const outliers = colRms.filter((x) => x > 1.8 * median).length;
    expect(outliers).toBeGreaterThan(0.002 * cols);
    expect(outliers).toBeLessThan(0.03 * cols);
    expect(trainedValues(rows, cols, rms, new Rng(3))).toEqual(w);
  });

  it('quantized, the block scales fall as in real files: graded by block, not all-or-nothing per field as random blocks', () => {
    const frac = (b: Uint8Array, t: GGMLType) => {
      const st = scaleStats(t, b);
      return st.subnormal / st.scales;
    };
    // Q4_K (d and dmin): random blocks draw both fields from one scale, so one field is subnormal in every block or in none
    const trainedQ4K = frac(trainedTensor(GGMLType.Q4_K, 64, 3072, 0.011, new Rng(1)), GGMLType.Q4_K);
    const randomQ4K = frac(randomTensor(GGMLType.Q4_K, 64 * 3072, 0.011, new Rng(1)), GGMLType.Q4_K);
    expect([0, 0.5, 1]).toContain(randomQ4K);
    expect(trainedQ4K).toBeGreaterThan(0.05);
    expect(trainedQ4K).toBeLessThan(0.45);
    // Q8_0 at a small RMS: a few blocks subnormal (real files' small Q8_0 scales), none in random blocks
    expect(frac(trainedTensor(GGMLType.Q8_0, 64, 3072, 0.0088, new Rng(1)), GGMLType.Q8_0)).toBeGreaterThan(0.001);
    expect(frac(randomTensor(GGMLType.Q8_0, 64 * 3072, 0.0088, new Rng(1)), GGMLType.Q8_0)).toBe(0);
    // and the quantizer is the ggml-exact one: the same bytes as quantize() of the drawn values
    expect(trainedTensor(GGMLType.Q6_K, 64, 3072, 0.02, new Rng(1))).toEqual(quantize(GGMLType.Q6_K, trainedValues(64, 3072, 0.02, new Rng(1))));
  });

  it('writeSynthAsync on worker threads writes the same bytes as writeSynth on the main thread', async () => {
    const dir = tmpDir();
    const o = { shape: { ...PRESETS.tiny!, nLayers: 2 }, type: 'Q4_K_M', seed: 4, weights: 'trained' as const };
    writeSynth(path.join(dir, 'a.gguf'), o);
    await writeSynthAsync(path.join(dir, 'b.gguf'), o, 2);
    expect(fs.readFileSync(path.join(dir, 'b.gguf')).equals(fs.readFileSync(path.join(dir, 'a.gguf')))).toBe(true);
    expect(() => writeSynth(path.join(dir, 'c.gguf'), { ...o, weights: 'real' as never })).toThrow(/unknown weights 'real' \(blocks or trained\)/);
  }, 60_000);
});
