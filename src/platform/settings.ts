// Command settings as one table per command: each setting a `--flag` with its kind, default and help (and, for
// a command that reads the environment, a `SUPSUP_*` variable of the same name; the flag wins). One parser
// checks every value and words every refusal alike, `<where>: must …, got "<value>"`; the same table prints
// the command's usage, so a default is written once and shown where it applies.
import { parseArgs } from 'node:util';

export type Kind =
  | 'string' // non-empty text, or one of `choices`
  | 'token' // a secret: checked for length, never echoed
  | 'url' // http:// or https://
  | 'port'
  | 'count' // a whole number
  | 'ms'
  | 'bytes' // a whole number with an optional k, m, kib, mib suffix
  | 'number' // a decimal number
  | 'list' // comma-separated items, each one of `choices`
  | 'counts' // comma-separated whole numbers
  | 'switch'; // present or absent, takes no value

export interface Setting {
  /** The property the parsed value is stored under. */
  readonly key: string;
  readonly flag: string;
  readonly kind: Kind;
  readonly help: string;
  /** As it would be typed. Without one the setting is unset unless given, and its help says what that means. */
  readonly default?: string;
  readonly choices?: readonly string[];
  /** Least value (of each item, for `counts`); for `number` with `aboveMin`, values must be greater. */
  readonly min?: number;
  readonly max?: number;
  readonly aboveMin?: boolean;
  readonly required?: boolean;
  /** What the value is, in the usage: `--model DIR`. */
  readonly arg?: string;
  readonly short?: string;
  /** A heading printed above this setting in the usage, starting a group. */
  readonly group?: string;
}

type Choice<S> = S extends { readonly choices: readonly (infer C extends string)[] } ? C : string;
type Value<S extends Setting> = S['kind'] extends 'switch'
  ? boolean
  : S['kind'] extends 'list'
    ? Choice<S>[]
    : S['kind'] extends 'counts'
      ? number[]
      : S['kind'] extends 'string'
        ? Choice<S>
        : S['kind'] extends 'token' | 'url'
          ? string
          : number;
type AlwaysSet<S> = S extends { readonly kind: 'switch' } | { readonly default: string } | { readonly required: true } ? true : false;

/** The parsed values of a table, typed from its rows: unset ones are `undefined` (and absent). */
export type Values<T extends readonly Setting[]> = {
  -readonly [S in T[number] as S['key']]: AlwaysSet<S> extends true ? Value<S> : Value<S> | undefined;
};

/** Shortest token accepted. */
export const MIN_TOKEN_LENGTH = 16;

/** A setting the command cannot run with; its message is meant for the person who typed it. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The one wording of a refused value. */
export function refuse(where: string, why: string, raw: string): ConfigError {
  return new ConfigError(`${where}: ${why}, got ${JSON.stringify(raw)}`);
}

export function envName(flag: string): string {
  return `SUPSUP_${flag.replace(/-/g, '_').toUpperCase()}`;
}

/** The switches every command but `serve` has (serve answers --help before it reads its settings). */
export const HELP_SWITCH = { key: 'help', flag: 'help', short: 'h', kind: 'switch', help: 'print this help' } as const;
export const QUIET_SWITCH = { key: 'quiet', flag: 'quiet', kind: 'switch', help: 'no progress output' } as const;

export interface Parsed<T extends readonly Setting[]> {
  values: Values<T>;
  /** Keys of the settings given on the command line or in the environment, not defaulted. */
  given: ReadonlySet<string>;
}

/**
 * Parses argv (and `env`, when the command reads the environment) against the table. Throws ConfigError: a
 * value's naming where it came from, an unknown option's or a missing required setting's ending with `usage`.
 */
export function parseSettings<const T extends readonly Setting[]>(table: T, argv: string[], usage: string, env?: NodeJS.ProcessEnv): Parsed<T> {
  let flags: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    const options = Object.fromEntries(
      table.map((s) => [s.flag, { type: s.kind === 'switch' ? ('boolean' as const) : ('string' as const), ...(s.short ? { short: s.short } : {}) }]),
    );
    flags = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new ConfigError(`${e instanceof Error ? e.message : String(e)}\n\n${usage}`);
  }
  const values: Record<string, unknown> = {};
  const given = new Set<string>();
  for (const s of table) {
    const flag = flags[s.flag];
    if (s.kind === 'switch') {
      values[s.key] = flag === true;
      if (flag === true) given.add(s.key);
      continue;
    }
    const fromFlag = typeof flag === 'string' ? flag : undefined;
    const fromEnv = env?.[envName(s.flag)] || undefined;
    const raw = fromFlag ?? fromEnv ?? s.default;
    if (raw === undefined) {
      if (s.required) throw new ConfigError(`--${s.flag}${s.arg ? ` ${s.arg}` : ''} is required\n\n${usage}`);
      continue;
    }
    if (fromFlag !== undefined || fromEnv !== undefined) given.add(s.key);
    const where = fromFlag !== undefined ? `--${s.flag}` : fromEnv !== undefined ? envName(s.flag) : `--${s.flag} (default)`;
    values[s.key] = parseValue(s, raw, where);
  }
  // Sound: every row either set its key with a value of its kind (parseValue) or left it unset as Values allows.
  return { values: values as Values<T>, given };
}

function parseValue(s: Setting, raw: string, where: string): unknown {
  const fail = (why: string): never => {
    throw refuse(where, why, raw);
  };
  switch (s.kind) {
    case 'string':
      if (raw.length === 0) fail('must not be empty');
      if (s.choices && !s.choices.includes(raw)) fail(`must be one of ${s.choices.join(', ')}`);
      return raw;
    case 'token':
      // The message names the setting but never echoes the value: it is a secret.
      if (raw.length < MIN_TOKEN_LENGTH || /\s/.test(raw)) {
        throw new ConfigError(`--${s.flag} / ${envName(s.flag)}: must be at least ${MIN_TOKEN_LENGTH} characters with no whitespace`);
      }
      return raw;
    case 'url': {
      const url = URL.canParse(raw) ? new URL(raw) : undefined;
      if (url?.protocol !== 'http:' && url?.protocol !== 'https:') fail('must be an http:// or https:// URL');
      return raw;
    }
    case 'list': {
      const items = raw.split(',').map((i) => i.trim()).filter(Boolean);
      if (items.length === 0 || items.some((i) => !s.choices?.includes(i))) fail(`must be a comma-separated list of ${s.choices?.join(', ')}`);
      return items;
    }
    case 'counts': {
      const items = raw.split(',').map((i) => i.trim());
      const numbers = items.map((i) => (/^\d+$/.test(i) ? Number(i) : NaN));
      if (numbers.some((n) => !Number.isSafeInteger(n) || !inRange(s, n))) fail(`must be a comma-separated list of whole numbers ${rangeText(s)}`);
      return numbers;
    }
    case 'number': {
      const x = /^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(raw.trim()) ? Number(raw) : NaN;
      if (!Number.isFinite(x)) fail('must be a decimal number like 0.125');
      if (!inRange(s, x)) fail(`must be a decimal number ${rangeText(s)}`);
      return x;
    }
    default: {
      const n = s.kind === 'bytes' ? parseBytes(raw) : /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(n)) fail(s.kind === 'bytes' ? 'must be a byte count like 8388608, 512kib or 8mib' : 'must be a whole number');
      if (s.kind === 'port' && n > 65535) fail('must be a port number from 0 to 65535');
      if (s.min !== undefined && n < s.min) fail(`must be at least ${s.min}`);
      if (s.max !== undefined && n > s.max) fail(`must be at most ${s.max}`);
      return n;
    }
  }
}

function inRange(s: Setting, x: number): boolean {
  const aboveMin = s.min === undefined || (s.aboveMin ? x > s.min : x >= s.min);
  return aboveMin && (s.max === undefined || x <= s.max);
}

function rangeText(s: Setting): string {
  const low = s.min === undefined ? '' : s.aboveMin ? `greater than ${s.min}` : `of at least ${s.min}`;
  const high = s.max === undefined ? '' : `at most ${s.max}`;
  return [low, high].filter(Boolean).join(' and ');
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2 };

function parseBytes(raw: string): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = m ? BYTE_UNITS[m[2].toLowerCase()] : undefined;
  return m && unit !== undefined ? Number(m[1]) * unit : NaN;
}

/**
 * The command's usage: `head` (its synopsis and what it does), then one row per setting with its default.
 * With `env`, each row also names the setting's environment variable.
 */
export function usage(head: string, table: readonly Setting[], { env = false } = {}): string {
  const label = (s: Setting) => `--${s.flag}${s.arg ? ` ${s.arg}` : ''}`;
  const width = Math.max(...table.map((s) => label(s).length)) + 1;
  const rows = table.flatMap((s) => {
    const def = s.default !== undefined ? ` [default ${s.default}]` : '';
    const row = `  ${label(s).padEnd(width)}${env ? ` ${envName(s.flag).padEnd(28)}` : ''} ${s.help}${def}`;
    return s.group ? ['', `${s.group}:`, row] : [row];
  });
  const title = env ? 'options (flag, environment variable, meaning):' : 'options:';
  return `${head}\n\n${title}\n${rows.join('\n')}`;
}
