/**
 * The worker crew: N−1 workers (Piscina's worker threads in Node, node-host.ts; Web Workers in a
 * browser, src/browser/crew.ts), each instantiating the kernels over the same shared memories and
 * then waiting for ops in crewLoop. Each op is
 * handed out through a shared control block with Atomics (≈ 1 µs, against 170–300 µs for a
 * Piscina task per op); the main thread computes its own share, then waits for the others.
 *
 * Control block (Int32Array over a SharedArrayBuffer):
 *   [SEQ] op sequence number (bumped to start an op)   [DONE] workers finished with it
 *   [STOP] 1 = leave the loop                            [ERROR] 1 = a worker failed (message in MSG)
 * Arguments: Float64Array at byte ARGS: [opcode, a1, a2, …] (pointers < 2^53 are exact).
 */
import { instantiate, type Kernels } from './kernels.js';
import { runShare, type ReadFd } from './share.js';

export const SEQ = 0, DONE = 1, STOP = 2, ERROR = 3, MSG_LEN = 4, READY = 5;
export const MSG = 256; // byte offset of the error message (UTF-8)
export const ARGS = 64; // byte offset of the Float64 arguments
export const N_ARGS = 24;
export const CONTROL_BYTES = 1024;
/** busy-wait iterations before a worker sleeps in Atomics.wait */
export const SPIN = 200000;

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

/**
 * How long the main thread waits for its workers after finishing its own share of an op: at least
 * DEADLINE_MIN_MS, or DEADLINE_FACTOR × its own share's time (the workers' shares are the same size).
 * A worker descheduled for a few time slices is far inside that; one that is gone or stuck is not,
 * and the crew fails rather than holding the process (it was 120 s).
 */
export const DEADLINE_MIN_MS = 2000;
export const DEADLINE_FACTOR = 200;

/** mark the crew failed and count the caller done, so that a main thread waiting for DONE wakes */
function raiseError(ctl: Int32Array): void {
  Atomics.store(ctl, ERROR, 1);
  Atomics.add(ctl, DONE, 1);
  Atomics.notify(ctl, DONE);
}

/** write a worker's failure into the control block and wake the main thread (worker side) */
export function reportFailure(control: SharedArrayBuffer, message: string): void {
  const ctl = new Int32Array(control);
  const msg = new TextEncoder().encode(message.slice(0, 700));
  new Uint8Array(control, MSG, msg.length).set(msg);
  Atomics.store(ctl, MSG_LEN, msg.length);
  raiseError(ctl);
}

/** a worker's kernel instances, one per memory (bank) */
export function crewKernels(init: CrewInit): Kernels[] {
  return init.memories.map((m) => instantiate(init.module, m));
}

/**
 * A worker's loop: wait for the next op in the control block, compute this thread's share, count
 * itself done, until STOP is set. Errors are reported through the control block, so the main thread
 * never waits forever. `kernels`: one instance per memory (crewKernels); `seen`: the op sequence
 * number when the worker started.
 */
export function crewLoop(init: CrewInit, kernels: Kernels[], seen: number, readFd?: ReadFd): number {
  const ctl = new Int32Array(init.control);
  const args = new Float64Array(init.control, ARGS, N_ARGS);
  let ops = 0;
  Atomics.add(ctl, READY, 1);
  for (;;) {
    let spins = 0;
    while (Atomics.load(ctl, SEQ) === seen) {
      if (++spins > SPIN) Atomics.wait(ctl, SEQ, seen, 1000);
    }
    seen = Atomics.load(ctl, SEQ);
    if (Atomics.load(ctl, STOP)) return ops;
    try {
      runShare(kernels, args, init.index, init.nThreads, readFd);
    } catch (e) {
      reportFailure(init.control, `worker ${init.index}: ${(e as Error)?.stack ?? String(e)}`);
      ops++;
      continue;
    }
    ops++;
    // only the last one wakes the main thread: a notify takes V8's process-wide futex lock, and fifteen
    // of them per op queue up behind each other (the main thread's timed wait sees the others' counts)
    if (Atomics.add(ctl, DONE, 1) === init.nThreads - 2) Atomics.notify(ctl, DONE);
  }
}

/** The main thread's side of the crew; a platform's subclass starts the workers and stops them. */
export abstract class Crew {
  readonly control = new SharedArrayBuffer(CONTROL_BYTES);
  readonly ctl = new Int32Array(this.control);
  readonly args = new Float64Array(this.control, ARGS, N_ARGS);
  protected failure: Error | undefined;

  constructor(readonly nThreads: number) {
    this.judge = new CrewJudge(nThreads - 1);
  }

  /** stop the workers once STOP is set and they have been woken (resolves when they are gone) */
  protected abstract stopWorkers(): Promise<void>;

  /** a worker failed (an error in an op, or it died): this crew cannot run ops any more */
  get failed(): boolean {
    return Atomics.load(this.ctl, ERROR) !== 0 || this.failure !== undefined;
  }

  /** a worker died outside its own try/catch: release anyone waiting and remember why */
  protected fail(e: Error): void {
    this.failure ??= e;
    raiseError(this.ctl);
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

  /** whether each op runs on every thread or on this one alone (CrewJudge) */
  readonly judge: CrewJudge;
  /** times the main thread chose to run alone (for tests and the profile) */
  get soloSwitches(): number {
    return this.judge.soloSwitches;
  }

  /**
   * Run one op on every thread: `mine(0, n)` here, the workers their own index, then wait.
   * `args` go to the workers (args[0] = opcode). `judge` false: always the whole crew, not timed (loads:
   * page faults and I/O say nothing about how the compute ops share the cores).
   */
  run(args: number[], mine: (index: number, n: number) => void, judge = true): void {
    const workers = this.nThreads - 1;
    if (workers === 0) {
      mine(0, 1);
      return;
    }
    const t0op = performance.now();
    if (this.judge.solo && judge) {
      mine(0, 1);
      const t = performance.now();
      this.judge.soloOp(t - t0op, t);
      return;
    }
    this.checkFailure();
    for (let i = 0; i < args.length; i++) this.args[i] = args[i]!;
    Atomics.store(this.ctl, DONE, 0);
    Atomics.add(this.ctl, SEQ, 1);
    Atomics.notify(this.ctl, SEQ);
    mine(0, this.nThreads);
    const t1op = performance.now();
    let spins = 0;
    let deadline = 0;
    while (Atomics.load(this.ctl, DONE) < workers) {
      if (++spins <= SPIN) continue;
      // sleep in short slices until the workers are done, one reports a failure, or the deadline
      const now = performance.now();
      deadline ||= now + Math.max(DEADLINE_MIN_MS, DEADLINE_FACTOR * (t1op - t0op));
      if (now > deadline) {
        const late = workers - Atomics.load(this.ctl, DONE);
        const e = new CrewError(`${late} of ${workers} worker thread(s) did not finish an op within ${(now - t1op).toFixed(0)} ms (the main thread's share took ${(t1op - t0op).toFixed(1)} ms): the crew is restarted`);
        this.fail(e);
        throw e;
      }
      Atomics.wait(this.ctl, DONE, Atomics.load(this.ctl, DONE), 20);
    }
    this.checkFailure();
    if (!judge) return;
    const t2op = performance.now();
    this.judge.crewOp(t1op - t0op, t2op - t1op, t2op);
  }

  private checkFailure(): void {
    if (Atomics.load(this.ctl, ERROR) === 0) return;
    if (this.failure instanceof CrewError) throw this.failure;
    const len = Atomics.load(this.ctl, MSG_LEN);
    const msg = len > 0 ? new TextDecoder().decode(new Uint8Array(this.control, MSG, len).slice()) : (this.failure?.message ?? 'unknown error');
    throw new CrewError(`a worker thread failed: ${msg}`);
  }

  private closed = false;
  async close(): Promise<void> {
    if (this.nThreads <= 1 || this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, STOP, 1);
    Atomics.add(this.ctl, SEQ, 1);
    Atomics.notify(this.ctl, SEQ);
    await this.stopWorkers();
  }
}

/**
 * Whether the crew pays for itself, judged as it runs (pure: fed each op's times, it says how the
 * next op runs). On a machine whose cores are busy with other work, a worker may be descheduled
 * mid-op and the main thread then waits a whole time slice for it; and for a small model, handing
 * out an op can cost more than the op. So the two ways of running are timed against each other on
 * adjacent windows of WINDOW ops (decode repeats the same ops, so neighbouring windows hold the same
 * work):
 * - in crew mode, now and then a probe: one window on the main thread alone. A probe of a big
 *   model at n threads runs at 1/n of the crew's speed, so the gap before the next one is
 *   PROBE_COST × what the probe costs more than a crew window (probeGap): probing takes at most
 *   1/PROBE_COST of the time at any thread count (a probe every second, as before: a window at
 *   1/16 speed each second, ≈ 8 % of a 16-thread decode), and a small model, for which alone may
 *   well be faster, is probed within MIN_PROBE_MS;
 * - if alone was faster per op, the main thread stays alone for a spell (its workers sleep), timing
 *   every window, then one crew window is timed again, and the faster way goes on; each spell that
 *   alone wins again lasts twice as long (SOLO_MS up to MAX_SOLO_MS);
 * - a crew window whose wait for the workers is far past what the crew saves (wait > 2·(n−1)·own:
 *   alone would take ≈ n·own) switches at once, from its MIN_OPS-th op — late enough that one
 *   descheduled worker among many does not send a 16-thread crew alone for a second.
 * Results are the same either way: every split of an op gives bit-identical output.
 *
 * Measured (16-core Sapphire Rapids, Node 24, mini decode, 3 alternating runs): with probes every
 * 1 s and the switch from the 2nd op, 16 threads gave Q4_K_M 9.5–13.6 tok/s and Q4_0 12.9–22.0;
 * never going alone 14.9–15.6 and 22.9–25.0.
 */
export class CrewJudge {
  static readonly WINDOW = 32;
  static readonly MIN_OPS = 8;
  static readonly SOLO_MS = 1000;
  static readonly MAX_SOLO_MS = 16_000;
  static readonly PROBE_COST = 50;
  static readonly MIN_PROBE_MS = 2;
  static readonly MAX_PROBE_MS = 60_000;
  /** the next op runs on the main thread alone */
  solo = false;
  soloUntil = 0;
  soloSwitches = 0;
  /** ms per op of the latest window run each way */
  readonly perOp = { solo: Infinity, crew: Infinity };
  private soloMs = CrewJudge.SOLO_MS;
  /** what the current window is for: a probe of 'alone' from crew mode, or the crew again after a solo spell */
  private checking: 'solo' | 'crew' | undefined;
  private nextProbe = 0;
  /** the main thread's own share per op in the latest crew window */
  private ownPerOp = 0;
  private windowOps = 0;
  private windowTime = 0;
  private own = 0;
  private wait = 0;

  /** `workers`: the crew's threads besides the main one */
  constructor(readonly workers: number) {}

  /** an op the whole crew ran: `own` ms on the main thread, then `wait` ms for the workers, ending at `now` */
  crewOp(own: number, wait: number, now: number): void {
    this.own += own;
    this.wait += wait;
    if (this.windowOps + 1 >= CrewJudge.MIN_OPS && this.wait > 2 * this.workers * this.own) this.goSolo(now, this.checking === 'crew');
    else this.timed('crew', own + wait, now);
  }

  /** an op the main thread ran alone in `ms`, ending at `now` */
  soloOp(ms: number, now: number): void {
    this.timed('solo', ms, now);
  }

  /** a spell alone; `again`: right after one (alone still faster), so twice as long as that one */
  private goSolo(now: number, again = false): void {
    if (again) this.soloMs = Math.min(CrewJudge.MAX_SOLO_MS, 2 * this.soloMs);
    this.solo = true;
    this.soloUntil = now + this.soloMs;
    this.checking = undefined;
    this.soloSwitches++;
    this.windowOps = this.windowTime = this.own = this.wait = 0;
  }

  /**
   * How long until the next probe: PROBE_COST times what a probe costs more than a crew window —
   * alone's time per op as last measured, or, before any, n × the main thread's share — so that
   * probing takes at most 1 / PROBE_COST of the time, between MIN_PROBE_MS and MAX_PROBE_MS.
   */
  private probeGap(): number {
    const solo = Number.isFinite(this.perOp.solo) ? this.perOp.solo : (this.workers + 1) * this.ownPerOp;
    const extra = CrewJudge.WINDOW * (solo - this.perOp.crew);
    return Math.min(CrewJudge.MAX_PROBE_MS, Math.max(CrewJudge.MIN_PROBE_MS, CrewJudge.PROBE_COST * extra));
  }

  /** count one judged op; at the end of a window, record its time per op and choose how the next runs */
  private timed(mode: 'solo' | 'crew', ms: number, now: number): void {
    this.windowTime += ms;
    if (++this.windowOps < CrewJudge.WINDOW) return;
    this.perOp[mode] = this.windowTime / this.windowOps;
    if (mode === 'crew') this.ownPerOp = this.own / this.windowOps;
    this.windowOps = this.windowTime = this.own = this.wait = 0;
    const soloFaster = this.perOp.solo < this.perOp.crew;
    const checked = this.checking;
    this.checking = undefined;
    if (mode === 'crew') {
      if (checked === 'crew' && soloFaster) this.goSolo(now, true);
      else if (checked === 'crew') {
        this.soloMs = CrewJudge.SOLO_MS;
        this.nextProbe = now + this.probeGap();
      } else if (this.nextProbe === 0) this.nextProbe = now + this.probeGap(); // the first crew window
      else if (now >= this.nextProbe) {
        this.solo = true; // probe: one window alone
        this.soloUntil = 0;
        this.checking = 'solo';
      }
    } else if (checked === 'solo') {
      if (soloFaster) this.goSolo(now);
      else {
        this.solo = false;
        this.nextProbe = now + this.probeGap();
      }
    } else if (now > this.soloUntil) {
      this.solo = false; // a crew window again, to compare
      this.checking = 'crew';
    }
  }
}
