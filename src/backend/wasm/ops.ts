/**
 * The WASM backend: weights read from the GGUF straight into shared WebAssembly memories ("banks",
 * each ≤ 4 GiB, the wasm32 ceiling), SIMD kernels, and a worker crew splitting each matmul by rows
 * and attention by heads. Same Ops interface and signatures as the reference backend.
 *
 * Bank 0 holds activations, the f16 KV cache and the first weights; weights that do not fit go to
 * banks 1, 2, … A matmul whose weight lives in another bank gets its (small, quantized) activation
 * row copied into that bank's staging area and its output copied back.
 * Every supported weight type has a kernel; a type without one would run the reference matmul
 * over views of the same memory (correct, slower).
 * Platform-free: where the kernels come from, how the crew starts and how files are read by
 * descriptor is a WasmHost (node-host.ts for Node, src/browser/host.ts for a browser).
 */
import type { GGUFFile } from '../../gguf/reader.js';
import { GgufError } from '../../gguf/types.js';
import type { GGUFTensorInfo } from '../../gguf/types.js';
import { GGML_TYPES, GGMLType, vecDotType } from '../../quant/ggml-type.js';
import { dequantizeRow } from '../../quant/dequantize.js';
import type { AttnShape, KvCache, Ops, Weight } from '../ops.js';
import { matmulRef, ropeCacheRef } from '../ref/ops.js';
import { instantiate, KERNEL_SCRATCH_BYTES, Q4_0X4_MAX_COLS, KERNEL_STATIC_BYTES, type KernelChoice, type Kernels, type SimdLevel } from './kernels.js';
import type { Crew } from './crew.js';
import { Op, runShare, type ReadFd } from './share.js';
import { Layout, blocks4Row, q4_0x4Row } from './layout.js';

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB
const ALIGN = 64;

export interface WasmBuf {
  ptr: number; // byte address in bank 0
  n: number; // f32 elements
}

interface WasmWeight extends Weight {
  bank: number;
  ptr: number;
  rowBytes: number;
  byteSize: number;
  /** how the rows are stored (layout.ts): matrices of the quantized types and rows % 4 == 0 interleaved in fours */
  layout: Layout;
  /** Q4_0X4: how many block scales are subnormal halves (the kernel converts faster without) */
  subnormalScales: number;
}

/** where an allocation of `bytes` ends in a bank whose top is `top` (ALIGN-aligned start) */
const allocEnd = (top: number, bytes: number) => Math.ceil(top / ALIGN) * ALIGN + bytes;

class Bank {
  readonly memory: WebAssembly.Memory;
  readonly k: Kernels;
  top = KERNEL_STATIC_BYTES; // page 0 is the kernels' static data
  /** staging for activations of matmuls whose weight lives here (banks ≥ 1) */
  staging = 0;
  /** per-thread kernel scratch (KERNEL_SCRATCH_BYTES each) */
  scratch = 0;
  constructor(
    module: WebAssembly.Module,
    initialBytes: number,
    readonly capacity = MAX_PAGES * PAGE,
  ) {
    this.memory = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil(initialBytes / PAGE)), maximum: MAX_PAGES, shared: true });
    this.k = instantiate(module, this.memory);
  }
  /** bump-allocate `bytes`, growing the memory as needed; undefined if the bank is full */
  alloc(bytes: number): number | undefined {
    const end = allocEnd(this.top, bytes);
    const ptr = end - bytes;
    if (end > this.capacity) return undefined;
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.top = end;
    return ptr;
  }
  /** make [0, end) addressable without allocating it (false if the bank cannot hold it) */
  reach(end: number): boolean {
    if (end > this.capacity) return false;
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    return true;
  }
  u8(ptr: number, n: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, n);
  }
  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, n);
  }
  f64(ptr: number, n: number): Float64Array {
    return new Float64Array(this.memory.buffer, ptr, n);
  }
}

class WasmKvCache implements KvCache {
  constructor(
    readonly nLayers: number,
    readonly ctx: number,
    readonly kvDim: number,
    readonly k: number[], // per layer: [nKvHeads, ctx, headDim] f16 or f32 (head-major: see kv_store)
    readonly v: number[],
    /** per layer: 1 once kv_store has stored an Inf/NaN half there (attention then converts exactly) */
    readonly special: number[] = k.map(() => 0),
    readonly type: KvType = 'f16',
  ) {}
}

export interface WasmPlan {
  /** bytes bank 0 must keep for activations, KV cache, scratch and 1-D weights */
  reserveBytes: number;
  /** largest matmul input (cols) and output (rows) and batch, for per-bank staging */
  maxCols: number;
  maxRows: number;
  maxT: number;
  threads: number;
  /** bytes per bank (default and maximum 4 GiB); smaller in tests to exercise several banks */
  bankBytes?: number;
  /** kernel build: 'auto' (relaxed SIMD when available and self-tested), or forced */
  simd?: SimdLevel | 'auto';
  /** KV cache element type (llama.cpp's -ctk/-ctv): f16 (default, as llama.cpp), f32 or q8_0 */
  kvType?: KvType;
}

/** what the backend needs of its platform */
export interface WasmHost {
  /** the kernel build to run ('auto': relaxed SIMD where the engine has it and it self-tests) */
  kernels(prefer: SimdLevel | 'auto'): KernelChoice;
  /** start `nThreads − 1` workers over the memories (the caller is thread 0) */
  crew(nThreads: number, memories: WebAssembly.Memory[], module: WebAssembly.Module): Crew;
  /** positional reads of a file descriptor for the crew's loads (Op.LOAD); absent where sources have none */
  readFd?: ReadFd;
}

export type KvType = 'f16' | 'f32' | 'q8_0';
export const KV_TYPES: readonly KvType[] = ['f16', 'f32', 'q8_0'];
/** bytes per cached value: q8_0 keeps 32 values in 34 bytes (an f16 scale and 32 i8) */
export const kvTypeBytes = (t: KvType = 'f16') => (t === 'f32' ? 4 : t === 'q8_0' ? 34 / 32 : 2);
const KV_CODE: Record<KvType, number> = { f16: 0, f32: 1, q8_0: 2 };

export class WasmOps implements Ops<WasmBuf> {
  readonly name = 'wasm';
  private readonly module: WebAssembly.Module;
  /** the kernel build in use */
  readonly simd: SimdLevel;
  /** Q4_0X4 matmuls dot by relaxed i32 dot-add (faster where the engine lowers it to one instruction) */
  readonly dotAdd: boolean;
  private readonly banks: Bank[] = [];
  private crewInstance: Crew | undefined;
  private readonly stagingBytes: number;
  private readonly scratchBytes: number;
  private readonly bankBytes: number;
  /** bank-0 scratch */
  private readonly xq: number; // i8 [maxT · maxCols]
  private readonly xd: number; // f32 [maxT · maxCols / 32]
  private readonly xbs: number; // Q8_K bsums i16 [maxT · maxCols / 16], or Q8_0 block sums i32 [maxT · maxCols / 32]
  private readonly xh: number; // f32 [maxT · maxCols] (f16-rounded activations)
  private readonly ropeCos: number;
  private readonly ropeSin: number;
  private readonly loadResults: number; // f64 [threads · 2]: Op.LOAD's bytes read and subnormal scales per thread
  private att = 0; // f32 [threads · ctx] attention scores
  private attStride = 0;
  private readonly reserveEnd: number;
  private reserveTop: number;

  constructor(
    readonly plan: WasmPlan,
    private readonly host: WasmHost,
  ) {
    const { maxCols, maxRows, maxT } = plan;
    const k = host.kernels(plan.simd ?? 'auto');
    this.module = k.module;
    this.simd = k.level;
    this.dotAdd = k.dotAdd;
    // per-bank staging: qs + d + bsums + f16-rounded x + output
    this.stagingBytes = maxT * maxCols + maxT * (maxCols / 32) * 4 + maxT * (maxCols / 16) * 2 + maxT * maxCols * 4 + maxT * maxRows * 4 + 5 * ALIGN;
    this.bankBytes = Math.min(plan.bankBytes ?? MAX_PAGES * PAGE, MAX_PAGES * PAGE);
    this.scratchBytes = plan.threads * KERNEL_SCRATCH_BYTES;
    const need = plan.reserveBytes + this.stagingBytes + this.scratchBytes;
    const b0 = new Bank(this.module, KERNEL_STATIC_BYTES + need, Math.max(this.bankBytes, KERNEL_STATIC_BYTES + need + ALIGN));
    this.banks.push(b0);
    const start = b0.alloc(need);
    if (start === undefined) throw new RangeError(`activations and KV cache need ${need} bytes, more than one 4 GiB WASM memory`);
    this.reserveTop = start;
    this.reserveEnd = start + need;
    b0.scratch = this.reserve(this.scratchBytes);
    this.xq = this.reserve(maxT * maxCols);
    this.xd = this.reserve(maxT * (maxCols / 32) * 4);
    this.xbs = this.reserve(maxT * (maxCols / 16) * 2);
    this.xh = this.reserve(maxT * maxCols * 4);
    this.ropeCos = this.reserve(maxT * 512 * 4);
    this.ropeSin = this.reserve(maxT * 512 * 4);
    this.loadResults = this.reserve(plan.threads * 16);
  }

  /**
   * Start the worker crew over the banks there are. Call it before loading the weights (the crew
   * then reads them with the main thread) and again after (a no-op unless the weights needed more
   * banks: the crew is restarted over all of them).
   */
  async start(): Promise<void> {
    if (this.crewInstance && this.crewBanks === this.banks.length) return;
    await this.crewInstance?.close();
    this.crewInstance = this.host.crew(this.plan.threads, this.banks.map((b) => b.memory), this.module);
    this.crewBanks = this.banks.length;
    await this.crewInstance.ready();
  }

  private get crew(): Crew {
    if (!this.crewInstance || this.crewBanks !== this.banks.length) throw new Error('WasmOps: call start() after loading the weights and before running ops');
    return this.crewInstance;
  }
  private crewBanks = 0;
  /** weight bytes the crew has read (Op.LOAD) — the rest were read by the main thread alone */
  crewReadBytes = 0;

  get threads(): number {
    return this.plan.threads;
  }

  /** memories of all banks (bank 0 first) */
  get memories(): WebAssembly.Memory[] {
    return this.banks.map((b) => b.memory);
  }

  private reserve(bytes: number): number {
    const ptr = Math.ceil(this.reserveTop / ALIGN) * ALIGN;
    if (ptr + bytes > this.reserveEnd) throw new RangeError(`bank 0 reserve exhausted (${bytes} more bytes needed)`);
    this.reserveTop = ptr + bytes;
    return ptr;
  }

  alloc(n: number): WasmBuf {
    const ptr = this.reserve(n * 4);
    this.banks[0]!.u8(ptr, n * 4).fill(0);
    return { ptr, n };
  }
  read(b: WasmBuf, offset: number, n: number): Float32Array {
    return this.banks[0]!.f32(b.ptr + offset * 4, n).slice();
  }
  copy(dst: WasmBuf, dstOff: number, src: WasmBuf, srcOff: number, n: number): void {
    const u = new Uint8Array(this.banks[0]!.memory.buffer);
    u.copyWithin(dst.ptr + dstOff * 4, src.ptr + srcOff * 4, src.ptr + (srcOff + n) * 4);
  }
  write(b: WasmBuf, offset: number, data: Float32Array): void {
    this.banks[0]!.f32(b.ptr + offset * 4, data.length).set(data);
  }
  view(b: WasmBuf, offset: number): WasmBuf {
    return { ptr: b.ptr + offset * 4, n: b.n - offset };
  }

  /** a new bank whose first tensor takes `firstBytes`, with its own staging area for cross-bank matmuls */
  private addBank(firstBytes: number): Bank {
    const size = KERNEL_STATIC_BYTES + firstBytes + this.stagingBytes + this.scratchBytes + 3 * ALIGN;
    const b = new Bank(this.module, KERNEL_STATIC_BYTES + this.stagingBytes + this.scratchBytes + 2 * ALIGN, Math.max(this.bankBytes, size));
    b.staging = b.alloc(this.stagingBytes)!;
    b.scratch = b.alloc(this.scratchBytes)!;
    this.banks.push(b);
    return b;
  }

  /**
   * Open, before the crew starts, the banks that these tensors will need (first fit in this order,
   * as loadWeight places them), so that the crew's workers have every bank's memory and read every
   * tensor with the main thread. Without it, a tensor that does not fit in the banks there are opens
   * a new one as it loads, and is read by the main thread alone.
   */
  planBanks(tensors: readonly GGUFTensorInfo[]): void {
    const tops = this.banks.map((b) => b.top);
    for (const t of tensors) {
      if (t.shape.length === 1) continue; // bank 0's reserve
      let i = tops.findIndex((top, j) => allocEnd(top, t.byteSize) <= this.banks[j]!.capacity);
      if (i < 0) i = tops.push(this.addBank(t.byteSize).top) - 1;
      tops[i] = allocEnd(tops[i]!, t.byteSize);
    }
  }

  loadWeight(file: GGUFFile, t: GGUFTensorInfo): WasmWeight {
    const info = GGML_TYPES.get(t.type)!;
    const cols = t.shape[0]!;
    const rows = t.nElements / cols;
    // 1-D tensors (norm weights) live in bank 0's reserve, beside the activations that use them;
    // the others in the first bank with room (planBanks opened them), else a new one
    let bank = 0;
    let ptr: number | undefined = t.shape.length === 1 ? this.reserve(t.byteSize) : this.banks[0]!.alloc(t.byteSize);
    while (ptr === undefined && ++bank < this.banks.length) ptr = this.banks[bank]!.alloc(t.byteSize);
    if (ptr === undefined) {
      ptr = this.addBank(t.byteSize).alloc(t.byteSize);
      if (ptr === undefined) throw new RangeError(`tensor ${t.name} (${t.byteSize} bytes) does not fit in a 4 GiB WASM memory`);
    }
    const b = this.banks[bank]!;
    const rowBytes = (cols / info.blockSize) * info.typeSize;
    const matrix4 = t.shape.length === 2 && rows % 4 === 0;
    const layout = !matrix4 ? Layout.ROWS : t.type === GGMLType.Q4_0 ? (cols <= Q4_0X4_MAX_COLS ? Layout.Q4_0X4 : Layout.ROWS) : BLOCKS4_TYPES.has(t.type) ? Layout.BLOCKS4 : Layout.ROWS;
    let subnormalScales = 0;
    const where = file.fileRange(t);
    // the staging the crew reads through, split between the threads: bank 0's f16-rounded
    // activations (xh), another bank's own staging area (the reorder stays within one memory)
    const [staging, stagingBytes] = bank === 0 ? [this.xh, this.plan.maxT * this.plan.maxCols * 4] : [b.staging, this.stagingBytes];
    const stagingPerThread = Math.floor(stagingBytes / this.plan.threads / ALIGN) * ALIGN;
    if (this.crewInstance && this.crewBanks > bank && this.host.readFd && where && (layout === Layout.ROWS || stagingPerThread >= 4 * rowBytes)) {
      // the crew reads it (share.ts, Op.LOAD): the copy and the page faults on every core
      const args = [Op.LOAD, bank, where.fd, where.position, ptr, rows, rowBytes, cols, layout, info.typeSize, staging, stagingPerThread, this.loadResults];
      const b0 = this.banks[0]!;
      b0.f64(this.loadResults, 2 * this.plan.threads).fill(0);
      this.crewInstance.run(args, (i, n) => runShare(this.banks.map((x) => x.k), args, i, n, this.host.readFd), false);
      const res = b0.f64(this.loadResults, 2 * this.plan.threads);
      let got = 0;
      for (let i = 0; i < this.plan.threads; i++) (got += res[2 * i]!), (subnormalScales += res[2 * i + 1]!);
      this.crewReadBytes += got;
      if (got !== t.byteSize) throw new GgufError(`short read: got ${got} of ${t.byteSize} bytes`, where.position, { file: file.path, tensor: t.name });
    } else if (layout === Layout.ROWS) file.readTensorInto(t, b.u8(ptr, t.byteSize));
    else {
      // Read in large pieces (small reads defeat the kernel's readahead when the file is not cached)
      // displaced by one chunk of rows — into [ptr + shift, ptr + byteSize + shift), the tail past the
      // tensor being bank space not yet allocated — then reorder chunk by chunk into place, each
      // chunk's destination covering only source rows already consumed.
      const chunk = 64;
      const shift = chunk * rowBytes;
      const piece = Math.max(chunk, Math.floor((64 << 20) / rowBytes / chunk) * chunk); // rows per read, ≈ 64 MiB
      const displaced = b.reach(ptr + t.byteSize + shift);
      const tmp = bank === 0 ? this.xh : b.staging; // otherwise: chunk by chunk through staging
      for (let p = 0; p < rows; p += piece) {
        const np = Math.min(piece, rows - p);
        file.readTensorRange(t, p * rowBytes, b.u8(ptr + (displaced ? shift : 0) + p * rowBytes, np * rowBytes));
        for (let r = p; r < p + np; r += chunk) {
          const n = Math.min(chunk, p + np - r);
          let src = ptr + shift + r * rowBytes;
          if (!displaced) b.u8(0, b.memory.buffer.byteLength).copyWithin((src = tmp), ptr + r * rowBytes, ptr + (r + n) * rowBytes);
          if (layout === Layout.Q4_0X4) subnormalScales += b.k.repack_q4_0x4(ptr + r * rowBytes, src, n, cols);
          else b.k.interleave_blocks4(ptr + r * rowBytes, src, n, rowBytes, info.typeSize);
        }
      }
    }
    return { name: t.name, type: t.type as GGMLType, rows, cols, bank, ptr, rowBytes, byteSize: t.byteSize, layout, subnormalScales };
  }

  kvCache(nLayers: number, ctx: number, kvDim: number): KvCache {
    const k: number[] = [], v: number[] = [];
    const e = kvTypeBytes(this.plan.kvType);
    for (let l = 0; l < nLayers; l++) {
      k.push(this.reserve(ctx * kvDim * e));
      v.push(this.reserve(ctx * kvDim * e));
    }
    this.attStride = ctx * 4;
    this.att = this.reserve(this.plan.threads * this.attStride);
    return new WasmKvCache(nLayers, ctx, kvDim, k, v, undefined, this.plan.kvType ?? 'f16');
  }

  embed(out: WasmBuf, embd: Weight, tokens: ArrayLike<number>): void {
    const w = embd as WasmWeight;
    const src = this.banks[w.bank]!.u8(w.ptr, w.byteSize);
    const dst = this.banks[0]!.f32(out.ptr, tokens.length * w.cols);
    for (let t = 0; t < tokens.length; t++) {
      const r = tokens[t]!;
      if (w.layout === Layout.Q4_0X4) dequantizeRow(w.type, q4_0x4Row(src, r, w.cols), 0, dst, t * w.cols, w.cols);
      else if (w.layout === Layout.BLOCKS4) dequantizeRow(w.type, blocks4Row(src, r, w.rowBytes, GGML_TYPES.get(w.type)!.typeSize), 0, dst, t * w.cols, w.cols);
      else dequantizeRow(w.type, src, tokens[t]! * w.rowBytes, dst, t * w.cols, w.cols);
    }
  }

  rmsnorm(out: WasmBuf, x: WasmBuf, w: Weight, T: number, eps: number): void {
    const ww = w as WasmWeight;
    if (ww.bank !== 0 || ww.type !== GGMLType.F32) throw new Error(`rmsnorm: ${w.name} must be F32 in bank 0`);
    this.banks[0]!.k.rmsnorm(out.ptr, x.ptr, ww.ptr, T, w.cols, eps);
  }

  matmul(out: WasmBuf, W: Weight, x: WasmBuf, T: number): void {
    const w = W as WasmWeight;
    const { cols, rows } = w;
    const b0 = this.banks[0]!;
    const bank = this.banks[w.bank]!;
    const op = w.layout === Layout.Q4_0X4 ? Op.MATMUL_Q4_0X4 : KERNEL_OP[w.type];
    if (op === undefined) {
      // no kernel for this type: the reference matmul over views of the same memory
      const ref = { ...w, bytes: bank.u8(w.ptr, w.byteSize) };
      matmulRef(b0.f32(out.ptr, T * rows), ref, b0.f32(x.ptr, T * cols), T);
      return;
    }
    // 1. the activation row(s), converted once to the weight's vec_dot_type, in bank 0
    const kq = vecDotType(w.type) === GGMLType.Q8_K;
    const withBsums = w.type === GGMLType.Q4_0 || kq;
    let inPtr = x.ptr;
    const floatIn = w.type === GGMLType.F32 || w.type === GGMLType.F16 || w.type === GGMLType.BF16;
    if (w.type === GGMLType.F16) b0.k.round_f16_row(this.xh, x.ptr, T * cols), (inPtr = this.xh);
    else if (w.type === GGMLType.BF16) b0.k.round_bf16_row(this.xh, x.ptr, T * cols), (inPtr = this.xh);
    else if (kq) for (let t = 0; t < T; t++) b0.k.quantize_q8_K(this.xq + t * cols, this.xd + (t * cols) / 64, this.xbs + (t * cols) / 8, x.ptr + t * cols * 4, cols);
    else if (w.type !== GGMLType.F32) for (let t = 0; t < T; t++) b0.k.quantize_q8_0(this.xq + t * cols, this.xd + (t * cols) / 8, this.xbs + (t * cols) / 8, x.ptr + t * cols * 4, cols);
    // 2. another bank: copy the converted input there, compute into its staging, copy back
    let qs = this.xq, d = this.xd, bs = this.xbs, outPtr = out.ptr;
    if (w.bank !== 0) {
      const s = bank.staging;
      const sizes = { qs: T * cols, d: (T * cols) / (kq ? 64 : 8), bs: (T * cols) / 8, x: T * cols * 4 };
      qs = s;
      d = align(qs + sizes.qs);
      bs = align(d + sizes.d);
      const xs = align(bs + sizes.bs);
      outPtr = align(xs + sizes.x);
      const src = new Uint8Array(b0.memory.buffer), dst = new Uint8Array(bank.memory.buffer);
      if (floatIn) {
        dst.set(src.subarray(inPtr, inPtr + sizes.x), xs);
        inPtr = xs;
      } else {
        dst.set(src.subarray(this.xq, this.xq + sizes.qs), qs);
        dst.set(src.subarray(this.xd, this.xd + sizes.d), d);
        if (withBsums) dst.set(src.subarray(this.xbs, this.xbs + sizes.bs), bs);
      }
    }
    const args =
      floatIn
        ? [op, w.bank, outPtr, w.ptr, inPtr, cols, rows, T]
        : withBsums
          ? op === Op.MATMUL_Q4_0X4
            ? [op, w.bank, outPtr, w.ptr, qs, d, bs, cols, rows, T, w.subnormalScales, bank.scratch, this.dotAdd ? 1 : 0]
            : [op, w.bank, outPtr, w.ptr, qs, d, bs, cols, rows, T, bank.scratch, w.layout === Layout.BLOCKS4 ? 1 : 0]
          : [op, w.bank, outPtr, w.ptr, qs, d, cols, rows, T, bank.scratch, w.layout === Layout.BLOCKS4 ? 1 : 0];
    const kernels = this.banks.map((b) => b.k);
    this.crew.run(args, (i, n) => runShare(kernels, args, i, n));
    if (w.bank !== 0) new Uint8Array(b0.memory.buffer).set(new Uint8Array(bank.memory.buffer, outPtr, T * rows * 4), out.ptr);
  }

  rope(qkv: WasmBuf, T: number, pos0: number, s: AttnShape): void {
    const half = s.ropeDim / 2;
    const b0 = this.banks[0]!;
    ropeCacheRef(b0.f32(this.ropeCos, T * half), b0.f32(this.ropeSin, T * half), T, pos0, s);
    b0.k.rope(qkv.ptr, this.ropeCos, this.ropeSin, T, s.qkvDim, s.headDim, s.ropeDim, 0, s.nHeads + s.nKvHeads);
  }

  attention(out: WasmBuf, qkv: WasmBuf, cache: KvCache, l: number, T: number, pos0: number, s: AttnShape): void {
    const c = cache as WasmKvCache;
    const b0 = this.banks[0]!;
    const qDim = s.nHeads * s.headDim;
    if (c.type === 'q8_0' && s.headDim % 32) throw new RangeError(`a q8_0 KV cache needs a head size that is a multiple of 32; this model's is ${s.headDim}`);
    const store = c.type === 'f32' ? b0.k.kv_store_f32 : c.type === 'q8_0' ? b0.k.kv_store_q8_0 : b0.k.kv_store;
    c.special[l]! |= store(c.k[l]!, c.v[l]!, qkv.ptr, T, pos0, qDim, s.nKvHeads, s.headDim, s.qkvDim, c.ctx);
    const args = [Op.ATTENTION, 0, out.ptr, qkv.ptr, c.k[l]!, c.v[l]!, this.att, T, pos0, s.nHeads, s.nKvHeads, s.headDim, s.qkvDim, 1 / Math.sqrt(s.headDim), this.attStride, c.ctx, s.window, c.special[l]!, KV_CODE[c.type]];
    const kernels = this.banks.map((b) => b.k);
    this.crew.run(args, (i, n) => runShare(kernels, args, i, n));
  }

  swiglu(out: WasmBuf, gu: WasmBuf, T: number, hiddenDim: number): void {
    const args = [Op.SWIGLU, 0, out.ptr, gu.ptr, T, hiddenDim];
    const kernels = this.banks.map((b) => b.k);
    this.crew.run(args, (i, n) => runShare(kernels, args, i, n));
  }

  add(x: WasmBuf, y: WasmBuf, n: number): void {
    this.banks[0]!.k.add(x.ptr, y.ptr, n);
  }
  addBias(x: WasmBuf, bias: WasmBuf, T: number, n: number): void {
    for (let t = 0; t < T; t++) this.banks[0]!.k.add(x.ptr + t * n * 4, bias.ptr, n);
  }

  dispose(): void {
    this.crewInstance?.close().catch(() => {});
    this.crewInstance = undefined;
  }

  /** the worker crew has failed (see restartCrew) */
  get crewFailed(): boolean {
    return this.crewInstance?.failed ?? false;
  }

  /** tear a failed crew down and start a fresh one over the same memories (the weights stay) */
  async restartCrew(): Promise<void> {
    const old = this.crewInstance;
    this.crewInstance = undefined;
    await old?.close().catch(() => {});
    await this.start();
  }

  /** stop the worker crew and wait for it */
  async close(): Promise<void> {
    await this.crewInstance?.close();
    this.crewInstance = undefined;
  }

  /** bytes held by each bank */
  bankSizes(): number[] {
    return this.banks.map((b) => b.memory.buffer.byteLength);
  }
}

function align(p: number): number {
  return Math.ceil(p / ALIGN) * ALIGN;
}

/** types stored BLOCKS4 (their kernels read either layout) */
const BLOCKS4_TYPES = new Set([GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q8_0, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K]);

const KERNEL_OP: Partial<Record<GGMLType, Op>> = {
  [GGMLType.Q4_0]: Op.MATMUL_Q4_0,
  [GGMLType.Q8_0]: Op.MATMUL_Q8_0,
  [GGMLType.Q4_K]: Op.MATMUL_Q4_K,
  [GGMLType.Q5_K]: Op.MATMUL_Q5_K,
  [GGMLType.Q6_K]: Op.MATMUL_Q6_K,
  [GGMLType.F32]: Op.MATMUL_F32,
  [GGMLType.F16]: Op.MATMUL_F16,
  [GGMLType.BF16]: Op.MATMUL_BF16,
  [GGMLType.Q4_1]: Op.MATMUL_Q4_1,
  [GGMLType.Q5_0]: Op.MATMUL_Q5_0,
  [GGMLType.Q5_1]: Op.MATMUL_Q5_1,
  [GGMLType.Q2_K]: Op.MATMUL_Q2_K,
  [GGMLType.Q3_K]: Op.MATMUL_Q3_K,
};


/** bank-0 reservation and staging sizes for a model (mirrors Phi3's RunState, KV cache, norms) */
export function planFor(
  c: { dim: number; hiddenDim: number; nLayers: number; kvDim: number; vocabSize: number; nExpert: number },
  ctx: number,
  maxT: number,
  threads: number,
  kvType: KvType = 'f16',
): WasmPlan {
  const qkvDim = c.dim + 2 * c.kvDim;
  const runState = 4 * (maxT * (3 * c.dim + qkvDim + 3 * c.hiddenDim + c.vocabSize) + c.dim);
  // phimoe: q|k|v parts, router logits, gathered expert inputs; biases of norms and projections
  const moe = c.nExpert > 0 ? 4 * (maxT * (qkvDim + c.nExpert + c.dim) + c.nLayers * (3 * c.dim + qkvDim) + c.dim + c.vocabSize) : 0;
  const kv = 2 * c.nLayers * ctx * c.kvDim * kvTypeBytes(kvType);
  const att = threads * ctx * 4;
  const norms = (2 * c.nLayers + 1) * c.dim * 4;
  const slack = ALIGN * (8 * c.nLayers + 64);
  return {
    reserveBytes: runState + moe + kv + att + norms + 2 * maxT * 512 * 4 + threads * 16 + slack,
    maxCols: Math.max(c.dim, c.hiddenDim),
    maxRows: Math.max(c.vocabSize, 2 * c.hiddenDim, qkvDim),
    maxT,
    threads,
    kvType,
  };
}
