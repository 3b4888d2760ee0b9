// The browser build in a real browser: Debian's Chromium, headless, driven by playwright-core, on the
// page `phi3 web` serves (web/index.html over dist/browser/). The embedded demo model generates the
// same tokens there as in Node — greedy and seeded sampling, from the served URL (OPFS cache), a
// picked File and HTTP range reads, on 1 and 2 threads — and the page's screenshot shows the text.
// Sources read past 2 and 4 GiB (a sparse file, as a File and by range requests).
// Chromium: /usr/bin/chromium or $CHROMIUM; .ci/run installs it (apt-get) and sets PHI3_REQUIRE_BROWSER=1,
// so that there a missing browser fails instead of skipping.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { PNG } from 'pngjs';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { loadModel, type Model } from '../src/api.js';
import { demoModelPath } from '../src/demo-model.js';
import { startWebServer, type WebServer } from '../src/web/server.js';
import { ROOT, tmpDir } from './helpers.js';

function findChromium(): string | undefined {
  for (const p of [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'])
    if (p && fs.existsSync(p)) return p;
  try {
    return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}
const CHROMIUM = findChromium();
const BUNDLES = ['phi3.js', 'phi3-worker.js'].map((f) => path.join(ROOT, 'dist', 'browser', f));
if (!CHROMIUM) {
  const msg = 'no Chromium found (/usr/bin/chromium, $CHROMIUM): install Debian\'s chromium package to run the browser tests';
  if (process.env.PHI3_REQUIRE_BROWSER) throw new Error(msg);
  console.warn(`NOTE: ${msg}; they are skipped.`);
}
for (const b of BUNDLES) if (!fs.existsSync(b)) throw new Error(`${b} is missing: run \`npm run build\``);

const PROMPT = 'Once upon a time';

describe.skipIf(!CHROMIUM)('in Chromium (headless), the demo page', () => {
  let browser: Browser, page: Page, server: WebServer, node: Model;
  const logs: string[] = [];

  beforeAll(async () => {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--disable-dev-shm-usage'] });
    server = await startWebServer({ model: demoModelPath(), port: 0 });
    node = await loadModel(demoModelPath(), { threads: 2 });
    page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(server.url);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await node?.close();
  });

  const state = () => page.getAttribute('#status', 'data-state');
  async function waitFor(states: string[]): Promise<string> {
    await page.waitForFunction((s) => s.includes(document.querySelector('#status')!.getAttribute('data-state')!), states, { timeout: 90_000 });
    const st = (await state())!;
    if (st === 'error') throw new Error(`the page says: ${await page.textContent('#status')}\n${logs.join('\n')}`);
    return st;
  }
  async function loadOnPage(threads: number, file?: string): Promise<string> {
    if (file) {
      await page.check('input[name=src][value=file]');
      await page.setInputFiles('#file', file);
    } else await page.check('input[name=src][value=served]');
    await page.fill('#threads', String(threads));
    await page.click('#load');
    await waitFor(['ready', 'error']);
    return (await page.textContent('#status'))!;
  }
  async function generateOnPage(o: { maxTokens: number; temperature: number; seed: number; mode?: 'chat' | 'completion'; prompt?: string }): Promise<{ tokens: number[]; text: string }> {
    await page.selectOption('#mode', o.mode ?? 'completion');
    await page.fill('#prompt', o.prompt ?? PROMPT);
    await page.fill('#max-tokens', String(o.maxTokens));
    await page.fill('#temperature', String(o.temperature));
    await page.fill('#seed', String(o.seed));
    await page.click('#send');
    await waitFor(['done', 'error']);
    return { tokens: JSON.parse((await page.getAttribute('#out', 'data-tokens'))!), text: (await page.textContent('#out'))! };
  }
  async function inNode(prompt: string | number[], o: { maxTokens: number; temperature: number; seed: number }) {
    const tokens: number[] = [];
    let text = '';
    for await (const c of node.stream(prompt, { ...o, reuseCache: false })) tokens.push(c.token), (text += c.text);
    return { tokens, text };
  }

  it('is cross-origin isolated (COOP/COEP from phi3 web), so shared WebAssembly memory is on', async () => {
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
  });

  it('loads the embedded model from its URL (into the OPFS cache) on 2 threads, and 32 greedy tokens are the same as Node\'s', async () => {
    const status = await loadOnPage(2);
    expect(status).toMatch(/ready: .*6 layers, dim 256.* 2 threads/);
    const web = await generateOnPage({ maxTokens: 32, temperature: 0, seed: 1 });
    const ref = await inNode(PROMPT, { maxTokens: 32, temperature: 0, seed: 1 });
    expect(ref.tokens).toHaveLength(32);
    expect(web.tokens).toEqual(ref.tokens);
    expect(web.text).toBe(ref.text);
    expect(await page.textContent('#speed')).toMatch(/decode [\d.]+ tok\/s · 32 tokens/);
  });

  it('seeded sampling (temperature 0.8) gives Node\'s tokens for the same seed, and another seed differs', async () => {
    const o = { maxTokens: 32, temperature: 0.8, seed: 7 };
    const web = await generateOnPage(o);
    const ref = await inNode(PROMPT, o);
    expect(web.tokens).toEqual(ref.tokens);
    expect((await generateOnPage({ ...o, seed: 8 })).tokens).not.toEqual(ref.tokens);
  });

  it('chat mode goes through the file\'s chat template as Node\'s chat() does', async () => {
    const o = { maxTokens: 16, temperature: 0, seed: 1 };
    const web = await generateOnPage({ ...o, mode: 'chat', prompt: 'Tell me a story.' });
    const ref = await inNode(node.chatTokens([{ role: 'user', content: 'Tell me a story.' }]), o);
    expect(web.tokens).toEqual(ref.tokens);
  });

  it('the screenshot shows the page with the generated text in it', async () => {
    const web = await generateOnPage({ maxTokens: 32, temperature: 0, seed: 1 });
    const shot = PNG.sync.read(await page.screenshot());
    fs.writeFileSync(path.join(tmpDir(), 'browser-demo.png'), PNG.sync.write(shot));
    expect([shot.width, shot.height]).toEqual([1100, 760]);
    // the completion's box: it must hold dark (text) pixels on a light background
    const box = (await page.locator('#out').boundingBox())!;
    expect(box.width).toBeGreaterThan(200);
    let dark = 0, light = 0;
    for (let y = Math.floor(box.y); y < Math.min(shot.height, box.y + box.height); y++)
      for (let x = Math.floor(box.x); x < Math.min(shot.width, box.x + box.width); x++) {
        const i = 4 * (y * shot.width + x);
        const lum = (shot.data[i]! + shot.data[i + 1]! + shot.data[i + 2]!) / 3;
        if (lum < 100) dark++;
        else if (lum > 200) light++;
      }
    expect(dark).toBeGreaterThan(300);
    expect(light).toBeGreaterThan(dark);
    expect(web.text.length).toBeGreaterThan(60);
  });

  it('the Stop button ends a long generation early (finish reason abort)', async () => {
    await page.fill('#max-tokens', '1500');
    await page.fill('#temperature', '0.7');
    await page.selectOption('#mode', 'completion');
    await page.click('#send');
    await page.waitForFunction(() => (document.querySelector('#out')?.textContent?.length ?? 0) > 20, null, { timeout: 30_000 });
    await page.click('#stop');
    await waitFor(['done', 'error']);
    expect(await page.textContent('#status')).toBe('done (abort)');
    expect(JSON.parse((await page.getAttribute('#out', 'data-tokens'))!).length).toBeLessThan(1500);
  });

  it('a picked File (read where it lies) on 1 thread gives the same greedy tokens', async () => {
    const status = await loadOnPage(1, demoModelPath());
    expect(status).toMatch(/ 1 threads/);
    const web = await generateOnPage({ maxTokens: 32, temperature: 0, seed: 1 });
    expect(web.tokens).toEqual((await inNode(PROMPT, { maxTokens: 32, temperature: 0, seed: 1 })).tokens);
  });

  it('the library API: a second load of the URL comes from the OPFS cache; cache: false reads by range requests; bad files are typed errors', async () => {
    // a string, so that vitest leaves the page's own dynamic import alone
    const r: { cached: boolean; loads: number; a: string; b: string; ids: number[]; err: string } = await page.evaluate(`(async () => {
      const { loadModel } = await import('./dist/browser/phi3.js');
      const phases = [];
      const m = await loadModel('./model.gguf', { threads: 2, onProgress: (p) => phases.push(p) });
      let a = '';
      for await (const t of m.generate('The old man', { maxTokens: 12, temperature: 0 })) a += t;
      await m.close();
      const h = await loadModel('./model.gguf', { threads: 2, cache: false });
      let b = '';
      for await (const t of h.generate('The old man', { maxTokens: 12, temperature: 0 })) b += t;
      const ids = await h.tokenize('The old man');
      await h.close();
      let err = '';
      await loadModel(new Blob([new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])], { type: 'application/octet-stream' })).catch((e) => (err = \`\${e.name}: \${e.message}\`));
      let refused = '';
      await loadModel('./model.gguf', { type: 'Q8_0' }).catch((e) => (refused = e.message));
      err += ' | ' + refused;
      return { cached: phases.some((p) => p.phase === 'download' && p.cached), loads: phases.filter((p) => p.phase === 'load').length, a, b, ids, err };
    })()`);
    expect(r.cached).toBe(true); // the first test's load downloaded it
    expect(r.loads).toBeGreaterThan(0);
    let ref = '';
    for await (const t of node.generate('The old man', { maxTokens: 12, temperature: 0, reuseCache: false })) ref += t;
    expect(r.a).toBe(ref);
    expect(r.b).toBe(ref);
    expect(r.ids).toEqual(node.tokenize('The old man'));
    expect(r.err).toMatch(/^GgufError: .*magic/i);
    expect(r.err).toMatch(/option 'type' is for Hugging Face folders/);
  });
});

describe.skipIf(!CHROMIUM)('in Chromium, GGUF sources past 2 and 4 GiB', () => {
  let browser: Browser, server: WebServer;
  const dir = tmpDir();
  const big = path.join(dir, 'sparse-5g.bin');
  const SIZE = 5 * 2 ** 30 + 123;
  const AT = [2 ** 31 - 3, 2 ** 32 + 1000, SIZE - 64];
  const pattern = (at: number) => Uint8Array.from({ length: 64 }, (_, i) => (at + i * 7) & 0xff);

  beforeAll(async () => {
    const fd = fs.openSync(big, 'w');
    fs.ftruncateSync(fd, SIZE); // sparse: a few pages on disk
    for (const at of AT) fs.writeSync(fd, pattern(at), 0, 64, at);
    fs.closeSync(fd);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--disable-dev-shm-usage'] });
    server = await startWebServer({ model: big, port: 0 });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('BlobSource (a File) and HttpSource (range requests) read the right bytes there, and report the full size', async () => {
    // a worker of its own over src/browser/sources.ts (FileReaderSync and sync XHR are worker-only)
    const out = await build({
      stdin: { contents: `import { BlobSource, HttpSource } from './src/browser/sources.ts';
        self.onmessage = (e) => {
          const { file, url, at } = e.data;
          const blob = new BlobSource(file), http = new HttpSource(url);
          const read = (s) => at.map((p) => { const b = new Uint8Array(64); const n = s.readInto(b, p); return [n, Array.from(b.subarray(0, n))]; });
          postMessage({ sizes: [blob.size, http.size], blob: read(blob), http: read(http) });
        };`, resolveDir: ROOT, loader: 'js' },
      bundle: true, format: 'esm', platform: 'browser', write: false,
    });
    const code = out.outputFiles[0]!.text;
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.check('input[name=src][value=file]');
    await page.setInputFiles('#file', big);
    const r = await page.evaluate(async ({ code, at }) => {
      const file = (document.querySelector('#file') as HTMLInputElement).files![0]!;
      const w = new Worker(URL.createObjectURL(new Blob([code], { type: 'text/javascript' })), { type: 'module' });
      return new Promise<{ sizes: number[]; blob: [number, number[]][]; http: [number, number[]][] }>((resolve, reject) => {
        w.onmessage = (e) => resolve(e.data);
        w.onerror = (e) => reject(new Error(e.message));
        w.postMessage({ file, url: new URL('./model.gguf', location.href).href, at });
      });
    }, { code, at: AT });
    expect(r.sizes).toEqual([SIZE, SIZE]);
    for (const src of [r.blob, r.http])
      src.forEach(([n, bytes], i) => {
        expect(n).toBe(64);
        expect(bytes).toEqual(Array.from(pattern(AT[i]!)));
      });
    await page.close();
  });
});
