/**
 * Continuous batching: several generations step one model together. Each open sequence submits its
 * next tokens (a decode token, or a chunk of its prompt) and awaits their logits; a tick runs every
 * submission it can fit through one Phi3.forwardParts call — decode tokens first, then prompt chunks
 * in the room left (16 tokens a pass while streams decode, so they keep flowing while a new prompt
 * fills; 64 otherwise) — and resolves those that are done. A decode step of 8 sequences reads each weight once, as a step of 1 does.
 *
 * A tick starts once every open sequence has submitted, or after GRACE_TURNS turns of the event loop
 * if some have not (a slow consumer cannot stall the others for long). The tokens each sequence
 * gets are the same as alone: each token's logits depend only on its own sequence (every kernel
 * computes a row the same way whatever the batch), and each generation samples with its own sampler.
 */
import { sliceEmbeds, type EmbedRange, type Phi3, type Sequence, type SequencePart } from '../model/phi3.js';

/** what generate() runs tokens through: one sequence of a model */
export interface TokenSequence {
  /** positions its KV cache holds */
  readonly ctx: number;
  /** positions filled */
  readonly nPast: number;
  /** the most prompt tokens to submit in one step */
  readonly maxBatch: number;
  /** keep only the first n positions */
  truncate(n: number): void;
  /** run tokens at positions nPast…; resolves to the last one's logits */
  /** run tokens (embeds: input embeddings in place of some of them, an image's) and give the last one's logits */
  step(tokens: number[], embeds?: EmbedRange[]): Promise<Float32Array>;
}

/** a model's sequence stepped on its own, without a batcher (tests, one-off scripts): each step one forward pass */
export function soloSequence(model: Phi3, seq: Sequence = model.sequences[0]!): TokenSequence {
  return {
    ctx: seq.ctx,
    get nPast() {
      return seq.nPast;
    },
    maxBatch: model.maxBatch,
    truncate: (n) => seq.truncate(n),
    step: async (tokens, embeds) => model.forwardParts([{ seq, tokens, want: 'last', embeds }])[0]![0]!,
  };
}

interface Submission {
  seq: Sequence;
  tokens: number[];
  embeds?: EmbedRange[];
  /** tokens of it already run */
  done: number;
  resolve(logits: Float32Array): void;
  reject(e: unknown): void;
}

const GRACE_TURNS = 2;
/** prompt tokens one pass carries beside running decode steps */
const PREFILL_BESIDE_DECODE = 16;

const nextTurn: (f: () => void) => void = typeof setImmediate === 'function' ? (f) => setImmediate(f) : (f) => setTimeout(f, 0);

export class Batcher {
  private readonly open = new Set<Sequence>();
  private readonly queue: Submission[] = [];
  private scheduled = false;
  private waitedTurns = 0;
  /** ticks run and tokens they carried, for the server's metrics and the tests */
  ticks = 0;
  tokens = 0;
  /** the most sequences one tick has carried */
  widest = 0;
  /** when the latest forward pass ended (Date.now()) */
  lastPassAt = 0;

  constructor(readonly model: Phi3) {}

  /** a sequence opened for stepping; close() it when its generation ends */
  sequence(seq: Sequence): TokenSequence & { close(): void } {
    this.open.add(seq);
    const self = this;
    return {
      ctx: seq.ctx,
      get nPast() {
        return seq.nPast;
      },
      maxBatch: this.model.maxBatch,
      truncate: (n) => seq.truncate(n),
      step: (tokens, embeds) => self.submit(seq, tokens, embeds),
      close: () => {
        self.open.delete(seq);
        self.schedule(); // the others need not wait for it any more
      },
    };
  }

  private submit(seq: Sequence, tokens: number[], embeds?: EmbedRange[]): Promise<Float32Array> {
    if (tokens.length === 0) return Promise.reject(new RangeError('no tokens to run'));
    return new Promise<Float32Array>((resolve, reject) => {
      this.queue.push({ seq, tokens, embeds, done: 0, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    nextTurn(() => this.maybeTick());
  }

  private maybeTick(): void {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    const waiting = new Set(this.queue.map((q) => q.seq));
    const everyone = [...this.open].every((s) => waiting.has(s));
    if (!everyone && this.waitedTurns < GRACE_TURNS) {
      this.waitedTurns++;
      this.scheduled = true;
      nextTurn(() => this.maybeTick());
      return;
    }
    this.waitedTurns = 0;
    this.tick();
    this.schedule();
  }

  /**
   * One forward pass over as much of the queue as fits: decode steps first, then prompt chunks in
   * arrival order — at most PREFILL_BESIDE_DECODE prompt tokens while streams are decoding, so that a
   * new prompt delays their next token by a short pass, not a full one.
   */
  private tick(): void {
    const decoding = this.queue.filter((q) => q.tokens.length - q.done === 1);
    const room = decoding.length ? Math.min(this.model.maxBatch, decoding.length + PREFILL_BESIDE_DECODE) : this.model.maxBatch;
    const order = [...decoding, ...this.queue.filter((q) => q.tokens.length - q.done > 1)];
    const taken: { sub: Submission; n: number }[] = [];
    const inTick = new Set<Sequence>();
    let used = 0;
    for (const sub of order) {
      if (used >= room) break;
      if (inTick.has(sub.seq)) continue; // a sequence's submissions run in order, one per tick
      const n = Math.min(sub.tokens.length - sub.done, room - used);
      taken.push({ sub, n });
      inTick.add(sub.seq);
      used += n;
    }
    const parts: SequencePart[] = taken.map(({ sub, n }) => ({
      seq: sub.seq,
      tokens: sub.tokens.slice(sub.done, sub.done + n),
      want: sub.done + n === sub.tokens.length ? 'last' : 'none',
      embeds: sliceEmbeds(sub.embeds, sub.done, sub.done + n, this.model.config.dim),
    }));
    let out: Float32Array[][];
    try {
      out = this.model.forwardParts(parts);
    } catch (e) {
      for (const { sub } of taken) this.drop(sub), sub.reject(e);
      return;
    }
    this.lastPassAt = Date.now();
    this.ticks++;
    this.tokens += used;
    this.widest = Math.max(this.widest, taken.length);
    taken.forEach(({ sub, n }, i) => {
      sub.done += n;
      if (sub.done < sub.tokens.length) return;
      this.drop(sub);
      sub.resolve(out[i]![0]!);
    });
  }

  private drop(sub: Submission): void {
    const i = this.queue.indexOf(sub);
    if (i >= 0) this.queue.splice(i, 1);
  }
}
