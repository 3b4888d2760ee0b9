/**
 * The WASM backend's browser platform (Node's is node-host.ts): kernel builds fetched and compiled
 * once, and the crew on Web Workers — each a copy of the worker bundle, started with role 'crew' —
 * over the same shared WebAssembly.Memory banks. Needs a cross-origin isolated page (COOP/COEP) for
 * SharedArrayBuffer, and runs in the model's own Web Worker, where Atomics.wait is allowed.
 */
import { Crew, STOP, type CrewInit } from '../backend/wasm/crew.js';
import { selectKernels, type KernelLoader, type SimdLevel } from '../backend/wasm/kernels.js';
import type { WasmHost } from '../backend/wasm/ops.js';

const builds = new Map<SimdLevel, WebAssembly.Module | undefined>();

/** fetch and compile both kernel builds from `base` (the package's build/ folder); relaxed SIMD only where it validates */
export async function prepareKernels(base: URL): Promise<void> {
  for (const [level, file] of [['simd128', 'kernels.wasm'], ['relaxed', 'kernels-relaxed.wasm']] as const) {
    if (builds.has(level)) continue;
    const res = await fetch(new URL(file, base));
    if (!res.ok) throw new Error(`${new URL(file, base)}: ${res.status} ${res.statusText}`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (!WebAssembly.validate(bytes)) {
      if (level === 'simd128') throw new Error('this browser cannot run WebAssembly SIMD128 with threads');
      builds.set(level, undefined);
      continue;
    }
    builds.set(level, await WebAssembly.compile(bytes));
  }
}

const loadBuild: KernelLoader = (level) => {
  if (!builds.has(level)) throw new Error('the kernels are not fetched yet (prepareKernels)');
  return builds.get(level);
};

/** a message a crew worker posts when its loop has ended */
export interface CrewStopped {
  role: 'crew-stopped';
  index: number;
}

export class WorkerCrew extends Crew {
  private readonly workers: Worker[] = [];
  private stopped: Promise<unknown>[] = [];

  constructor(nThreads: number, memories: WebAssembly.Memory[], module: WebAssembly.Module, workerUrl: URL) {
    super(nThreads);
    for (let i = 1; i < nThreads; i++) {
      const w = new Worker(workerUrl, { type: 'module', name: `phi3-crew-${i}` });
      const init: CrewInit = { control: this.control, memories, module, index: i, nThreads };
      this.stopped.push(
        new Promise<void>((resolve) => {
          w.addEventListener('message', (e: MessageEvent<CrewStopped>) => e.data?.role === 'crew-stopped' && resolve());
          w.addEventListener('error', (e) => {
            resolve();
            if (!Atomics.load(this.ctl, STOP)) this.fail(new Error(`crew worker ${i}: ${e.message || 'failed to start'}`));
          });
        }),
      );
      w.postMessage({ role: 'crew', init });
      this.workers.push(w);
    }
  }

  protected async stopWorkers(): Promise<void> {
    await Promise.race([Promise.all(this.stopped), new Promise((r) => setTimeout(r, 2000))]);
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}

/** the browser's WasmHost; crew workers run `workerUrl` (the worker bundle) */
export function browserHost(workerUrl: URL): WasmHost {
  return {
    kernels: (prefer) => selectKernels(prefer, loadBuild),
    crew: (nThreads, memories, module) => new WorkerCrew(nThreads, memories, module, workerUrl),
  };
}
