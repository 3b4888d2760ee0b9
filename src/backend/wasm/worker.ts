/**
 * One crew worker, started by a Piscina task: the task instantiates the kernels over the shared
 * memories and returns; the worker then loops outside any task — wait for the next op in the
 * control block, compute this thread's share, count itself done — until STOP is set. (Running the
 * loop after the task has returned leaves Piscina with no task in flight, so its port does not keep
 * the process alive.) Errors are reported through the control block so the main thread never waits
 * forever.
 */
import { instantiate } from './kernels.js';
import { SEQ, DONE, STOP, ARGS, N_ARGS, SPIN, READY, reportExit, reportFailure, type CrewInit } from './crew.js';
import { runShare } from './share.js';

export default function crew(init: CrewInit): number {
  const kernels = init.memories.map((m) => instantiate(init.module, m));
  const seen = Atomics.load(new Int32Array(init.control), SEQ);
  reportExit(init.control, init.index);
  setImmediate(() => loop(init, kernels, seen));
  return 0;
}

function loop(init: CrewInit, kernels: ReturnType<typeof instantiate>[], seen: number): number {
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
      runShare(kernels, args, init.index, init.nThreads);
    } catch (e) {
      reportFailure(init.control, `worker ${init.index}: ${(e as Error)?.stack ?? String(e)}`);
      ops++;
      continue;
    }
    ops++;
    Atomics.add(ctl, DONE, 1);
    Atomics.notify(ctl, DONE);
  }
}
