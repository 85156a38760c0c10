// Child process of `supsup train --workers N`: trains the task indices the parent sends, one at a time,
// and sends back each finished mask. It never touches the model directory: the parent appends.
//
// Protocol (process.send / 'message'):
//   parent → child  { type: 'init', init: WorkerInit } then { type: 'task', index } … { type: 'stop' }
//   child → parent  { type: 'ready' } | { type: 'progress', index, progress } |
//                   { type: 'done', index, mask: number[], stats } | { type: 'error', message }
import { TaskTrainer } from './task-trainer.ts';
import { type WorkerInit } from './task-plan.ts';
import { type TaskStats, type TrainProgress } from './trainer.ts';

export type ToWorker = { type: 'init'; init: WorkerInit } | { type: 'task'; index: number } | { type: 'stop' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'progress'; index: number; progress: TrainProgress }
  | { type: 'done'; index: number; mask: number[]; stats: TaskStats }
  | { type: 'error'; message: string };

const send = (m: FromWorker) => process.send!(m);

if (process.send) {
  let trainer: TaskTrainer | undefined;
  process.on('message', (m: ToWorker) => {
    void (async () => {
      try {
        if (m.type === 'init') {
          trainer = await TaskTrainer.create(m.init);
          send({ type: 'ready' });
        } else if (m.type === 'task') {
          if (!trainer) throw new Error('task before init');
          const r = trainer.train(m.index, (progress) => send({ type: 'progress', index: m.index, progress }));
          const { mask, scores: _scores, ...stats } = r;
          send({ type: 'done', index: m.index, mask: Array.from(mask), stats });
        } else if (m.type === 'stop') {
          process.disconnect();
        }
      } catch (e) {
        send({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
        process.disconnect();
      }
    })();
  });
  process.on('disconnect', () => process.exit(0));
}
