/**
 * The WASM backend's Node platform: kernel builds read from build/, the crew on Piscina's worker
 * threads, and tensor loads by the crew through the GGUF's file descriptor (share.ts, Op.LOAD).
 * src/browser/ has the same three for a browser.
 */
import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { packageRoot } from '../../package-root.js';
import { Crew, STOP, reportFailure, type CrewInit } from './crew.js';
import { selectKernels, type KernelChoice, type SimdLevel } from './kernels.js';
import type { ReadFd } from './share.js';
import type { WasmHost } from './ops.js';

const compiled = new Map<SimdLevel, WebAssembly.Module | undefined>();

/** build/kernels.wasm or build/kernels-relaxed.wasm, compiled once (undefined: this engine cannot run it) */
export function nodeKernelBuild(level: SimdLevel): WebAssembly.Module | undefined {
  if (compiled.has(level)) return compiled.get(level);
  const file = path.join(packageRoot(), 'build', level === 'relaxed' ? 'kernels-relaxed.wasm' : 'kernels.wasm');
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\``);
  const bytes = fs.readFileSync(file);
  if (level === 'relaxed') {
    // Node 20 ships relaxed SIMD behind a flag (V8 reads it at compile time, process-wide, so the
    // worker threads inherit it; newer V8 has no such flag and would print an error for it), and its
    // baseline compiler drops relaxed_dot's accumulator, so there it compiles optimized only. Node ≥ 22
    // has that fixed, and there the flags stay as they are: Node 26's V8 stops the process
    // ("Check failed: function_feedback != …") when --no-liftoff is set at run time, after start-up.
    if (!WebAssembly.validate(bytes)) {
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
      v8.setFlagsFromString('--no-liftoff');
    }
  }
  if (!WebAssembly.validate(bytes)) {
    if (level === 'relaxed') return compiled.set(level, undefined), undefined;
    throw new Error(`${file}: this JavaScript engine cannot run WASM SIMD128 with threads`);
  }
  const m = new WebAssembly.Module(bytes);
  compiled.set(level, m);
  return m;
}

/** the kernels for this Node: relaxed SIMD where it validates and self-tests, else SIMD128 */
export function nodeKernels(prefer: SimdLevel | 'auto' = 'auto'): KernelChoice {
  return selectKernels(prefer, nodeKernelBuild);
}

/** positional reads of a file descriptor, in pieces below the 2 GiB per-call limit */
export const readFd: ReadFd = (fd, dst, offset, length, position) => {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, dst, offset + done, Math.min(1 << 30, length - done), position + done);
    if (n <= 0) break;
    done += n;
  }
  return done;
};

/** a worker thread that exits before STOP (process.exit, an error outside crewLoop's catch) says so as it goes */
export function reportExit(control: SharedArrayBuffer, index: number): void {
  process.once('exit', (code) => {
    if (!Atomics.load(new Int32Array(control), STOP)) reportFailure(control, `worker ${index} exited (code ${code})`);
  });
}

function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  // from dist/src/backend/wasm/ the worker is beside us; from src/ (tests) use the build
  return here.endsWith('.js') ? path.join(path.dirname(here), 'worker.js') : path.join(packageRoot(), 'dist', 'src', 'backend', 'wasm', 'worker.js');
}

/**
 * Piscina starts N−1 workers, each running one long task (worker.ts) that instantiates the kernels
 * and then runs crewLoop outside the task.
 */
export class PiscinaCrew extends Crew {
  private pool: Piscina | undefined;
  private tasks: Promise<unknown>[] = [];

  constructor(
    nThreads: number,
    memories: WebAssembly.Memory[],
    module: WebAssembly.Module,
    /** the workers' module and extra init fields (tests give workers that fail in given ways) */
    opts: { filename?: string; extra?: object } = {},
  ) {
    super(nThreads);
    if (nThreads <= 1) return;
    this.pool = new Piscina({ filename: opts.filename ?? workerFile(), minThreads: nThreads - 1, maxThreads: nThreads - 1, idleTimeout: Infinity, atomics: 'disabled' });
    for (let i = 1; i < nThreads; i++) {
      const init: CrewInit = { ...opts.extra, control: this.control, memories, module, index: i, nThreads };
      this.tasks.push(this.pool.run(init).catch((e: Error) => this.fail(e)));
    }
    // the crew never keeps the process alive: a script that forgets close() still exits (ops run
    // synchronously on the main thread, so no op can be cut short by that); a worker that exits
    // before STOP has failed
    for (const t of this.pool.threads) {
      t.unref();
      t.once('exit', (code) => Atomics.load(this.ctl, STOP) || this.fail(new Error(`a worker thread exited (code ${code})`)));
    }
  }

  protected async stopWorkers(): Promise<void> {
    if (!this.pool) return;
    await Promise.allSettled(this.tasks);
    await this.pool.destroy();
    this.pool = undefined;
  }
}

export const nodeHost: WasmHost = {
  kernels: nodeKernels,
  crew: (nThreads, memories, module) => new PiscinaCrew(nThreads, memories, module),
  readFd,
};
