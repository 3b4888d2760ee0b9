/**
 * Command-line flags: one declarative table per subcommand, parsed and checked before any work.
 *
 * What it adds to node:util parseArgs: typed values (whole numbers checked as whole numbers, ranges),
 * errors that name the flag as the user typed it, negative numbers as values (`-n -1`, `--seed -1`),
 * aliases (llama.cpp's `-m`, `-c/--ctx-size`, `-t`, `-f`, …), repeatable flags (`--stop`), and
 * `--help`/`-h` on every subcommand.
 */
import { parseArgs } from 'node:util';

export class UsageError extends Error {
  override name = 'UsageError';
}

/** `--help` was asked for: print the usage and exit 0 */
export class HelpRequested extends Error {
  override name = 'HelpRequested';
}

export interface Flag {
  type: 'int' | 'number' | 'string' | 'bool';
  /** one-letter alias (-p) */
  short?: string;
  /** other long names (--ctx-size for --ctx) */
  aliases?: string[];
  /** may be given more than once (values collected in order) */
  multiple?: boolean;
  min?: number;
  max?: number;
  /** numbers: the lower bound is exclusive (> min, not ≥ min) */
  minExclusive?: boolean;
  choices?: readonly string[];
  /** a value this flag may take besides its range (-1 for "until the context is full", a random seed) */
  special?: number;
  help?: string;
}

export type FlagTable = Record<string, Flag>;
type Value<F extends Flag> = F['type'] extends 'bool' ? boolean : F['type'] extends 'string' ? (F['multiple'] extends true ? string[] : string) : number;
export type FlagValues<T extends FlagTable> = { [K in keyof T]?: Value<T[K]> };

/** flags every command takes */
export const COMMON: FlagTable = {
  help: { type: 'bool', short: 'h', help: 'print this usage' },
  verbose: { type: 'bool', help: 'print stack traces with errors' },
};

export function parseFlags<T extends FlagTable>(argv: string[], table: T, usage: string): { values: FlagValues<T>; positionals: string[] } {
  const all: FlagTable = { ...COMMON, ...table };
  const byAlias = new Map<string, string>();
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, f] of Object.entries(all)) {
    options[name] = { type: f.type === 'bool' ? 'boolean' : 'string', ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) };
    for (const a of f.aliases ?? []) byAlias.set(a, name);
  }
  // --ctx-size → --ctx; `-n -1` and `--seed=-1` style values: a value flag followed by a negative
  // number takes it as its value (parseArgs would read it as an option)
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i]!;
    const m = /^--([^=]+)(=.*)?$/.exec(a);
    if (m && byAlias.has(m[1]!)) a = `--${byAlias.get(m[1]!)}${m[2] ?? ''}`;
    const name = m ? (byAlias.get(m[1]!) ?? m[1]!) : /^-[a-zA-Z]$/.test(a) ? Object.keys(all).find((k) => all[k]!.short === a[1]) : undefined;
    const f = name ? all[name] : undefined;
    if (f && f.type !== 'bool' && !a.includes('=') && i + 1 < argv.length && /^-(\d|\.\d)/.test(argv[i + 1]!)) {
      args.push(`--${name}=${argv[++i]}`);
      continue;
    }
    args.push(a);
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    if (args.includes('--help') || args.includes('-h')) throw new HelpRequested(usage);
    throw new UsageError(`${(e as Error).message.split('\n')[0]}\nusage: ${usage}`);
  }
  if (parsed.values.help) throw new HelpRequested(usage);
  const values: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(parsed.values)) {
    const f = all[name]!;
    values[name] = f.multiple ? (raw as string[]).map((v) => check(name, f, v)) : check(name, f, raw as string | boolean);
  }
  return { values: values as FlagValues<T>, positionals: parsed.positionals };
}

function check(name: string, f: Flag, raw: string | boolean): unknown {
  if (f.type === 'bool') return raw;
  const v = raw as string;
  const flag = `--${name}`;
  if (f.type === 'string') {
    if (f.choices && !f.choices.includes(v)) throw new UsageError(`${flag} must be one of ${f.choices.join(', ')}, got '${v}'`);
    return v;
  }
  const n = v.trim() === '' ? NaN : Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`${flag} expects a number, got '${v}'`);
  if (f.type === 'int' && !Number.isInteger(n)) throw new UsageError(`${flag} expects a whole number, got '${v}'`);
  if (f.special !== undefined && n === f.special) return n;
  const low = f.min !== undefined && (f.minExclusive ? n <= f.min : n < f.min);
  const high = f.max !== undefined && n > f.max;
  if (low || high) {
    const range = `${f.min !== undefined ? (f.minExclusive ? `> ${f.min}` : `≥ ${f.min}`) : ''}${f.min !== undefined && f.max !== undefined ? ' and ' : ''}${f.max !== undefined ? `≤ ${f.max}` : ''}`;
    throw new UsageError(`${flag} must be ${range}${f.special !== undefined ? ` (or ${f.special})` : ''}, got ${v}`);
  }
  return n;
}

/** the usage text of a subcommand: its synopsis, then one line per flag */
export function usageOf(synopsis: string, table: FlagTable): string {
  const lines = [synopsis];
  for (const [name, f] of Object.entries({ ...table, ...COMMON })) {
    const names = [f.short ? `-${f.short}` : '', `--${name}`, ...(f.aliases ?? []).map((a) => `--${a}`)].filter(Boolean).join(', ');
    const arg = f.type === 'bool' ? '' : f.choices ? ` ${f.choices.length > 4 ? 'P' : f.choices.join('|')}` : f.type === 'string' ? ' S' : ' N';
    const choices = f.choices && f.choices.length > 4 ? ` (one of ${f.choices.join(', ')})` : '';
    lines.push(`    ${(names + arg).padEnd(34)} ${f.help ?? ''}${choices}`);
  }
  return lines.join('\n');
}
