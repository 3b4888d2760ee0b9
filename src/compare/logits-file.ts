/**
 * Logits files, whatever wrote them, as rows of n_vocab numbers:
 *  - phi3-ts `logits --out`: little-endian f32 rows, no header (n_vocab from the other file or --n-vocab);
 *  - phi3-ts `logits --json`: {"n_vocab": N, "logits": [[…], …]};
 *  - NumPy `.npy` (format 1.0–3.0), float32 or float64, C order, shape [positions, vocab] (or [vocab]);
 *  - llama-perplexity's `--kl-divergence-base` file (or ours, `phi3 perplexity --save-logits`): every scored
 *    position's log-probabilities, log p ≥ the row's floor (`floors`: values more than 16 below the top are
 *    stored as the floor).
 * Every header field is checked; a size that does not divide into rows is an error naming both numbers.
 */
import * as fs from 'node:fs';
import { KLD_MAGIC, kldRowsPerChunk, readKldBase } from '../perplexity/kld-file.js';
import { logSoftmax } from './compare.js';

export class LogitsFileError extends Error {
  override name = 'LogitsFileError';
}

export interface LogitsRows {
  nVocab: number;
  rows: (Float64Array | Float32Array)[];
  /** what the file was read as */
  format: 'f32-rows' | 'json' | 'npy' | 'llama-kld';
  /** llama-kld: each row's log-probability floor (min_log_prob) */
  floors?: Float64Array;
}

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

function formatOf(head: Buffer): LogitsRows['format'] {
  if (head.subarray(0, 6).equals(NPY_MAGIC)) return 'npy';
  if (head.toString('latin1', 0, 8) === KLD_MAGIC) return 'llama-kld';
  return head.toString('latin1').trimStart().startsWith('{') ? 'json' : 'f32-rows';
}

/** what a file holds, from its first bytes (raw f32 rows when it is neither .npy nor JSON) */
export function logitsFileFormat(path: string): LogitsRows['format'] {
  const fd = fs.openSync(path, 'r');
  try {
    const head = Buffer.alloc(64);
    return formatOf(head.subarray(0, fs.readSync(fd, head, 0, 64, 0)));
  } finally {
    fs.closeSync(fd);
  }
}

export function readLogitsFile(path: string, nVocab?: number): LogitsRows {
  if (logitsFileFormat(path) === 'llama-kld') return readKld(path);
  const buf = fs.readFileSync(path);
  switch (formatOf(buf.subarray(0, 64))) {
    case 'npy':
      return readNpy(path, buf);
    case 'json':
      return readJson(path, buf);
    default:
      return readF32Rows(path, buf, nVocab);
  }
}

function readF32Rows(path: string, buf: Buffer, nVocab: number | undefined): LogitsRows {
  if (nVocab === undefined) throw new LogitsFileError(`${path}: raw f32 rows need n_vocab (give --n-vocab, or compare with a file that states it)`);
  if (buf.length % 4 !== 0 || buf.length % (4 * nVocab) !== 0 || buf.length === 0)
    throw new LogitsFileError(`${path}: ${buf.length} bytes is not a whole number of ${nVocab}-value f32 rows (${4 * nVocab} bytes each)`);
  const n = buf.length / (4 * nVocab);
  const rows = Array.from({ length: n }, (_, r) => {
    const row = new Float64Array(nVocab);
    for (let i = 0; i < nVocab; i++) row[i] = buf.readFloatLE((r * nVocab + i) * 4);
    return row;
  });
  return { nVocab, rows, format: 'f32-rows' };
}

function readJson(path: string, buf: Buffer): LogitsRows {
  let j: { n_vocab?: unknown; logits?: unknown };
  try {
    j = JSON.parse(buf.toString('utf8')) as typeof j;
  } catch (e) {
    throw new LogitsFileError(`${path}: not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(j.logits) || j.logits.length === 0) throw new LogitsFileError(`${path}: JSON has no "logits": [[…], …] rows`);
  const nVocab = typeof j.n_vocab === 'number' ? j.n_vocab : (j.logits[0] as unknown[]).length;
  const rows = (j.logits as unknown[]).map((r, i) => {
    if (!Array.isArray(r) || r.length !== nVocab) throw new LogitsFileError(`${path}: logits row ${i} has ${Array.isArray(r) ? r.length : 'no'} values, expected n_vocab ${nVocab}`);
    if (!r.every((x) => typeof x === 'number')) throw new LogitsFileError(`${path}: logits row ${i} holds a value that is not a number`);
    return Float64Array.from(r as number[]);
  });
  return { nVocab, rows, format: 'json' };
}

function readNpy(path: string, buf: Buffer): LogitsRows {
  const major = buf[6]!;
  if (major < 1 || major > 3) throw new LogitsFileError(`${path}: .npy format version ${major}.${buf[7]} (expected 1.x–3.x)`);
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  if (hstart + hlen > buf.length) throw new LogitsFileError(`${path}: .npy header of ${hlen} bytes runs past the ${buf.length}-byte file`);
  const header = buf.subarray(hstart, hstart + hlen).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new LogitsFileError(`${path}: .npy header ${JSON.stringify(header.trim())} lacks descr, fortran_order or shape`);
  if (fortran === 'True') throw new LogitsFileError(`${path}: .npy is in Fortran order; save it C-ordered (np.ascontiguousarray)`);
  const size = { '<f4': 4, '<f8': 8 }[descr];
  if (!size) throw new LogitsFileError(`${path}: .npy dtype '${descr}' (expected little-endian float32 '<f4' or float64 '<f8')`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.length < 1 || shape.length > 2 || !shape.every((d) => Number.isSafeInteger(d) && d > 0))
    throw new LogitsFileError(`${path}: .npy shape (${shapeText}) is not [positions, vocab] or [vocab]`);
  const [nRows, nVocab] = shape.length === 2 ? [shape[0]!, shape[1]!] : [1, shape[0]!];
  const data = hstart + hlen;
  if (buf.length - data !== nRows * nVocab * size)
    throw new LogitsFileError(`${path}: .npy shape (${shapeText}) × ${size} bytes = ${nRows * nVocab * size}, but the data holds ${buf.length - data} bytes`);
  const rows = Array.from({ length: nRows }, (_, r) => {
    const row = new Float64Array(nVocab);
    for (let i = 0; i < nVocab; i++) row[i] = size === 4 ? buf.readFloatLE(data + (r * nVocab + i) * 4) : buf.readDoubleLE(data + (r * nVocab + i) * 8);
    return row;
  });
  return { nVocab, rows, format: 'npy' };
}

function readKld(path: string): LogitsRows {
  const k = readKldBase(path);
  const per = kldRowsPerChunk(k.nCtx);
  const rows: Float32Array[] = [];
  const floors = new Float64Array(k.nChunk * per);
  for (let c = 0; c < k.nChunk; c++)
    for (let j = 0; j < per; j++) {
      const r = k.row(c, j);
      const row = new Float32Array(k.nVocab);
      for (let i = 0; i < k.nVocab; i++) row[i] = r.scale * r.q[i]! + r.minLogProb;
      floors[rows.length] = r.minLogProb;
      rows.push(row);
    }
  return { nVocab: k.nVocab, rows, format: 'llama-kld', floors };
}

/** rows as log-probabilities floored as a llama-kld file floors them (for comparing with one) */
export function asFlooredLogProbs(rows: LogitsRows['rows'], floors: Float64Array): Float64Array[] {
  return rows.map((x, r) => logSoftmax(x).map((v) => Math.max(v, floors[r]!)));
}
