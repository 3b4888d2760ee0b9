import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GGML_TYPES, GGMLType, ggmlTypeByName } from '../src/quant/ggml-type.js';
import { dequantize } from '../src/quant/dequantize.js';
import { quantize, canQuantize } from '../src/quant/quantize.js';
import { fp16ToFp32, fp32ToFp16, fp32ToBf16, bf16ToFp32 } from '../src/quant/fp16.js';
import { f32FromB64, firstBitDiff, fromB64, golden } from './helpers.js';

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
