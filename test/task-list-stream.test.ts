// The whole task list (service/http/task-list-stream.ts): the same JSON one JSON.stringify gives; one string while it
// fits one piece (one write, as a load balancer needs to retry it elsewhere), else pieces with a turn of the event
// loop between them, so other requests are served while a large list is written.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TaskInfo } from '../src/contract/task.ts';
import { taskListBody } from '../src/service/http/task-list-stream.ts';

function tasks(n: number, permutations = true): TaskInfo[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `t${i}`,
    name: `Permuted ${i}`,
    ...(i % 3 === 0 ? { description: 'every third has one' } : {}),
    addedAt: '2026-12-03T08:00:00.000Z',
    density: 0.5 + i / 1000,
    transform:
      permutations && i % 2 ? { kind: 'permutation' as const, seed: i, permutation: Array.from({ length: 784 }, (_, j) => (j * 7 + i) % 784) } : { kind: 'identity' as const },
  }));
}

/** The body's text, how many pieces it came in (0: a string), and how many turns of the event loop passed meanwhile. */
async function read(list: TaskInfo[], view: 'full' | 'basic'): Promise<{ text: string; pieces: number; turns: number }> {
  const body = taskListBody(list, view);
  if (typeof body === 'string') return { text: body, pieces: 0, turns: 0 };
  let turns = 0, running = true;
  const tick = () => {
    turns++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  let text = '', pieces = 0;
  for await (const piece of body) {
    text += String(piece);
    pieces++;
  }
  running = false;
  return { text, pieces, turns };
}

describe('task list body', () => {
  for (const n of [0, 1, 16, 17, 100, 400]) {
    it(`${n} tasks: exactly JSON.stringify({ tasks }), in both views`, async () => {
      const list = tasks(n);
      assert.equal((await read(list, 'full')).text, JSON.stringify({ tasks: list }));
      const basic = list.map(({ transform: _t, ...rest }) => rest);
      assert.equal((await read(list, 'basic')).text, JSON.stringify({ tasks: basic }));
    });
  }

  it('a list that fits one piece is one string: its answer goes out in one write', async () => {
    assert.equal(typeof taskListBody(tasks(200, false), 'full'), 'string', '200 tasks without permutations (~30 KB)');
    assert.equal(typeof taskListBody(tasks(400), 'basic'), 'string', 'the basic view of 400 tasks');
    assert.notEqual(typeof taskListBody(tasks(400), 'full'), 'string', '400 tasks with 200 permutations (~0.7 MB)');
  });

  it('a larger list waits a turn of the event loop between pieces: it never runs back to back', async () => {
    const { turns, pieces } = await read(tasks(400), 'full');
    assert.ok(pieces >= 10, `${pieces} pieces`);
    // One turn before each piece after the first; without the wait the whole list is read within a turn or two.
    assert.ok(turns >= pieces - 3, `${turns} turns of the event loop for ${pieces} pieces`);
  });
});
