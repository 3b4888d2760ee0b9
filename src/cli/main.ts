#!/usr/bin/env node
/**
 * The `phi3` command line. Each subcommand's contract (flags, output format) is documented in the
 * README; other tools depend on them, so they change only on purpose.
 *
 * Conventions: every flag is checked before anything loads, and errors name the flag; llama.cpp's
 * common aliases work (-m, -c/--ctx-size, -t, -p, -f, -n, --stop); `--help` on every subcommand;
 * errors are one line on stderr (a stack trace only with --verbose); usage errors exit 2, others 1;
 * a closed stdout (`| head`) ends the command quietly.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { inspectGguf, formatInspect } from './inspect.js';
import { parseFlags, usageOf, UsageError, HelpRequested, type FlagTable, type FlagValues } from './flags.js';
import { PRESETS, SYNTH_TYPES } from '../synth/synth.js';
import { writeSynthAsync } from '../synth/write-node.js';
import { VISION_PRESETS, writeVisionSynth } from '../synth/vision.js';
import { isVisionFolder, visionSummary } from '../vision/load.js';
import { openGguf } from '../gguf/file-source.js';
import { SpmTokenizer } from '../tokenizer/spm.js';
import { loadModel, benchModel, ContextLengthError, type BackendName, type LoadOptions, type Model } from '../api.js';
import { configFromGguf, type Phi3Config } from '../model/config.js';
import { Phi3Server } from '../server/server.js';
import { packageRoot } from '../package-root.js';
import type { ChatMessage } from '../generate/chat.js';
import type { GenerateOptions } from '../generate/generate.js';
import type { NumericsName } from '../backend/numerics.js';
import type { KvType } from '../backend/wasm/ops.js';
import { compareLogits, formatCompare } from '../compare/compare.js';
import { asFlooredLogProbs, logitsFileFormat, readLogitsFile } from '../compare/logits-file.js';
import { exportHf } from '../convert/export-hf.js';
import { CONVERT_TYPES, cachedHfGguf, convertHf, isHfFolder } from '../convert/convert-hf.js';
import { perplexity } from '../perplexity/perplexity.js';
import { readKldBase } from '../perplexity/kld-file.js';
import { DEMO_MODEL_NAME, demoModelPath } from '../demo-model.js';
import { startWebServer } from '../web/server.js';

const warn = (msg: string) => process.stderr.write(`phi3: warning: ${msg}\n`);
/** below this top-k routing margin (a probability gap), `phi3 logits` warns of a near-tie between experts */
const ROUTING_NEAR_TIE = 1e-4;

// ── flag groups ─────────────────────────────────────────────────────────────────────────────

const MODEL = {
  model: { type: 'string', short: 'm', help: 'the GGUF file (or give it as the first argument)' },
  ctx: { type: 'int', short: 'c', aliases: ['ctx-size'], min: 1, help: 'context length in tokens (default: the trained one)' },
  threads: { type: 'int', short: 't', min: 1, help: 'worker threads (default: the cores, at most)' },
  backend: { type: 'string', choices: ['wasm', 'ref'], help: 'SIMD kernels (default) or the plain-TypeScript reference' },
  numerics: { type: 'string', choices: ['exact', 'ggml'], help: "ref backend: exact (default; HF float64's math) or ggml (llama.cpp's CPU rounding)" },
  'kv-type': { type: 'string', choices: ['f16', 'f32', 'q8_0'], help: "wasm backend: the KV cache's type, as llama.cpp's -ctk/-ctv (default f16; f32 doubles its memory, q8_0 halves it)" },
  swa: { type: 'bool', help: "apply the file's attention.sliding_window (llama.cpp ignores it for Phi)" },
  force: { type: 'bool', help: 'allow --ctx above the trained context of a model without LongRoPE' },
  'check-weights': { type: 'bool', help: 'scan the weights for Inf/NaN before loading (default: files up to 1 GiB)' },
  type: { type: 'string', choices: CONVERT_TYPES, help: 'a Hugging Face folder is converted (once, into the cache) to this GGUF type (default auto: as stored)' },
  'vision-type': { type: 'string', choices: ['q8_0', 'f16'], help: "a vision model's encoder matrices (default q8_0: ≈ 7× faster; f16: closer to float64)" },
} as const satisfies FlagTable;

const SAMPLING = {
  temp: { type: 'number', min: 0, aliases: ['temperature'], help: 'temperature, 0 = greedy' },
  'top-k': { type: 'int', min: 0, help: 'keep the k most likely tokens (0 = all)' },
  'top-p': { type: 'number', min: 0, minExclusive: true, max: 1, help: 'nucleus sampling, in (0, 1]' },
  'min-p': { type: 'number', min: 0, max: 1, help: 'drop tokens below p × the top probability' },
  'repeat-penalty': { type: 'number', min: 0, minExclusive: true, help: 'penalise repeats of the last 64 tokens (1 = off)' },
  seed: { type: 'int', special: -1, min: 0, max: 2 ** 32 - 1, help: 'sampling seed (-1: random)' },
  stop: { type: 'string', multiple: true, help: 'stop before this text (repeatable)' },
  n: { type: 'int', short: 'n', aliases: ['n-predict'], min: 1, special: -1, help: 'tokens to generate (-1: until the context is full)' },
} as const satisfies FlagTable;

type ModelFlags = FlagValues<typeof MODEL>;
type SamplingFlags = FlagValues<typeof SAMPLING>;

/** the model argument; a Hugging Face folder becomes its cached GGUF (converted on first use) */
function modelPath(v: ModelFlags, positionals: string[], usage: string, o: { demo?: boolean } = {}): string {
  let p = v.model ?? positionals[0];
  if (!p && o.demo && positionals.length === 0) {
    p = demoModelPath();
    if (!fs.existsSync(p)) throw new Error(`no model given, and the embedded demo model ${p} is missing from this install`);
    warn(`no model given: using the embedded demo model (${DEMO_MODEL_NAME}, 13 M parameters trained on the Brown corpus); give a GGUF file or a Hugging Face folder for a real one`);
    return p;
  }
  if (!p || positionals.length > (v.model ? 0 : 1)) throw new UsageError(`usage: ${usage}`);
  const type = (v as { type?: string }).type;
  if (!isHfFolder(p)) {
    if (type !== undefined) throw new UsageError(`--type applies to a Hugging Face folder; ${p} is not one (a directory with config.json)`);
    return p;
  }
  const t0 = performance.now();
  const r = cachedHfGguf(p, { type });
  if (r.converted) warn(`converted the Hugging Face folder ${p} to ${r.path} in ${((performance.now() - t0) / 1000).toFixed(1)} s (kept for next time)`);
  if (isVisionFolder(p)) visionFolders.set(r.path, { dir: p, type });
  return r.path;
}

/** converted GGUFs whose folder has an image side (Phi-3.5-vision): loaded from the folder (its conversion cached) */
const visionFolders = new Map<string, { dir: string; type: string | undefined }>();
function load(file: string, opts: LoadOptions): Promise<Model> {
  const v = visionFolders.get(file);
  return v ? loadModel(v.dir, { ...opts, type: v.type }) : loadModel(file, opts);
}

/**
 * Everything about the file that can be checked before loading its weights: the file parses, the
 * context is within what the model was trained for (a LongRoPE model may go past it with a
 * warning; another only with --force), the thread count is within the cores.
 */
function preflight(file: string, v: ModelFlags): { config: Phi3Config; tok: SpmTokenizer; load: LoadOptions } {
  const f = openGguf(file);
  try {
    const config = configFromGguf(f); // its warnings come from loadModel's onWarning
    const tok = new SpmTokenizer(f);
    if (v.ctx !== undefined && v.ctx > config.contextLength) {
      const longRope = config.ropeFactors.long;
      if (!longRope && !v.force)
        throw new UsageError(`--ctx ${v.ctx} is above the ${config.contextLength} tokens this model was trained for; add --force to run it anyway`);
      warn(`--ctx ${v.ctx} is above the ${config.contextLength} tokens this model was trained for; expect degraded output`);
    }
    let threads = v.threads;
    const cores = os.availableParallelism();
    if (threads !== undefined && threads > cores) {
      warn(`--threads ${threads} is more than the ${cores} cores here: using ${cores}`);
      threads = cores;
    }
    if (v.numerics !== undefined && v.backend !== 'ref') throw new UsageError(`--numerics ${v.numerics} is a mode of the reference backend: add --backend ref`);
    if (v['kv-type'] !== undefined && v.backend === 'ref') throw new UsageError(`--kv-type is the wasm backend's; the ref backend's KV cache follows --numerics (exact: f32, ggml: f16)`);
    if (v.swa && !config.slidingWindow) warn('--swa: the file has no sliding window; attention is full');
    return { config, tok, load: { ctx: v.ctx, threads, backend: v.backend as BackendName | undefined, numerics: v.numerics as NumericsName | undefined, kvType: v['kv-type'] as KvType | undefined, swa: v.swa, checkWeights: v['check-weights'], visionType: (v as { 'vision-type'?: string })['vision-type']?.toUpperCase() as 'Q8_0' | 'F16' | undefined, onProgress: progress(), onWarning: (w) => warn(w.message) } };
  } finally {
    f.close();
  }
}

function samplingOf(v: SamplingFlags): GenerateOptions {
  return {
    maxTokens: v.n === undefined || v.n === -1 ? undefined : v.n,
    temperature: v.temp,
    topK: v['top-k'],
    topP: v['top-p'],
    minP: v['min-p'],
    repeatPenalty: v['repeat-penalty'],
    seed: v.seed === undefined || v.seed === -1 ? undefined : v.seed,
    stop: v.stop,
  };
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

const utf8 = (b: Buffer) => new TextDecoder('utf-8', { ignoreBOM: true }).decode(b);

function readFileArg(flag: string, file: string): string {
  try {
    return utf8(fs.readFileSync(file));
  } catch (e) {
    throw new UsageError(`${flag} ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

/** the tokenizer of a GGUF without loading its weights */
function openTokenizer(file: string): SpmTokenizer {
  const f = openGguf(file);
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

/** the system message is dropped by the template (Phi-3's own has no system role): say so */
function warnIfSystemDropped(model: Model, system: string | undefined): void {
  if (!system) return;
  const probe: ChatMessage[] = [{ role: 'user', content: 'x' }];
  if (model.chatPrompt([{ role: 'system', content: system }, ...probe]) === model.chatPrompt(probe))
    warn("--system: this model's chat template has no system role, so the system message is dropped");
}

// ── commands ────────────────────────────────────────────────────────────────────────────────

interface Command {
  synopsis: string;
  flags: FlagTable;
  /** a number is the exit status (a verdict: `compare`); nothing means success */
  run(values: Record<string, unknown>, positionals: string[], usage: string): Promise<void | number> | void | number;
}

const RUN = {
  ...MODEL,
  prompt: { type: 'string', short: 'p', help: 'the prompt (or -f, or stdin)' },
  file: { type: 'string', short: 'f', help: 'read the prompt from a file' },
  system: { type: 'string', help: "a system message: the prompt becomes a chat turn in the file's template" },
  image: { type: 'string', multiple: true, help: 'an image (PNG, JPEG) for a vision model (Phi-3.5-vision), repeatable: the prompt becomes a chat turn with the images before it' },
  'ignore-eos': { type: 'bool', help: 'go on past end-of-generation tokens until -n (as llama.cpp)' },
  ...SAMPLING,
} as const satisfies FlagTable;

const CHAT = { ...MODEL, system: { type: 'string', help: 'the system message' }, ...SAMPLING } as const satisfies FlagTable;

const SERVE = {
  ...MODEL,
  host: { type: 'string', help: 'address to listen on (default 127.0.0.1)' },
  port: { type: 'int', min: 0, max: 65535, help: 'port (default 8080; 0 = any free port)' },
  'api-key': { type: 'string', help: 'require Authorization: Bearer <key> (all routes but /health)' },
  'api-key-file': { type: 'string', help: 'the same, the key read from a file (first line)' },
  cors: { type: 'string', help: "Access-Control-Allow-Origin (default '*')" },
  'timeout-ms': { type: 'int', min: 1, help: "a generation request's time limit, queueing included (default: none)" },
  parallel: { type: 'int', min: 1, max: 256, help: 'slots: generations that run at once, batched together (default 4); --ctx is split among them, as llama-server\'s -np' },
  'ctx-per-slot': { type: 'int', min: 1, help: "each slot's context (instead of --ctx split among the slots)" },
  'grace-ms': { type: 'int', min: 0, help: 'on SIGTERM/SIGINT, wait this long for running requests (default 10000)' },
  'parse-special-content': { type: 'bool', help: 'parse special-token text inside chat message content (unsafe: users can forge turns)' },
  'max-prompt-tokens': { type: 'int', min: 1, help: 'refuse requests with more prompt tokens (default: the context)' },
  'max-messages': { type: 'int', min: 1, help: 'refuse chat requests with more messages (default 1024)' },
  'allow-image-urls': { type: 'bool', help: 'a vision model: fetch http(s) image_url parts (default: data: URIs only)' },
  'max-images': { type: 'int', min: 1, help: 'a vision model: refuse requests with more images (default 8)' },
} as const satisfies FlagTable;

const commands: Record<string, Command> = {
  run: {
    synopsis: 'phi3 run [model.gguf | hf-folder] -p "…" [flags]      generate text; stats on stderr',
    flags: RUN,
    async run(values, positionals, usage) {
      const v = values as FlagValues<typeof RUN>;
      const file = modelPath(v, positionals, usage, { demo: true });
      let prompt = v.prompt ?? (v.file !== undefined ? readFileArg('--file', v.file) : undefined);
      if (prompt === undefined) {
        if (process.stdin.isTTY) throw new UsageError(`give a prompt with -p, -f or on stdin\nusage: ${usage}`);
        prompt = utf8(readStdin());
      }
      const opts = samplingOf(v);
      if (v['ignore-eos']) opts.stopAtEog = false;
      opts.temperature ??= 0.8;
      opts.topK ??= 40;
      opts.topP ??= 0.95;
      opts.minP ??= 0.05;
      const pre = preflight(file, v);
      // check the context before loading any weights
      const ctx = v.ctx ?? pre.config.contextLength;
      const nPrompt = pre.tok.encode(prompt, { parseSpecial: true }).length;
      if (nPrompt + (opts.maxTokens ?? 1) > ctx) throw new ContextLengthError(nPrompt + (opts.maxTokens ?? 1), ctx, `prompt (${nPrompt} tokens) plus -n (${opts.maxTokens ?? 1})`);
      const model = await load(file, pre.load);
      try {
        const ac = new AbortController();
        process.once('SIGINT', () => ac.abort());
        let g;
        const images = v.image ?? [];
        if (images.length && !model.vision) throw new UsageError(`--image needs a vision model (Phi-3.5-vision-instruct's folder); ${visionFolders.get(file)?.dir ?? file} has no vision tower`);
        if (v.system !== undefined || images.length) {
          if (v.system !== undefined) warnIfSystemDropped(model, v.system);
          const user = images.length ? [...images.map((p) => ({ type: 'image' as const, image: p })), { type: 'text' as const, text: prompt }] : prompt;
          g = model.chat([...(v.system !== undefined ? [{ role: 'system' as const, content: v.system }] : []), { role: 'user', content: user }], { ...opts, signal: ac.signal });
        } else g = model.generate(prompt, { ...opts, signal: ac.signal });
        for await (const text of g) process.stdout.write(text);
        const s = await g.stats;
        process.stdout.write('\n');
        process.stderr.write(
          `load ${model.loadStats.loadSeconds.toFixed(2)} s | prompt ${s.promptTokens} tok, ${s.promptTokPerSec.toFixed(2)} tok/s | decode ${s.generatedTokens} tok, ${s.decodeTokPerSec.toFixed(2)} tok/s | ${s.finishReason} | backend ${v.backend ?? 'wasm'}\n`,
        );
      } finally {
        await model.close();
      }
    },
  },
  chat: {
    synopsis: 'phi3 chat [model.gguf | hf-folder] [flags]      a REPL that keeps the KV cache across turns (/reset, /exit; Ctrl-C stops a reply)',
    flags: CHAT,
    async run(values, positionals, usage) {
      const v = values as FlagValues<typeof CHAT>;
      const file = modelPath(v, positionals, usage, { demo: true });
      const opts = samplingOf(v);
      opts.temperature ??= 0.7;
      const pre = preflight(file, v);
      const model = await load(file, pre.load);
      warnIfSystemDropped(model, v.system);
      const tty = process.stdin.isTTY && process.stdout.isTTY;
      const rl = readline.createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty, historySize: 1000 });
      const messages: ChatMessage[] = v.system ? [{ role: 'system', content: v.system }] : [];
      const reset = () => messages.splice(v.system ? 1 : 0);
      let replying: AbortController | undefined;
      // Ctrl-C stops the reply; at the prompt it leaves
      rl.on('SIGINT', () => (replying ? replying.abort() : rl.close()));
      process.on('SIGINT', () => (replying ? replying.abort() : rl.close()));
      process.stderr.write('phi3 chat: type a message; /reset starts over, /exit quits, Ctrl-C stops a reply\n');
      try {
        rl.setPrompt('> ');
        if (tty) rl.prompt();
        for await (const line of rl) {
          const cmd = line.trim();
          if (cmd === '/exit') break;
          if (cmd === '/reset' || !cmd) {
            if (cmd) {
              reset();
              process.stdout.write('(conversation reset)\n');
            }
            if (tty) rl.prompt();
            continue;
          }
          messages.push({ role: 'user', content: line });
          let reply = '';
          replying = new AbortController();
          try {
            // the KV cache keeps earlier turns: only the new turn's tokens are computed; the reply may
            // use what the context has left
            const g = model.chat(messages, { ...opts, signal: replying.signal });
            for await (const t of g) {
              reply += t;
              process.stdout.write(t);
            }
            const s = await g.stats;
            process.stdout.write('\n');
            const left = model.ctx - s.promptTokens - s.generatedTokens;
            process.stderr.write(`[${s.promptTokensEvaluated}/${s.promptTokens} prompt tokens computed, ${s.generatedTokens} generated, ${s.decodeTokPerSec.toFixed(1)} tok/s${s.finishReason === 'abort' ? ', stopped' : ''}; ${left} of ${model.ctx} context tokens left]\n`);
            messages.push({ role: 'assistant', content: reply });
            if (s.finishReason === 'length' && left <= 0) process.stdout.write('(the context is full: /reset to start a new conversation, or restart with a larger --ctx)\n');
          } catch (e) {
            if ((e as Error).name !== 'ContextLengthError') throw e;
            process.stdout.write(`(the context is full: ${(e as Error).message}; /reset to start over)\n`);
            messages.pop();
          } finally {
            replying = undefined;
          }
          if (tty) rl.prompt();
        }
      } finally {
        rl.close();
        await model.close();
      }
    },
  },
  serve: {
    synopsis: 'phi3 serve [model.gguf | hf-folder] [flags]      OpenAI-compatible HTTP server',
    flags: SERVE,
    async run(values, positionals, usage) {
      const v = values as FlagValues<typeof SERVE>;
      const file = modelPath(v, positionals, usage, { demo: true });
      // --ctx is the whole KV cache, split among the slots (llama-server's -c with -np), or --ctx-per-slot each
      const parallel = v.parallel ?? 4;
      if (v.ctx !== undefined && v['ctx-per-slot'] !== undefined) throw new UsageError('give --ctx (the whole cache, split among the slots) or --ctx-per-slot, not both');
      if (v.ctx !== undefined && v.ctx < parallel) throw new UsageError(`--ctx ${v.ctx} cannot be split among ${parallel} slots (--parallel)`);
      const pre = preflight(file, { ...v, ctx: v['ctx-per-slot'] ?? (v.ctx !== undefined ? Math.floor(v.ctx / parallel) : undefined) });
      const perSlot = pre.load.ctx ?? Math.max(1, Math.floor(pre.config.contextLength / parallel));
      const modelP = load(file, { ...pre.load, ctx: perSlot, parallel });
      // /health answers "loading" while the weights load
      if (v['api-key'] !== undefined && v['api-key-file'] !== undefined) throw new UsageError('give --api-key or --api-key-file, not both');
      let apiKey = v['api-key'];
      if (v['api-key-file'] !== undefined) {
        try {
          apiKey = fs.readFileSync(v['api-key-file'], 'utf8').split('\n')[0]!.trim();
        } catch (e) {
          throw new UsageError(`--api-key-file ${v['api-key-file']}: ${(e as Error).message}`);
        }
      }
      if (apiKey !== undefined && apiKey === '') throw new UsageError('the API key is empty');
      const server = new Phi3Server(modelP, { apiKey, cors: v.cors, timeoutMs: v['timeout-ms'], host: v.host ?? '127.0.0.1', port: v.port ?? 8080, modelId: path.basename(file).replace(/\.gguf$/i, ''), parseSpecialContent: v['parse-special-content'], maxPromptTokens: v['max-prompt-tokens'], maxMessages: v['max-messages'], allowImageUrls: v['allow-image-urls'], maxImages: v['max-images'] });
      let addr;
      try {
        addr = await server.listen();
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        modelP.then((m) => m.close(), () => {});
        if (err.code === 'EADDRINUSE') throw new UsageError(`port ${v.port ?? 8080} on ${v.host ?? '127.0.0.1'} is already in use`, { cause: 1 });
        if (err.code === 'EACCES') throw new UsageError(`no permission to listen on ${v.host ?? '127.0.0.1'}:${v.port ?? 8080}`, { cause: 1 });
        throw e;
      }
      process.stderr.write(`phi3 serve: listening on http://${addr.host}:${addr.port} (loading ${file})\n`);
      const stopped = new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (sig: string) => {
          if (stopping) {
            process.stderr.write(`phi3 serve: ${sig} again: exiting now\n`);
            process.exit(1);
          }
          stopping = true;
          process.stderr.write(`phi3 serve: ${sig}: no new requests; waiting up to ${(v['grace-ms'] ?? 10000) / 1000} s for running ones\n`);
          server.shutdown(v['grace-ms'] ?? 10000).then(
            () => modelP.then((m) => m.close(), () => {}),
          ).then(resolve, resolve);
        };
        process.on('SIGINT', () => stop('SIGINT'));
        process.on('SIGTERM', () => stop('SIGTERM'));
      });
      const model = await Promise.race([modelP, stopped.then(() => undefined)]);
      if (model) process.stderr.write(`phi3 serve: model loaded in ${model.loadStats.loadSeconds.toFixed(2)} s, ${model.parallel} slots of ctx ${model.ctx}\n`);
      await stopped;
      process.stderr.write('phi3 serve: stopped\n');
    },
  },
  web: {
    synopsis: 'phi3 web [model.gguf] [flags]      the browser demo page (the model runs in the browser)',
    flags: {
      model: MODEL.model,
      host: { type: 'string', help: 'address to listen on (default 127.0.0.1)' },
      port: { type: 'int', min: 0, max: 65535, help: 'port (default 8080; 0 = any free port)' },
    },
    async run(values, positionals, usage) {
      const v = values as { model?: string; host?: string; port?: number };
      const file = modelPath(v, positionals, usage, { demo: true });
      if (isHfFolder(file)) throw new UsageError(`phi3 web serves a GGUF file; convert the folder first (phi3 convert ${file} --out model.gguf)`);
      let server;
      try {
        server = await startWebServer({ model: file, host: v.host, port: v.port });
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (err.code === 'EADDRINUSE') throw new UsageError(`port ${v.port ?? 8080} on ${v.host ?? '127.0.0.1'} is already in use`, { cause: 1 });
        if (err.code === 'EACCES') throw new UsageError(`no permission to listen on ${v.host ?? '127.0.0.1'}:${v.port ?? 8080}`, { cause: 1 });
        throw e;
      }
      process.stderr.write(`phi3 web: open ${server.url} in a browser (serving ${file}); Ctrl-C stops\n`);
      await new Promise<void>((resolve) => {
        const stop = () => void server.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      process.stderr.write('phi3 web: stopped\n');
    },
  },
  bench: {
    synopsis: 'phi3 bench <model.gguf> [flags]      load, prefill and decode speed',
    flags: {
      ...MODEL,
      'prompt-tokens': { type: 'int', min: 1, help: 'prompt length (default 128)' },
      'gen-tokens': { type: 'int', min: 1, help: 'tokens to decode (default 64)' },
      json: { type: 'bool', help: 'print {"load_s","prefill_tok_s","decode_tok_s","peak_rss_mb"}' },
    },
    async run(values, positionals, usage) {
      const v = values as FlagValues<typeof MODEL> & { 'prompt-tokens'?: number; 'gen-tokens'?: number; json?: boolean };
      const file = modelPath(v, positionals, usage);
      const pre = preflight(file, v);
      const nPrompt = v['prompt-tokens'] ?? 128, nGen = v['gen-tokens'] ?? 64;
      const r = await benchModel(file, { nPrompt, nGen, threads: pre.load.threads, backend: pre.load.backend, kvType: pre.load.kvType });
      process.stdout.write(
        v.json
          ? JSON.stringify(r) + '\n'
          : `load ${r.load_s.toFixed(2)} s | prefill ${r.prefill_tok_s.toFixed(2)} tok/s (${nPrompt} tokens) | decode ${r.decode_tok_s.toFixed(2)} tok/s (${nGen} tokens) | peak RSS ${r.peak_rss_mb.toFixed(0)} MB\n`,
      );
    },
  },
  tokenize: {
    synopsis: 'phi3 tokenize <model.gguf> [--text S] [--no-bos] [--special]      one JSON array; text from stdin when --text is absent',
    flags: { model: MODEL.model, text: { type: 'string', help: 'the text (default: all of stdin)' }, 'no-bos': { type: 'bool', help: 'no BOS token' }, special: { type: 'bool', help: 'parse special-token text' } },
    run(values, positionals, usage) {
      const v = values as { model?: string; text?: string; 'no-bos'?: boolean; special?: boolean };
      const tok = openTokenizer(modelPath(v, positionals, usage));
      const text = v.text ?? utf8(readStdin());
      process.stdout.write(JSON.stringify(tok.encode(text, { addSpecial: !v['no-bos'], parseSpecial: v.special ?? false })) + '\n');
    },
  },
  detokenize: {
    synopsis: 'phi3 detokenize <model.gguf> --tokens 1,2,3 [--special]',
    flags: { model: MODEL.model, tokens: { type: 'string', help: 'comma-separated token ids' }, special: { type: 'bool', help: 'print special tokens' } },
    run(values, positionals, usage) {
      const v = values as { model?: string; tokens?: string; special?: boolean };
      const ids = tokenList(v.tokens);
      const tok = openTokenizer(modelPath(v, positionals, usage));
      for (const id of ids) if (id >= tok.vocabSize) throw new UsageError(`--tokens: id ${id} is outside the vocabulary (0..${tok.vocabSize - 1})`);
      process.stdout.write(tok.decode(ids, { special: v.special ?? false }) + '\n');
    },
  },
  logits: {
    synopsis: 'phi3 logits <model.gguf> --tokens 1,2,3 [--all] (--json | --out f.bin) [flags]',
    flags: {
      ...MODEL,
      tokens: { type: 'string', help: 'comma-separated token ids' },
      all: { type: 'bool', help: 'every position (default: the last)' },
      json: { type: 'bool', help: 'print {"n_vocab":N,"logits":[[…]]}' },
      out: { type: 'string', help: 'write little-endian f32 rows' },
    },
    async run(values, positionals, usage) {
      const v = values as FlagValues<typeof MODEL> & { tokens?: string; all?: boolean; json?: boolean; out?: string };
      const file = modelPath(v, positionals, usage);
      if (!v.json && !v.out) throw new UsageError(`give --json or --out\nusage: ${usage}`);
      const ids = tokenList(v.tokens);
      const pre = preflight(file, v);
      for (const id of ids) if (id >= pre.config.vocabSize) throw new UsageError(`--tokens: id ${id} is outside the vocabulary (0..${pre.config.vocabSize - 1})`);
      const model = await load(file, { ...pre.load, ctx: v.ctx ?? Math.max(ids.length, 1) });
      try {
        const rows = await model.logits(ids, { all: v.all ?? false });
        if (model.routingMargin < ROUTING_NEAR_TIE)
          warn(`a near-tie in the expert routing (top-${model.config.nExpertUsed} margin ${model.routingMargin.toExponential(2)}): another implementation may route a token to another expert`);
        if (v.out) {
          const buf = Buffer.alloc(rows.length * model.config.vocabSize * 4);
          rows.forEach((r, i) => {
            for (let j = 0; j < r.length; j++) buf.writeFloatLE(r[j]!, (i * r.length + j) * 4);
          });
          fs.writeFileSync(v.out, buf);
        }
        if (v.json) {
          const margin = Number.isFinite(model.routingMargin) ? `,"routing_margin":${model.routingMargin}` : '';
          process.stdout.write(`{"n_vocab":${model.config.vocabSize},"backend":"${v.backend ?? 'wasm'}","numerics":"${model.numerics}"${margin},"logits":[`);
          rows.forEach((r, i) => process.stdout.write((i ? ',' : '') + '[' + Array.from(r, (x) => (Number.isFinite(x) ? x : 0)).join(',') + ']'));
          process.stdout.write(']}\n');
        }
      } finally {
        await model.close();
      }
    },
  },
  inspect: {
    synopsis: 'phi3 inspect <file.gguf> [--json] [--ctx N]      hyper-parameters, tokenizer, tensors, memory at --ctx',
    flags: { model: MODEL.model, json: { type: 'bool', help: 'print JSON' }, ctx: MODEL.ctx },
    run(values, positionals, usage) {
      const v = values as { model?: string; json?: boolean; ctx?: number };
      const file = modelPath(v, positionals, usage);
      const r = inspectGguf(file, v.ctx);
      const folder = visionFolders.get(file);
      if (folder) r.vision = visionSummary(folder.dir);
      process.stdout.write(v.json ? JSON.stringify(r, null, 2) + '\n' : formatInspect(r) + '\n');
    },
  },
  compare: {
    synopsis: 'phi3 compare <a> <b> [--max-rel X] [--max-kl Y] [--json]      logits b against reference a; exit 1 when the verdict fails',
    flags: {
      'max-rel': { type: 'number', min: 0, help: 'fail above this max |Δ| ÷ max |a| (default 1e-3)' },
      'max-kl': { type: 'number', min: 0, help: 'fail above this KL(P‖Q) at any position, in nats (default 1e-3)' },
      'n-vocab': { type: 'int', min: 1, help: 'row length of raw f32 files (default: from the other file)' },
      json: { type: 'bool', help: 'print the report as JSON' },
    },
    run(values, positionals, usage) {
      const v = values as { 'max-rel'?: number; 'max-kl'?: number; 'n-vocab'?: number; json?: boolean };
      if (positionals.length !== 2) throw new UsageError(`give two logits files\nusage: ${usage}`);
      const [pa, pb] = positionals as [string, string];
      // a raw f32 file takes its row length from the other file when that one states it
      const first = (p: string) => (logitsFileFormat(p) === 'f32-rows' ? undefined : readLogitsFile(p, v['n-vocab']));
      const a0 = first(pa), b0 = first(pb);
      const nVocab = v['n-vocab'] ?? a0?.nVocab ?? b0?.nVocab;
      const a = a0 ?? readLogitsFile(pa, nVocab), b = b0 ?? readLogitsFile(pb, nVocab);
      if (a.nVocab !== b.nVocab) throw new UsageError(`${pa} has ${a.nVocab} logits per position, ${pb} has ${b.nVocab}`);
      if (a.rows.length !== b.rows.length) throw new UsageError(`${pa} has ${a.rows.length} positions, ${pb} has ${b.rows.length}`);
      // a llama-perplexity KL file holds floored log-probabilities: the other side is made alike
      const floors = a.floors ?? b.floors;
      const ra = floors && !a.floors ? asFlooredLogProbs(a.rows, floors) : a.rows;
      const rb = floors && !b.floors ? asFlooredLogProbs(b.rows, floors) : b.rows;
      const r = compareLogits(ra, rb, { maxRel: v['max-rel'], maxKl: v['max-kl'] });
      process.stdout.write(v.json ? JSON.stringify({ a: pa, b: pb, ...r }) + '\n' : formatCompare(r, [pa, pb]) + '\n');
      return r.verdict.pass ? 0 : 1;
    },
  },
  perplexity: {
    synopsis: 'phi3 perplexity <model.gguf> -f text.txt [--ctx 512] [--batch N] [--save-logits f] [--kl-divergence-base f] [--json]      llama-perplexity\'s method: chunks of --ctx, second halves scored',
    flags: {
      ...MODEL,
      file: { type: 'string', short: 'f', help: 'the text file (not needed with --kl-divergence-base)' },
      batch: { type: 'int', short: 'b', aliases: ['batch-size'], min: 1, help: 'tokens per forward call within a chunk (the same result; default the chunk)' },
      'save-logits': { type: 'string', help: "write the scored log-probabilities as llama-perplexity's --kl-divergence-base file" },
      'kl-divergence-base': { type: 'string', help: "compare with this base file (llama-perplexity's or ours): its tokens, KL divergence and top-token agreement" },
      json: { type: 'bool', help: 'print the result as JSON' },
    },
    async run(values, positionals, usage) {
      const v = values as FlagValues<typeof MODEL> & { file?: string; json?: boolean; batch?: number; 'save-logits'?: string; 'kl-divergence-base'?: string };
      const file = modelPath(v, positionals, usage);
      const klBase = v['kl-divergence-base'];
      if (!v.file && !klBase) throw new UsageError(`give the text with -f (or a base file with --kl-divergence-base)\nusage: ${usage}`);
      const text = v.file !== undefined ? fs.readFileSync(v.file, 'utf8') : undefined;
      const ctx = klBase !== undefined ? readKldBase(klBase).nCtx : v.ctx ?? 512;
      if (klBase !== undefined && v.ctx !== undefined && v.ctx !== ctx) throw new UsageError(`--ctx ${v.ctx} differs from ${klBase}'s n_ctx ${ctx}`);
      const pre = preflight(file, { ...v, ctx });
      const model = await load(file, { ...pre.load, ctx });
      try {
        const t0 = performance.now();
        const r = await perplexity(model, text, {
          ctx,
          batch: v.batch,
          saveLogits: v['save-logits'],
          klBase,
          onChunk: (c) => {
            if (process.stderr.isTTY) process.stderr.write(`\r[${'#'.repeat(Math.round((20 * c.chunk) / c.nChunks)).padEnd(20)}] chunk ${c.chunk}/${c.nChunks} PPL ${c.ppl.toFixed(4)}`);
            else process.stderr.write(`chunk ${c.chunk}/${c.nChunks}: PPL ${c.ppl.toFixed(4)} (this chunk ${c.chunkPpl.toFixed(4)}), ${((performance.now() - t0) / 1000 / c.chunk).toFixed(2)} s per chunk\n`);
          },
        });
        if (process.stderr.isTTY) process.stderr.write('\n');
        if (v.json) process.stdout.write(JSON.stringify(r) + '\n');
        else {
          process.stdout.write(`${r.chunks.map((p, i) => `[${i + 1}]${p.toFixed(4)}`).join(',')}\nFinal estimate: PPL = ${r.ppl.toFixed(4)} +/- ${r.stderr.toFixed(5)} (${r.scored} tokens scored of ${r.nTokens}, ctx ${r.ctx})\n`);
          const k = r.kld;
          if (k)
            process.stdout.write(
              [
                `Mean PPL(Q)          : ${k.pplQ.toFixed(6)}`,
                `Mean PPL(base)       : ${k.pplBase.toFixed(6)}`,
                `PPL(Q)/PPL(base)     : ${k.pplRatio.toFixed(6)}`,
                `Mean    KLD          : ${k.klMean.toFixed(6)} ± ${k.klStderr.toFixed(6)}`,
                `Maximum KLD          : ${k.klMax.toFixed(6)}`,
                `99.0%   KLD          : ${k.klP99.toFixed(6)}`,
                `90.0%   KLD          : ${k.klP90.toFixed(6)}`,
                `Median  KLD          : ${k.klMedian.toFixed(6)}`,
                `RMS Δp               : ${(100 * k.rmsDp).toFixed(3)} %`,
                `Maximum Δp           : ${(100 * k.maxDp).toFixed(3)} %`,
                `Same top p           : ${(100 * k.sameTop).toFixed(3)} %  (${k.count} positions)`,
              ].join('\n') + '\n',
            );
        }
      } finally {
        await model.close();
      }
    },
  },
  'export-hf': {
    synopsis: 'phi3 export-hf <model.gguf> --out folder      an F32/F16/BF16 phi3 or phimoe GGUF as a transformers Phi3ForCausalLM or PhimoeForCausalLM folder',
    flags: { model: MODEL.model, out: { type: 'string', help: 'the folder to write (created)' } },
    run(values, positionals, usage) {
      const v = values as { model?: string; out?: string };
      const file = modelPath(v, positionals, usage);
      if (!v.out) throw new UsageError(`give --out folder\nusage: ${usage}`);
      const r = exportHf(file, v.out);
      for (const w of r.warnings) warn(w);
      process.stdout.write(`wrote ${r.files.join(', ')} (${r.tensors} tensors, ${r.dtype})\n`);
    },
  },
  convert: {
    synopsis: 'phi3 convert <hf-folder> --out x.gguf [--type auto|F16|Q8_0|Q4_K_M|…]      a Hugging Face Phi3ForCausalLM or PhimoeForCausalLM folder as a GGUF',
    flags: {
      model: { type: 'string', short: 'm', help: 'the Hugging Face folder (or give it as the first argument)' },
      out: { type: 'string', help: 'the GGUF file to write' },
      type: { type: 'string', choices: CONVERT_TYPES, help: 'weight type (default auto: each matrix as stored; norms F32)' },
      name: { type: 'string', help: "general.name (default: config.json's _name_or_path, else the folder's name)" },
    },
    run(values, positionals, usage) {
      const v = values as { model?: string; out?: string; type?: string; name?: string };
      const dir = v.model ?? positionals[0];
      if (!dir || positionals.length > (v.model ? 0 : 1)) throw new UsageError(`usage: ${usage}`);
      if (!v.out) throw new UsageError(`give --out x.gguf\nusage: ${usage}`);
      if (!isHfFolder(dir)) throw new UsageError(`${dir} is not a Hugging Face model folder (a directory with config.json)`);
      const t0 = performance.now();
      const r = convertHf(dir, v.out, { type: v.type, name: v.name });
      for (const f of [...r.warnings, ...r.fallbacks]) warn(f);
      const counts = new Map<string, number>();
      for (const t of r.types.values()) counts.set(t, (counts.get(t) ?? 0) + 1);
      process.stdout.write(`wrote ${r.out}: ${r.tensors} tensors (${[...counts].map(([t, n]) => `${n} ${t}`).join(', ')}), ${(r.bytes / 2 ** 20).toFixed(1)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    },
  },
  synth: {
    synopsis: 'phi3 synth --preset P --type T --seed N --out x.gguf [shape flags]      a synthetic model (random weights, real shapes); --format hf for a Hugging Face folder of a vision preset',
    flags: {
      preset: { type: 'string', choices: [...Object.keys(PRESETS), ...Object.keys(VISION_PRESETS)], help: 'the shape (default tiny)' },
      format: { type: 'string', choices: ['gguf', 'hf'], help: 'gguf (default), or hf: a Hugging Face folder (the vision presets: phi3.5-vision, phi3.5-vision-tiny)' },
      type: { type: 'string', help: `weight type: ${SYNTH_TYPES.join(' ')} (default F32)` },
      seed: { type: 'int', min: 0, max: 2 ** 31, help: 'same seed → same bytes (default 1)' },
      vocab: { type: 'string', help: "copy this GGUF's tokenizer (e.g. ../shared/models/ggml-vocab-phi-3.gguf)" },
      pre: { type: 'string', choices: ['gpt-2', 'dbrx', 'gpt-4o'], help: "with a gpt2 --vocab: this pre-tokenizer and Phi-4's special tokens (default: the preset's)" },
      out: { type: 'string', help: 'the file to write' },
      tied: { type: 'bool', help: 'no output.weight (logits from token_embd)' },
      dim: { type: 'int', min: 1, max: 1 << 16, help: 'embedding size' },
      hidden: { type: 'int', min: 1, max: 1 << 18, help: 'feed-forward size' },
      layers: { type: 'int', min: 1, max: 1024, help: 'layers' },
      heads: { type: 'int', min: 1, help: 'attention heads' },
      'kv-heads': { type: 'int', min: 1, help: 'KV heads' },
      ctx: { type: 'int', min: 1, max: 1 << 24, help: 'trained context length' },
      'rope-dim': { type: 'int', min: 2, help: 'rotary dims per head' },
      threads: { type: 'int', min: 1, max: 1024, help: 'worker threads that draw --weights trained (default: every core)' },
      weights: { type: 'string', choices: ['blocks', 'trained'], help: "blocks (default): random quant blocks, fast; trained: F32 weights shaped like a trained model's, quantized by the ggml-exact quantizers (real files' scale distribution; slow)" },
    },
    async run(values) {
      const v = values as Record<string, string | number | boolean | undefined>;
      if (!v.out) throw new UsageError(`--out is required`);
      const vision = VISION_PRESETS[(v.preset as string | undefined) ?? ''];
      if (vision || v.format === 'hf') {
        // a Phi-3.5-vision folder: text model F32 (convert on load quantizes it), vision tower F32
        if (!vision) throw new UsageError(`--format hf writes the vision presets (${Object.keys(VISION_PRESETS).join(', ')}); use phi3 export-hf for a text model`);
        if (v.format !== 'hf') throw new UsageError(`--preset ${v.preset} is a Hugging Face folder: give --format hf`);
        for (const k of ['type', 'tied', 'dim', 'hidden', 'layers', 'heads', 'kv-heads', 'ctx', 'rope-dim', 'pre', 'weights', 'threads'])
          if (v[k] !== undefined) throw new UsageError(`--${k} does not apply to --format hf (the folder is F32 at the preset's shape)`);
        const t0 = performance.now();
        const out = v.out as string;
        if (fs.existsSync(out) && fs.readdirSync(out).length) throw new UsageError(`--out ${out}: the folder exists and is not empty`);
        writeVisionSynth(out, vision, { seed: (v.seed as number | undefined) ?? 1, vocabFile: v.vocab as string | undefined });
        process.stderr.write(`wrote ${out}/ in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
        return;
      }
      const preset = PRESETS[(v.preset as string | undefined) ?? 'tiny']!;
      const type = ((v.type as string | undefined) ?? 'F32').toUpperCase();
      if (!SYNTH_TYPES.includes(type)) throw new UsageError(`unknown --type '${v.type}' (one of ${SYNTH_TYPES.join(', ')})`);
      const nHeads = (v.heads as number | undefined) ?? preset.nHeads;
      const shape = {
        ...preset,
        dim: (v.dim as number | undefined) ?? preset.dim,
        hiddenDim: (v.hidden as number | undefined) ?? preset.hiddenDim,
        nLayers: (v.layers as number | undefined) ?? preset.nLayers,
        nHeads,
        nKvHeads: (v['kv-heads'] as number | undefined) ?? (v.heads !== undefined ? nHeads : preset.nKvHeads),
        contextLength: (v.ctx as number | undefined) ?? preset.contextLength,
        ropeDim: (v['rope-dim'] as number | undefined) ?? (v.dim !== undefined || v.heads !== undefined ? undefined : preset.ropeDim),
        tiedEmbeddings: (v.tied as boolean | undefined) || preset.tiedEmbeddings,
      };
      if (shape.dim % shape.nHeads !== 0) throw new UsageError(`--dim ${shape.dim} is not divisible by --heads ${shape.nHeads}`);
      if (shape.nHeads % shape.nKvHeads !== 0) throw new UsageError(`--heads ${shape.nHeads} is not a multiple of --kv-heads ${shape.nKvHeads}`);
      const out = v.out as string;
      const dir = path.dirname(path.resolve(out));
      if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UsageError(`--out ${out}: the folder ${dir} does not exist`);
      if (v.threads !== undefined && v.weights !== 'trained') throw new UsageError(`--threads draws --weights trained; random blocks are written on one thread`);
      const t0 = performance.now();
      try {
        const o = { shape, type, seed: (v.seed as number | undefined) ?? 1, vocabFile: v.vocab as string | undefined, pre: v.pre as string | undefined, weights: v.weights as 'blocks' | 'trained' | undefined };
        await writeSynthAsync(out, o, (v.threads as number | undefined) ?? os.availableParallelism());
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (err.code) throw new Error(`cannot write ${out}: ${err.message}`);
        throw new UsageError(err.message.replace(/^synth: /, ''));
      }
      process.stderr.write(`wrote ${out} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    },
  },
};

function version(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version as string;
  } catch {
    return 'unknown';
  }
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === '--version' || cmd === '-V') {
    process.stdout.write(`phi3-ts ${version()}\n`);
    return 0;
  }
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(`phi3-ts ${version()} — a Phi-3 runtime in TypeScript + WebAssembly\n\n${Object.values(commands).map((c) => '  ' + c.synopsis).join('\n')}\n\n\`phi3 <command> --help\` lists a command's flags.\n`);
    return 0;
  }
  const c = commands[cmd];
  if (!c) {
    process.stderr.write(`phi3: unknown command '${cmd}' (one of ${Object.keys(commands).join(', ')})\n`);
    return 2;
  }
  const usage = usageOf(c.synopsis, c.flags);
  const verbose = rest.includes('--verbose');
  try {
    const { values, positionals } = parseFlags(rest, c.flags, usage);
    const status = await c.run(values, positionals, usage);
    return typeof status === 'number' ? status : 0;
  } catch (e) {
    const err = e as Error;
    if (err instanceof HelpRequested) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`phi3 ${cmd}: ${verbose ? err.stack : err.message}\n`);
      return err.cause === 1 ? 1 : 2;
    }
    // one line: the error's name and the first line of its message (the stack only with --verbose)
    const msg = err instanceof Error ? `${err.name}: ${err.message.split('\n')[0]}` : String(e);
    process.stderr.write(`phi3 ${cmd}: ${verbose && err instanceof Error ? err.stack : msg}\n`);
    return 1;
  }
}

// a reader that went away (`phi3 … | head`) ends the command quietly
for (const s of [process.stdout, process.stderr])
  s.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`phi3: ${(e as Error)?.message ?? e}\n`);
    process.exitCode = 1;
  },
);
