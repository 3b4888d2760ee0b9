/**
 * compareLogits: how far another engine's logits (b) are from a reference's (a), position by position.
 *
 * Per position: max |a − b|, that over the reference's max |logit| (the relative figure the project's
 * budgets use), KL(P‖Q) with P = softmax(a), Q = softmax(b) in f64, whether the argmax agrees, the
 * overlap of the two top-5 sets, and Spearman's rank correlation of a and b over a's top 100 tokens.
 * Overall: the maxima, KL mean / p99 / max, top-1 agreement, mean top-5 overlap, the first position
 * whose argmax differs, the smallest Spearman, and a verdict against the thresholds given.
 */

export interface PositionReport {
  pos: number;
  maxAbs: number;
  rel: number;
  kl: number;
  top1: boolean;
  /** |top5(a) ∩ top5(b)| / 5 */
  top5: number;
  spearman: number;
  argmaxA: number;
  argmaxB: number;
}

export interface CompareReport {
  positions: PositionReport[];
  nVocab: number;
  maxAbs: number;
  /** max |a − b| ÷ max |a| over all positions */
  rel: number;
  scale: number;
  klMean: number;
  klP99: number;
  klMax: number;
  top1Agreement: number;
  top5Overlap: number;
  /** first position whose argmax differs; -1 if none */
  firstArgmaxDiff: number;
  spearmanMin: number;
  spearmanMean: number;
  verdict: { pass: boolean; maxRel: number; maxKl: number; reason: string };
}

export interface CompareOptions {
  /** fail when max |Δ| ÷ max |a| exceeds this (default 1e-3, the project's F32 budget) */
  maxRel?: number;
  /** fail when any position's KL(P‖Q) exceeds this (default 1e-3 nats) */
  maxKl?: number;
  /** tokens in the rank correlation (default 100) */
  spearmanTop?: number;
}

type Row = ArrayLike<number>;

export function logSoftmax(x: Row): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i]! > max) max = x[i]!;
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i]! - max);
  const lse = max + Math.log(s);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! - lse;
  return out;
}

/** indices of the k largest values, largest first (ties: lower index first) */
export function topK(x: Row, k: number): number[] {
  const idx = Array.from({ length: x.length }, (_, i) => i);
  idx.sort((i, j) => x[j]! - x[i]! || i - j);
  return idx.slice(0, Math.min(k, x.length));
}

/** ranks 1..n of values (average ranks for ties), for Spearman */
function ranks(v: number[]): number[] {
  const order = v.map((x, i) => [x, i] as const).sort((p, q) => q[0] - p[0]);
  const r = new Array<number>(v.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    for (let k = i; k <= j; k++) r[order[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

export function spearman(a: number[], b: number[]): number {
  const ra = ranks(a), rb = ranks(b);
  const n = a.length;
  const ma = ra.reduce((s, x) => s + x, 0) / n, mb = rb.reduce((s, x) => s + x, 0) / n;
  let num = 0, da = 0, db = 0;
  for (let i = 0; i < n; i++) {
    num += (ra[i]! - ma) * (rb[i]! - mb);
    da += (ra[i]! - ma) ** 2;
    db += (rb[i]! - mb) ** 2;
  }
  return da === 0 || db === 0 ? (da === db ? 1 : 0) : num / Math.sqrt(da * db);
}

export function comparePosition(a: Row, b: Row, pos: number, scale: number, top = 100): PositionReport {
  if (a.length !== b.length) throw new RangeError(`position ${pos}: ${a.length} logits vs ${b.length}`);
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= maxAbs)) maxAbs = d; // NaN propagates as a failure
  }
  const la = logSoftmax(a), lb = logSoftmax(b);
  let kl = 0;
  for (let i = 0; i < a.length; i++) {
    const p = Math.exp(la[i]!);
    if (p > 0) kl += p * (la[i]! - lb[i]!);
  }
  const ta = topK(a, Math.max(5, top)), tb = topK(b, 5);
  const top5a = new Set(ta.slice(0, 5));
  const top5 = tb.filter((i) => top5a.has(i)).length / Math.min(5, a.length);
  const sp = spearman(ta.map((i) => a[i]!), ta.map((i) => b[i]!));
  return { pos, maxAbs, rel: maxAbs / scale, kl: Math.max(0, kl), top1: ta[0] === tb[0], top5, spearman: sp, argmaxA: ta[0]!, argmaxB: tb[0]! };
}

export function compareLogits(a: Row[], b: Row[], o: CompareOptions = {}): CompareReport {
  if (a.length !== b.length) throw new RangeError(`the files hold ${a.length} and ${b.length} positions`);
  if (a.length === 0) throw new RangeError('no positions to compare');
  const nVocab = a[0]!.length;
  let scale = 0;
  for (const r of a) for (let i = 0; i < r.length; i++) scale = Math.max(scale, Math.abs(r[i]!));
  const positions = a.map((r, p) => comparePosition(r, b[p]!, p, scale || 1, o.spearmanTop ?? 100));
  const kls = positions.map((p) => p.kl).sort((x, y) => x - y);
  const maxAbs = Math.max(...positions.map((p) => p.maxAbs));
  const rel = maxAbs / (scale || 1);
  const klMax = kls[kls.length - 1]!;
  const maxRel = o.maxRel ?? 1e-3, maxKl = o.maxKl ?? 1e-3;
  const fails = [...(rel <= maxRel ? [] : [`max |Δ| ÷ scale ${rel.toExponential(3)} > ${maxRel}`]), ...(klMax <= maxKl ? [] : [`max KL ${klMax.toExponential(3)} > ${maxKl}`])];
  return {
    positions,
    nVocab,
    maxAbs,
    rel,
    scale,
    klMean: kls.reduce((s, x) => s + x, 0) / kls.length,
    klP99: kls[Math.min(kls.length - 1, Math.ceil(0.99 * kls.length) - 1)]!,
    klMax,
    top1Agreement: positions.filter((p) => p.top1).length / positions.length,
    top5Overlap: positions.reduce((s, p) => s + p.top5, 0) / positions.length,
    firstArgmaxDiff: positions.findIndex((p) => !p.top1),
    spearmanMin: Math.min(...positions.map((p) => p.spearman)),
    spearmanMean: positions.reduce((s, p) => s + p.spearman, 0) / positions.length,
    verdict: { pass: fails.length === 0, maxRel, maxKl, reason: fails.length ? fails.join('; ') : `max |Δ| ÷ scale ${rel.toExponential(3)} ≤ ${maxRel}, max KL ${klMax.toExponential(3)} ≤ ${maxKl}` },
  };
}

/** the report as text: one line per position, then the totals and the verdict (its last line) */
export function formatCompare(r: CompareReport, names: [string, string]): string {
  const e = (x: number) => x.toExponential(3);
  const lines = [`pos  max|Δ|      rel         KL(P‖Q)     top1 top5  spearman  argmax a/b`];
  for (const p of r.positions)
    lines.push(`${String(p.pos).padStart(3)}  ${e(p.maxAbs)}  ${e(p.rel)}  ${e(p.kl)}  ${p.top1 ? 'yes ' : 'NO  '} ${p.top5.toFixed(2)}  ${p.spearman.toFixed(4)}    ${p.argmaxA}/${p.argmaxB}`);
  lines.push(
    `a = ${names[0]} (reference), b = ${names[1]}: ${r.positions.length} positions × ${r.nVocab}`,
    `max |Δ| ${e(r.maxAbs)} (scale ${r.scale.toFixed(3)}, relative ${e(r.rel)}) · KL mean ${e(r.klMean)} p99 ${e(r.klP99)} max ${e(r.klMax)}`,
    `top-1 agreement ${(100 * r.top1Agreement).toFixed(2)} % (first difference at ${r.firstArgmaxDiff < 0 ? 'none' : 'position ' + r.firstArgmaxDiff}) · top-5 overlap ${(100 * r.top5Overlap).toFixed(2)} % · Spearman top-100 min ${r.spearmanMin.toFixed(4)} mean ${r.spearmanMean.toFixed(4)}`,
    `${r.verdict.pass ? 'PASS' : 'FAIL'}: ${r.verdict.reason}`,
  );
  return lines.join('\n');
}
