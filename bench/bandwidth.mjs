// `node bandwidth.mjs [threads] [MB]`: the machine's stream read bandwidth, the ceiling of decode speed.
// `threads` workers each sum their share of one shared buffer (default 1024 MB, far beyond the caches)
// with WASM SIMD128 loads, 5 passes; prints {"threads","mb","gb_s"} (the median pass) as the last line.
// bench/run.mjs runs it in the same run as the models, so "% of ceiling" compares like with like.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import * as os from 'node:os';

// (module (memory (import "m" "m") 1 65536 shared) (func (export "sum") (param $p i32) (param $end i32) (result i32) …)),
// hand-assembled: v128.load and i32x4.add over [p, end), 64 bytes a step; returns the lanes' sum so
// that the loads are used
const WASM = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, // type: (i32, i32) -> i32
  0x02, 0x0b, 0x01, 0x01, 0x6d, 0x01, 0x6d, 0x02, 0x03, 0x01, 0x80, 0x80, 0x04, // import m.m memory shared 1..65536
  0x03, 0x02, 0x01, 0x00, // func 0: type 0
  0x07, 0x07, 0x01, 0x03, 0x73, 0x75, 0x6d, 0x00, 0x00, // export "sum"
  0x0a, 0x00, // code section, size patched below
]);

function code() {
  // locals: a v128 accumulator
  const body = [
    0x01, 0x01, 0x7b, // 1 local of v128
    0x02, 0x40, // block
    0x03, 0x40, // loop
    0x20, 0x00, 0x20, 0x01, 0x4f, 0x0d, 0x01, // if p >= end (u) break
    ...[0, 16, 32, 48].flatMap((off) => [0x20, 0x02, 0x20, 0x00, 0xfd, 0x00, 0x04, off, 0xfd, 0xae, 0x01, 0x21, 0x02]), // acc = i32x4.add(acc, v128.load offset=off)
    0x20, 0x00, 0x41, 0xc0, 0x00, 0x6a, 0x21, 0x00, // p += 64
    0x0c, 0x00, // br loop
    0x0b, 0x0b, // end loop, end block
    0x20, 0x02, 0xfd, 0x1b, 0x00, // i32x4.extract_lane 0
    0x0b,
  ];
  const fn = [body.length, ...body];
  return [0x01, ...fn];
}

function moduleBytes() {
  const c = code();
  const out = new Uint8Array(WASM.length + c.length);
  out.set(WASM);
  out[WASM.length - 1] = c.length;
  out.set(c, WASM.length);
  return out;
}

if (isMainThread) {
  const threads = Number(process.argv[2] ?? Math.min(2, os.availableParallelism()));
  const mb = Number(process.argv[3] ?? 1024);
  const bytes = mb << 20;
  const memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / 65536) + 1, maximum: 65536, shared: true });
  new Uint8Array(memory.buffer).fill(1); // touch every page first
  const mod = new WebAssembly.Module(moduleBytes());
  const workers = Array.from({ length: threads }, (_, i) => new Worker(new URL(import.meta.url), { workerData: { memory, mod, lo: Math.floor((bytes / threads) * i / 64) * 64, hi: Math.floor((bytes / threads) * (i + 1) / 64) * 64 } }));
  const pass = () => Promise.all(workers.map((w) => new Promise((res) => { w.once('message', res); w.postMessage('go'); })));
  await pass(); // warm
  const rates = [];
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    await pass();
    rates.push(bytes / ((performance.now() - t) / 1000) / 1e9);
  }
  for (const w of workers) await w.terminate();
  rates.sort((a, b) => a - b);
  console.log(JSON.stringify({ threads, mb, gb_s: rates[2] }));
} else {
  const { memory, mod, lo, hi } = workerData;
  const sum = new WebAssembly.Instance(mod, { m: { m: memory } }).exports.sum;
  parentPort.on('message', () => parentPort.postMessage(sum(lo, hi)));
}
