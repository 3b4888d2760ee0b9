import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openGguf } from '../src/gguf/file-source.js';
import { WasmOps, planFor } from '../src/backend/wasm/ops.js';
import { Phi3 } from '../src/model/phi3.js';
import { configFromGguf } from '../src/model/config.js';
import { writeSynth, PRESETS } from '../src/synth/synth.js';
import { loadModel } from '../src/api.js';
import { tmpDir } from './helpers.js';
import { writeGguf } from '../src/gguf/writer.js';
import { GGMLType } from '../src/quant/ggml-type.js';
import { quantize } from '../src/quant/quantize.js';
import { matmulRef, RefOps } from '../src/backend/ref/ops.js';
import { NUMERICS } from '../src/backend/numerics.js';
import { Rng } from '../src/util/rng.js';
import { Layout } from '../src/backend/wasm/layout.js';
import { Q4_0X4_MAX_COLS } from '../src/backend/wasm/kernels.js';
import { CrewError, DEADLINE_MIN_MS } from '../src/backend/wasm/crew.js';
import { PiscinaCrew, nodeHost } from '../src/backend/wasm/node-host.js';

const dir = tmpDir();

// crewLoad: the crew is started first and reads the weights with the main thread (as loadModel
// does); otherwise the main thread reads them alone
// solo: the crew is judged slower than the main thread alone (as on a busy machine), so every op
// runs on the main thread, its workers asleep
// crewLoad 'planned': the banks are opened first (planBanks, as loadModel does), so the crew reads
// the tensors of every bank
async function logitsWith(file: string, threads: number, bankBytes?: number, crewLoad: boolean | 'planned' = false, solo = false): Promise<Float32Array[]> {
  const f = openGguf(file);
  const c = configFromGguf(f);
  const ops = new WasmOps({ ...planFor(c, 64, 16, threads), bankBytes }, nodeHost);
  if (crewLoad === 'planned') ops.planBanks(f.tensors);
  if (crewLoad) await ops.start();
  const banks = ops.bankSizes().length;
  const m = Phi3.load(f, ops, { ctx: 64, maxBatch: 16 });
  if (crewLoad === 'planned') {
    // every tensor read by the crew, whatever its bank; no bank opened while loading
    expect(ops.crewReadBytes).toBe(f.tensors.reduce((a, t) => a + t.byteSize, 0));
    expect(ops.bankSizes().length).toBe(banks);
  }
  await ops.start();
  if (solo) Object.assign((ops as unknown as { crewInstance: { judge: object } }).crewInstance.judge, { solo: true, soloUntil: Infinity });
  try {
    const tokens = Array.from({ length: 20 }, (_, i) => 1 + ((i * 37) % 800));
    const rows = m.forward(tokens, { allLogits: true }); // two batches of 16 + 4
    rows.push(...m.forward([5, 6]));
    return rows;
  } finally {
    await ops.close();
    f.close();
  }
}

const bits = (rows: Float32Array[]) => rows.map((r) => Buffer.from(r.buffer, r.byteOffset, r.byteLength).toString('base64'));

describe('WASM backend', () => {
  for (const type of ['Q4_0', 'Q4_K_M', 'Q8_0', 'F16', 'Q5_1', 'Q3_K']) {
    it(`${type}: logits are bit-identical for 1, 2 and 3 threads`, async () => {
      const file = path.join(dir, `threads-${type}.gguf`);
      writeSynth(file, { shape: PRESETS.small!, type, seed: 3 });
      const one = bits(await logitsWith(file, 1));
      expect(bits(await logitsWith(file, 2))).toEqual(one);
      expect(bits(await logitsWith(file, 3))).toEqual(one);
      // weights read by 1, 2 and 3 threads (Q4_0: interleaved by each thread in pieces)
      for (const threads of [1, 2, 3]) expect(bits(await logitsWith(file, threads, undefined, true))).toEqual(one);
      // and a crew that runs alone (a busy machine) reads and computes the same bits
      expect(bits(await logitsWith(file, 2, undefined, true, true))).toEqual(one);
    });
  }

  it('a file cut short after opening: the crew read names the tensor and the shortfall', async () => {
    const file = path.join(dir, 'short.gguf');
    writeSynth(file, { shape: PRESETS.tiny!, type: 'Q4_0', seed: 6 });
    const f = openGguf(file);
    fs.truncateSync(file, fs.statSync(file).size - 1000);
    const ops = new WasmOps(planFor(configFromGguf(f), 32, 16, 2), nodeHost);
    await ops.start();
    try {
      expect(() => Phi3.load(f, ops, { ctx: 32, maxBatch: 16 })).toThrow(/short read: got \d+ of \d+ bytes.*output\.weight|output\.weight.*short read/s);
    } finally {
      await ops.close();
      f.close();
    }
  });

  it('weights spread over several memory banks give the same logits as one bank', async () => {
    const file = path.join(dir, 'banks.gguf');
    writeSynth(file, { shape: PRESETS.small!, type: 'Q4_K_M', seed: 4 });
    const one = await logitsWith(file, 2);
    // 3 MiB banks: every bank holds a few tensors, most matmuls cross banks
    const f = openGguf(file);
    const ops = new WasmOps({ ...planFor(configFromGguf(f), 64, 16, 2), bankBytes: 3 << 20 }, nodeHost);
    Phi3.load(f, ops, { ctx: 64, maxBatch: 16 });
    expect(ops.bankSizes().length).toBeGreaterThan(2);
    await ops.close();
    f.close();
    expect(bits(await logitsWith(file, 2, 3 << 20))).toEqual(bits(one));
    // bank 0's tensors read by the crew, the others by the main thread
    expect(bits(await logitsWith(file, 2, 3 << 20, true))).toEqual(bits(one));
    // the banks opened before the crew starts: it reads every bank's tensors
    expect(bits(await logitsWith(file, 2, 3 << 20, 'planned'))).toEqual(bits(one));
    expect(bits(await logitsWith(file, 3, 3 << 20, 'planned'))).toEqual(bits(one));
  });

  it('Q4_0 matrices: interleaved up to Q4_0X4_MAX_COLS columns, ggml rows beyond; both multiply right on the crew', async () => {
    const rng = new Rng(21);
    for (const [cols, layout] of [[1024, Layout.Q4_0X4], [Q4_0X4_MAX_COLS + 32, Layout.ROWS]] as const) {
      const rows = 8, T = 3;
      const wf = Float32Array.from({ length: rows * cols }, () => rng.normal() * 0.1);
      const bytes = quantize(GGMLType.Q4_0, wf);
      const file = path.join(dir, `wide-${cols}.gguf`);
      writeGguf(file, { metadata: [], tensors: [{ name: 'w', shape: [cols, rows], type: GGMLType.Q4_0, data: bytes }] });
      const f = openGguf(file);
      const ops = new WasmOps({ reserveBytes: 8 * T * (cols + rows) + (1 << 20), maxCols: cols, maxRows: rows, maxT: T, threads: 2 }, nodeHost);
      try {
        await ops.start();
        const w = ops.loadWeight(f, f.header.tensors[0]!);
        expect(w.layout).toBe(layout);
        const x = Float32Array.from({ length: T * cols }, () => rng.normal());
        const xb = ops.alloc(T * cols), ob = ops.alloc(T * rows);
        ops.write(xb, 0, x);
        ops.matmul(ob, w, xb, T); // prefill path
        const got = ops.read(ob, 0, T * rows);
        const want = new Float32Array(T * rows);
        matmulRef(want, { name: 'w', type: GGMLType.Q4_0, rows, cols, bytes, rowBytes: bytes.length / rows }, x, T);
        for (let i = 0; i < T * rows; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(want[i]!)));
        ops.matmul(ob, w, xb, 1); // decode path
        expect(ops.read(ob, 0, rows)).toEqual(got.subarray(0, rows));
      } finally {
        await ops.close();
        f.close();
      }
    }
  });

  it('a worker error surfaces as an error, not a hang', async () => {
    const file = path.join(dir, 'err.gguf');
    writeSynth(file, { shape: PRESETS.tiny!, type: 'Q4_0', seed: 5 });
    const m = await loadModel(file, { ctx: 32, threads: 2 });
    const ops = m.phi3.ops as unknown as { crew: { run: (a: number[], mine: () => void, judge: boolean) => void } };
    // an op code no worker knows: the worker reports it, the main thread throws
    expect(() => ops.crew.run([99, 0], () => {}, false)).toThrow(/worker thread failed: .*unknown op 99/);
    await m.close();
  });

  it('a failed crew is torn down and a fresh one started on the same weights: the next call works, same logits', async () => {
    const file = path.join(dir, 'err2.gguf');
    writeSynth(file, { shape: PRESETS.tiny!, type: 'Q4_0', seed: 5 });
    const m = await loadModel(file, { ctx: 32, threads: 2 });
    const before = bits(await m.logits([1, 5, 9, 13], { all: true }));
    const ops = m.phi3.ops as unknown as { crew: { run: (a: number[], mine: () => void, judge: boolean) => void } };
    expect(() => ops.crew.run([99, 0], () => {}, false)).toThrow(/worker thread failed/);
    expect(m.healthy).toBe(false);
    expect(bits(await m.logits([1, 5, 9, 13], { all: true }))).toEqual(before);
    expect(m.crewRestarts).toBe(1);
    expect(m.healthy).toBe(true);
    let text = '';
    for await (const t of m.generate('Hello', { maxTokens: 4, temperature: 0 })) text += t;
    expect(text.length).toBeGreaterThanOrEqual(0);
    await m.close();
  });
});

describe('a worker that dies or hangs mid-op', () => {
  const FAULTY = path.join(import.meta.dirname, 'fixtures', 'crew-worker-faulty.mjs');
  for (const fault of ['exit', 'hang'] as const)
    it(`'${fault}': the op fails with a CrewError ${fault === 'exit' ? 'at once' : `after the deadline (${DEADLINE_MIN_MS} ms)`}, the crew is marked failed, and close() returns`, async () => {
      const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
      const module = new WebAssembly.Module(Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
      const crew = new PiscinaCrew(2, [memory], module, { filename: FAULTY, extra: { fault } });
      await crew.ready();
      const t0 = performance.now();
      expect(() => crew.run([0], () => {}, false)).toThrow(CrewError);
      const took = performance.now() - t0;
      expect(crew.failed).toBe(true);
      if (fault === 'exit') expect(took).toBeLessThan(500);
      else expect(took).toBeGreaterThanOrEqual(DEADLINE_MIN_MS - 50);
      expect(took).toBeLessThan(DEADLINE_MIN_MS + 1500);
      expect(() => crew.run([0], () => {}, false)).toThrow(CrewError); // stays failed until replaced
      await crew.close();
    }, 20_000);
});

describe('KV cache type (kvType / --kv-type)', () => {
  // partial rotary, GQA and a head of 48 (a 32-wide pass plus an 8-wide tail in the V pass)
  const f = path.join(dir, 'kv.gguf');
  writeSynth(f, { shape: { dim: 192, hiddenDim: 256, nLayers: 2, nHeads: 4, nKvHeads: 2, ropeDim: 32, contextLength: 256 }, type: 'F32', seed: 21 });
  const tokens = Array.from({ length: 40 }, (_, i) => (i * 37 + 5) % 800);
  const run = async (o: Parameters<typeof loadModel>[1]) => {
    const m = await loadModel(f, { ctx: 128, ...o });
    try {
      // in steps of 7 tokens through the cache
      const rows = await m.logits(tokens, { all: true, batch: 7 });
      return rows;
    } finally {
      await m.close();
    }
  };
  const rel = (a: Float32Array[], b: Float32Array[]) => {
    let d = 0, s = 0;
    a.forEach((r, p) => r.forEach((x, k) => ((d = Math.max(d, Math.abs(x - b[p]![k]!))), (s = Math.max(s, Math.abs(x))))));
    return d / s;
  };
  it('f32 K/V: within 1e-5 of the reference backend in exact numerics (F32 KV there too); f16 measurably further', async () => {
    const ref = await run({ backend: 'ref' });
    const f32 = await run({ kvType: 'f32', threads: 2 });
    const f16 = await run({ threads: 2 });
    const e32 = rel(ref, f32), e16 = rel(ref, f16);
    expect(e32).toBeLessThan(1e-5);
    expect(e16).toBeGreaterThan(10 * e32);
    expect(bits(await run({ kvType: 'f32', threads: 1 }))).toEqual(bits(f32)); // any thread count, the same bits
  });
  it('q8_0 K/V: within 1e-5 of its twin (the reference backend over a q8_0 cache quantized as ggml-cpu does); 1000× further from f32', async () => {
    const g = path.join(dir, 'kv32.gguf'); // q8_0 blocks need a head size that is a multiple of 32
    writeSynth(g, { shape: { dim: 256, hiddenDim: 256, nLayers: 2, nHeads: 4, nKvHeads: 2, ropeDim: 32, contextLength: 256 }, type: 'F32', seed: 21 });
    const ref = (kv: 'q8_0' | 'f32') => {
      const file = openGguf(g);
      try {
        return Phi3.load(file, new RefOps({ ...NUMERICS.exact, kv }), { ctx: 128, maxBatch: 64 }).forward(tokens, { allLogits: true });
      } finally {
        file.close();
      }
    };
    const m = await loadModel(g, { ctx: 128, kvType: 'q8_0', threads: 2 });
    const q8 = await m.logits(tokens, { all: true, batch: 7 });
    await m.close();
    const twin = rel(ref('q8_0'), q8);
    expect(twin).toBeLessThan(1e-5);
    expect(rel(ref('f32'), q8)).toBeGreaterThan(1000 * twin);
    await expect(loadModel(f, { kvType: 'q8_0' })).rejects.toThrow(/a q8_0 KV cache needs a head size that is a multiple of 32 \(blocks of 32\); this model's is 48/);
  });
  it('is refused by name where it does not apply, and the memory estimate counts it', async () => {
    await expect(loadModel(f, { kvType: 'q4_0' as never })).rejects.toThrow(/kvType must be one of f16, f32, q8_0, got "q4_0"/);
    await expect(loadModel(f, { kvType: 'f32', backend: 'ref' })).rejects.toThrow(/kvType 'f32' is the wasm backend's/);
    const c = configFromGguf(openGguf(f));
    const p16 = planFor(c, 4096, 64, 2), p32 = planFor(c, 4096, 64, 2, 'f32');
    expect(p32.reserveBytes - p16.reserveBytes).toBe(2 * c.nLayers * 4096 * c.kvDim * 2);
    expect(p16.reserveBytes - planFor(c, 4096, 64, 2, 'q8_0').reserveBytes).toBe(2 * c.nLayers * 4096 * c.kvDim * (2 - 34 / 32));
  });
});
