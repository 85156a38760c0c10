// The whole task list written in pieces (service/http/task-list-stream.ts): the same JSON one JSON.stringify gives,
// with a turn of the event loop between pieces, so other requests are served while a large list is written.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TaskInfo } from '../src/contract/task.ts';
import { taskListStream } from '../src/service/http/task-list-stream.ts';

function tasks(n: number): TaskInfo[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `t${i}`,
    name: `Permuted ${i}`,
    ...(i % 3 === 0 ? { description: 'every third has one' } : {}),
    addedAt: '2026-12-03T08:00:00.000Z',
    density: 0.5 + i / 1000,
    transform: i % 2 ? { kind: 'permutation' as const, seed: i, permutation: Array.from({ length: 784 }, (_, j) => (j * 7 + i) % 784) } : { kind: 'identity' as const },
  }));
}

/** The stream's text, and how many turns of the event loop passed while it was read. */
async function read(list: TaskInfo[], view: 'full' | 'basic'): Promise<{ text: string; turns: number; pieces: number }> {
  let turns = 0, running = true;
  const tick = () => {
    turns++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  let text = '', pieces = 0;
  for await (const piece of taskListStream(list, view)) {
    text += String(piece);
    pieces++;
  }
  running = false;
  return { text, turns, pieces };
}

describe('task list stream', () => {
  for (const n of [0, 1, 16, 17, 100]) {
    it(`${n} tasks: exactly JSON.stringify({ tasks }), in both views`, async () => {
      const list = tasks(n);
      assert.equal((await read(list, 'full')).text, JSON.stringify({ tasks: list }));
      const basic = list.map(({ transform: _t, ...rest }) => rest);
      assert.equal((await read(list, 'basic')).text, JSON.stringify({ tasks: basic }));
    });
  }

  it('waits a turn of the event loop between pieces: a long list never runs back to back', async () => {
    const { turns, pieces } = await read(tasks(400), 'full');
    assert.ok(pieces >= 20, `${pieces} pieces`);
    // One turn per piece after the first; without the wait the whole list is read within a turn or two.
    assert.ok(turns >= pieces - 3, `${turns} turns of the event loop for ${pieces} pieces`);
  });
});
