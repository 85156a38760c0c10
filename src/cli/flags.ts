// Flag checks shared by the train and eval commands: each throws an Error whose message names the flag,
// what it accepts and what it got.
import { type ParseArgsConfig, parseArgs } from 'node:util';

/** node:util parseArgs (strict, no positionals) whose errors end with the command's usage. */
export function parseFlags<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new Error(`${(e as Error).message}\n\n${usage}`);
  }
}

export function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new Error(`${flag} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}

export function int(flag: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new Error(`${flag} must be an integer from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}, got "${value}"`);
  }
  return n;
}

/** A finite number in (0, max], or [0, max] with `allowZero`. */
export function number(flag: string, value: string, { max = Infinity, allowZero = false } = {}): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (n === 0 && !allowZero) || n > max) {
    const range = `${allowZero ? '≥ 0' : 'greater than 0'}${max < Infinity ? ` and at most ${max}` : ''}`;
    throw new Error(`${flag} must be a number ${range}, got "${value}"`);
  }
  return n;
}

/** A comma-separated list whose items are all in `allowed`; undefined gives all of them. */
export function list<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T[] {
  if (value === undefined) return [...allowed];
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = items.find((i) => !allowed.includes(i as T));
  if (bad !== undefined || items.length === 0) throw new Error(`${flag} takes a comma-separated list of ${allowed.join(', ')}, got "${value}"`);
  return items as T[];
}

/** parseArgs option declarations for flags that take a value. */
export function stringFlags<N extends string>(...names: N[]): Record<N, { type: 'string' }> {
  return Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])) as Record<N, { type: 'string' }>;
}

/** The switches every command has. */
export const COMMON_SWITCHES = { quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;

/** The value of a flag the command cannot do without. */
export function required(value: string | undefined, flag: string, usage: string): string {
  if (value === undefined) throw new Error(`${flag} is required\n\n${usage}`);
  return value;
}
