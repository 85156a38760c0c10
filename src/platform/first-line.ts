/** The first line of an error's message: what the log says when optional native code does not load. */
export function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n', 1)[0];
}
