import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GGUFFile, parseGguf, BufferSource } from '../src/gguf/reader.js';
import { openGguf } from '../src/gguf/file-source.js';
import { serializeGguf, writeGguf, kv, type GGUFTensorSpec } from '../src/gguf/writer.js';
import { GgufError, GGUFValueType, type GGUFArray, type GGUFKV } from '../src/gguf/types.js';
import { GGML_TYPES, GGMLType } from '../src/quant/ggml-type.js';
import { PHI3_VOCAB, tmpDir } from './helpers.js';

// ── arbitraries ──────────────────────────────────────────────────────────────────────────────
const f32 = fc.float({ noNaN: true }).map((x) => Math.fround(x));
const scalarOf = (t: GGUFValueType): fc.Arbitrary<unknown> => {
  switch (t) {
    case GGUFValueType.UINT8: return fc.integer({ min: 0, max: 255 });
    case GGUFValueType.INT8: return fc.integer({ min: -128, max: 127 });
    case GGUFValueType.UINT16: return fc.integer({ min: 0, max: 65535 });
    case GGUFValueType.INT16: return fc.integer({ min: -32768, max: 32767 });
    case GGUFValueType.UINT32: return fc.integer({ min: 0, max: 0xffffffff });
    case GGUFValueType.INT32: return fc.integer({ min: -0x80000000, max: 0x7fffffff });
    case GGUFValueType.FLOAT32: return f32;
    case GGUFValueType.BOOL: return fc.boolean();
    case GGUFValueType.STRING: return fc.string({ unit: 'grapheme', maxLength: 20 });
    case GGUFValueType.UINT64: return fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    case GGUFValueType.INT64: return fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n });
    case GGUFValueType.FLOAT64: return fc.double({ noNaN: true });
    default: throw new Error('not a scalar');
  }
};
const TYPED: Partial<Record<GGUFValueType, (a: never[]) => GGUFArray['items']>> = {
  [GGUFValueType.UINT8]: (a) => Uint8Array.from(a),
  [GGUFValueType.INT8]: (a) => Int8Array.from(a),
  [GGUFValueType.UINT16]: (a) => Uint16Array.from(a),
  [GGUFValueType.INT16]: (a) => Int16Array.from(a),
  [GGUFValueType.UINT32]: (a) => Uint32Array.from(a),
  [GGUFValueType.INT32]: (a) => Int32Array.from(a),
  [GGUFValueType.FLOAT32]: (a) => Float32Array.from(a),
  [GGUFValueType.FLOAT64]: (a) => Float64Array.from(a),
  [GGUFValueType.UINT64]: (a) => BigUint64Array.from(a),
  [GGUFValueType.INT64]: (a) => BigInt64Array.from(a),
};
const SCALAR_TYPES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12] as GGUFValueType[];
const arrayOf = (depth: number): fc.Arbitrary<GGUFArray> =>
  fc.constantFrom(...SCALAR_TYPES, ...(depth < 2 ? [GGUFValueType.ARRAY] : [])).chain((itemType) =>
    itemType === GGUFValueType.ARRAY
      ? fc.array(arrayOf(depth + 1), { maxLength: 3 }).map((items) => ({ itemType, items }))
      : fc.array(scalarOf(itemType), { maxLength: 8 }).map((a) => ({
          itemType,
          items: (TYPED[itemType]?.(a as never[]) ?? a) as GGUFArray['items'],
        })),
  );
const kvArb: fc.Arbitrary<GGUFKV> = fc.constantFrom(...SCALAR_TYPES, GGUFValueType.ARRAY).chain((type) =>
  type === GGUFValueType.ARRAY
    ? arrayOf(0).map((value) => ({ type, value }) as GGUFKV)
    : scalarOf(type).map((value) => ({ type, value }) as GGUFKV),
);
const RUNNABLE = [...GGML_TYPES.values()].filter((t) => t.type !== GGMLType.I64 && t.type !== GGMLType.F64);
const tensorArb = fc
  .record({
    t: fc.constantFrom(...RUNNABLE),
    blocks: fc.integer({ min: 1, max: 3 }),
    rest: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 3 }),
    seed: fc.integer(),
  })
  .map(({ t, blocks, rest, seed }) => {
    const shape = [blocks * t.blockSize, ...rest];
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Uint8Array((n / t.blockSize) * t.typeSize).map((_, i) => (i * 31 + seed) & 0xff);
    return { type: t.type, shape, data };
  });
const specArb = fc.record({
  version: fc.constantFrom(2 as const, 3 as const),
  metadata: fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 24 }).filter((k) => k !== 'general.alignment'), kvArb), {
    selector: ([k]) => k,
    maxLength: 8,
  }),
  alignment: fc.option(fc.constantFrom(1, 8, 32, 64, 256), { nil: undefined }),
  tensors: fc.uniqueArray(fc.tuple(fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 40 }), tensorArb), {
    selector: ([n]) => n,
    maxLength: 5,
  }),
});

function toSpec(s: fc.infer<typeof specArb>) {
  const metadata: [string, GGUFKV][] = [...s.metadata];
  if (s.alignment !== undefined) metadata.push(['general.alignment', kv.u32(s.alignment)]);
  const tensors: GGUFTensorSpec[] = s.tensors.map(([name, t]) => ({ name, ...t }));
  return { version: s.version, metadata, tensors };
}

describe('GGUF writer → reader', () => {
  it('round-trips random metadata of every type and random tensor tables exactly', () => {
    fc.assert(
      fc.property(specArb, (s) => {
        const spec = toSpec(s);
        const bytes = serializeGguf(spec);
        const f = GGUFFile.fromBytes(bytes);
        expect(f.header.version).toBe(spec.version);
        expect([...f.metadata.entries()]).toEqual(spec.metadata);
        expect(f.tensors.map((t) => [t.name, t.type, t.shape])).toEqual(spec.tensors.map((t) => [t.name, t.type, t.shape]));
        for (const t of spec.tensors) expect(f.readTensor(f.tensor(t.name)!)).toEqual(t.data);
        // write(read(x)) is byte-exact
        const again = serializeGguf({
          version: f.header.version as 2 | 3,
          metadata: f.metadata,
          tensors: f.tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.type, data: f.readTensor(t) })),
        });
        expect(Buffer.compare(Buffer.from(again), Buffer.from(bytes))).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('writes files tensor by tensor with llama.cpp alignment', () => {
    const dir = tmpDir();
    const p = path.join(dir, 'w.gguf');
    const data = new Uint8Array(18 * 3).fill(7);
    writeGguf(p, {
      metadata: [['general.architecture', kv.str('phi3')]],
      tensors: [
        { name: 'a', shape: [96], type: GGMLType.Q4_0, data },
        { name: 'b', shape: [5], type: GGMLType.F32, data: () => new Uint8Array(20).fill(1) },
      ],
    });
    const f = openGguf(p);
    expect(f.header.dataOffset % 32).toBe(0);
    expect(f.tensor('b')!.offset).toBe(64); // 54 bytes padded to 64
    expect(fs.statSync(p).size).toBe(f.header.dataOffset + 64 + 32);
    expect(f.readTensor(f.tensor('a')!)).toEqual(data);
    f.close();
  });
});

// ── malformed files ──────────────────────────────────────────────────────────────────────────
function validFile(): Uint8Array {
  return serializeGguf({
    metadata: [
      ['general.architecture', kv.str('phi3')],
      ['phi3.block_count', kv.u32(2)],
      ['tokenizer.ggml.tokens', kv.arr(GGUFValueType.STRING, ['<unk>', '<s>', '</s>', 'a', 'b'])],
      ['tokenizer.ggml.scores', kv.arr(GGUFValueType.FLOAT32, new Float32Array([0, 0, 0, -1, -2]))],
      ['nested', kv.arr(GGUFValueType.ARRAY, [{ itemType: GGUFValueType.INT32, items: new Int32Array([1, 2]) }])],
    ],
    tensors: [
      { name: 'token_embd.weight', shape: [32, 5], type: GGMLType.Q8_0, data: new Uint8Array(34 * 5).fill(3) },
      { name: 'output_norm.weight', shape: [32], type: GGMLType.F32, data: new Uint8Array(128) },
    ],
  });
}

function expectGgufError(bytes: Uint8Array, re?: RegExp) {
  let err: unknown;
  try {
    parseGguf(new BufferSource(bytes, 'bad.gguf'));
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(GgufError);
  if (re) expect((err as Error).message).toMatch(re);
  return err as GgufError;
}

describe('GGUF reader on bad input', () => {
  it('names the problem', () => {
    const good = validFile();
    const bad = good.slice();
    bad[0] = 0x47 + 1;
    expect(expectGgufError(bad, /not a GGUF file/).offset).toBe(0);
    const v = good.slice();
    new DataView(v.buffer).setUint32(4, 7, true);
    expectGgufError(v, /unsupported GGUF version 7/);
    const big = good.slice();
    new DataView(big.buffer).setBigUint64(8, 1n << 40n, true);
    expectGgufError(big, /tensor count .* exceeds/);
    expectGgufError(good.slice(0, good.length - 10), /runs past the end of the file.*tensor 'output_norm.weight'/);
    expectGgufError(good.slice(0, 40), /tensor count 2 exceeds/);
    expectGgufError(good.slice(0, 100), /unexpected end of file reading/);
  });

  it('reports the key of a bad value', () => {
    const good = validFile();
    // inflate the length of the tokenizer.ggml.tokens array
    const key = Buffer.from('tokenizer.ggml.tokens');
    const at = Buffer.from(good).indexOf(key) + key.length + 4 /* type */ + 4; /* item type */
    const bad = good.slice();
    new DataView(bad.buffer).setBigUint64(at, 1n << 50n, true);
    expectGgufError(bad, /array length .* exceeds.*key 'tokenizer.ggml.tokens'/);
  });

  it('fuzz: 10,000 mutations give only GgufError, quickly, and never a table beyond the file', () => {
    const good = validFile();
    const mutation = fc.oneof(
      // flip bytes
      fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }).map(
        (flips) => (b: Uint8Array) => {
          const c = b.slice();
          for (const [i, v] of flips) c[i] = v;
          return c;
        },
      ),
      // truncate
      fc.nat(good.length).map((n) => (b: Uint8Array) => b.slice(0, n)),
      // inflate a u64 count / length at an 8-aligned or arbitrary offset
      fc
        .tuple(fc.nat(good.length - 8), fc.constantFrom(1n << 32n, 1n << 62n, (1n << 64n) - 1n, 1000n, 255n))
        .map(([i, v]) => (b: Uint8Array) => {
          const c = b.slice();
          new DataView(c.buffer).setBigUint64(i, v, true);
          return c;
        }),
      // inflate a u32 (types, n_dims)
      fc.tuple(fc.nat(good.length - 4), fc.integer({ min: 0, max: 0xffffffff })).map(([i, v]) => (b: Uint8Array) => {
        const c = b.slice();
        new DataView(c.buffer).setUint32(i, v, true);
        return c;
      }),
    );
    let errors = 0;
    fc.assert(
      fc.property(mutation, (mutate) => {
        const bytes = mutate(good);
        const t0 = performance.now();
        try {
          const h = parseGguf(new BufferSource(bytes, 'fuzz.gguf'));
          for (const t of h.tensors) expect(h.dataOffset + t.offset + t.byteSize).toBeLessThanOrEqual(bytes.length);
        } catch (e) {
          if (!(e instanceof GgufError)) throw e;
          errors++;
        }
        expect(performance.now() - t0).toBeLessThan(500);
      }),
      { numRuns: 10_000 },
    );
    expect(errors).toBeGreaterThan(1000);
  });
});

describe('real vocab file', () => {
  it.runIf(fs.existsSync(PHI3_VOCAB))('opens ../shared/models/ggml-vocab-phi-3.gguf', () => {
    const f = openGguf(PHI3_VOCAB);
    expect(f.getString('general.architecture')).toBe('phi3');
    expect(f.getStringArray('tokenizer.ggml.tokens').length).toBe(32064);
    expect(f.tensors.length).toBe(0);
    f.close();
  });
  it('names the file when it cannot be opened', () => {
    expect(() => openGguf('/nonexistent/x.gguf')).toThrow(/x\.gguf/);
  });
});

describe('GGUF writer, large headers', () => {
  it('round-trips a header far larger than the writer’s initial buffer', () => {
    const tokens = Array.from({ length: 40000 }, (_, i) => `tok${i}▁é`);
    const bytes = serializeGguf({ metadata: [['tokenizer.ggml.tokens', kv.arr(GGUFValueType.STRING, tokens)], ['n', kv.u32(7)]], tensors: [] });
    const f = GGUFFile.fromBytes(bytes);
    expect(f.getStringArray('tokenizer.ggml.tokens')).toEqual(tokens);
    expect(f.getNumber('n')).toBe(7);
  });
});

describe('tensor names', () => {
  const withName = (name: string) => serializeGguf({ metadata: [['general.architecture', kv.str('phi3')]], tensors: [{ name, type: GGMLType.F32, shape: [4], data: () => new Uint8Array(16) }] });
  it('must be valid UTF-8: a broken byte is a GgufError naming the offset, not a silent U+FFFD', () => {
    const b = withName('blk.0.XYZ.weight');
    const at = Buffer.from(b).indexOf('XYZ');
    b[at] = 0xff; // an invalid UTF-8 lead byte
    expect(() => parseGguf(new BufferSource(b, 'x.gguf'))).toThrow(GgufError);
    expect(() => parseGguf(new BufferSource(b, 'x.gguf'))).toThrow(/tensor name is not valid UTF-8/);
  });
  it("are bounded in bytes, not UTF-16 units (ggml's 63)", () => {
    expect(() => parseGguf(new BufferSource(withName('é'.repeat(32)), 'x.gguf'))).toThrow(/tensor name is 64 bytes/); // 32 chars, 64 bytes
    expect(parseGguf(new BufferSource(withName('é'.repeat(31)), 'x.gguf')).tensors[0]!.name).toBe('é'.repeat(31));
  });
});
