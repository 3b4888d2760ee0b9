// The GGUF mutation fuzzer, through the whole stack: seeded mutations of small synthetic models
// (bytes of the header, counts and lengths, metadata values, tensor infos, tensor data, chat
// templates), each loaded and run (logits, chat prompt, generation) on both backends in worker
// processes. Every case must end as 'ok' or a typed error: a crash, a hang, an untyped error or a
// process grown past the memory limit is a failure. The suite runs 2,000 cases; on demand:
//   node test/fuzz/gguf-fuzz.mjs --cases 100000 [--seed N] [--workers 2]
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { synthSpec, PRESETS } from '../../dist/src/synth/synth.js';
import { serializeGguf, kv } from '../../dist/src/gguf/writer.js';
import { BufferSource, parseGguf } from '../../dist/src/gguf/reader.js';
import { GGUFValueType } from '../../dist/src/gguf/types.js';
import { Rng } from '../../dist/src/util/rng.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'gguf-case.mjs');

const HOSTILE_TEMPLATES = [
  '{% for i in range(100000000) %}x{% endfor %}',
  "{% for m in messages %}{{ m['content'] * 100000 }}{% endfor %}",
  '{% if %}',
  '{{ raise_exception("no") }}',
  '{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}',
  '',
  '{{ messages }}',
];
const HOSTILE_NUMBERS = [0, -1, 1, 2, 3, 7, 1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 32 - 1, 1e6, 1e9, 65536];

/** the classes of mutation, each a function (rng, base) → bytes */
const CLASSES = {
  /** 1–8 bytes of the header set to random values */
  flip: (r, b) => {
    const c = b.bytes.slice();
    for (let n = 1 + r.int(8); n > 0; n--) c[r.int(b.dataOffset)] = r.int(256);
    return c;
  },
  /** cut anywhere (mostly in the header) */
  truncate: (r, b) => b.bytes.slice(0, r.next() < 0.7 ? r.int(b.dataOffset) : r.int(b.bytes.length)),
  /** a huge or odd u64 (a count or a length) at a header offset */
  u64: (r, b) => {
    const c = b.bytes.slice();
    const v = [1n << 32n, 1n << 62n, (1n << 64n) - 1n, 1000n, 255n, 0n, 1n << 40n][r.int(7)];
    new DataView(c.buffer).setBigUint64(r.int(b.dataOffset - 8), v, true);
    return c;
  },
  /** a random u32 (a type, n_dims) at a header offset */
  u32: (r, b) => {
    const c = b.bytes.slice();
    new DataView(c.buffer).setUint32(r.int(b.dataOffset - 4), r.u32(), true);
    return c;
  },
  /** one metadata value replaced by a hostile value of some type, or the key removed */
  key: (r, b) => {
    const meta = b.spec.metadata.slice();
    const i = r.int(meta.length);
    const [k] = meta[i];
    const n = HOSTILE_NUMBERS[r.int(HOSTILE_NUMBERS.length)];
    const pick = r.int(8);
    if (pick === 0) meta.splice(i, 1);
    else if (pick === 1) meta[i] = [k, kv.str(r.next() < 0.5 ? 'x' : '\u0000\uffff'.repeat(r.int(100)))];
    else if (pick === 2) meta[i] = [k, kv.f32(n)];
    else if (pick === 3) meta[i] = [k, kv.i32(Number.isInteger(n) && Math.abs(n) < 2 ** 31 ? n : -7)];
    else if (pick === 4) meta[i] = [k, kv.bool(r.next() < 0.5)];
    else if (pick === 5) meta[i] = [k, kv.arr(GGUFValueType.INT32, Int32Array.from({ length: r.int(5) }, () => r.int(100) - 50))];
    else if (pick === 6) {
      const cur = meta[i][1];
      if (cur.type === GGUFValueType.ARRAY) meta[i] = [k, kv.arr(cur.value.itemType, cur.value.items.slice(0, r.int(cur.value.items.length + 1)))];
      else meta[i] = [k, kv.u32(Math.min(2 ** 32 - 1, Math.max(0, Math.floor(Number.isFinite(n) ? Math.abs(n) : 9))))];
    } else meta.push([`${k}.extra${r.int(3)}`, kv.u32(r.int(10))]);
    return serializeGguf({ metadata: meta, tensors: b.spec.tensors });
  },
  /** one tensor's type or a dimension patched in its info, its name changed, or the tensor removed or doubled */
  tensor: (r, b) => {
    const ts = b.spec.tensors.slice();
    const i = r.int(ts.length);
    const pick = r.int(6);
    if (pick <= 1) {
      // patch the tensor info in place: name (u64 length + bytes), n_dims u32, dims u64 × n, type u32
      const c = b.bytes.slice();
      const dv = new DataView(c.buffer);
      const name = new TextEncoder().encode(ts[i].name);
      let at = 0;
      for (let from = 0; ; from = at + 1) {
        at = Buffer.from(c.buffer, 0, b.dataOffset).indexOf(name, from);
        if (at < 8 || dv.getBigUint64(at - 8, true) === BigInt(name.length)) break;
      }
      const nDims = dv.getUint32(at + name.length, true);
      const dims = at + name.length + 4;
      if (pick === 0) dv.setUint32(dims + 8 * nDims, r.int(45), true);
      else dv.setBigUint64(dims + 8 * r.int(nDims), BigInt([0, 1, 2, 3, 255, 257, 1 << 20][r.int(7)]), true);
      return c;
    }
    const t = { ...ts[i] };
    if (pick === 2) t.name = [`${t.name}x`, 'blk.99.attn_norm.weight', `\udc80${t.name}`, 'a'.repeat(70), 'blk.0.ffn_gate.weight', ''][r.int(6)];
    if (pick === 3) ts.splice(i, 1);
    else if (pick === 4) ts.push({ ...t });
    else ts[i] = t;
    return serializeGguf({ metadata: b.spec.metadata, tensors: ts });
  },
  /** Inf/NaN or random bytes in tensor data */
  data: (r, b) => {
    const c = b.bytes.slice();
    const dv = new DataView(c.buffer);
    for (let n = 1 + r.int(4); n > 0; n--) {
      const at = b.dataOffset + 2 * r.int((c.length - b.dataOffset) / 2 - 2);
      const k = r.int(3);
      if (k === 0) dv.setUint16(at, [0x7c00, 0xfc00, 0x7e00, 0x7c01][r.int(4)], true);
      else if (k === 1) dv.setFloat32(at, [NaN, Infinity, -Infinity, 3e38][r.int(4)], true);
      else c[at] = r.int(256);
    }
    return c;
  },
  /** a hostile chat template */
  template: (r, b) => {
    const meta = b.spec.metadata.filter(([k]) => k !== 'tokenizer.chat_template');
    meta.push(['tokenizer.chat_template', kv.str(HOSTILE_TEMPLATES[r.int(HOSTILE_TEMPLATES.length)])]);
    return serializeGguf({ metadata: meta, tensors: b.spec.tensors });
  },
};

function bases() {
  // the tiny dense model in five types, and a one-layer phimoe (4 experts, biases, 3-D expert tensors)
  const moe = { ...PRESETS['phimoe-tiny'], nExpert: 4, nLayers: 1 };
  return [['F32', PRESETS.tiny], ['Q8_0', PRESETS.tiny], ['Q4_0', PRESETS.tiny], ['F16', PRESETS.tiny], ['Q4_K_M', PRESETS.tiny], ['Q8_0', moe]].map(([type, shape], i) => {
    const spec = synthSpec({ shape, type, seed: 100 + i });
    spec.tensors = spec.tensors.map((t) => ({ ...t, data: typeof t.data === 'function' ? t.data() : t.data }));
    const bytes = serializeGguf(spec);
    const h = parseGguf(new BufferSource(bytes, 'base.gguf'));
    return { type, spec, bytes, dataOffset: h.dataOffset };
  });
}

/** run `cases` cases from `seed`; resolves to the counts by outcome and the failures */
export async function fuzzGguf({ cases = 2000, seed = 1, workers = 2, timeoutMs = 30_000, memLimitMb = 1024, onProgress } = {}) {
  const base = bases();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phi3-gguf-fuzz-'));
  const names = Object.keys(CLASSES);
  const counts = { ok: 0, typed: 0, untyped: 0, crash: 0, hang: 0, memory: 0 };
  const byClass = Object.fromEntries(names.map((n) => [n, { ok: 0, typed: 0, bad: 0 }]));
  const errors = {};
  const failures = [];
  let next = 0, done = 0;
  const makeCase = (id) => {
    const r = new Rng(seed * 1_000_003 + id);
    const cls = names[r.int(names.length)];
    const b = base[r.int(base.length)];
    const file = path.join(dir, `case-${id}.gguf`);
    fs.writeFileSync(file, CLASSES[cls](r, b));
    return { id, file, cls, base: b.type, backend: r.next() < 0.5 ? 'ref' : 'wasm', checkWeights: r.next() < 0.5 };
  };
  const record = (c, outcome, detail) => {
    counts[outcome]++;
    byClass[c.cls][outcome === 'ok' ? 'ok' : outcome === 'typed' ? 'typed' : 'bad']++;
    if (outcome === 'typed') errors[detail.name] = (errors[detail.name] ?? 0) + 1;
    if (outcome !== 'ok' && outcome !== 'typed') failures.push({ id: c.id, seed, cls: c.cls, base: c.base, backend: c.backend, outcome, ...detail });
    fs.rmSync(c.file, { force: true });
    onProgress?.(++done, cases);
  };
  const lane = async () => {
    let child, ready;
    const start = () => {
      child = fork(CHILD, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: [] });
      child.stderr.resume();
      ready = new Promise((res, rej) => {
        child.once('message', res);
        child.once('exit', (code) => rej(new Error(`the fuzz worker ${CHILD} exited (code ${code}) before it was ready`)));
      });
    };
    start();
    while (next < cases) {
      const c = makeCase(next++);
      await ready;
      const res = await new Promise((resolve) => {
        const t = setTimeout(() => resolve({ outcome: 'hang', message: `no answer in ${timeoutMs} ms` }), timeoutMs);
        const onMsg = (m) => {
          if (m.id !== c.id) return;
          clearTimeout(t);
          child.off('message', onMsg);
          child.off('exit', onExit);
          resolve(m);
        };
        const onExit = (code, sig) => {
          clearTimeout(t);
          child.off('message', onMsg);
          resolve({ outcome: 'crash', message: `worker exited (code ${code}, signal ${sig})` });
        };
        child.on('message', onMsg);
        child.once('exit', onExit);
        child.send({ id: c.id, file: c.file, backend: c.backend, checkWeights: c.checkWeights });
      });
      if (res.outcome === 'hang' || res.outcome === 'crash') {
        child.kill('SIGKILL');
        start();
      } else if (res.rssMb > memLimitMb) {
        res.outcome = 'memory';
        res.message = `the worker peaked at ${res.rssMb.toFixed(0)} MB (limit ${memLimitMb})`;
        child.kill('SIGKILL');
        start();
      }
      record(c, res.outcome, { name: res.name, message: res.message });
    }
    child.kill('SIGKILL');
  };
  await Promise.all(Array.from({ length: workers }, lane));
  fs.rmSync(dir, { recursive: true, force: true });
  return { cases, seed, counts, byClass, errors, failures };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (n, d) => {
    const i = process.argv.indexOf(n);
    return i > 0 ? Number(process.argv[i + 1]) : d;
  };
  const t0 = Date.now();
  const r = await fuzzGguf({
    cases: arg('--cases', 2000), seed: arg('--seed', Date.now() % 1e6), workers: arg('--workers', Math.max(1, os.availableParallelism())),
    onProgress: (d, n) => d % 500 === 0 && process.stderr.write(`${d}/${n} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`),
  });
  console.log(JSON.stringify({ ...r, failures: r.failures.slice(0, 50), seconds: (Date.now() - t0) / 1000 }, null, 1));
  process.exitCode = r.failures.length ? 1 : 0;
}
