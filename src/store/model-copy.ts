import { access } from 'node:fs/promises';
import * as path from 'node:path';
import { type Architecture, maskWords, weightCount } from '../core/architecture.ts';
import { MANIFEST_FILE, type Manifest } from '../model/manifest.ts';
import { encodeRecord, readRecords } from '../model/mask-file.ts';
import { ModelFileError } from '../model/errors.ts';
import { appendTasks, createModel, loadModel, removeTask, setUnknownTaskThreshold } from '../model/model-store.ts';
import { type TaskInfo, type TaskSpec, taskInfo } from '../contract/task.ts';
import { type ModelBase, type PostgresTaskStore, RECORD_HEAD_BYTES, type Snapshot, type StoredTask, sameBase } from './postgres-task-store.ts';

/**
 * Copies between a model directory and the task store, in both directions, by difference: only tasks
 * missing on one side (or whose mask differs) move. Every mask read from the store is verified as a
 * masks-file record (CRC-32 of header and payload, word count, padding) before it is written anywhere.
 */
const BATCH = 64;

/** A stored task's mask, verified end to end; a ModelFileError naming the task when its blob is damaged. */
export function verifiedMask(task: StoredTask, architecture: Architecture, model: string): Uint32Array {
  const where = `task store, model "${model}", task "${task.id}"`;
  const records = readRecords(task.record, where, 0, task.record.length, maskWords(architecture), weightCount(architecture));
  if (records.length !== 1) throw new ModelFileError(where, `the blob holds ${records.length} records, expected 1`);
  if (records[0].id !== task.id) throw new ModelFileError(where, `the blob is the mask of task "${records[0].id}"`);
  return records[0].mask;
}

/** The task as a caller would give it, to add a stored task through the engine (the same path a local PUT takes). */
export function taskSpecOf(info: TaskInfo): TaskSpec {
  const { id, name, description, transform, addedAt } = info;
  return { id, name, ...(description !== undefined ? { description } : {}), transform, addedAt };
}

/** The first bytes of the record of `mask`, which identify its content (compared with the store's). */
export function recordHead(id: string, mask: Uint32Array): Buffer {
  return encodeRecord(id, mask).subarray(0, RECORD_HEAD_BYTES);
}

export function baseOf(m: Manifest): ModelBase {
  const { architecture, seed, prngVersion, normalization, unknownTask } = m;
  return { architecture, seed, prngVersion, normalization, ...(unknownTask ? { unknownTask } : {}) };
}

export async function holdsModel(dir: string): Promise<boolean> {
  return access(path.join(dir, MANIFEST_FILE)).then(
    () => true,
    () => false,
  );
}

export interface CopyReport {
  added: number;
  removed: number;
  /** Tasks whose blob failed verification: not copied. */
  refused: { id: string; reason: string }[];
}

/**
 * Makes the model directory `dir` hold exactly the snapshot's tasks (creating it when absent). Used by a
 * replica before it starts serving, and by `supsup store pull`. A directory holding another model is refused.
 */
export async function pullInto(dir: string, store: PostgresTaskStore, snapshot: Snapshot): Promise<CopyReport> {
  const { base } = snapshot;
  if (!(await holdsModel(dir))) {
    await createModel(dir, base);
    if (base.unknownTask) await setUnknownTaskThreshold(dir, base.unknownTask);
  }
  const local = await loadModel(dir);
  if (!sameBase(baseOf(local.manifest), base)) {
    throw new Error(`${dir} holds another model than the store's "${store.model}" (architecture, seed or normalization differ): give the replica an empty directory`);
  }
  const wanted = new Map(snapshot.tasks.map((t) => [t.id, t.head]));
  const report: CopyReport = { added: 0, removed: 0, refused: [] };
  for (const t of local.manifest.tasks) {
    const head = wanted.get(t.id);
    if (head && recordHead(t.id, local.masks.get(t.id)!).subarray(0, head.length).equals(head)) {
      wanted.delete(t.id);
      continue;
    }
    await removeTask(dir, t.id);
    report.removed++;
  }
  const missing = [...wanted.keys()];
  for (let i = 0; i < missing.length; i += BATCH) {
    const items = [];
    for (const task of await store.tasks(missing.slice(i, i + BATCH))) {
      try {
        const mask = verifiedMask(task, base.architecture, store.model);
        items.push({ task: taskSpecOf(task.info), mask });
      } catch (e) {
        report.refused.push({ id: task.id, reason: (e as Error).message });
      }
    }
    if (items.length) await appendTasks(dir, items);
    report.added += items.length;
  }
  return report;
}

/**
 * `supsup store push`: copies the model directory's tasks into the store (creating the model there),
 * skipping tasks the store already holds with the same mask. A task the store holds with another mask is refused.
 */
export async function pushFrom(dir: string, store: PostgresTaskStore): Promise<CopyReport> {
  const { manifest, masks } = await loadModel(dir);
  await store.migrate();
  await store.createModel(baseOf(manifest));
  const stored = new Map((await store.snapshot()).tasks.map((t) => [t.id, t.head]));
  const report: CopyReport = { added: 0, removed: 0, refused: [] };
  const items: { info: TaskInfo; record: Buffer }[] = [];
  for (const t of manifest.tasks) {
    const record = encodeRecord(t.id, masks.get(t.id)!);
    const head = stored.get(t.id);
    if (head && !record.subarray(0, head.length).equals(head)) {
      report.refused.push({ id: t.id, reason: `the store already holds task "${t.id}" with another mask` });
    } else if (!head) {
      items.push({ info: taskInfo(t), record });
    }
  }
  for (let i = 0; i < items.length; i += BATCH) await store.addTasks(items.slice(i, i + BATCH));
  report.added = items.length;
  return report;
}
