/**
 * SentencePiece `tokenizer.model` files: the protobuf `ModelProto` that Phi-3 and Phi-3.5 ship.
 *
 * Only what a GGUF vocabulary needs is read: each piece's text, score and type, the trainer's
 * model type and byte fallback, and the normalizer's flags. Every read is bounds-checked and a bad
 * file gets a `SentencePieceError` naming the file, the byte offset and the field.
 *
 * Wire format (protobuf): each field is a varint key `(number << 3) | wireType`, then a varint
 * (wire type 0), 8 bytes (1), a varint length and that many bytes (2), or 4 bytes (5).
 *
 *   ModelProto     1: repeated SentencePiece pieces   2: TrainerSpec   3: NormalizerSpec
 *   SentencePiece  1: string piece   2: float score   3: enum type (1 normal … 6 byte; default 1)
 *   TrainerSpec    3: enum model_type (1 unigram, 2 bpe, 3 word, 4 char)   35: bool byte_fallback
 *   NormalizerSpec 1: string name   2: bytes precompiled_charsmap   3: bool add_dummy_prefix (default true)
 *                  4: bool remove_extra_whitespaces (default true)   5: bool escape_whitespaces (default true)
 */
import * as fs from 'node:fs';
import { TokenType } from '../tokenizer/spm.js';

export class SentencePieceError extends Error {
  override name = 'SentencePieceError';
}

/** sentencepiece's ModelProto.SentencePiece.Type numbers (1 normal … 6 byte) are llama.cpp's token types */
export { TokenType as PieceType };

export const MODEL_TYPES = { 1: 'unigram', 2: 'bpe', 3: 'word', 4: 'char' } as const;

export interface SentencePieceModel {
  pieces: { piece: string; score: number; type: TokenType }[];
  /** TrainerSpec.model_type (default unigram, as in sentencepiece) */
  modelType: number;
  byteFallback: boolean;
  normalizer: { name: string; charsmapBytes: number; addDummyPrefix: boolean; removeExtraWhitespaces: boolean; escapeWhitespaces: boolean };
}

class Reader {
  pos: number;
  constructor(
    readonly b: Uint8Array,
    readonly file: string,
    readonly start: number,
    readonly end: number,
    readonly what: string,
  ) {
    this.pos = start;
  }
  fail(msg: string): never {
    throw new SentencePieceError(`${this.file}: offset ${this.pos}: ${this.what}: ${msg}`);
  }
  varint(): number {
    let v = 0, mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const byte = this.b[this.pos++]!;
      v += (byte & 0x7f) * mul;
      if (!(byte & 0x80)) return v;
      mul *= 128;
    }
    this.fail('varint longer than 10 bytes');
  }
  /** [start, end) of a length-delimited field's bytes */
  bytes(): [number, number] {
    const n = this.varint();
    if (n > this.end - this.pos) this.fail(`length ${n} runs past the end of its message (${this.end - this.pos} bytes left)`);
    const s = this.pos;
    this.pos += n;
    return [s, this.pos];
  }
  f32(): number {
    if (this.end - this.pos < 4) this.fail('truncated float');
    const v = new DataView(this.b.buffer, this.b.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.need(8);
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.need(4);
    else this.fail(`wire type ${wire} is not valid protobuf (groups are not used by sentencepiece)`);
  }
  private need(n: number): void {
    if (this.end - this.pos < n) this.fail(`truncated ${n}-byte field`);
    this.pos += n;
  }
  /** each field of this message: its number and wire type */
  *fields(): Generator<[number, number]> {
    while (this.pos < this.end) {
      const key = this.varint();
      yield [Math.floor(key / 8), key % 8];
    }
  }
  sub(range: [number, number], what: string): Reader {
    return new Reader(this.b, this.file, range[0], range[1], what);
  }
}

// ignoreBOM: a piece may be U+FEFF itself (Phi-3 has one), which the default decoder would drop
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function parseSentencePiece(bytes: Uint8Array, file = '<buffer>'): SentencePieceModel {
  const top = new Reader(bytes, file, 0, bytes.length, 'ModelProto');
  const m: SentencePieceModel = {
    pieces: [],
    modelType: 1,
    byteFallback: false,
    normalizer: { name: '', charsmapBytes: 0, addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true },
  };
  const expect = (r: Reader, wire: number, want: number, field: string) => {
    if (wire !== want) r.fail(`field ${field} has wire type ${wire}, expected ${want}`);
  };
  for (const [n, wire] of top.fields()) {
    if (n === 1) {
      expect(top, wire, 2, 'pieces');
      const r = top.sub(top.bytes(), `pieces[${m.pieces.length}]`);
      const p = { piece: '', score: 0, type: TokenType.NORMAL };
      for (const [pn, pw] of r.fields()) {
        if (pn === 1) {
          expect(r, pw, 2, 'piece');
          const [s, e] = r.bytes();
          try {
            p.piece = utf8.decode(bytes.subarray(s, e));
          } catch {
            r.fail('piece is not valid UTF-8');
          }
        } else if (pn === 2) {
          expect(r, pw, 5, 'score');
          p.score = r.f32();
        } else if (pn === 3) {
          expect(r, pw, 0, 'type');
          const t = r.varint();
          if (t < 1 || t > 6) r.fail(`type ${t} is not a sentencepiece piece type (1–6)`);
          p.type = t;
        } else r.skip(pw);
      }
      m.pieces.push(p);
    } else if (n === 2) {
      expect(top, wire, 2, 'trainer_spec');
      const r = top.sub(top.bytes(), 'trainer_spec');
      for (const [tn, tw] of r.fields()) {
        if (tn === 3 && tw === 0) m.modelType = r.varint();
        else if (tn === 35 && tw === 0) m.byteFallback = r.varint() !== 0;
        else r.skip(tw);
      }
    } else if (n === 3) {
      expect(top, wire, 2, 'normalizer_spec');
      const r = top.sub(top.bytes(), 'normalizer_spec');
      const z = m.normalizer;
      for (const [nn, nw] of r.fields()) {
        if (nn === 1 && nw === 2) {
          const [s, e] = r.bytes();
          z.name = utf8.decode(bytes.subarray(s, e));
        } else if (nn === 2 && nw === 2) {
          const [s, e] = r.bytes();
          z.charsmapBytes = e - s;
        } else if (nn === 3 && nw === 0) z.addDummyPrefix = r.varint() !== 0;
        else if (nn === 4 && nw === 0) z.removeExtraWhitespaces = r.varint() !== 0;
        else if (nn === 5 && nw === 0) z.escapeWhitespaces = r.varint() !== 0;
        else r.skip(nw);
      }
    } else top.skip(wire);
  }
  if (m.pieces.length === 0) throw new SentencePieceError(`${file}: no pieces: not a sentencepiece model`);
  return m;
}

export function readSentencePiece(path: string): SentencePieceModel {
  return parseSentencePiece(new Uint8Array(fs.readFileSync(path)), path);
}

// ── writer (export-hf) ──────────────────────────────────────────────────────────────────────

class Writer {
  private parts: Uint8Array[] = [];
  length = 0;
  private push(b: Uint8Array) {
    this.parts.push(b);
    this.length += b.length;
  }
  varint(v: number) {
    const out: number[] = [];
    do {
      let byte = v % 128;
      v = Math.floor(v / 128);
      if (v > 0) byte |= 0x80;
      out.push(byte);
    } while (v > 0);
    this.push(Uint8Array.from(out));
  }
  key(n: number, wire: number) {
    this.varint(n * 8 + wire);
  }
  uint(n: number, v: number) {
    this.key(n, 0);
    this.varint(v);
  }
  f32(n: number, v: number) {
    this.key(n, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
  }
  bytes(n: number, b: Uint8Array) {
    this.key(n, 2);
    this.varint(b.length);
    this.push(b);
  }
  message(n: number, w: Writer) {
    this.bytes(n, w.done());
  }
  done(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

export function serializeSentencePiece(m: SentencePieceModel): Uint8Array {
  const enc = new TextEncoder();
  const w = new Writer();
  for (const p of m.pieces) {
    const pw = new Writer();
    pw.bytes(1, enc.encode(p.piece));
    pw.f32(2, p.score);
    if (p.type !== TokenType.NORMAL) pw.uint(3, p.type);
    w.message(1, pw);
  }
  const t = new Writer();
  t.uint(3, m.modelType);
  t.uint(4, m.pieces.length);
  t.uint(35, m.byteFallback ? 1 : 0);
  w.message(2, t);
  const z = new Writer();
  z.bytes(1, enc.encode(m.normalizer.name));
  z.uint(3, m.normalizer.addDummyPrefix ? 1 : 0);
  z.uint(4, m.normalizer.removeExtraWhitespaces ? 1 : 0);
  z.uint(5, m.normalizer.escapeWhitespaces ? 1 : 0);
  w.message(3, z);
  return w.done();
}
