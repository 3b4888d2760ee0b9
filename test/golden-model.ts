// Shared helpers for golden model tests: rebuild the recipe's synthetic model, compare logits.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSynth, PRESETS } from '../src/synth/synth.js';
import { f32FromB64, ROOT, SHARED_MODELS, tmpDir } from './helpers.js';

export interface ModelRecipe {
  id: string;
  preset: string;
  type: string;
  seed: number;
  prompt: string;
  vocab?: string;
  tied?: boolean;
  greedy?: number;
  /** context size llama.cpp ran at (LongRoPE picks its factors by it); default 256 */
  ctx?: number;
}
export interface ModelGolden {
  recipe: ModelRecipe;
  nVocab: number;
  tokens: number[];
  positions: { argmax: number; logits: string; ids?: number[] }[];
  greedy?: number[];
}

export function modelGoldens(): ModelGolden[] {
  const dir = path.join(ROOT, 'golden', 'data', 'logits');
  return fs
    .readdirSync(dir)
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as ModelGolden);
}

/** the recipe's model file (written by our synth, same seed → same bytes), or undefined if its vocab is absent */
export function recipeModel(r: ModelRecipe, dir = tmpDir()): string | undefined {
  const vocab = r.vocab ? path.join(SHARED_MODELS, r.vocab) : undefined;
  if (vocab && !fs.existsSync(vocab)) return undefined;
  const file = path.join(dir, `${r.id}.gguf`);
  writeSynth(file, { shape: { ...PRESETS[r.preset]!, tiedEmbeddings: r.tied ?? PRESETS[r.preset]!.tiedEmbeddings }, type: r.type, seed: r.seed, vocabFile: vocab });
  return file;
}

export interface LogitsDiff {
  maxAbs: number;
  scale: number;
  /** position and vocab index of the largest difference */
  at: [number, number];
  top1Mismatch: number; // first position whose argmax differs, -1 if none
  report: string;
}

/** compare our logits rows with llama.cpp's; `scale` = max |logit| over the golden */
export function compareLogits(g: ModelGolden, ours: Float32Array[]): LogitsDiff {
  let maxAbs = 0, scale = 0, at: [number, number] = [0, 0], top1Mismatch = -1;
  const lines: string[] = [];
  g.positions.forEach((p, pos) => {
    const want = f32FromB64(p.logits);
    const ids = p.ids ?? [...want.keys()];
    const row = ours[pos]!;
    ids.forEach((id, k) => {
      const d = Math.abs(row[id]! - want[k]!);
      scale = Math.max(scale, Math.abs(want[k]!));
      if (d > maxAbs) {
        maxAbs = d;
        at = [pos, id];
      }
    });
    let argmax = 0;
    for (let i = 0; i < row.length; i++) if (row[i]! > row[argmax]!) argmax = i;
    if (argmax !== p.argmax && top1Mismatch < 0) {
      top1Mismatch = pos;
      lines.push(`position ${pos}: our top-1 ${argmax} (${row[argmax]}) vs llama.cpp ${p.argmax} (ours ${row[p.argmax]})`);
    }
    if (pos === 0)
      lines.push(`first values at position 0: ours [${ids.slice(0, 4).map((i) => row[i]!.toFixed(4))}] llama.cpp [${[...want.slice(0, 4)].map((v) => v.toFixed(4))}]`);
  });
  lines.push(`max |Δ| ${maxAbs.toExponential(3)} at position ${at[0]}, token ${at[1]}; logit scale ${scale.toFixed(3)}; relative ${(maxAbs / scale).toExponential(3)}`);
  return { maxAbs, scale, at, top1Mismatch, report: lines.join('\n') };
}
