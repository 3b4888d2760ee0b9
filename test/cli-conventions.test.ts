// CLI conventions, as subprocesses with their exit codes: --help and --version, one-line errors,
// flags checked before loading and named as typed, llama.cpp's aliases, EPIPE, serve's start-up and shutdown.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ROOT, tmpDir } from './helpers.js';
import { writeSynth, PRESETS } from '../src/synth/synth.js';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const phi3 = (args: string[], input?: string) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', input, timeout: 60_000 });
const dir = tmpDir();
const tiny = path.join(dir, 'tiny.gguf');
beforeAll(() => writeSynth(tiny, { shape: PRESETS.tiny!, type: 'Q8_0', seed: 3 }));

/** exactly one line on stderr, no stack frames */
const oneLine = (s: string) => {
  expect(s.trim().split('\n').length, s).toBe(1);
  expect(s, s).not.toMatch(/\n\s+at /);
};

describe('help and version', () => {
  for (const cmd of ['run', 'chat', 'serve', 'bench', 'tokenize', 'detokenize', 'logits', 'inspect', 'synth'])
    it(`phi3 ${cmd} --help prints its flags and exits 0`, () => {
      const r = phi3([cmd, '--help']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain(`phi3 ${cmd}`);
      expect(r.stdout).toContain('--help');
      expect(phi3([cmd, '-h']).status).toBe(0);
    });
  it('--version prints the package version', () => {
    const r = phi3(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(`phi3-ts ${JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}`);
  });
});

describe('errors are one line, name the flag, and come before any loading', () => {
  const cases: [string[], number, RegExp][] = [
    [['run', dir, '-p', 'x'], 1, /is a directory/],
    [['run', path.join(dir, 'missing.gguf'), '-p', 'x'], 1, /GgufError: cannot open/],
    [['run', tiny, '-p', 'x', '--top-p', '5'], 2, /--top-p must be > 0 and ≤ 1, got 5/],
    [['run', tiny, '-p', 'x', '--temp=-1'], 2, /--temp must be ≥ 0, got -1/],
    [['run', tiny, '-p', 'x', '--threads', '0'], 2, /--threads must be ≥ 1, got 0/],
    [['run', tiny, '-p', 'x', '--backend', 'gpu'], 2, /--backend must be one of wasm, ref, got 'gpu'/],
    [['run', tiny, '-p', 'x', '-n', '0'], 2, /--n must be ≥ 1 \(or -1\), got 0/],
    [['run', tiny, '-p', 'x', '--ctx', '1.5'], 2, /--ctx expects a whole number, got '1.5'/],
    [['run', tiny, '-p', 'x', '--ctx', '100000'], 2, /--ctx 100000 is above the 512 tokens this model was trained for; add --force/],
    [['run', tiny, '-p', 'x', '--seed', 'abc'], 2, /--seed expects a number, got 'abc'/],
    [['synth', '--dim', '100', '--heads', '3', '--out', path.join(dir, 'x.gguf')], 2, /--dim 100 is not divisible by --heads 3/],
    [['synth', '--out', '/nonexistent/x.gguf'], 2, /the folder \/nonexistent does not exist/],
    [['run', tiny, '--bogus'], 2, /Unknown option '--bogus'/],
  ];
  for (const [args, code, re] of cases)
    it(`phi3 ${args.map((a) => a.replace(dir, '<dir>')).join(' ')} → exit ${code}`, () => {
      const r = phi3(args);
      expect(r.status, r.stderr).toBe(code);
      expect(r.stderr.split('\n')[0]).toMatch(re);
      if (code === 1) oneLine(r.stderr);
    });
  it('--verbose adds the stack', () => {
    const r = phi3(['run', path.join(dir, 'missing.gguf'), '-p', 'x', '--verbose']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\n\s+at /);
  });
});

describe("llama.cpp's conventions", () => {
  it('-m -c -t -p -n and negative values (-n -1 runs to the end of the context, --seed -1 is random)', () => {
    const r = phi3(['run', '-m', tiny, '-c', '24', '-t', '1', '-p', 'hello', '-n', '-1', '--seed', '-1', '--temp', '0']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/decode \d+ tok/);
    const a = phi3(['run', tiny, '--ctx-size', '64', '-p', 'hello', '-n', '5', '--temp', '0']);
    expect(a.status, a.stderr).toBe(0);
  });
  it('-f reads the prompt from a file, and stdin is the prompt when neither -p nor -f is given', () => {
    const pf = path.join(dir, 'prompt.txt');
    fs.writeFileSync(pf, 'hello world');
    const a = phi3(['run', tiny, '-f', pf, '-n', '6', '--temp', '0', '--ctx', '64']);
    const b = phi3(['run', tiny, '-n', '6', '--temp', '0', '--ctx', '64'], 'hello world');
    const c = phi3(['run', tiny, '-p', 'hello world', '-n', '6', '--temp', '0', '--ctx', '64']);
    expect(a.status, a.stderr).toBe(0);
    expect(a.stdout).toBe(c.stdout);
    expect(b.stdout).toBe(c.stdout);
  });
  it('--stop is repeatable', () => {
    const full = phi3(['run', tiny, '-p', 'hello', '-n', '12', '--temp', '0', '--ctx', '64']).stdout;
    const cut = full.slice(3, 5);
    const r = phi3(['run', tiny, '-p', 'hello', '-n', '12', '--temp', '0', '--ctx', '64', '--stop', 'zzzz', '--stop', cut]);
    expect(r.stdout).toBe(full.slice(0, full.indexOf(cut)) + '\n');
  });
  it('--threads above the core count is clamped with a warning; --ctx above the trained context runs with --force', () => {
    const r = phi3(['run', tiny, '-p', 'hi', '-n', '2', '--threads', '64', '--ctx', '1024', '--force']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/--threads 64 is more than the \d+ cores here: using \d+/);
    expect(r.stderr).toMatch(/--ctx 1024 is above the 512 tokens/);
  });
  it('a closed stdout ends the command quietly (EPIPE)', () => {
    for (const cmd of [`inspect "${tiny}" --json`, `run "${tiny}" -p hello -n 200 --temp 0 --ctx 256`]) {
      const r = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" ${cmd} | head -c 5 >/dev/null; echo "status \${PIPESTATUS[0]}"`], { encoding: 'utf8', timeout: 60_000 });
      expect(r.stdout.trim()).toBe('status 0');
      expect(r.stderr).not.toMatch(/EPIPE|at /);
    }
  });
});

describe('phi3 serve start-up and shutdown', () => {
  it('a port in use is one line and exit 1', async () => {
    const busy = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => busy.once('listening', r));
    const port = (busy.address() as net.AddressInfo).port;
    const r = phi3(['serve', tiny, '--port', String(port), '--ctx', '64']);
    busy.close();
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n').pop()).toMatch(new RegExp(`port ${port} on 127.0.0.1 is already in use`));
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('SIGTERM during a stream ends it with a finish_reason and [DONE], then exits 0', async () => {
    const p = spawn(process.execPath, [CLI, 'serve', tiny, '--port', '0', '--ctx-per-slot', '512', '--grace-ms', '200']);
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const port = await new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(err)), 20_000);
      p.stderr.on('data', () => {
        const m = /listening on http:\/\/[\d.]+:(\d+)/.exec(err);
        if (m && /model loaded/.test(err)) {
          clearTimeout(t);
          resolve(Number(m[1]));
        }
      });
    });
    const res = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'hello', max_tokens: 400, ignore_eos: true, stream: true, temperature: 0 }),
    });
    const reader = res.body!.getReader();
    let body = '';
    const first = await reader.read();
    body += new TextDecoder().decode(first.value);
    p.kill('SIGTERM');
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      body += new TextDecoder().decode(r.value);
    }
    const code = await new Promise<number | null>((r) => p.once('exit', r));
    expect(body).toMatch(/"finish_reason":"length"/);
    expect(body.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(code, err).toBe(0);
  });
});

describe.runIf(spawnSync('script', ['--version']).status === 0)('phi3 chat on a terminal (a pty from script(1))', () => {
  it('Ctrl-C stops the reply and keeps the REPL; ↑ recalls the last line (history); /exit leaves with 0', async () => {
    // the ref backend is slow enough (≈ 100 tok/s on tiny) that the reply is still running at Ctrl-C
    const cmd = [process.execPath, CLI, 'chat', tiny, '--backend', 'ref', '--ctx', '512', '-n', '400', '--temp', '1.5', '--seed', '3'].map((a) => `'${a}'`).join(' ');
    const p = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += String(d).replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''))); // without the terminal's cursor codes
    const until = async (re: RegExp, from = 0) => {
      const t0 = Date.now();
      while (!re.test(out.slice(Math.max(0, from)))) {
        if (Date.now() - t0 > 30_000) throw new Error(`no ${re} in ${JSON.stringify(out.slice(-400))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await until(/> $/);
      p.stdin.write('hello there\r');
      await until(/hello there\r*\n./s);
      p.stdin.write('\x03'); // Ctrl-C mid-reply
      const mark = out.length;
      await until(/generated, [\d.]+ tok\/s, stopped;.*\]\r?\n> $/s, mark - 200);
      p.stdin.write('\x1b[A'); // ↑
      await until(/> .*hello there$/, out.length - 40);
      p.stdin.write('\x15/exit\r'); // Ctrl-U clears the recalled line
      const code = await new Promise<number | null>((r) => p.once('exit', r));
      expect(code).toBe(0);
      expect(out.match(/stopped;/g)?.length).toBe(1);
    } finally {
      p.kill('SIGKILL');
    }
  }, 60_000);
});
