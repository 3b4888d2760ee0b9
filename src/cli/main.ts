#!/usr/bin/env node
/**
 * The `phi3` command line. Each subcommand's contract (flags, output format) is documented in the
 * README; other tools depend on them, so they change only on purpose.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { inspectGguf, formatInspect } from './inspect.js';
import { PRESETS, SYNTH_TYPES, writeSynth } from '../model/synth.js';
import { GgufError } from '../gguf/types.js';

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

const commands: Record<string, { usage: string; run: Handler }> = {
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
    usage: `phi3 synth --preset ${Object.keys(PRESETS).join('|')} --type ${SYNTH_TYPES.join('|')} --seed N [--vocab file.gguf] [--tied] --out x.gguf`,
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
        },
        this.usage,
      );
      const shape = PRESETS[values.preset!];
      if (!shape) throw new UsageError(`unknown preset '${values.preset}' (one of ${Object.keys(PRESETS).join(', ')})`);
      if (!values.out) throw new UsageError(`--out is required\nusage: ${this.usage}`);
      const type = values.type!.toUpperCase();
      if (!SYNTH_TYPES.includes(type)) throw new UsageError(`unknown --type '${values.type}' (one of ${SYNTH_TYPES.join(', ')})`);
      const t0 = performance.now();
      writeSynth(values.out, { shape: { ...shape, tiedEmbeddings: values.tied ?? false }, type, seed: num(values.seed, 'seed'), vocabFile: values.vocab });
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
    const known = err instanceof GgufError || ['UnsupportedModelError', 'ContextLengthError', 'TokenizerError'].includes(err.name);
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
