/**
 * The worker crew: Piscina starts N−1 workers, each running one long task (worker.ts) that
 * instantiates the kernels over the same shared memories and then waits for ops. Each op is
 * handed out through a shared control block with Atomics (≈ 1 µs, against 170–300 µs for a
 * Piscina task per op); the main thread computes its own share, then waits for the others.
 *
 * Control block (Int32Array over a SharedArrayBuffer):
 *   [SEQ] op sequence number (bumped to start an op)   [DONE] workers finished with it
 *   [STOP] 1 = leave the loop                            [ERROR] 1 = a worker failed (message in MSG)
 * Arguments: Float64Array at byte ARGS: [opcode, a1, a2, …] (pointers < 2^53 are exact).
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { packageRoot } from './kernels.js';

export const SEQ = 0, DONE = 1, STOP = 2, ERROR = 3, MSG_LEN = 4, READY = 5;
export const MSG = 256; // byte offset of the error message (UTF-8)
export const ARGS = 64; // byte offset of the Float64 arguments
export const N_ARGS = 24;
export const CONTROL_BYTES = 1024;
/** busy-wait iterations before a worker sleeps in Atomics.wait */
export const SPIN = 20000;

export interface CrewInit {
  control: SharedArrayBuffer;
  memories: WebAssembly.Memory[];
  module: WebAssembly.Module;
  index: number; // 1..nThreads-1 (the main thread is 0)
  nThreads: number;
}

export class CrewError extends Error {
  override name = 'CrewError';
}

function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  // from dist/src/backend/wasm/crew.js the worker is beside us; from src/ (tests) use the build
  return here.endsWith('.js') ? path.join(path.dirname(here), 'worker.js') : path.join(packageRoot(), 'dist', 'src', 'backend', 'wasm', 'worker.js');
}

export class Crew {
  readonly control = new SharedArrayBuffer(CONTROL_BYTES);
  readonly ctl = new Int32Array(this.control);
  readonly args = new Float64Array(this.control, ARGS, N_ARGS);
  private pool: Piscina | undefined;
  private tasks: Promise<unknown>[] = [];
  private failure: Error | undefined;

  constructor(
    readonly nThreads: number,
    memories: WebAssembly.Memory[],
    module: WebAssembly.Module,
  ) {
    if (nThreads > 1) {
      this.pool = new Piscina({ filename: workerFile(), minThreads: nThreads - 1, maxThreads: nThreads - 1, idleTimeout: Infinity, atomics: 'disabled' });
      for (let i = 1; i < nThreads; i++) {
        const init: CrewInit = { control: this.control, memories, module, index: i, nThreads };
        this.tasks.push(
          this.pool.run(init).catch((e: Error) => this.fail(e)),
        );
      }
      // the crew never keeps the process alive: a script that forgets close() still exits (ops run
      // synchronously on the main thread, so no op can be cut short by that); a worker that exits
      // before STOP has failed
      for (const t of this.pool.threads) {
        t.unref();
        t.once('exit', (code) => Atomics.load(this.ctl, STOP) || this.fail(new Error(`a worker thread exited (code ${code})`)));
      }
    }
  }

  /** a worker failed (an error in an op, or it died): this crew cannot run ops any more */
  get failed(): boolean {
    return Atomics.load(this.ctl, ERROR) !== 0 || this.failure !== undefined;
  }

  /** a worker died outside its own try/catch: release anyone waiting and remember why */
  private fail(e: Error): void {
    this.failure ??= e;
    Atomics.store(this.ctl, ERROR, 1);
    Atomics.add(this.ctl, DONE, 1);
    Atomics.notify(this.ctl, DONE);
  }

  /** resolves once every worker is in its loop (the hot path is synchronous and cannot wait for the event loop) */
  async ready(timeoutMs = 60_000): Promise<void> {
    const t0 = Date.now();
    while (Atomics.load(this.ctl, READY) < this.nThreads - 1) {
      if (this.failure) throw new CrewError(`a worker thread failed to start: ${this.failure.message}`);
      if (Date.now() - t0 > timeoutMs) throw new CrewError(`worker threads did not start within ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /**
   * Whether the crew pays for itself, measured as it runs. On a machine whose cores are busy with
   * other work, a worker may be descheduled mid-op and the main thread then waits a whole time slice
   * for it. Per window of ops: the main thread's own share took `own`, its wait for the workers
   * `wait`; alone it would have taken ≈ n·own, so the crew is slower once wait > (n−1)·own. Past twice
   * that (a margin for jitter: one descheduled slice must not send a fast crew to sleep; measured on
   * mini Q4_0, a margin of 1 with 16-op windows cost a quarter of its decode speed) the main thread
   * runs the ops alone for a second (its workers sleep), then tries the crew again. Results are the same
   * either way: every split of an op gives bit-identical output.
   */
  private solo = false;
  private windowOps = 0;
  private own = 0;
  private wait = 0;
  private soloUntil = 0;
  /** ops per measuring window (judged from its 8th op on), and how long the main thread then runs alone (ms) */
  static readonly WINDOW = 64;
  static readonly MIN_OPS = 4;
  static readonly SOLO_MS = 1000;
  /** times the crew was judged slower than the main thread alone (for tests and the profile) */
  soloSwitches = 0;

  /**
   * Run one op on every thread: `mine(0, n)` here, the workers their own index, then wait.
   * `args` go to the workers (args[0] = opcode). `judge` false: always the whole crew, not timed (loads:
   * page faults and I/O say nothing about how the compute ops share the cores).
   */
  run(args: number[], mine: (index: number, n: number) => void, judge = true): void {
    const workers = this.nThreads - 1;
    if (workers > 0 && this.solo && judge) {
      mine(0, 1);
      if (performance.now() > this.soloUntil) this.solo = false;
      return;
    }
    const t0op = workers > 0 ? performance.now() : 0;
    if (workers > 0) {
      this.checkFailure();
      for (let i = 0; i < args.length; i++) this.args[i] = args[i]!;
      Atomics.store(this.ctl, DONE, 0);
      Atomics.add(this.ctl, SEQ, 1);
      Atomics.notify(this.ctl, SEQ);
    }
    mine(0, this.nThreads);
    if (workers === 0) return;
    const t1op = performance.now();
    const t0 = Date.now();
    let spins = 0;
    while (Atomics.load(this.ctl, DONE) < workers) {
      if (++spins > SPIN) {
        Atomics.wait(this.ctl, DONE, Atomics.load(this.ctl, DONE), 50);
        if (Date.now() - t0 > 120_000) throw new CrewError('the worker crew stopped responding (no progress for 120 s)');
      }
    }
    this.checkFailure();
    if (!judge) return;
    this.own += t1op - t0op;
    this.wait += performance.now() - t1op;
    const slow = ++this.windowOps >= Crew.MIN_OPS && this.wait > 2 * workers * this.own;
    if (slow) {
      this.solo = true;
      this.soloUntil = performance.now() + Crew.SOLO_MS;
      this.soloSwitches++;
    }
    if (slow || this.windowOps >= Crew.WINDOW) {
      this.windowOps = 0;
      this.own = this.wait = 0;
    }
  }

  private checkFailure(): void {
    if (Atomics.load(this.ctl, ERROR) === 0) return;
    const len = Atomics.load(this.ctl, MSG_LEN);
    const msg = len > 0 ? new TextDecoder().decode(new Uint8Array(this.control, MSG, len).slice()) : (this.failure?.message ?? 'unknown error');
    throw new CrewError(`a worker thread failed: ${msg}`);
  }

  async close(): Promise<void> {
    if (!this.pool) return;
    Atomics.store(this.ctl, STOP, 1);
    Atomics.add(this.ctl, SEQ, 1);
    Atomics.notify(this.ctl, SEQ);
    await Promise.allSettled(this.tasks);
    await this.pool.destroy();
    this.pool = undefined;
  }
}
