// GET /tasks without paging: every task, written as JSON a few tasks at a time. At k = 2500 with permutation tasks
// the list is ~8 MB of JSON; made as one string it blocked the event loop for 60-110 ms (every other request waited)
// and left that much garbage in the old generation at once. In pieces, each piece dies young, and the stream waits
// a turn of the event loop between pieces: a socket on loopback takes every write at once, so without that wait
// the pieces would still run back to back, never letting another request in.
import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { TaskInfo } from '../../contract/task.ts';
import { type TaskView, inView } from '../../core/task-page.ts';

/** Tasks per piece: ~50 KB of JSON with permutations (below V8's large-object size), well under a millisecond. */
const TASKS_PER_PIECE = 16;

/** The body `{"tasks":[…]}` of `tasks` in `view`, the same JSON a single JSON.stringify would write. */
export function taskListStream(tasks: readonly TaskInfo[], view: TaskView): Readable {
  return Readable.from(pieces(tasks, view), { objectMode: false });
}

async function* pieces(tasks: readonly TaskInfo[], view: TaskView): AsyncGenerator<string> {
  yield '{"tasks":[';
  for (let i = 0; i < tasks.length; i += TASKS_PER_PIECE) {
    if (i > 0) await nextTurn();
    const json = tasks.slice(i, i + TASKS_PER_PIECE).map((t) => JSON.stringify(inView(t, view)));
    yield (i === 0 ? '' : ',') + json.join(',');
  }
  yield ']}';
}
