// GET /tasks without paging: every task, as JSON. At k = 2500 with permutation tasks the list is ~8 MB; made as one
// string it blocked the event loop for 60-110 ms (every other request waited) and left that much garbage in the old
// generation at once. So a list past one piece (~64 KB of JSON) is written a piece at a time, each piece dying young,
// with a turn of the event loop between pieces: a socket on loopback takes every write at once, so without that
// wait the pieces would still run back to back, never letting another request in. A list that fits one piece is
// one body with its length, as before: its answer is out in one write, so a replica killed mid-request fails it
// before a byte is sent, and a load balancer can retry it elsewhere (test/system/cluster.ts).
import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { TaskInfo } from '../../contract/task.ts';
import { type TaskView, inView } from '../../core/task-page.ts';

/** JSON characters per piece: ~18 permutation tasks, under a millisecond of work and below V8's large-object size. */
const PIECE_CHARS = 64 * 1024;

/**
 * The body `{"tasks":[…]}` of `tasks` in `view`, the same JSON a single JSON.stringify would write: a string when it
 * fits one piece, else a stream of pieces.
 */
export function taskListBody(tasks: readonly TaskInfo[], view: TaskView): string | Readable {
  const first = piece(tasks, view, 0);
  if (first.next === tasks.length) return `{"tasks":[${first.json}]}`;
  return Readable.from(pieces(tasks, view, first), { objectMode: false });
}

/** The JSON of tasks[from…] up to PIECE_CHARS (at least one task), and the index after the last. */
function piece(tasks: readonly TaskInfo[], view: TaskView, from: number): { json: string; next: number } {
  const parts: string[] = [];
  let chars = 0, next = from;
  while (next < tasks.length && chars < PIECE_CHARS) {
    const json = JSON.stringify(inView(tasks[next++], view));
    parts.push(json);
    chars += json.length;
  }
  return { json: parts.join(','), next };
}

async function* pieces(tasks: readonly TaskInfo[], view: TaskView, first: { json: string; next: number }): AsyncGenerator<string> {
  yield `{"tasks":[${first.json}`;
  for (let at = first.next; at < tasks.length; ) {
    await nextTurn();
    const p = piece(tasks, view, at);
    yield `,${p.json}`;
    at = p.next;
  }
  yield ']}';
}
