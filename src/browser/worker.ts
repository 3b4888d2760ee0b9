/**
 * The browser's Web Worker (bundled as dist/browser/phi3-worker.js). One script, two roles, chosen by
 * the first message:
 *   'model'  hosts one Model: loads it from a URL (cached in the OPFS) or a File/Blob, and answers the
 *            page's requests (index.ts) — generate/chat streams, tokenize, close. The forward pass and
 *            the crew's op hand-out run here, since Atomics.wait is not allowed on a page's main thread.
 *   'crew'   one of the model's helper threads: runs crewLoop over the shared memories until STOP.
 */
import { crewKernels, crewLoop, SEQ, type CrewInit } from '../backend/wasm/crew.js';
import { GGUFFile, type ByteSource } from '../gguf/reader.js';
import { openModel, validateLoadOptions, type LoadOptions, type Model } from '../engine.js';
import { InlineTemplates } from '../generate/templates.js';
import type { ChatMessage } from '../generate/chat.js';
import type { GenerateOptions } from '../generate/generate.js';
import { browserHost, prepareKernels, type CrewStopped } from './host.js';
import { BlobSource, HttpSource, OpfsSource, QuotaError, downloadToOpfs } from './sources.js';
import type { LoadRequest, ModelInfo, WorkerEvent, WorkerRequest } from './protocol.js';

const post = (e: WorkerEvent | CrewStopped) => (self as unknown as Worker).postMessage(e);

function errorOf(e: unknown): { name: string; message: string } {
  const err = e as Error;
  return { name: err?.name ?? 'Error', message: err?.message ?? String(e) };
}

// ── role 'crew' ───────────────────────────────────────────────────────────────────────────────

function runCrew(init: CrewInit): void {
  const kernels = crewKernels(init);
  const seen = Atomics.load(new Int32Array(init.control), SEQ);
  crewLoop(init, kernels, seen);
  post({ role: 'crew-stopped', index: init.index });
  self.close();
}

// ── role 'model' ──────────────────────────────────────────────────────────────────────────────

let model: Model | undefined;
/** what loading warned of, for ModelInfo.warnings */
const warnings: string[] = [];
const running = new Map<number, AbortController>();

async function openSource(req: LoadRequest, id: number): Promise<ByteSource> {
  const { source } = req;
  if (source.blob) return new BlobSource(source.blob);
  const url = new URL(source.url!, self.location.href).href;
  const opfs = typeof navigator.storage?.getDirectory === 'function';
  if ((source.cache ?? true) && opfs) {
    try {
      const name = await downloadToOpfs(url, (p) => post({ event: 'progress', id, phase: 'download', loaded: p.loaded, total: p.total, cached: p.cached }));
      return OpfsSource.open(name, url);
    } catch (e) {
      if (!(e instanceof QuotaError)) throw e;
      warnings.push(`cache: ${e.message}; reading it by range requests instead`);
    }
  }
  return new HttpSource(url);
}

async function load(req: LoadRequest, id: number): Promise<ModelInfo> {
  if (model) throw new Error('this worker already holds a model');
  const t0 = performance.now();
  const opts: LoadOptions = { ...req.options };
  validateLoadOptions(opts);
  for (const k of ['type', 'cacheDir'] as const)
    if (opts[k] !== undefined) throw new TypeError(`option '${k}' is for Hugging Face folders, which the browser does not read: convert the folder first (phi3 convert)`);
  await prepareKernels(new URL(req.assetsUrl ?? '../../build/', import.meta.url));
  const file = GGUFFile.fromSource(await openSource(req, id));
  let last = 0;
  opts.onProgress = (loaded, total) => {
    const now = performance.now();
    if (now - last < 50 && loaded < total) return;
    last = now;
    post({ event: 'progress', id, phase: 'load', loaded, total });
  };
  opts.onWarning = (w) => warnings.push(`${w.key}: ${w.message}`);
  model = await openModel(file, opts, { wasm: browserHost(new URL(import.meta.url)), cores: navigator.hardwareConcurrency || 1, templates: new InlineTemplates() }, t0);
  const ops = model.phi3.ops as { simd?: string; threads?: number };
  return {
    path: model.path,
    config: model.config,
    ctx: model.ctx,
    threads: ops.threads ?? 1,
    simd: ops.simd ?? 'none',
    loadSeconds: model.loadStats.loadSeconds,
    weightsBytes: model.loadStats.weightsBytes,
    chatTemplate: model.chatTemplate,
    warnings,
  };
}

async function generate(id: number, prompt: string | number[] | undefined, messages: ChatMessage[] | undefined, options: GenerateOptions): Promise<void> {
  if (!model) throw new Error('no model is loaded');
  const ac = new AbortController();
  running.set(id, ac);
  try {
    const ids = messages ? await model.chatTokensLimited(messages) : prompt!;
    const it = model.stream(ids, { ...options, signal: ac.signal });
    for (;;) {
      const r = await it.next();
      if (r.done) {
        post({ event: 'done', id, stats: r.value });
        return;
      }
      post({ event: 'chunk', id, text: r.value.text, token: r.value.token, logprob: r.value.logprob, topLogprobs: r.value.topLogprobs });
    }
  } finally {
    running.delete(id);
  }
}

async function answer(req: WorkerRequest): Promise<void> {
  const { id } = req;
  try {
    switch (req.op) {
      case 'load':
        post({ event: 'result', id, value: await load(req, id) });
        return;
      case 'generate':
        await generate(id, req.prompt, req.messages, req.options ?? {});
        return;
      case 'abort':
        running.get(req.target)?.abort();
        return;
      case 'tokenize':
        if (!model) throw new Error('no model is loaded');
        post({ event: 'result', id, value: model.tokenize(req.text, req.options) });
        return;
      case 'detokenize':
        if (!model) throw new Error('no model is loaded');
        post({ event: 'result', id, value: model.detokenize(req.ids, req.options) });
        return;
      case 'close':
        for (const ac of running.values()) ac.abort();
        await model?.close();
        model = undefined;
        post({ event: 'result', id, value: true });
        self.close();
        return;
    }
  } catch (e) {
    post({ event: 'error', id, error: errorOf(e) });
  }
}

self.addEventListener('message', (e: MessageEvent) => {
  const m = e.data as { role?: string; init?: CrewInit } & WorkerRequest;
  if (m.role === 'crew') runCrew(m.init!);
  else void answer(m);
});
