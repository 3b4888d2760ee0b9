/**
 * An OpenAI-compatible HTTP server over one Model: /v1/chat/completions, /v1/completions
 * (JSON or SSE streaming), /v1/models, /health, /metrics (Prometheus), /tokenize, /detokenize.
 *
 * Built on node:http: the API is a handful of JSON routes plus server-sent events, and owning the
 * socket directly makes streaming, back-pressure and "client went away → abort the generation"
 * explicit, with no framework between them.
 *
 * Scheduling: the model has `parallel` sequences (slots), each with its own KV cache; up to that
 * many generations run at once, batched into each forward pass (continuous batching, batcher.ts),
 * and the rest queue, first come first served. A request goes to the idle slot whose cache shares
 * the longest prefix with its prompt. Queue depth and slot occupancy are in /metrics, each slot in
 * /slots. A client that disconnects, whether queued or generating, is dropped and its generation
 * aborted within one token.
 *
 * Every request parameter is either honoured or refused with a 400 that names it; message content
 * is tokenized as text (only the template's markup parses control tokens). shutdown() stops
 * accepting, lets running requests finish within a grace period, then ends them cleanly.
 */
import { compileGrammar } from '../grammar/constrain.js';
import { GrammarError } from '../grammar/gbnf.js';
import { jsonObjectGrammar, jsonSchemaGrammar } from '../grammar/json-schema.js';
import * as http from 'node:http';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { Model } from '../api.js';
import { ContextLengthError } from '../model/phi3.js';
import type { ChatMessage } from '../generate/chat.js';
import { ToolCallStream, ToolsUnsupportedError, type FunctionTool, type ToolChoice } from '../generate/tools.js';
import type { ChatContentPart, ChatInput } from '../engine.js';
import { ImageError } from '../vision/preprocess.js';
import { yieldToEventLoop, type GeneratedChunk, type GenerateOptions, type GenerationStats } from '../generate/generate.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type = status >= 500 ? 'server_error' : 'invalid_request_error',
  ) {
    super(message);
  }
}

const MAX_BODY = 8 << 20;

/** `Bearer <key>` against the server's key, in time independent of where they differ */
function keyMatches(header: string | undefined, key: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]!.trim()), b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** a Prometheus histogram (cumulative buckets, sum, count) */
class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly bounds: number[]) {
    this.counts = bounds.map(() => 0);
  }
  observe(x: number): void {
    this.bounds.forEach((b, i) => x <= b && this.counts[i]!++);
    this.sum += x;
    this.count++;
  }
  lines(name: string, help: string): string[] {
    return [
      `# HELP ${name} ${help}`, `# TYPE ${name} histogram`,
      ...this.bounds.map((b, i) => `${name}_bucket{le="${b}"} ${this.counts[i]}`),
      `${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`,
    ];
  }
}

/** Prometheus counters and summaries, in the text exposition format */
class Metrics {
  requests = new Map<string, number>(); // `${route}|${status}`
  promptTokens = 0;
  generatedTokens = 0;
  latency = new Map<string, { sum: number; count: number }>();
  queue = 0;
  active = 0;
  aborted = 0;
  stalled = 0;
  /** seconds from a request's arrival in the queue to its first token, and between its tokens */
  ttft = new Histogram([0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]);
  itl = new Histogram([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]);
  request(route: string, status: number, seconds: number): void {
    const k = `${route}|${status}`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
    const l = this.latency.get(route) ?? { sum: 0, count: 0 };
    l.sum += seconds;
    l.count++;
    this.latency.set(route, l);
  }
  text(model: Model | undefined): string {
    const L: string[] = [];
    L.push('# HELP phi3_requests_total HTTP requests by route and status.', '# TYPE phi3_requests_total counter');
    for (const [k, v] of this.requests) {
      const [route, status] = k.split('|');
      L.push(`phi3_requests_total{route="${route}",status="${status}"} ${v}`);
    }
    L.push('# HELP phi3_request_duration_seconds Request latency.', '# TYPE phi3_request_duration_seconds summary');
    for (const [route, l] of this.latency) {
      L.push(`phi3_request_duration_seconds_sum{route="${route}"} ${l.sum}`);
      L.push(`phi3_request_duration_seconds_count{route="${route}"} ${l.count}`);
    }
    L.push('# HELP phi3_prompt_tokens_total Prompt tokens processed.', '# TYPE phi3_prompt_tokens_total counter', `phi3_prompt_tokens_total ${this.promptTokens}`);
    L.push('# HELP phi3_generated_tokens_total Tokens generated.', '# TYPE phi3_generated_tokens_total counter', `phi3_generated_tokens_total ${this.generatedTokens}`);
    L.push('# HELP phi3_aborted_generations_total Generations stopped because the client went away.', '# TYPE phi3_aborted_generations_total counter', `phi3_aborted_generations_total ${this.aborted}`);
    L.push('# HELP phi3_stalled_generations_total Generations stopped by the watchdog (no progress).', '# TYPE phi3_stalled_generations_total counter', `phi3_stalled_generations_total ${this.stalled}`);
    L.push(...this.ttft.lines('phi3_time_to_first_token_seconds', 'From a generation request entering the queue to its first token.'));
    L.push(...this.itl.lines('phi3_inter_token_seconds', 'Between consecutive tokens of a generation.'));
    L.push('# HELP phi3_queue_depth Requests waiting for the model.', '# TYPE phi3_queue_depth gauge', `phi3_queue_depth ${this.queue}`);
    L.push('# HELP phi3_active_generations Generations running.', '# TYPE phi3_active_generations gauge', `phi3_active_generations ${this.active}`);
    if (model) {
      const slots = model.slotStates(), b = model.batching;
      L.push('# HELP phi3_slots Sequences (slots) the model runs at once.', '# TYPE phi3_slots gauge', `phi3_slots ${slots.length}`);
      L.push('# HELP phi3_slots_busy Slots with a generation running.', '# TYPE phi3_slots_busy gauge', `phi3_slots_busy ${slots.filter((s) => s.busy).length}`);
      L.push('# HELP phi3_batch_forward_passes_total Forward passes of the continuous batcher.', '# TYPE phi3_batch_forward_passes_total counter', `phi3_batch_forward_passes_total ${b.ticks}`);
      L.push('# HELP phi3_batch_tokens_total Tokens those passes carried.', '# TYPE phi3_batch_tokens_total counter', `phi3_batch_tokens_total ${b.tokens}`);
      L.push('# HELP phi3_batch_widest_sequences The most sequences one pass has carried.', '# TYPE phi3_batch_widest_sequences gauge', `phi3_batch_widest_sequences ${b.widest}`);
    }
    L.push('# HELP phi3_model_loaded 1 once the model is loaded.', '# TYPE phi3_model_loaded gauge', `phi3_model_loaded ${model ? 1 : 0}`);
    return L.join('\n') + '\n';
  }
}

// ── request validation ────────────────────────────────────────────────────────────────────────

type Body = Record<string, unknown>;

function num(b: Body, key: string, o: { min?: number; max?: number; int?: boolean } = {}): number | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new HttpError(400, `'${key}' must be a number`, key);
  if (o.int && !Number.isInteger(v)) throw new HttpError(400, `'${key}' must be an integer`, key);
  if (o.min !== undefined && v < o.min) throw new HttpError(400, `'${key}' must be ≥ ${o.min}, got ${v}`, key);
  if (o.max !== undefined && v > o.max) throw new HttpError(400, `'${key}' must be ≤ ${o.max}, got ${v}`, key);
  return v;
}

/** the parameters each route takes; any other is refused by name (not implemented ones with a note) */
const COMMON_PARAMS = [
  'model', 'stream', 'stream_options', 'max_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'presence_penalty', 'frequency_penalty',
  'repeat_penalty', 'seed', 'stop', 'n', 'logprobs', 'logit_bias', 'user', 'ignore_eos', 'response_format', 'grammar',
];
const CHAT_PARAMS = new Set([...COMMON_PARAMS, 'messages', 'max_completion_tokens', 'top_logprobs', 'tools', 'tool_choice', 'parallel_tool_calls']);
const COMPLETION_PARAMS = new Set([...COMMON_PARAMS, 'prompt']);
const NOT_YET: Record<string, string> = {
  functions: 'function calls are not implemented',
  function_call: 'function calls are not implemented',
  json_schema: "give the schema as response_format: {type: 'json_schema', json_schema: {schema}}",
  echo: "'echo' is not implemented",
  best_of: "'best_of' is not implemented",
  suffix: "'suffix' (insertion) is not implemented",
};

function checkParams(b: Body, allowed: Set<string>): void {
  for (const k of Object.keys(b)) {
    if (allowed.has(k)) continue;
    throw new HttpError(400, NOT_YET[k] ? `${NOT_YET[k]}: remove '${k}'` : `unknown parameter '${k}'`, k, 'unsupported_parameter');
  }
}

function samplingOptions(b: Body): GenerateOptions {
  const stop = b.stop;
  let stops: string[] | undefined;
  if (typeof stop === 'string') stops = [stop];
  else if (Array.isArray(stop)) {
    if (stop.length > 4 || !stop.every((s) => typeof s === 'string')) throw new HttpError(400, "'stop' must be a string or an array of up to 4 strings", 'stop');
    stops = stop as string[];
  } else if (stop !== undefined && stop !== null) throw new HttpError(400, "'stop' must be a string or an array of strings", 'stop');
  if (b.n !== undefined && b.n !== null && b.n !== 1) throw new HttpError(400, "only 'n': 1 is supported", 'n');
  if (b.ignore_eos !== undefined && typeof b.ignore_eos !== 'boolean') throw new HttpError(400, "'ignore_eos' must be a boolean", 'ignore_eos');
  let logitBias: Record<number, number> | undefined;
  if (b.logit_bias !== undefined && b.logit_bias !== null) {
    if (typeof b.logit_bias !== 'object' || Array.isArray(b.logit_bias)) throw new HttpError(400, "'logit_bias' must be an object of token id → bias", 'logit_bias');
    logitBias = {};
    for (const [k, v] of Object.entries(b.logit_bias as Body)) {
      if (!/^\d+$/.test(k)) throw new HttpError(400, `'logit_bias': '${k}' is not a token id`, 'logit_bias');
      if (typeof v !== 'number' || !Number.isFinite(v) || v < -100 || v > 100) throw new HttpError(400, `'logit_bias': the bias of token ${k} must be a number in [-100, 100]`, 'logit_bias');
      logitBias[Number(k)] = v === -100 ? -Infinity : v; // OpenAI: -100 bans the token
    }
  }
  const topP = num(b, 'top_p', { min: 0, max: 1 });
  const grammar = grammarOf(b);
  return {
    grammar,
    // default: until the context is full or an end-of-generation token, as llama-server
    maxTokens: num(b, 'max_tokens', { min: 1, int: true }) ?? num(b, 'max_completion_tokens', { min: 1, int: true }),
    temperature: num(b, 'temperature', { min: 0, max: 2 }) ?? 1,
    // top_p 0 keeps the smallest nucleus there is: the most likely token (as top_k 1)
    topP: topP === 0 ? undefined : topP,
    topK: topP === 0 ? 1 : num(b, 'top_k', { min: 0, int: true }),
    minP: num(b, 'min_p', { min: 0, max: 1 }),
    presencePenalty: num(b, 'presence_penalty', { min: -2, max: 2 }),
    frequencyPenalty: num(b, 'frequency_penalty', { min: -2, max: 2 }),
    repeatPenalty: num(b, 'repeat_penalty', { min: 0 }),
    seed: num(b, 'seed', { int: true }),
    stop: stops,
    logitBias,
    // llama.cpp server's extension: keep going past end-of-generation tokens
    stopAtEog: b.ignore_eos === true ? false : undefined,
  };
}

/**
 * response_format ({type: text | json_object | json_schema}) or llama.cpp's `grammar` (GBNF) as the
 * grammar that constrained sampling enforces; a schema or grammar it cannot run is a 400 naming why
 */
function grammarOf(b: Body): string | undefined {
  const rf = b.response_format as Body | undefined | null;
  if (b.grammar !== undefined && b.grammar !== null) {
    if (typeof b.grammar !== 'string') throw new HttpError(400, "'grammar' must be a GBNF string", 'grammar');
    if (rf && rf.type !== 'text') throw new HttpError(400, "give either 'grammar' or a response_format, not both", 'grammar');
    return checked(b.grammar, 'grammar');
  }
  if (rf === undefined || rf === null) return undefined;
  if (typeof rf !== 'object' || Array.isArray(rf)) throw new HttpError(400, "'response_format' must be an object", 'response_format');
  switch (rf.type) {
    case 'text':
      return undefined;
    case 'json_object':
      return jsonObjectGrammar();
    case 'json_schema': {
      const js = rf.json_schema as Body | undefined;
      if (!js || typeof js !== 'object' || js.schema === undefined) throw new HttpError(400, "response_format json_schema needs json_schema: {name, schema}", 'response_format');
      try {
        return checked(jsonSchemaGrammar(js.schema), 'response_format');
      } catch (e) {
        if (e instanceof GrammarError) throw new HttpError(400, `response_format.json_schema.schema${/^[:/]/.test(e.message) ? '' : ': '}${e.message}`, 'response_format');
        throw e;
      }
    }
    default:
      throw new HttpError(400, `response_format.type must be text, json_object or json_schema, got ${JSON.stringify(rf.type)}`, 'response_format');
  }
}

/** the grammar compiles (cached by its text), or a 400 with the parser's line and offset */
function checked(grammar: string, param: string): string {
  try {
    compileGrammar(grammar);
    return grammar;
  } catch (e) {
    if (e instanceof GrammarError) throw new HttpError(400, `${param}: ${e.message}`, param);
    throw e;
  }
}

/** an image given by URL, fetched (or refused) in Server.images(); `at` is where the request gave it */
type ImageUrlPart = { type: 'image_url'; url: string; at: string };
/** a message as read from the request: its images either bytes or URLs still to fetch */
type WireMessage = Omit<ChatMessage, 'content'> & { content: string | (ChatContentPart | ImageUrlPart)[] };

/** OpenAI messages → the template's: `developer` is a system message; tool calls and results stay as OpenAI gives them (Model.prepareChat writes them) */
function messagesOf(b: Body): WireMessage[] {
  const m = b.messages;
  if (!Array.isArray(m) || m.length === 0) throw new HttpError(400, "'messages' must be a non-empty array", 'messages');
  return m.map((x, i) => {
    if (!x || typeof x !== 'object' || Array.isArray(x)) throw new HttpError(400, `messages[${i}] must be an object`, 'messages');
    const msg = x as Body;
    for (const k of Object.keys(msg))
      if (!['role', 'content', 'name', 'tool_calls', 'tool_call_id', 'refusal'].includes(k)) throw new HttpError(400, `messages[${i}]: unknown field '${k}'`, 'messages');
    let role = msg.role;
    if (role === 'developer') role = 'system';
    if (role !== 'system' && role !== 'user' && role !== 'assistant' && role !== 'tool') throw new HttpError(400, `messages[${i}].role must be system, developer, user, assistant or tool`, 'messages');
    let content: unknown = msg.content;
    if (Array.isArray(content)) {
      const parts = content.map((p: Body, j): ChatContentPart | ImageUrlPart => {
        const at = `messages[${i}].content[${j}]`;
        if (p && p.type === 'text' && typeof p.text === 'string') return { type: 'text', text: p.text };
        if (p && p.type === 'image_url') {
          const u = (p.image_url as Body | undefined)?.url;
          if (typeof u !== 'string') throw new HttpError(400, `${at}.image_url.url must be a string (a data: URI)`, 'messages');
          const d = /^data:image\/(?:png|jpeg|jpg|webp|gif);base64,/i.exec(u);
          if (d) return { type: 'image', image: new Uint8Array(Buffer.from(u.slice(d[0].length), 'base64')) };
          if (/^https?:\/\//i.test(u)) return { type: 'image_url', url: u, at };
          throw new HttpError(400, `${at}.image_url.url must be a data:image/…;base64 URI${/^data:/.test(u) ? ` (got '${u.slice(0, 30)}…')` : ''}`, 'messages', 'invalid_image');
        }
        throw new HttpError(400, `${at}: only text and image_url parts are supported${p && typeof p.type === 'string' ? ` (got '${p.type}')` : ''}`, 'messages');
      });
      if (parts.some((p) => p.type !== 'text')) {
        if (role !== 'user') throw new HttpError(400, `messages[${i}]: images go in user messages`, 'messages');
        return { role, content: parts };
      }
      content = parts.map((p) => (p as { text: string }).text).join('');
    }
    if (content === null || content === undefined) {
      if (role !== 'assistant' || msg.tool_calls === undefined) throw new HttpError(400, `messages[${i}].content must be a string`, 'messages');
      content = '';
    }
    if (typeof content !== 'string') throw new HttpError(400, `messages[${i}].content must be a string`, 'messages');
    const out: ChatMessage = { role, content };
    if (msg.tool_calls !== undefined) {
      if (role !== 'assistant' || !Array.isArray(msg.tool_calls)) throw new HttpError(400, `messages[${i}].tool_calls must be an array on an assistant message`, 'messages');
      out.tool_calls = msg.tool_calls as ChatMessage['tool_calls'];
    }
    if (role === 'tool') {
      if (typeof msg.tool_call_id !== 'string') throw new HttpError(400, `messages[${i}].tool_call_id must be the id of the call it answers`, 'messages');
      out.tool_call_id = msg.tool_call_id;
    } else if (msg.tool_call_id !== undefined) throw new HttpError(400, `messages[${i}].tool_call_id belongs on a 'tool' message`, 'messages');
    if (typeof msg.name === 'string') out.name = msg.name;
    return out;
  });
}

// ── the server ────────────────────────────────────────────────────────────────────────────────

export interface ServeOptions {
  host?: string;
  port?: number;
  /** model id reported by /v1/models and in responses */
  modelId?: string;
  /** Access-Control-Allow-Origin for browsers (default '*') */
  cors?: string;
  /** requests must carry `Authorization: Bearer <key>` (all routes but /health and CORS preflights) */
  apiKey?: string;
  /** a generation request's time limit, queueing included: past it a queued request gets a 504 and a
   *  running one ends cleanly with finish_reason "length" (default: none) */
  timeoutMs?: number;
  /** parse special-token text inside message content (the old, unsafe behaviour: users can forge turns) */
  parseSpecialContent?: boolean;
  /** most prompt tokens one request may send (default: the context) */
  maxPromptTokens?: number;
  /** most messages one chat request may send (default 1024) */
  maxMessages?: number;
  /** a generation with no progress (token or write) for this long is stopped (default 60 s) */
  stallMs?: number;
  /** image_url parts may be http(s) URLs, fetched by the server (default: data: URIs only) */
  allowImageUrls?: boolean;
  /** most images one request may send (default 8) */
  maxImages?: number;
}

/** a running generation's last sign of progress, and how to stop it (the scheduler's watchdog) */
interface Watch {
  last: number;
  /** when the request was queued (performance.now()), for time to first token */
  queued: number;
  /** waiting for the model's next token: progress is then any forward pass of the model (its prompt
   *  may be filling in the passes it shares with other generations), not only this request's tokens */
  inModel?: boolean;
  cancel?: () => Promise<unknown> | void;
}

export class Phi3Server {
  readonly metrics = new Metrics();
  private model: Model | undefined;
  /** generations running, and the requests waiting for one of the model's slots (FIFO) */
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  /** requests being served, with the controller that ends them */
  private readonly inflight = new Set<{ ac: AbortController; done: Promise<void> }>();
  private stopping = false;
  readonly http: http.Server;
  readonly modelId: string;

  constructor(
    model: Model | Promise<Model>,
    readonly opts: ServeOptions = {},
  ) {
    this.modelId = opts.modelId ?? 'phi3';
    Promise.resolve(model).then(
      (m) => (this.model = m),
      () => {}, // a load failure is the caller's to report
    );
    this.http = http.createServer((req, res) => void this.handle(req, res));
    this.http.keepAliveTimeout = 5000;
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.opts.port ?? 8080, this.opts.host ?? '127.0.0.1', () => {
        const a = this.http.address() as { address: string; port: number };
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  async close(): Promise<void> {
    this.stopping = true;
    for (const r of this.inflight) r.ac.abort();
    this.http.closeAllConnections?.();
    await new Promise<void>((r) => this.http.close(() => r()));
  }

  /**
   * Stop accepting, let running requests finish for up to `graceMs`, then end the rest (streams get
   * a final chunk with a finish_reason, then [DONE]) and close every connection.
   */
  async shutdown(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    const closed = new Promise<void>((r) => this.http.close(() => r()));
    this.http.closeIdleConnections?.();
    const all = Promise.all([...this.inflight].map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    for (const r of this.inflight) r.ac.abort('shutdown');
    await all;
    this.http.closeAllConnections?.();
    await closed;
  }

  /** a slot for one generation: at once if fewer than `parallel` run, else in arrival order */
  private takeSlot(limit: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.running < limit) {
      this.running++;
      return Promise.resolve();
    }
    // queued until a slot is handed over, or until the request is aborted (client gone, time limit)
    return new Promise((resolve, reject) => {
      const grant = () => (signal.removeEventListener('abort', leave), resolve());
      const leave = () => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1), reject(signal.reason);
      };
      this.waiting.push(grant);
      signal.addEventListener('abort', leave, { once: true });
    });
  }
  /** hand the slot to the next request waiting, or free it */
  private giveSlot(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }

  /**
   * Run `f` when one of the model's slots is free (up to `parallel` at once, in arrival order), under a watchdog:
   * a generation that reports no progress (a token, a write; or, while it waits for the model, any
   * forward pass of the model) for `stallMs` is ended — its iterator
   * returned, so the model is given back — and the request fails with a 500; the queue moves on
   * whatever `f` is stuck on.
   */
  private inSlot<T>(signal: AbortSignal, f: (m: Model, w: Watch) => Promise<T>): Promise<T> {
    this.metrics.queue++;
    const queued = performance.now();
    const slot = this.takeSlot(this.model?.parallel ?? 1, signal).then(
      () => void this.metrics.queue--,
      (why) => {
        this.metrics.queue--;
        throw why === 'timeout' ? new HttpError(504, `no slot was free within the request's ${this.opts.timeoutMs} ms`, null, 'timeout') : new HttpError(499, 'client closed the request');
      },
    );
    const run = slot.then(async () => {
      const m = this.model;
      if (!m) throw new HttpError(503, 'the model is still loading');
      this.metrics.active++;
      const stallMs = this.opts.stallMs ?? 60_000;
      const w: Watch = { last: Date.now(), queued };
      let timer: NodeJS.Timeout | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setInterval(() => {
          if (Date.now() - (w.inModel ? Math.max(w.last, m.batching.lastPassAt) : w.last) < stallMs) return;
          this.metrics.stalled++;
          void w.cancel?.();
          reject(new HttpError(500, `the generation made no progress for ${stallMs / 1000} s and was stopped`, null, 'generation_stalled'));
        }, Math.min(1000, stallMs / 4));
      });
      try {
        return await Promise.race([f(m, w), stalled]);
      } finally {
        clearInterval(timer);
        this.metrics.active--;
      }
    });
    // the slot is given back however the run ends (not when it was never taken)
    slot.then(
      () => void run.then(() => this.giveSlot(), () => this.giveSlot()),
      () => {},
    );
    return run;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const t0 = performance.now();
    const url = new URL(req.url ?? '/', 'http://x');
    const route = `${req.method} ${url.pathname}`;
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort('client');
    });
    res.setHeader('access-control-allow-origin', this.opts.cors ?? '*');
    if (this.opts.cors && this.opts.cors !== '*') res.setHeader('vary', 'Origin');
    const limit = this.opts.timeoutMs && req.method === 'POST' ? setTimeout(() => ac.abort('timeout'), this.opts.timeoutMs) : undefined;
    let status = 200;
    let finished!: () => void;
    const entry = { ac, done: new Promise<void>((r) => (finished = r)) };
    this.inflight.add(entry);
    try {
      if (this.stopping) throw new HttpError(503, 'the server is shutting down');
      if (this.opts.apiKey !== undefined && route !== 'GET /health' && req.method !== 'OPTIONS' && !keyMatches(req.headers.authorization, this.opts.apiKey))
        throw new HttpError(401, req.headers.authorization ? 'Incorrect API key provided' : 'You didn\'t provide an API key: send it as Authorization: Bearer <key>', null, 'invalid_api_key');
      status = await this.route(route, req, res, ac.signal);
    } catch (e) {
      const err =
        ac.signal.aborted && e === ac.signal.reason
          ? e === 'timeout'
            ? new HttpError(504, `the request took more than its ${this.opts.timeoutMs} ms`, null, 'timeout')
            : new HttpError(499, 'the client went away')
          : e instanceof HttpError
          ? e
          : e instanceof ContextLengthError
            ? new HttpError(400, e.message, 'messages', 'context_length_exceeded')
            : e instanceof RangeError || e instanceof TypeError
              ? new HttpError(400, e.message)
              : (e as Error)?.name === 'TemplateError'
                ? new HttpError(500, (e as Error).message, 'messages', 'chat_template_failed')
              : new HttpError(500, (e as Error)?.message ?? String(e));
      status = err.status;
      if (!res.headersSent) {
        res.writeHead(err.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: err.message, type: err.type, param: err.param, code: err.code } }));
      } else if (!res.writableEnded) {
        // mid-stream: report in the stream, then end it
        res.end(`data: ${JSON.stringify({ error: { message: err.message, type: err.type, param: err.param, code: err.code } })}\n\n`);
      }
    } finally {
      clearTimeout(limit);
      this.inflight.delete(entry);
      finished();
    }
    this.metrics.request(url.pathname, status, (performance.now() - t0) / 1000);
  }

  private async readJson(req: http.IncomingMessage): Promise<Body> {
    // decoded as it arrives, so that a megabyte body is not one long step at its end
    const declared = Number(req.headers['content-length']);
    if (declared > MAX_BODY) {
      req.resume(); // not read into memory: drained and dropped
      throw new HttpError(413, `request body of ${declared} bytes is over the ${MAX_BODY}-byte limit`);
    }
    const dec = new TextDecoder('utf-8', { ignoreBOM: true });
    let text = '';
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
      text += dec.decode(c as Buffer, { stream: true });
    }
    text += dec.decode();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw new HttpError(400, `malformed JSON: ${(e as Error).message}`);
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'the request body must be a JSON object');
    return body as Body;
  }

  private json(res: http.ServerResponse, status: number, body: unknown): number {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
    return status;
  }

  private async route(route: string, req: http.IncomingMessage, res: http.ServerResponse, signal: AbortSignal): Promise<number> {
    if (req.method === 'OPTIONS') {
      // CORS preflight
      res.writeHead(204, {
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'content-type, authorization',
        'access-control-max-age': '86400',
      });
      res.end();
      return 204;
    }
    switch (route) {
      case 'GET /health':
        if (!this.model) return this.json(res, 503, { status: 'loading' });
        // a failed worker crew is being replaced (requests that were running got a 500)
        if (!this.model.healthy) return this.json(res, 503, { status: 'error', reason: 'the worker crew failed and is restarting' });
        return this.json(res, 200, { status: 'ok' });
      case 'GET /metrics':
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(this.metrics.text(this.model));
        return 200;
      case 'GET /props': {
        const m = this.ready();
        return this.json(res, 200, {
          model_path: m.path,
          model_alias: this.modelId,
          total_slots: m.parallel,
          n_ctx: m.ctx * m.parallel,
          n_ctx_per_slot: m.ctx,
          chat_template: m.chatTemplate ?? null,
          build_info: 'phi3-ts',
        });
      }
      case 'GET /slots': {
        const m = this.ready();
        return this.json(res, 200, m.slotStates().map((s) => ({ id: s.id, is_processing: s.busy, n_ctx: m.ctx, n_past: s.cachedTokens })));
      }
      case 'GET /v1/models':
        return this.json(res, 200, { object: 'list', data: [{ id: this.modelId, object: 'model', created: 0, owned_by: 'phi3-ts' }] });
      case 'POST /tokenize': {
        const b = await this.readJson(req);
        if (typeof b.content !== 'string') throw new HttpError(400, "'content' must be a string", 'content');
        const m = this.ready();
        const tokens = await m.tokenizeAsync(b.content, { addBos: b.add_special === true, special: b.parse_special !== false, signal });
        res.writeHead(200, { 'content-type': 'application/json' });
        // a megabyte's tokens are written a slice at a time, with the event loop's turns between
        for (let i = 0; i < tokens.length || i === 0; i += 65536) {
          if (i > 0) await yieldToEventLoop();
          res.write((i === 0 ? '{"tokens":[' : ',') + tokens.slice(i, i + 65536).join(','));
        }
        res.end(']}');
        return 200;
      }
      case 'POST /detokenize': {
        const b = await this.readJson(req);
        if (!Array.isArray(b.tokens) || !b.tokens.every((t) => Number.isInteger(t))) throw new HttpError(400, "'tokens' must be an array of integers", 'tokens');
        return this.json(res, 200, { content: this.ready().detokenize(b.tokens as number[]) });
      }
      case 'POST /v1/chat/completions':
      case 'POST /v1/completions': {
        const b = await this.readJson(req);
        const chat = route.endsWith('chat/completions');
        checkParams(b, chat ? CHAT_PARAMS : COMPLETION_PARAMS);
        const opts = samplingOptions(b);
        const logprobs = chat ? b.logprobs === true : typeof b.logprobs === 'number';
        const topLogprobs = chat ? (num(b, 'top_logprobs', { min: 0, max: 20, int: true }) ?? 0) : ((b.logprobs as number | undefined) ?? 0);
        if (!chat && typeof b.logprobs === 'number' && (b.logprobs < 0 || b.logprobs > 20)) throw new HttpError(400, "'logprobs' must be 0..20", 'logprobs');
        let prompt: string | number[];
        const m0 = this.ready();
        if (chat) {
          const msgs = await this.images(messagesOf(b), signal);
          const maxMessages = this.opts.maxMessages ?? 1024;
          if (msgs.length > maxMessages) throw new HttpError(400, `${msgs.length} messages are more than this server's limit of ${maxMessages}`, 'messages', 'too_many_messages');
          if (b.parallel_tool_calls !== undefined && typeof b.parallel_tool_calls !== 'boolean') throw new HttpError(400, "'parallel_tool_calls' must be a boolean", 'parallel_tool_calls');
          let p: ReturnType<Model['prepareChat']>;
          try {
            p = await m0.prepareChatAsync(msgs, { ...opts, tools: b.tools as FunctionTool[] | undefined, toolChoice: b.tool_choice as ToolChoice | undefined, parallelToolCalls: b.parallel_tool_calls as boolean | undefined });
          } catch (e) {
            if (e instanceof ImageError) throw new HttpError(400, e.message, 'messages', 'invalid_image');
            if (!(e instanceof TypeError || e instanceof ToolsUnsupportedError)) throw e;
            const param = /^messages/.test(e.message) ? 'messages' : /tool_choice/.test(e.message) ? 'tool_choice' : 'tools';
            throw new HttpError(400, e.message, param, e instanceof ToolsUnsupportedError ? 'tools_unsupported' : undefined);
          }
          Object.assign(opts, p.gen);
          prompt = await m0.chatTokensLimited(p.messages, { parseSpecialInContent: this.opts.parseSpecialContent, signal, tools: p.tools });
        }
        else {
          const p = b.prompt;
          if (typeof p === 'string') prompt = p;
          else if (Array.isArray(p) && p.length > 0 && p.every((t) => Number.isInteger(t))) prompt = p as number[];
          else if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') prompt = p[0];
          else throw new HttpError(400, "'prompt' must be a string or an array of token ids", 'prompt');
        }
        const ids = typeof prompt === 'string' ? await m0.tokenizeAsync(prompt, { special: true, signal }) : prompt;
        const maxPrompt = this.opts.maxPromptTokens;
        if (maxPrompt !== undefined && ids.length > maxPrompt)
          throw new HttpError(400, `the prompt has ${ids.length} tokens, more than this server's limit of ${maxPrompt}`, chat ? 'messages' : 'prompt', 'prompt_too_long');
        const want = ids.length + (opts.maxTokens ?? 1);
        if (want > m0.ctx)
          throw new HttpError(400, `this model's context holds ${m0.ctx} tokens, but the prompt (${ids.length} tokens) plus ${opts.maxTokens ? `max_tokens (${opts.maxTokens})` : 'one generated token'} needs ${want}`, chat ? 'messages' : 'prompt', 'context_length_exceeded');
        const stream = b.stream === true;
        const includeUsage = stream && (b.stream_options as Body | undefined)?.include_usage === true;
        return this.inSlot(signal, (m, w) => this.complete(m, res, w, { chat, ids, opts: { ...opts, signal, topLogprobs: logprobs ? topLogprobs : undefined }, stream, includeUsage }));
      }
      default:
        if (['/health', '/metrics', '/v1/models', '/tokenize', '/detokenize', '/v1/chat/completions', '/v1/completions'].includes(route.split(' ')[1]!))
          throw new HttpError(405, `method ${req.method} is not allowed here`);
        throw new HttpError(404, `no route ${route}`);
    }
  }

  /** a request's images: counted, sized, and http(s) ones fetched when allowed (with the request's signal and a size cap) */
  private async images(msgs: WireMessage[], signal: AbortSignal): Promise<ChatInput[]> {
    const parts = msgs.flatMap((m) => (Array.isArray(m.content) ? m.content : [])).filter((p) => p.type !== 'text');
    const max = this.opts.maxImages ?? 8;
    if (parts.length > max) throw new HttpError(400, `${parts.length} images are more than this server's limit of ${max} a request`, 'messages', 'too_many_images');
    if (parts.length && !this.ready().vision) throw new HttpError(400, `this model (${this.modelId}) takes no images: it has no vision tower (serve Phi-3.5-vision-instruct's folder)`, 'messages', 'images_unsupported');
    const fetchOne = async (u: ImageUrlPart): Promise<Uint8Array> => {
      if (!this.opts.allowImageUrls) throw new HttpError(400, `${u.at}: image URLs are not fetched by this server: send the image as a data: URI (or start it with --allow-image-urls)`, 'messages', 'image_urls_disabled');
      let r: Response;
      try {
        r = await fetch(u.url, { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]), redirect: 'follow' });
      } catch (e) {
        throw new HttpError(400, `${u.at}: ${u.url} could not be fetched: ${(e as Error).message}`, 'messages', 'invalid_image');
      }
      if (!r.ok) throw new HttpError(400, `${u.at}: ${u.url} answered ${r.status}`, 'messages', 'invalid_image');
      const declared = Number(r.headers.get('content-length'));
      if (declared > MAX_BODY) throw new HttpError(400, `${u.at}: ${u.url} is ${declared} bytes, over the ${MAX_BODY}-byte limit`, 'messages', 'invalid_image');
      const buf = new Uint8Array(await r.arrayBuffer());
      if (buf.length > MAX_BODY) throw new HttpError(400, `${u.at}: ${u.url} is over the ${MAX_BODY}-byte limit`, 'messages', 'invalid_image');
      return buf;
    };
    return Promise.all(
      msgs.map(async (m): Promise<ChatInput> => {
        if (!Array.isArray(m.content)) return { ...m, content: m.content };
        const content = await Promise.all(m.content.map(async (p): Promise<ChatContentPart> => (p.type === 'image_url' ? { type: 'image', image: await fetchOne(p) } : p)));
        return { ...m, content };
      }),
    );
  }

  private ready(): Model {
    if (!this.model) throw new HttpError(503, 'the model is still loading');
    return this.model;
  }

  private async complete(
    m: Model,
    res: http.ServerResponse,
    w: Watch,
    o: { chat: boolean; ids: number[]; opts: GenerateOptions; stream: boolean; includeUsage: boolean },
  ): Promise<number> {
    const id = (o.chat ? 'chatcmpl-' : 'cmpl-') + randomUUID();
    const created = Math.floor(Date.now() / 1000);
    const object = o.chat ? (o.stream ? 'chat.completion.chunk' : 'chat.completion') : 'text_completion';
    const piece = (c: GeneratedChunk) => m.tokenizer.decode([c.token], { special: true });
    const lpChat = (c: GeneratedChunk) => ({
      token: piece(c),
      logprob: c.logprob!,
      bytes: [...Buffer.from(piece(c))],
      top_logprobs: (c.topLogprobs ?? []).map((t) => ({ token: m.tokenizer.decode([t.token], { special: true }), logprob: t.logprob, bytes: [...Buffer.from(m.tokenizer.decode([t.token], { special: true }))] })),
    });
    const it = m.stream(o.ids, o.opts);
    const calls = new ToolCallStream();
    w.cancel = () => it.return(undefined as never).catch(() => {});
    let lastToken: number | undefined;
    const tokenTime = () => {
      const now = performance.now();
      if (lastToken === undefined) this.metrics.ttft.observe((now - w.queued) / 1000);
      else this.metrics.itl.observe((now - lastToken) / 1000);
      lastToken = now;
    };
    if (o.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }); // keep-alive as the client asks (node:http)
      // after each event, let the event loop run (so a hang-up is seen within one token) and
      // respect back-pressure from slow clients. Every path settles: a socket that is already gone
      // is not written (its 'close' has fired, and will not fire again); one that goes while we
      // wait for 'drain' ends the wait by 'close' or 'error'.
      const send = async (x: unknown) => {
        if (res.destroyed || res.writableEnded) return;
        if (!res.write(`data: ${JSON.stringify(x)}\n\n`) && !res.destroyed)
          await new Promise<void>((r) => {
            const done = () => {
              res.off('drain', done).off('close', done).off('error', done);
              r();
            };
            res.on('drain', done).on('close', done).on('error', done);
          });
        w.last = Date.now();
        await yieldToEventLoop();
      };
      const signal = o.opts.signal!;
      const clientGone = () => signal.aborted && signal.reason === 'client';
      if (o.chat) await send({ id, object, created, model: this.modelId, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] });
      let stats: GenerationStats;
      for (;;) {
        w.inModel = true;
        const r = await it.next();
        w.inModel = false;
        w.last = Date.now();
        if (r.done) {
          stats = r.value;
          break;
        }
        const c = r.value;
        if (c.token >= 0) this.metrics.generatedTokens++, tokenTime();
        if (c.toolCall) {
          // a call's name once it is complete, then its arguments as they come (OpenAI's tool_calls deltas)
          for (const d of calls.push(c.text))
            await send({ id, object, created, model: this.modelId, choices: [{ index: 0, delta: { tool_calls: ['id' in d ? { index: d.index, id: d.id, type: 'function', function: { name: d.name, arguments: '' } } : { index: d.index, function: { arguments: d.arguments } }] }, logprobs: null, finish_reason: null }] });
          continue;
        }
        if (!c.text && c.logprob === undefined) continue;
        const lp = c.logprob !== undefined && c.token >= 0 ? c : undefined;
        if (o.chat) await send({ id, object, created, model: this.modelId, choices: [{ index: 0, delta: { content: c.text }, logprobs: lp ? { content: [lpChat(lp)] } : null, finish_reason: null }] });
        else
          await send({
            id, object, created, model: this.modelId,
            choices: [{ index: 0, text: c.text, logprobs: lp ? { tokens: [piece(lp)], token_logprobs: [lp.logprob], top_logprobs: [Object.fromEntries((lp.topLogprobs ?? []).map((t) => [m.tokenizer.decode([t.token], { special: true }), t.logprob]))], text_offset: [0] } : null, finish_reason: null }],
          });
      }
      this.metrics.promptTokens += stats.promptTokens;
      if (clientGone()) {
        this.metrics.aborted++;
        res.end();
        return 499;
      }
      // ended by shutdown: a clean end, cut short (as by a length limit)
      const finish = finishOf(stats);
      if (o.chat) await send({ id, object, created, model: this.modelId, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: finish }] });
      else await send({ id, object, created, model: this.modelId, choices: [{ index: 0, text: '', logprobs: null, finish_reason: finish }] });
      if (o.includeUsage) await send({ id, object, created, model: this.modelId, choices: [], usage: usage(stats) });
      res.end('data: [DONE]\n\n');
      return 200;
    }
    let text = '';
    const chunks: GeneratedChunk[] = [];
    let stats: GenerationStats;
    for (;;) {
      w.inModel = true;
      const r = await it.next();
      w.inModel = false;
      w.last = Date.now();
      if (r.done) {
        stats = r.value;
        break;
      }
      if (r.value.toolCall) calls.push(r.value.text);
      else text += r.value.text;
      if (r.value.token >= 0) {
        this.metrics.generatedTokens++;
        tokenTime();
        if (r.value.logprob !== undefined && !r.value.toolCall) chunks.push(r.value);
      }
    }
    this.metrics.promptTokens += stats.promptTokens;
    if (o.opts.signal?.aborted && o.opts.signal.reason === 'client') {
      this.metrics.aborted++;
      return 499;
    }
    const finish = finishOf(stats);
    const called = calls.calls.length > 0;
    if (o.chat)
      return this.json(res, 200, {
        id, object, created, model: this.modelId,
        choices: [{ index: 0, message: { role: 'assistant', content: called && !text ? null : text, ...(called ? { tool_calls: calls.calls } : {}) }, logprobs: o.opts.topLogprobs !== undefined ? { content: chunks.map(lpChat) } : null, finish_reason: finish }],
        usage: usage(stats),
      });
    return this.json(res, 200, {
      id, object, created, model: this.modelId,
      choices: [{
        index: 0, text, finish_reason: finish,
        logprobs: o.opts.topLogprobs !== undefined
          ? { tokens: chunks.map(piece), token_logprobs: chunks.map((c) => c.logprob), top_logprobs: chunks.map((c) => Object.fromEntries((c.topLogprobs ?? []).map((t) => [m.tokenizer.decode([t.token], { special: true }), t.logprob]))), text_offset: offsets(chunks.map(piece)) }
          : null,
      }],
      usage: usage(stats),
    });
  }
}

/** OpenAI's finish_reason: stop, tool_calls, or length (also for a generation ended early by shutdown) */
function finishOf(s: GenerationStats): 'stop' | 'length' | 'tool_calls' {
  return s.finishReason === 'stop' || s.finishReason === 'tool_calls' ? s.finishReason : 'length';
}

function usage(s: GenerationStats) {
  return { prompt_tokens: s.promptTokens, completion_tokens: s.generatedTokens, total_tokens: s.promptTokens + s.generatedTokens };
}

function offsets(pieces: string[]): number[] {
  let o = 0;
  return pieces.map((p) => {
    const at = o;
    o += p.length;
    return at;
  });
}
