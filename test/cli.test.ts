import { describe, expect, it, beforeAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { ROOT, PHI3_VOCAB, tmpDir } from './helpers.js';
import { openGguf } from '../src/gguf/file-source.js';
import { SpmTokenizer } from '../src/tokenizer/spm.js';
import { loadModel, ContextLengthError } from '../src/api.js';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const phi3 = (args: string[], input?: string) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', input });
const dir = tmpDir();
const tiny = path.join(dir, 'tiny.gguf');

beforeAll(() => {
  if (!fs.existsSync(CLI)) execFileSync('npm', ['run', 'build:ts'], { cwd: ROOT });
  const r = phi3(['synth', '--preset', 'tiny', '--type', 'Q4_K_M', '--seed', '9', '--out', tiny]);
  expect(r.status, r.stderr).toBe(0);
});

describe('phi3 synth', () => {
  it('same seed → same bytes; another seed → other bytes', () => {
    const again = path.join(dir, 'again.gguf');
    const other = path.join(dir, 'other.gguf');
    phi3(['synth', '--preset', 'tiny', '--type', 'Q4_K_M', '--seed', '9', '--out', again]);
    phi3(['synth', '--preset', 'tiny', '--type', 'Q4_K_M', '--seed', '10', '--out', other]);
    const h = (p: string) => crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    expect(h(again)).toBe(h(tiny));
    expect(h(other)).not.toBe(h(tiny));
  });
  it('Q4_K_M uses the official mix: q5_K attn_qkv, q6_K output, q4_K elsewhere', () => {
    const f = openGguf(tiny);
    const types = Object.fromEntries(f.tensors.map((t) => [t.name, t.type]));
    f.close();
    expect(types['blk.0.attn_qkv.weight']).toBe(13); // Q5_K
    expect(types['output.weight']).toBe(14); // Q6_K
    expect(types['blk.0.attn_output.weight']).toBe(12); // Q4_K
    expect(types['blk.0.ffn_down.weight']).toBe(14); // use_more_bits(0, 2)
    expect(types['blk.0.attn_norm.weight']).toBe(0); // F32
  });
  it('rejects an unknown type with a clear message', () => {
    const r = phi3(['synth', '--type', 'Q9_9', '--out', path.join(dir, 'x.gguf')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown --type 'Q9_9'/);
  });
});

describe('phi3 inspect', () => {
  it.runIf(fs.existsSync(PHI3_VOCAB))('reports arch phi3 and 32064 tokens for the vocab-only Phi-3 file', () => {
    const r = phi3(['inspect', PHI3_VOCAB, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.architecture).toBe('phi3');
    expect(j.tokenizer.nTokens).toBe(32064);
    expect(j.tensors.count).toBe(0);
    expect(j.chatTemplate).toContain('<|user|>');
    expect(j.memory.kvCacheBytes).toBe(2 * 32 * 4096 * 3072 * 2);
  });
  it('estimates memory at --ctx and counts bytes by type', () => {
    const j = JSON.parse(phi3(['inspect', tiny, '--json', '--ctx', '128']).stdout);
    expect(j.memory.ctx).toBe(128);
    expect(j.memory.kvCacheBytes).toBe(2 * 2 * 128 * 256 * 2);
    expect(j.tensors.byType.Q4_K.count).toBeGreaterThan(0);
    expect(j.memory.weightsBytes).toBe(j.tensors.bytes);
    expect(phi3(['inspect', tiny]).stdout).toMatch(/memory @ctx 512/);
  });
  it('names the file and offset of a corrupt GGUF, exit code 1', () => {
    const bad = path.join(dir, 'bad.gguf');
    const b = fs.readFileSync(tiny);
    fs.writeFileSync(bad, b.subarray(0, 5000));
    const r = phi3(['inspect', bad]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/GgufError: .*bad\.gguf, offset \d+/);
  });
});

describe('phi3 tokenize / detokenize', () => {
  it('reads every byte of stdin, no trimming, and prints one JSON array', () => {
    const f = openGguf(tiny);
    const tok = new SpmTokenizer(f);
    f.close();
    const text = '  hello world\n\n';
    const r = phi3(['tokenize', tiny], text);
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(r.stdout.trim().split('\n').length).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual(tok.encode(text));
    expect(JSON.parse(phi3(['tokenize', tiny, '--text', 'hi', '--no-bos']).stdout)).toEqual(tok.encode('hi', { addSpecial: false }));
    expect(JSON.parse(phi3(['tokenize', tiny, '--text', '<|end|>', '--special', '--no-bos']).stdout)).toEqual([tok.tokenId('<|end|>')]);
  });
  it('detokenize prints the text', () => {
    const ids = JSON.parse(phi3(['tokenize', tiny, '--text', 'the model', '--no-bos']).stdout) as number[];
    expect(phi3(['detokenize', tiny, '--tokens', ids.join(',')]).stdout).toBe('the model\n');
    const r = phi3(['detokenize', tiny, '--tokens', '1,99999']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/99999 is outside the vocabulary/);
  });
});

describe('phi3 logits / run', () => {
  it('--json and --out agree; --all gives every position', () => {
    const out = path.join(dir, 'l.bin');
    const j = JSON.parse(phi3(['logits', tiny, '--tokens', '1,300,400', '--all', '--json', '--out', out]).stdout);
    expect(j.logits.length).toBe(3);
    expect(j.logits[0].length).toBe(j.n_vocab);
    const b = fs.readFileSync(out);
    expect(b.length).toBe(3 * j.n_vocab * 4);
    expect(b.readFloatLE((2 * j.n_vocab + 5) * 4)).toBeCloseTo(j.logits[2][5], 5);
    const last = JSON.parse(phi3(['logits', tiny, '--tokens', '1,300,400', '--json']).stdout);
    expect(last.logits.length).toBe(1);
    expect(last.logits[0]).toEqual(j.logits[2]);
  });
  it('run streams text and ends with a stats line on stderr', () => {
    const r = phi3(['run', tiny, '-p', 'Hello', '-n', '8', '--seed', '1']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/load [\d.]+ s \| prompt \d+ tok, [\d.]+ tok\/s \| decode \d+ tok, [\d.]+ tok\/s/);
    // same seed → same text
    expect(phi3(['run', tiny, '-p', 'Hello', '-n', '8', '--seed', '1']).stdout).toBe(r.stdout);
  });
  it('a prompt plus -n over the context is a ContextLengthError naming both numbers, before any work', () => {
    const r = phi3(['run', tiny, '-p', 'Hello', '-n', '600', '--ctx', '64']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ContextLengthError: prompt \(\d+ tokens\) plus -n \(600\) needs \d+ tokens, but the context holds 64/);
  });
});

describe('library API', () => {
  it('generate streams, reports stats, honours stop strings and AbortSignal', async () => {
    const m = await loadModel(tiny, { ctx: 128 });
    const g = m.generate('Hello', { maxTokens: 10, seed: 3, temperature: 0.8 });
    let text = '';
    for await (const t of g) text += t;
    const s = await g.stats;
    expect(s.generatedTokens).toBeGreaterThan(0);
    expect(s.promptTokens).toBe(m.tokenize('Hello', { special: true }).length);
    // stop string: generation ends before it and never prints it
    const greedy = async (stop?: string[]) => {
      let out = '';
      for await (const t of m.generate('Hello', { maxTokens: 20, temperature: 0, stop })) out += t;
      return out;
    };
    const full = await greedy();
    const cut = full.length > 6 ? full.slice(3, 6) : undefined;
    if (cut) {
      const stopped = await greedy([cut]);
      expect(stopped).toBe(full.slice(0, full.indexOf(cut)));
    }
    const ac = new AbortController();
    let n = 0;
    const g2 = m.generate('Hello', { maxTokens: 50, temperature: 0, signal: ac.signal });
    for await (const _ of g2) if (++n === 2) ac.abort();
    expect((await g2.stats).finishReason).toBe('abort');
    expect((await g2.stats).generatedTokens).toBeLessThanOrEqual(3);
    expect(() => m.generate('Hello', { maxTokens: 1000 })).toThrow(ContextLengthError);
    m.dispose();
  });
});

describe('phi3 chat', () => {
  it('keeps the KV cache across turns (a later turn computes only its new tokens), /reset and /exit', () => {
    const r = phi3(['chat', tiny, '--temp', '0', '-n', '6', '--ctx', '256'], 'hello there\nand more\n/reset\nagain\n/exit\n');
    expect(r.status, r.stderr).toBe(0);
    const turns = [...r.stderr.matchAll(/\[(\d+)\/(\d+) prompt tokens computed/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(turns.length).toBe(3);
    expect(turns[0]![0]).toBe(turns[0]![1]); // first turn: everything
    expect(turns[1]![0]).toBeLessThan(turns[1]![1] / 2); // second turn: only the new part
    expect(r.stdout).toContain('(conversation reset)');
  });
});
