/**
 * `phi3 web [model]`: a small static server for the browser demo page (web/index.html), the browser
 * bundles (dist/browser/), the kernels (build/*.wasm) and one GGUF as /model.gguf (with HEAD and
 * Range requests, an ETag, and the file streamed, never read whole). Every answer carries the
 * headers that make the page cross-origin isolated (COOP same-origin, COEP require-corp), which the
 * shared WebAssembly memory needs. Only the listed paths are served.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { packageRoot } from '../package-root.js';

export interface WebServerOptions {
  /** the GGUF served as /model.gguf */
  model: string;
  host?: string;
  /** 0 picks a free port */
  port?: number;
  /** more files to serve: URL path → file (bench/browser.mjs serves wllama and split GGUFs so) */
  files?: Record<string, string>;
}

export interface WebServer {
  url: string;
  close(): Promise<void>;
}

const ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
};

/** the files the page may fetch: URL path → [file in the package, content type] */
function routes(root: string): Map<string, [string, string]> {
  const js = 'text/javascript; charset=utf-8';
  return new Map([
    ['/', [path.join(root, 'web', 'index.html'), 'text/html; charset=utf-8']],
    ['/dist/browser/phi3.js', [path.join(root, 'dist', 'browser', 'phi3.js'), js]],
    ['/dist/browser/phi3-worker.js', [path.join(root, 'dist', 'browser', 'phi3-worker.js'), js]],
    ['/build/kernels.wasm', [path.join(root, 'build', 'kernels.wasm'), 'application/wasm']],
    ['/build/kernels-relaxed.wasm', [path.join(root, 'build', 'kernels-relaxed.wasm'), 'application/wasm']],
  ]);
}

/** `bytes=a-b`, `bytes=a-` or `bytes=-n` of a file of `size` bytes; undefined when unsatisfiable */
export function parseRange(header: string, size: number): [number, number] | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number, end: number;
  if (m[1] === '') (start = Math.max(0, size - Number(m[2]))), (end = size - 1);
  else (start = Number(m[1])), (end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1));
  return start <= end && start < size ? [start, end] : undefined;
}

function sendFile(req: http.IncomingMessage, res: http.ServerResponse, file: string, type: string, extra: Record<string, string> = {}): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    res.writeHead(404, { ...ISOLATION, 'Content-Type': 'text/plain' }).end(`${path.basename(file)} is missing from this install (run npm run build)\n`);
    return;
  }
  const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  const head = { ...ISOLATION, 'Content-Type': type, 'Accept-Ranges': 'bytes', ETag: etag, 'Last-Modified': st.mtime.toUTCString(), 'Cache-Control': 'no-cache', ...extra };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, head).end();
    return;
  }
  let start = 0, end = st.size - 1, status = 200;
  const range = req.headers.range;
  if (range) {
    const r = parseRange(range, st.size);
    if (!r) {
      res.writeHead(416, { ...head, 'Content-Range': `bytes */${st.size}` }).end();
      return;
    }
    [start, end] = r;
    status = 206;
  }
  res.writeHead(status, { ...head, 'Content-Length': String(end - start + 1), ...(status === 206 ? { 'Content-Range': `bytes ${start}-${end}/${st.size}` } : {}) });
  if (req.method === 'HEAD' || st.size === 0) {
    res.end();
    return;
  }
  const stream = fs.createReadStream(file, { start, end });
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  stream.pipe(res);
}

export async function startWebServer(o: WebServerOptions): Promise<WebServer> {
  const model = path.resolve(o.model);
  const st = fs.statSync(model); // a missing model fails now, not at the page's first request
  if (!st.isFile()) throw new Error(`${model} is not a file`);
  const files = routes(packageRoot());
  const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm', '.html': 'text/html; charset=utf-8', '.json': 'application/json' };
  for (const [url, file] of Object.entries(o.files ?? {})) files.set(url, [file, TYPES[path.extname(file)] ?? 'application/octet-stream']);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...ISOLATION, Allow: 'GET, HEAD' }).end();
      return;
    }
    if (url.pathname === '/model.gguf') return sendFile(req, res, model, 'application/octet-stream');
    if (url.pathname === '/model.json') {
      res.writeHead(200, { ...ISOLATION, 'Content-Type': 'application/json', 'Cache-Control': 'no-cache' }).end(JSON.stringify({ name: path.basename(model), size: st.size }));
      return;
    }
    const f = files.get(url.pathname);
    if (!f) {
      res.writeHead(404, { ...ISOLATION, 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    sendFile(req, res, f[0], f[1]);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 8080, o.host ?? '127.0.0.1', () => resolve());
  });
  const a = server.address() as { address: string; port: number };
  const host = a.address.includes(':') ? `[${a.address}]` : a.address;
  return {
    url: `http://${host}:${a.port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
