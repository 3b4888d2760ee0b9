// The crew's choice between every thread and the main thread alone (CrewJudge), on a simulated clock:
// it must leave a quiet many-thread crew alone, and still leave a crew that a busy machine slows.
import { describe, expect, it } from 'vitest';
import { CrewJudge } from '../src/backend/wasm/crew.js';

interface Load {
  crewMs: number; // an op on the crew
  share: number; // of which the main thread's own share (the rest: the wait for the workers)
  soloMs: number; // an op alone
  late?: (op: number) => number; // more wait for op i
}
/** Run ops for `ms` of simulated time from t0: the time spent alone, the ops, when each spell alone began, the end */
function simulate(j: CrewJudge, ms: number, load: Load, t0 = 0) {
  let now = t0, alone = 0, ops = 0, wasSolo = j.solo;
  const spells: number[] = [];
  while (now < t0 + ms) {
    if (j.solo) {
      now += load.soloMs;
      alone += load.soloMs;
      j.soloOp(load.soloMs, now);
    } else {
      const own = load.share * load.crewMs, wait = (1 - load.share) * load.crewMs + (load.late?.(ops) ?? 0);
      now += own + wait;
      j.crewOp(own, wait, now);
    }
    if (j.solo && !wasSolo) spells.push(now);
    wasSolo = j.solo;
    ops++;
  }
  return { alone, ops, spells, end: now };
}
// a big model's decode op at 16 threads: 0.2 ms on the crew, 90 % of it the main thread's share; alone 16 × that
const BIG16: Load = { crewMs: 0.2, share: 0.9, soloMs: 2.9 };
// a busy 2-core machine: the worker waits a time slice behind another process; alone is faster
const BUSY2: Load = { crewMs: 10, share: 0.1, soloMs: 2 };

describe('CrewJudge', () => {
  it('16 threads, quiet: probing alone costs under 1/PROBE_COST of the time (a probe every second: ≈ 8 %)', () => {
    const j = new CrewJudge(15);
    const r = simulate(j, 60_000, BIG16);
    expect(j.soloSwitches).toBe(0);
    expect(r.alone / r.end).toBeLessThan(1.2 / CrewJudge.PROBE_COST);
    expect(r.alone).toBeGreaterThan(0); // it did probe
  });

  it('16 threads: a worker descheduled for a few time slices does not send the crew alone', () => {
    const j = new CrewJudge(15);
    // now and then an op waits 15 ms more for one worker — at each position of a window in turn;
    // the rule from the 2nd op (2·15·own = 10.8 ms there) switched on it
    simulate(j, 10_000, { ...BIG16, late: (i) => (i % 401 === 0 ? 15 : 0) });
    expect(j.soloSwitches).toBe(0);
    expect(j.solo).toBe(false);
  });

  it('a small model, whose ops cost less alone than handing them out: alone within a tenth of a second', () => {
    const j = new CrewJudge(15);
    simulate(j, 100, { crewMs: 0.05, share: 0.1, soloMs: 0.03 });
    expect(j.solo).toBe(true);
    const r = simulate(j, 10_000, { crewMs: 0.05, share: 0.1, soloMs: 0.03 }, 100);
    expect(r.alone / (r.end - 100)).toBeGreaterThan(0.9);
  });

  it('2 threads on a busy machine: every op waits a time slice, so it goes alone within MIN_OPS ops', () => {
    const j = new CrewJudge(1);
    const r = simulate(j, 1_000, BUSY2);
    expect(r.spells.length).toBeGreaterThan(0);
    expect(r.spells[0]!).toBeLessThanOrEqual(CrewJudge.MIN_OPS * BUSY2.crewMs);
  });

  it('while alone stays faster, each spell alone lasts twice as long as the last (to MAX_SOLO_MS)', () => {
    const j = new CrewJudge(1);
    const r = simulate(j, 120_000, BUSY2);
    const gaps = r.spells.slice(1).map((t, i) => t - r.spells[i]!);
    expect(gaps.length).toBeGreaterThan(3);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThanOrEqual(Math.min(gaps[i - 1]! * 1.5, CrewJudge.MAX_SOLO_MS));
    // (a spell ends with the window alone that passes its end, then MIN_OPS crew ops switch again)
    expect(Math.max(...gaps)).toBeLessThanOrEqual(CrewJudge.MAX_SOLO_MS + CrewJudge.WINDOW * BUSY2.soloMs + CrewJudge.MIN_OPS * BUSY2.crewMs + 1);
    expect(r.alone / r.end).toBeGreaterThan(0.9);
  });

  it('once the machine is quiet again, the crew is back within a spell and a window', () => {
    const j = new CrewJudge(1);
    const busy = simulate(j, 5_000, BUSY2);
    expect(j.solo).toBe(true);
    // now the crew takes 1 ms an op, alone 1.8 ms
    const quiet = simulate(j, CrewJudge.MAX_SOLO_MS + 1_000, { crewMs: 1, share: 0.9, soloMs: 1.8 }, busy.end);
    expect(j.solo).toBe(false);
    expect(quiet.alone).toBeLessThan(CrewJudge.MAX_SOLO_MS + CrewJudge.WINDOW * 1.8 + 1);
  });
});
