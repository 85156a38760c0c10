// Progress of a training run: on a terminal, one status line redrawn in place (a bar over tasks, then per
// worker the task, step, loss and accuracy, then the ETA); otherwise plain lines, one per finished task.
import { type RunReporter, type RunSummary } from './run.ts';
import { type TaskStats, type TrainProgress } from './trainer.ts';

export function createReporter(stream: NodeJS.WriteStream = process.stderr, quiet = false): RunReporter {
  const tty = stream.isTTY === true && !quiet;
  let total = 0;
  let skipped = 0;
  let toTrain = 0;
  let workers = 1;
  let startedAt = 0;
  let lastDraw = 0;
  const current = new Map<number, { index: number; p: TrainProgress }>();
  let done = 0;
  const write = (s: string) => stream.write(s);

  const eta = (): string => {
    const remaining = toTrain - done;
    if (remaining <= 0) return '0s';
    const elapsed = (performance.now() - startedAt) / 1000;
    // Fractional progress of the tasks in flight counts too, so the ETA moves before the first task ends.
    let partial = 0;
    for (const { p } of current.values()) partial += p.step / p.steps;
    const units = done + partial;
    if (units <= 0) return '?';
    return formatSeconds((elapsed / units) * remaining);
  };

  const draw = (force = false) => {
    if (!tty) return;
    const now = performance.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    const have = skipped + done;
    const width = 24;
    const filled = Math.round((width * have) / Math.max(1, total));
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const parts = [...current.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([, { index, p }]) => `#${index} ${p.step}/${p.steps} loss ${p.loss.toFixed(3)} acc ${(100 * p.accuracy).toFixed(1)}%`);
    const line = `${bar} task ${Math.min(have + 1, total)} of ${total} | ${parts.join(' | ')} | ETA ${eta()}`;
    const cols = stream.columns ?? 120;
    write(`\r\x1b[2K${line.length > cols ? line.slice(0, cols - 1) : line}`);
  };

  return {
    start(info) {
      total = info.total;
      skipped = info.skipped;
      toTrain = info.pending.length;
      workers = info.workers;
      startedAt = performance.now();
      if (quiet) return;
      const msg =
        toTrain === 0
          ? `${info.model}: all ${total} tasks are already trained; nothing to do\n`
          : `${info.model}: training ${toTrain} task(s)${skipped ? ` (${skipped} already in the model, skipped)` : ''} with ${workers} worker(s)\n`;
      write(msg);
    },
    progress(worker, index, p) {
      current.set(worker, { index, p });
      draw();
    },
    finished(worker, index, id, stats: TaskStats, n) {
      done = n;
      current.delete(worker);
      if (quiet) return;
      const line =
        `task ${id} (${skipped + n}/${total}) appended: ${(stats.ms / 1000).toFixed(1)} s, ` +
        `loss ${stats.firstLoss.toFixed(3)} → ${stats.finalLoss.toFixed(3)}, train acc ${(100 * stats.finalAccuracy).toFixed(1)}%, ` +
        `density ${stats.density.toFixed(3)}, worker ${worker}, ETA ${eta()}`;
      if (tty) {
        write(`\r\x1b[2K${line}\n`);
        draw(true);
      } else {
        write(`${line}\n`);
      }
      void index;
    },
    end(summary: RunSummary) {
      if (tty) write('\r\x1b[2K');
      if (quiet) return;
      if (summary.trained.length > 0) {
        write(
          `trained ${summary.trained.length} task(s) in ${formatSeconds(summary.seconds)} ` +
            `(${summary.secondsPerTask.toFixed(1)} s of optimisation per task per worker, ${workers} worker(s))\n`,
        );
      }
    },
  };
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.round((s % 3600) / 60)).padStart(2, '0')}m`;
}
