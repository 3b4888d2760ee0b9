#!/usr/bin/env node
/**
 * The `phi3` command line. Each subcommand's contract (flags, output format) is documented in the
 * README; other tools depend on them, so they change only on purpose.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { inspectGguf, formatInspect } from './inspect.js';
import { PRESETS, SYNTH_TYPES, writeSynth } from '../synth/synth.js';
import { GgufError } from '../gguf/types.js';
import { GGUFFile } from '../gguf/reader.js';
import { SpmTokenizer } from '../tokenizer/spm.js';
import { loadModel, benchModel, ContextLengthError, type BackendName } from '../api.js';
import { configFromGguf } from '../model/config.js';
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { basename as pathBasename } from 'node:path';
import { Phi3Server } from '../server/server.js';
import type { ChatMessage } from '../generate/chat.js';

type Handler = (argv: string[]) => Promise<void> | void;

function args<T extends ParseArgsConfig['options']>(argv: string[], options: T, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\nusage: ${usage}`);
  }
}

export class UsageError extends Error {
  override name = 'UsageError';
}

function num(v: string | undefined, name: string, dflt?: number): number {
  if (v === undefined) {
    if (dflt === undefined) throw new UsageError(`--${name} is required`);
    return dflt;
  }
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} expects a number, got '${v}'`);
  return n;
}

function tokenList(s: string | undefined): number[] {
  if (!s) throw new UsageError('--tokens is required (comma-separated ids)');
  const ids = s.split(',').map((x) => x.trim()).filter((x) => x !== '').map(Number);
  for (const id of ids) if (!Number.isInteger(id) || id < 0) throw new UsageError(`--tokens: '${s}' is not a list of token ids`);
  return ids;
}

function readStdin(): Buffer {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(1 << 16);
  for (;;) {
    let n = 0;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      if ((e as NodeJS.ErrnoException).code === 'EOF') break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}

/** the tokenizer of a GGUF without loading its weights */
function openTokenizer(path: string): SpmTokenizer {
  const f = GGUFFile.open(path);
  try {
    return new SpmTokenizer(f);
  } finally {
    f.close();
  }
}

/** load progress on a terminal: bytes, percent, ETA (nothing when stderr is not a TTY) */
function progress(): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  const t0 = performance.now();
  let last = 0;
  return (done, total) => {
    const now = performance.now();
    if (now - last < 100 && done < total) return;
    last = now;
    const s = (now - t0) / 1000;
    const eta = done > 0 ? (s * (total - done)) / done : 0;
    process.stderr.write(`\rloading ${(done / 2 ** 30).toFixed(2)}/${(total / 2 ** 30).toFixed(2)} GiB ${((100 * done) / Math.max(total, 1)).toFixed(0)}% ETA ${eta.toFixed(0)} s   ${done >= total ? '\n' : ''}`);
  };
}

const backendOpt = { backend: { type: 'string', default: 'wasm' }, threads: { type: 'string' } } as const;

const commands: Record<string, { usage: string; run: Handler }> = {
  run: {
    usage: 'phi3 run <model.gguf> -p "…" [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--ctx C] [--backend wasm|ref] [--threads N]',
    async run(argv) {
      const { values, positionals } = args(
        argv,
        {
          prompt: { type: 'string', short: 'p' },
          n: { type: 'string', short: 'n', default: '128' },
          temp: { type: 'string', default: '0.8' },
          'top-k': { type: 'string', default: '40' },
          'top-p': { type: 'string', default: '0.95' },
          'min-p': { type: 'string', default: '0.05' },
          'repeat-penalty': { type: 'string', default: '1' },
          seed: { type: 'string' },
          ctx: { type: 'string' },
          ...backendOpt,
        },
        this.usage,
      );
      if (positionals.length !== 1 || values.prompt === undefined) throw new UsageError(`usage: ${this.usage}`);
      const path = positionals[0]!;
      // check the context before loading any weights
      const ctx = values.ctx ? num(values.ctx, 'ctx') : undefined;
      const maxTokens = num(values.n, 'n');
      {
        const f = GGUFFile.open(path);
        try {
          const nPrompt = new SpmTokenizer(f).encode(values.prompt, { parseSpecial: true }).length;
          const limit = ctx ?? configFromGguf(f).contextLength;
          if (nPrompt + maxTokens > limit) throw new ContextLengthError(nPrompt + maxTokens, limit, `prompt (${nPrompt} tokens) plus -n (${maxTokens})`);
        } finally {
          f.close();
        }
      }
      const model = await loadModel(path, { ctx, backend: values.backend as BackendName, threads: values.threads ? num(values.threads, 'threads') : undefined, onProgress: progress() });
      try {
        const g = model.generate(values.prompt, {
          maxTokens,
          temperature: num(values.temp, 'temp'),
          topK: num(values['top-k'], 'top-k'),
          topP: num(values['top-p'], 'top-p'),
          minP: num(values['min-p'], 'min-p'),
          repeatPenalty: num(values['repeat-penalty'], 'repeat-penalty'),
          seed: values.seed !== undefined ? num(values.seed, 'seed') : undefined,
        });
        for await (const text of g) process.stdout.write(text);
        const s = await g.stats;
        process.stdout.write('\n');
        process.stderr.write(
          `load ${model.loadStats.loadSeconds.toFixed(2)} s | prompt ${s.promptTokens} tok, ${s.promptTokPerSec.toFixed(2)} tok/s | decode ${s.generatedTokens} tok, ${s.decodeTokPerSec.toFixed(2)} tok/s | ${s.finishReason} | backend ${values.backend}\n`,
        );
      } finally {
        await model.close();
      }
    },
  },
  bench: {
    usage: 'phi3 bench <model.gguf> [--threads N] [--prompt-tokens 128] [--gen-tokens 64] [--backend wasm|ref] [--json]',
    async run(argv) {
      const { values, positionals } = args(
        argv,
        { 'prompt-tokens': { type: 'string', default: '128' }, 'gen-tokens': { type: 'string', default: '64' }, json: { type: 'boolean' }, ...backendOpt },
        this.usage,
      );
      if (positionals.length !== 1) throw new UsageError(`usage: ${this.usage}`);
      const nPrompt = num(values['prompt-tokens'], 'prompt-tokens'), nGen = num(values['gen-tokens'], 'gen-tokens');
      const r = await benchModel(positionals[0]!, { nPrompt, nGen, threads: values.threads ? num(values.threads, 'threads') : undefined, backend: values.backend as BackendName });
      process.stdout.write(
        values.json
          ? JSON.stringify(r) + '\n'
          : `load ${r.load_s.toFixed(2)} s | prefill ${r.prefill_tok_s.toFixed(2)} tok/s (${nPrompt} tokens) | decode ${r.decode_tok_s.toFixed(2)} tok/s (${nGen} tokens) | peak RSS ${r.peak_rss_mb.toFixed(0)} MB\n`,
      );
    },
  },
  serve: {
    usage: 'phi3 serve <model.gguf> [--host 127.0.0.1] [--port 8080] [--ctx C] [--threads N] [--backend wasm|ref]',
    async run(argv) {
      const { values, positionals } = args(
        argv,
        { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '8080' }, ctx: { type: 'string' }, ...backendOpt },
        this.usage,
      );
      if (positionals.length !== 1) throw new UsageError(`usage: ${this.usage}`);
      const file = positionals[0]!;
      const modelP = loadModel(file, {
        ctx: values.ctx ? num(values.ctx, 'ctx') : undefined,
        backend: values.backend as BackendName,
        threads: values.threads ? num(values.threads, 'threads') : undefined,
        onProgress: progress(),
      });
      // /health answers "loading" while the weights load
      const server = new Phi3Server(modelP, { host: values.host, port: num(values.port, 'port'), modelId: pathBasename(file).replace(/\.gguf$/i, '') });
      const addr = await server.listen();
      process.stderr.write(`phi3 serve: listening on http://${addr.host}:${addr.port} (loading ${file})\n`);
      const model = await modelP;
      process.stderr.write(`phi3 serve: model loaded in ${model.loadStats.loadSeconds.toFixed(2)} s, ctx ${model.ctx}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.stderr.write('phi3 serve: shutting down\n');
          server.close().then(() => model.close()).then(resolve, resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    },
  },
  chat: {
    usage: 'phi3 chat <model.gguf> [--ctx C] [--temp T] [--seed S] [--system "…"] [--threads N] [--backend wasm|ref]   (/reset, /exit)',
    async run(argv) {
      const { values, positionals } = args(
        argv,
        { ctx: { type: 'string' }, temp: { type: 'string', default: '0.7' }, seed: { type: 'string' }, system: { type: 'string' }, n: { type: 'string', short: 'n', default: '512' }, ...backendOpt },
        this.usage,
      );
      if (positionals.length !== 1) throw new UsageError(`usage: ${this.usage}`);
      const model = await loadModel(positionals[0]!, { ctx: values.ctx ? num(values.ctx, 'ctx') : undefined, backend: values.backend as BackendName, threads: values.threads ? num(values.threads, 'threads') : undefined, onProgress: progress() });
      const rl = readline.createInterface({ input: process.stdin, terminal: false });
      const messages: ChatMessage[] = values.system ? [{ role: 'system', content: values.system }] : [];
      const reset = () => messages.splice(values.system ? 1 : 0);
      process.stderr.write('phi3 chat: type a message; /reset starts over, /exit quits\n');
      try {
        const prompt = () => process.stdout.isTTY && process.stdout.write('> ');
        prompt();
        for await (const line of rl) {
          if (line.trim() === '/exit') break;
          if (line.trim() === '/reset') {
            reset();
            process.stdout.write('(conversation reset)\n');
            prompt();
            continue;
          }
          if (!line.trim()) {
            prompt();
            continue;
          }
          messages.push({ role: 'user', content: line });
          let reply = '';
          // the KV cache keeps earlier turns: only the new turn's tokens are computed
          try {
            const g = model.chat(messages, { maxTokens: num(values.n, 'n'), temperature: num(values.temp, 'temp'), seed: values.seed ? num(values.seed, 'seed') : undefined });
            for await (const t of g) {
              reply += t;
              process.stdout.write(t);
            }
            const s = await g.stats;
            process.stdout.write('\n');
            process.stderr.write(`[${s.promptTokensEvaluated}/${s.promptTokens} prompt tokens computed, ${s.generatedTokens} generated, ${s.decodeTokPerSec.toFixed(1)} tok/s]\n`);
            messages.push({ role: 'assistant', content: reply });
          } catch (e) {
            if ((e as Error).name !== 'ContextLengthError') throw e;
            process.stdout.write(`\n(${(e as Error).message}; use /reset)\n`);
            messages.pop();
          }
          prompt();
        }
      } finally {
        rl.close();
        await model.close();
      }
    },
  },
  tokenize: {
    usage: 'phi3 tokenize <model.gguf> [--text S] [--no-bos] [--special]   (text from stdin when --text is absent)',
    run(argv) {
      const { values, positionals } = args(argv, { text: { type: 'string' }, 'no-bos': { type: 'boolean' }, special: { type: 'boolean' } }, this.usage);
      if (positionals.length !== 1) throw new UsageError(`usage: ${this.usage}`);
      const tok = openTokenizer(positionals[0]!);
      const text = values.text ?? new TextDecoder('utf-8', { ignoreBOM: true }).decode(readStdin());
      process.stdout.write(JSON.stringify(tok.encode(text, { addSpecial: !values['no-bos'], parseSpecial: values.special ?? false })) + '\n');
    },
  },
  detokenize: {
    usage: 'phi3 detokenize <model.gguf> --tokens 1,2,3 [--special]',
    run(argv) {
      const { values, positionals } = args(argv, { tokens: { type: 'string' }, special: { type: 'boolean' } }, this.usage);
      if (positionals.length !== 1) throw new UsageError(`usage: ${this.usage}`);
      const tok = openTokenizer(positionals[0]!);
      const ids = tokenList(values.tokens);
      for (const id of ids) if (id >= tok.vocabSize) throw new UsageError(`token id ${id} is outside the vocabulary (0..${tok.vocabSize - 1})`);
      process.stdout.write(tok.decode(ids, { special: values.special ?? false }) + '\n');
    },
  },
  logits: {
    usage: 'phi3 logits <model.gguf> --tokens 1,2,3 [--all] (--json | --out f.bin) [--backend wasm|ref] [--threads N]',
    async run(argv) {
      const { values, positionals } = args(
        argv,
        { tokens: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' }, out: { type: 'string' }, ctx: { type: 'string' }, ...backendOpt },
        this.usage,
      );
      if (positionals.length !== 1 || (!values.json && !values.out)) throw new UsageError(`usage: ${this.usage}`);
      const ids = tokenList(values.tokens);
      const model = await loadModel(positionals[0]!, { ctx: values.ctx ? num(values.ctx, 'ctx') : Math.max(ids.length, 1), backend: values.backend as BackendName, threads: values.threads ? num(values.threads, 'threads') : undefined, onProgress: progress() });
      try {
        const rows = await model.logits(ids, { all: values.all ?? false });
        if (values.out) {
          const buf = Buffer.alloc(rows.length * model.config.vocabSize * 4);
          rows.forEach((r, i) => {
            for (let j = 0; j < r.length; j++) buf.writeFloatLE(r[j]!, (i * r.length + j) * 4);
          });
          fs.writeFileSync(values.out, buf);
        }
        if (values.json) {
          process.stdout.write(`{"n_vocab":${model.config.vocabSize},"logits":[`);
          rows.forEach((r, i) => process.stdout.write((i ? ',' : '') + '[' + Array.from(r, (v) => (Number.isFinite(v) ? v : 0)).join(',') + ']'));
          process.stdout.write(']}\n');
        }
      } finally {
        await model.close();
      }
    },
  },
  inspect: {
    usage: 'phi3 inspect <file.gguf> [--json] [--ctx N]',
    run(argv) {
      const { values, positionals } = args(argv, { json: { type: 'boolean' }, ctx: { type: 'string' } }, this.usage);
      if (positionals.length !== 1) throw new UsageError(`usage: ${this.usage}`);
      const r = inspectGguf(positionals[0]!, values.ctx ? num(values.ctx, 'ctx') : undefined);
      process.stdout.write(values.json ? JSON.stringify(r, null, 2) + '\n' : formatInspect(r) + '\n');
    },
  },
  synth: {
    usage: `phi3 synth --preset ${Object.keys(PRESETS).join('|')} --type ${SYNTH_TYPES.join('|')} --seed N [--vocab file.gguf] [--tied] [--dim D --hidden H --layers L --heads N --kv-heads K --ctx C --rope-dim R] --out x.gguf`,
    run(argv) {
      const { values } = args(
        argv,
        {
          preset: { type: 'string', default: 'tiny' },
          type: { type: 'string', default: 'F32' },
          seed: { type: 'string', default: '1' },
          vocab: { type: 'string' },
          out: { type: 'string' },
          tied: { type: 'boolean' },
          dim: { type: 'string' },
          hidden: { type: 'string' },
          layers: { type: 'string' },
          heads: { type: 'string' },
          'kv-heads': { type: 'string' },
          ctx: { type: 'string' },
          'rope-dim': { type: 'string' },
        },
        this.usage,
      );
      const preset = PRESETS[values.preset!];
      if (!preset) throw new UsageError(`unknown preset '${values.preset}' (one of ${Object.keys(PRESETS).join(', ')})`);
      const opt = (v: string | undefined, name: string, d: number) => (v === undefined ? d : num(v, name));
      const heads = opt(values.heads, 'heads', preset.nHeads);
      const shape = {
        ...preset,
        dim: opt(values.dim, 'dim', preset.dim),
        hiddenDim: opt(values.hidden, 'hidden', preset.hiddenDim),
        nLayers: opt(values.layers, 'layers', preset.nLayers),
        nHeads: heads,
        nKvHeads: opt(values['kv-heads'], 'kv-heads', values.heads ? heads : preset.nKvHeads),
        contextLength: opt(values.ctx, 'ctx', preset.contextLength),
        ropeDim: values['rope-dim'] ? num(values['rope-dim'], 'rope-dim') : values.dim || values.heads ? undefined : preset.ropeDim,
      };
      if (!values.out) throw new UsageError(`--out is required\nusage: ${this.usage}`);
      const type = values.type!.toUpperCase();
      if (!SYNTH_TYPES.includes(type)) throw new UsageError(`unknown --type '${values.type}' (one of ${SYNTH_TYPES.join(', ')})`);
      const t0 = performance.now();
      writeSynth(values.out, { shape: { ...shape, tiedEmbeddings: values.tied || preset.tiedEmbeddings }, type, seed: num(values.seed, 'seed'), vocabFile: values.vocab });
      process.stderr.write(`wrote ${values.out} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    },
  },
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(`phi3 — a Phi-3 runtime in TypeScript + WebAssembly\n\n${Object.values(commands).map((c) => '  ' + c.usage).join('\n')}\n`);
    return 0;
  }
  const c = commands[cmd];
  if (!c) {
    process.stderr.write(`phi3: unknown command '${cmd}' (one of ${Object.keys(commands).join(', ')})\n`);
    return 2;
  }
  try {
    await c.run(rest);
    return 0;
  } catch (e) {
    const err = e as Error;
    if (err instanceof UsageError) {
      process.stderr.write(`phi3 ${cmd}: ${err.message}\n`);
      return 2;
    }
    const known = err instanceof GgufError || ['UnsupportedModelError', 'ContextLengthError', 'TokenizerError', 'OutOfMemoryError', 'CrewError'].includes(err.name);
    process.stderr.write(`phi3 ${cmd}: ${known ? `${err.name}: ${err.message}` : err.stack ?? String(err)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(String(e?.stack ?? e) + '\n');
    process.exitCode = 1;
  },
);
