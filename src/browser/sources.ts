/**
 * GGUF bytes in a browser, as ByteSources for the reader (which reads synchronously: these run in
 * the model's Web Worker, where synchronous reads are allowed). None holds the file in the JS heap:
 * each read copies only the bytes asked for. Positions are JS numbers, so files over 2 GiB (and
 * over 4 GiB) read like small ones.
 *   BlobSource   a File or Blob (a picked file, or one the page made), by FileReaderSync over slices
 *   OpfsSource   a file in the Origin Private File System, by its synchronous access handle
 *   HttpSource   a URL read by HTTP range requests (synchronous XHR), when there is no OPFS to cache in
 * downloadToOpfs fetches a URL into the OPFS once (streamed to disk, with progress) and keeps it.
 */
import type { ByteSource } from '../gguf/reader.js';

/** bytes per read call: one read allocates this much at most (FileReaderSync and XHR return fresh buffers) */
const PIECE = 64 << 20;

/** the worker-only APIs used here (lib.webworker is not in this project's compile) */
interface FileReaderSyncLike {
  readAsArrayBuffer(blob: Blob): ArrayBuffer;
}
interface SyncAccessHandle {
  read(buffer: ArrayBufferView, options?: { at?: number }): number;
  write(buffer: ArrayBufferView, options?: { at?: number }): number;
  getSize(): number;
  truncate(size: number): void;
  flush(): void;
  close(): void;
}
type FileHandleWithSync = FileSystemFileHandle & { createSyncAccessHandle(): Promise<SyncAccessHandle> };

export class BlobSource implements ByteSource {
  readonly size: number;
  private readonly reader: FileReaderSyncLike;
  constructor(
    private readonly blob: Blob,
    readonly name = (blob as File).name ?? '<blob>',
  ) {
    const Ctor = (globalThis as { FileReaderSync?: new () => FileReaderSyncLike }).FileReaderSync;
    if (!Ctor) throw new Error('reading a File or Blob synchronously needs a Web Worker (FileReaderSync)');
    this.reader = new Ctor();
    this.size = blob.size;
  }
  readInto(dst: Uint8Array, position: number): number {
    let done = 0;
    while (done < dst.length && position + done < this.size) {
      const n = Math.min(PIECE, dst.length - done, this.size - position - done);
      const piece = this.reader.readAsArrayBuffer(this.blob.slice(position + done, position + done + n));
      dst.set(new Uint8Array(piece), done);
      done += piece.byteLength;
      if (piece.byteLength < n) break;
    }
    return done;
  }
  close(): void {}
}

export class OpfsSource implements ByteSource {
  readonly size: number;
  /** whether read() takes a view of shared memory directly (else through a bounce buffer) */
  private sharedOk = true;
  private bounce: Uint8Array | undefined;
  constructor(
    private readonly handle: SyncAccessHandle,
    readonly name: string,
  ) {
    this.size = handle.getSize();
  }
  /** open a file of the origin's private file system for synchronous reads (worker only) */
  static async open(fileName: string, shownName = fileName): Promise<OpfsSource> {
    const dir = await navigator.storage.getDirectory();
    const fh = (await dir.getFileHandle(fileName)) as FileHandleWithSync;
    return new OpfsSource(await fh.createSyncAccessHandle(), shownName);
  }
  readInto(dst: Uint8Array, position: number): number {
    let done = 0;
    while (done < dst.length && position + done < this.size) {
      const n = Math.min(PIECE, dst.length - done, this.size - position - done);
      const got = this.readPiece(dst.subarray(done, done + n), position + done);
      done += got;
      if (got < n) break;
    }
    return done;
  }
  private readPiece(dst: Uint8Array, at: number): number {
    if (this.sharedOk)
      try {
        return this.handle.read(dst, { at });
      } catch (e) {
        if (!(e instanceof TypeError) || !(dst.buffer instanceof SharedArrayBuffer)) throw e;
        this.sharedOk = false; // this engine's read() refuses views of shared memory
      }
    if (!this.bounce || this.bounce.length < dst.length) this.bounce = new Uint8Array(Math.min(PIECE, Math.max(dst.length, 1 << 20)));
    const tmp = this.bounce.subarray(0, dst.length);
    const n = this.handle.read(tmp, { at });
    dst.set(tmp.subarray(0, n));
    return n;
  }
  close(): void {
    this.handle.close();
  }
}

export class HttpError extends Error {
  override name = 'HttpError';
}

/** range reads over HTTP; the server must answer Range requests with 206 (phi3 web does) */
export class HttpSource implements ByteSource {
  readonly size: number;
  constructor(readonly name: string) {
    const x = new XMLHttpRequest();
    x.open('HEAD', name, false);
    x.send();
    if (x.status !== 200) throw new HttpError(`${name}: HEAD answered ${x.status} ${x.statusText}`);
    const len = Number(x.getResponseHeader('Content-Length'));
    if (!Number.isFinite(len) || len <= 0) throw new HttpError(`${name}: the server gives no Content-Length`);
    if (!/bytes/i.test(x.getResponseHeader('Accept-Ranges') ?? '')) throw new HttpError(`${name}: the server does not take range requests (no Accept-Ranges: bytes)`);
    this.size = len;
  }
  readInto(dst: Uint8Array, position: number): number {
    let done = 0;
    while (done < dst.length && position + done < this.size) {
      const n = Math.min(PIECE, dst.length - done, this.size - position - done);
      const x = new XMLHttpRequest();
      x.open('GET', this.name, false);
      x.responseType = 'arraybuffer';
      x.setRequestHeader('Range', `bytes=${position + done}-${position + done + n - 1}`);
      x.send();
      if (x.status !== 206) throw new HttpError(`${this.name}: a range request answered ${x.status} (expected 206 Partial Content)`);
      const piece = new Uint8Array(x.response as ArrayBuffer);
      dst.set(piece.subarray(0, n), done);
      done += Math.min(n, piece.length);
      if (piece.length < n) break;
    }
    return done;
  }
  close(): void {}
}

/** the file does not fit in the origin's storage (a private window's is small): read it by range requests instead */
export class QuotaError extends Error {
  override name = 'QuotaError';
}

export interface DownloadProgress {
  loaded: number;
  total: number;
  /** true when the file was already in the cache */
  cached: boolean;
}

/** the cache's file name for a URL and what the server says of it (size, ETag, Last-Modified) */
async function cacheName(url: string, size: number, tag: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`${url}\n${size}\n${tag}`)));
  return 'phi3-ts-' + [...digest.slice(0, 12)].map((b) => b.toString(16).padStart(2, '0')).join('') + '.gguf';
}

/**
 * The OPFS file holding `url`, downloaded now unless a complete copy of the same version is there
 * (same URL, size, ETag or Last-Modified). Streams to disk: the file is never whole in memory. A
 * download cut short leaves no file that would pass for complete (the size is checked, and a
 * `.done` marker is written last). A file that does not fit in the origin's quota is a QuotaError
 * (checked first by navigator.storage.estimate, and when a write fails), and nothing is left behind.
 */
export async function downloadToOpfs(url: string, onProgress?: (p: DownloadProgress) => void, signal?: AbortSignal): Promise<string> {
  const head = await fetch(url, { method: 'HEAD', signal });
  if (!head.ok) throw new HttpError(`${url}: HEAD answered ${head.status} ${head.statusText}`);
  const size = Number(head.headers.get('Content-Length') ?? NaN);
  const tag = head.headers.get('ETag') ?? head.headers.get('Last-Modified') ?? '';
  const name = await cacheName(url, size, tag);
  const dir = await navigator.storage.getDirectory();
  const have = await dir.getFileHandle(name).then((h) => h.getFile(), () => undefined);
  const done = await dir.getFileHandle(name + '.done').then(() => true, () => false);
  if (have && done && (!Number.isFinite(size) || have.size === size)) {
    onProgress?.({ loaded: have.size, total: have.size, cached: true });
    return name;
  }
  await dir.removeEntry(name + '.done').catch(() => {});
  const room = await navigator.storage.estimate?.().catch(() => undefined);
  if (room?.quota !== undefined && Number.isFinite(size) && size > room.quota - (room.usage ?? 0) + (have?.size ?? 0))
    throw new QuotaError(`${url}: ${size} bytes do not fit in this origin's storage (${room.quota - (room.usage ?? 0)} bytes free of ${room.quota})`);
  const res = await fetch(url, { signal });
  if (!res.ok || !res.body) throw new HttpError(`${url}: GET answered ${res.status} ${res.statusText}`);
  const total = Number(res.headers.get('Content-Length') ?? size);
  const fh = (await dir.getFileHandle(name, { create: true })) as FileHandleWithSync;
  const out = await fh.createSyncAccessHandle();
  let loaded = 0;
  try {
    out.truncate(0);
    const reader = res.body.getReader();
    for (;;) {
      const { done: end, value } = await reader.read();
      if (end) break;
      let at = 0;
      while (at < value.length) at += out.write(value.subarray(at), { at: loaded + at });
      loaded += value.length;
      onProgress?.({ loaded, total, cached: false });
    }
    out.flush();
  } catch (e) {
    out.close();
    await dir.removeEntry(name).catch(() => {});
    if ((e as Error)?.name === 'QuotaExceededError') throw new QuotaError(`${url}: the origin's storage quota ran out after ${loaded} of ${total} bytes`);
    throw e;
  }
  out.close();
  if (Number.isFinite(total) && loaded !== total) throw new HttpError(`${url}: the download ended at ${loaded} of ${total} bytes`);
  await dir.getFileHandle(name + '.done', { create: true });
  return name;
}
