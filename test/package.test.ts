// The npm package: `npm pack`'s tarball installs in a fresh directory, and its library entry point and
// `phi3` command work there (the README's "install it as a library" path).
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, tmpDir } from './helpers.js';

describe('npm pack', () => {
  it('the tarball installs in a fresh directory; import and the phi3 bin work', () => {
    const dir = tmpDir();
    const pack = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' }));
    const tarball = path.join(dir, pack[0].filename);
    const files: string[] = pack[0].files.map((f: { path: string }) => f.path);
    expect(files).toContain('build/kernels.wasm');
    expect(files).toContain('dist/src/index.js');
    // the browser entry and the demo page ship too
    for (const f of ['dist/browser/phi3.js', 'dist/browser/phi3-worker.js', 'dist/src/browser/index.d.ts', 'web/index.html', 'build/kernels-relaxed.wasm']) expect(files).toContain(f);
    expect(files.some((f) => f.startsWith('test/') || f.startsWith('golden/'))).toBe(false);
    const app = path.join(dir, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    const inst = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', tarball], { cwd: app, encoding: 'utf8' });
    expect(inst.status, inst.stderr).toBe(0);
    const bin = path.join(app, 'node_modules', '.bin', 'phi3');
    const v = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    expect(v.stdout.trim()).toMatch(/^phi3-ts \d+\.\d+\.\d+/);
    const model = path.join(app, 'm.gguf');
    expect(spawnSync(bin, ['synth', '--preset', 'tiny', '--type', 'Q8_0', '--out', model], { encoding: 'utf8' }).status).toBe(0);
    fs.writeFileSync(path.join(app, 'main.js'), `
      import { loadModel, writeSynth } from 'phi3-ts';
      const m = await loadModel(${JSON.stringify(model)}, { ctx: 64, threads: 2 });
      let s = ''; for await (const t of m.generate('Hello', { maxTokens: 5, temperature: 0, stopAtEog: false })) s += t;
      console.log(JSON.stringify({ ok: typeof writeSynth === 'function', n: (await m.logits([1, 2, 3]))[0].length }));
    `);
    const r = spawnSync(process.execPath, ['main.js'], { cwd: app, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual({ ok: true, n: 856 });
    // 'phi3-ts/browser' resolves to the browser bundle through the package's exports
    const b = spawnSync(process.execPath, ['--input-type=module', '-e', "console.log(import.meta.resolve('phi3-ts/browser'))"], { cwd: app, encoding: 'utf8' });
    expect(b.stdout.trim()).toMatch(/node_modules\/phi3-ts\/dist\/browser\/phi3\.js$/);
  }, 240_000);
});
