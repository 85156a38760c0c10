// A full garbage collection on demand, for the one time waiting for V8 costs a whole bank. When the mask bank grows
// it moves into a new SharedArrayBuffer; the old one (~100 MB at k = 2500) is freed only once both threads' wrappers
// of it are collected, and nothing prompts V8 to collect them: measured, the old bank stayed resident through ten
// minutes of traffic (docs/benchmarks.md, stop 22). Grows are rare (each adds 1/32 of the bank), so one full
// collection per grow, in each thread, costs little.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | null | undefined;

/** Runs a full collection in this thread (a no-op where the runtime refuses to expose one). */
export function collectGarbage(): void {
  if (gc === undefined) {
    // The flag exposes `gc` to contexts made after it is set; Node's documented way to reach it at run time.
    setFlagsFromString('--expose-gc');
    const found: unknown = runInNewContext('typeof gc === "function" ? gc : null');
    gc = typeof found === 'function' ? (found as () => void) : null;
  }
  gc?.();
}
