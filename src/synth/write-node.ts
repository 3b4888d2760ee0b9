/**
 * writeSynth() in Node with the 'trained' weights drawn on worker threads (Piscina): the same bytes as
 * writeSynth() writes, `threads`× sooner — the ggml-exact K-quant quantizers run ≈ 1.5–3 M weights/s
 * a thread, so a Phi-3-mini-sized file takes tens of minutes on one.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { writeGgufAsync } from '../gguf/writer.js';
import { packageRoot } from '../package-root.js';
import { synthSpec, writeSynth, type SynthOptions, type SynthTensorSpec } from './synth.js';

function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  // from dist/src/synth/ the worker is beside us; from src/ (tests) use the build
  return here.endsWith('.js') ? path.join(path.dirname(here), 'trained-worker.js') : path.join(packageRoot(), 'dist', 'src', 'synth', 'trained-worker.js');
}

export async function writeSynthAsync(file: string, o: SynthOptions, threads: number): Promise<void> {
  if (o.weights !== 'trained' || threads <= 1) return writeSynth(file, o);
  const spec = synthSpec(o);
  const pool = new Piscina({ filename: workerFile(), minThreads: threads, maxThreads: threads });
  try {
    await writeGgufAsync(file, spec, (t: SynthTensorSpec) => (t.job ? (pool.run(t.job) as Promise<Uint8Array>) : typeof t.data === 'function' ? t.data() : t.data), threads);
  } finally {
    await pool.destroy();
  }
}
