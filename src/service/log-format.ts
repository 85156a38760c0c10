// The log's format: pino's JSON lines for machines (files, pipes, log collectors), or one short line per
// record for a person at a terminal. `auto` picks the second only when stdout is a TTY.

export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Every record carries these; the line shows the time, level and message in their own places, and drops pid and host. */
const SHOWN_APART = new Set(['time', 'level', 'msg', 'pid', 'hostname']);

/** Whether `format` means human-readable lines on this output. */
export function isPretty(format: LogFormat, output: { isTTY?: boolean } = process.stdout): boolean {
  return format === 'pretty' || (format === 'auto' && output.isTTY === true);
}

/**
 * One pino JSON line as `HH:MM:SS.mmm LEVEL message key=value …`, with an error's stack on the lines below.
 * A line that is not a JSON object passes through unchanged.
 */
export function prettyLine(line: string): string {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return line;
  const r = record as Record<string, unknown>;
  const time = typeof r.time === 'number' ? new Date(r.time).toISOString().slice(11, 23) : '--:--:--.---';
  const level = (LEVELS[r.level as number] ?? String(r.level)).padEnd(5);
  const fields: string[] = [];
  let stack = '';
  for (const [key, value] of Object.entries(r)) {
    if (SHOWN_APART.has(key)) continue;
    if (key === 'err' && typeof value === 'object' && value !== null && typeof (value as { stack?: unknown }).stack === 'string') {
      stack = `\n    ${(value as { stack: string }).stack.split('\n').join('\n    ')}`;
      continue;
    }
    fields.push(`${key}=${typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`);
  }
  const message = typeof r.msg === 'string' ? r.msg : '';
  return `${time} ${level} ${[message, ...fields].filter(Boolean).join('  ')}${stack}\n`;
}

/** A pino destination that writes each record as prettyLine to `output`. */
export function prettyStream(output: { write(text: string): unknown } = process.stdout): { write(line: string): void } {
  return { write: (line) => void output.write(prettyLine(line)) };
}
