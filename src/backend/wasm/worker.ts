/**
 * One crew worker in Node, started by a Piscina task: the task returns at once and the worker then
 * runs crewLoop outside any task (so Piscina has no task in flight and its port does not keep the
 * process alive). A worker that exits before STOP says so as it goes.
 */
import { SEQ, crewKernels, crewLoop, type CrewInit } from './crew.js';
import { readFd, reportExit } from './node-host.js';

export default function crew(init: CrewInit): number {
  const kernels = crewKernels(init);
  const seen = Atomics.load(new Int32Array(init.control), SEQ);
  reportExit(init.control, init.index);
  setImmediate(() => crewLoop(init, kernels, seen, readFd));
  return 0;
}
