// The task log (docs/model-format.md §4a): an append-only, checksummed file of task changes that apply on top
// of manifest.json, so adding or removing a task writes one small record instead of the whole manifest. A
// checkpoint folds the log into a new manifest and starts an empty log (model-store.ts).
//
// Header:  0 magic "SUPSUPTL" | 8 u32 version | 12 8-byte file id | 20 u32 CRC-32 of bytes 0..19
// Record:  0 magic "TLOG" | 4 u32 payload length N | 8 u32 CRC-32 of bytes 0..7 and the payload | 12 payload
//          (N bytes of UTF-8 JSON: one LogEntry)
// A record that fails its checks is a torn tail (a write a crash cut short, never acknowledged; dropped) only
// when it looks like one: cut off by the end of the file, or holding zero bytes where a whole record has none
// (the magic, the length, the JSON payload: blocks the crash never wrote read as zeros), and no valid record
// follows it. Any other failure is damage, and an error.
import { crc32 } from './crc32.ts';
import { ModelFileError } from './errors.ts';
import {
  type Manifest,
  type RemovedRecord,
  type TaskEntry,
  type UnknownTaskThreshold,
  object,
  onlyKeys,
  parseUnknownTask,
  validateRemovedRecord,
  validateTaskEntry,
} from './manifest.ts';

export const LOG_MAGIC = Buffer.from('SUPSUPTL', 'ascii');
export const LOG_FORMAT_VERSION = 1;
export const LOG_HEADER_BYTES = 24;
export const LOG_RECORD_MAGIC = Buffer.from('TLOG', 'ascii');
export const LOG_RECORD_FIXED_BYTES = 12;

/** One change: tasks appended (all or none; the masks file's committed length after them), a task removed, the threshold set or cleared. */
export type LogEntry =
  | { op: 'add'; tasks: TaskEntry[]; masksBytes: number }
  | { op: 'remove'; removed: RemovedRecord }
  | { op: 'threshold'; unknownTask: UnknownTaskThreshold | null };

export function encodeLogHeader(fileId: string): Buffer {
  const b = Buffer.alloc(LOG_HEADER_BYTES);
  LOG_MAGIC.copy(b, 0);
  b.writeUInt32LE(LOG_FORMAT_VERSION, 8);
  Buffer.from(fileId, 'hex').copy(b, 12);
  b.writeUInt32LE(crc32(b.subarray(0, 20)), 20);
  return b;
}

export function encodeLogRecord(entry: LogEntry): Buffer {
  const payload = Buffer.from(JSON.stringify(entry), 'utf8');
  const b = Buffer.alloc(LOG_RECORD_FIXED_BYTES + payload.length);
  LOG_RECORD_MAGIC.copy(b, 0);
  b.writeUInt32LE(payload.length, 4);
  payload.copy(b, LOG_RECORD_FIXED_BYTES);
  b.writeUInt32LE(recordCrc(b), 8);
  return b;
}

function recordCrc(record: Buffer): number {
  return crc32(Buffer.concat([record.subarray(0, 8), record.subarray(LOG_RECORD_FIXED_BYTES)]));
}

/** The whole record at `pos` if its magic, length and CRC hold, else undefined. */
function recordAt(buf: Buffer, pos: number): Buffer | undefined {
  if (pos + LOG_RECORD_FIXED_BYTES > buf.length || !buf.subarray(pos, pos + 4).equals(LOG_RECORD_MAGIC)) return undefined;
  const end = pos + LOG_RECORD_FIXED_BYTES + buf.readUInt32LE(pos + 4);
  if (end > buf.length) return undefined;
  const rec = buf.subarray(pos, end);
  return recordCrc(rec) === rec.readUInt32LE(8) ? rec : undefined;
}

/** Whether the failing record at `pos` is what an interrupted write leaves: cut short by the end of the file, or with unwritten (zero) bytes where a record has none. */
function looksTorn(buf: Buffer, pos: number): boolean {
  if (pos + LOG_RECORD_FIXED_BYTES > buf.length || buf.subarray(pos, pos + 4).includes(0)) return true;
  const n = buf.readUInt32LE(pos + 4);
  const end = pos + LOG_RECORD_FIXED_BYTES + n;
  return n === 0 || end > buf.length || buf.subarray(pos + LOG_RECORD_FIXED_BYTES, end).includes(0);
}

export interface ReadLog {
  entries: unknown[];
  /** Length of the valid prefix (header + whole records); a torn tail starts here. */
  end: number;
}

/** Checks the header against the manifest's file id and reads every whole record; a torn tail is left out. */
export function readLog(buf: Buffer, file: string, fileId: string): ReadLog {
  const bad = (problem: string): never => {
    throw new ModelFileError(file, problem);
  };
  if (buf.length < LOG_HEADER_BYTES) bad(`truncated: ${buf.length} bytes, a task log header is ${LOG_HEADER_BYTES}`);
  if (!buf.subarray(0, 8).equals(LOG_MAGIC)) bad('not a task log (bad magic)');
  if (crc32(buf.subarray(0, 20)) !== buf.readUInt32LE(20)) bad('header checksum mismatch: the header is damaged');
  if (buf.readUInt32LE(8) !== LOG_FORMAT_VERSION) bad(`unsupported task log version ${buf.readUInt32LE(8)} (this reader knows ${LOG_FORMAT_VERSION})`);
  const id = buf.subarray(12, 20).toString('hex');
  if (id !== fileId) bad(`file id ${id} does not match the manifest's log.fileId ${fileId}: this log belongs to another manifest`);
  const entries: unknown[] = [];
  let pos = LOG_HEADER_BYTES;
  while (pos < buf.length) {
    const rec = recordAt(buf, pos);
    if (!rec) {
      for (let q = buf.indexOf(LOG_RECORD_MAGIC, pos + 1); q >= 0; q = buf.indexOf(LOG_RECORD_MAGIC, q + 1)) {
        if (recordAt(buf, q)) bad(`record at byte ${pos} is damaged, and a valid record follows at byte ${q}: not a torn tail`);
      }
      if (!looksTorn(buf, pos)) bad(`record at byte ${pos} is damaged (bad magic or checksum), and it is whole: not a torn tail`);
      break; // the last write, cut short before it was acknowledged
    }
    let value: unknown;
    try {
      value = JSON.parse(rec.subarray(LOG_RECORD_FIXED_BYTES).toString('utf8'));
    } catch (e) {
      return bad(`record at byte ${pos} holds no valid JSON: ${(e as Error).message}`);
    }
    entries.push(value);
    pos += rec.length;
  }
  return { entries, end: pos };
}

/**
 * Applies one untrusted log entry to `m` (the manifest as of the entries before it), in place; `live` indexes
 * m.tasks by id and is kept in step. Every rule a manifest obeys still holds afterwards, or it throws.
 */
export function applyLogEntry(m: Manifest, live: Map<string, TaskEntry>, value: unknown, file: string, where: string): void {
  const bad = (problem: string): never => {
    throw new ModelFileError(file, `${where}: ${problem}`);
  };
  const e = object(value, 'the entry', bad);
  const records = () => m.tasks.length + m.removed.length;
  if (e.op === 'add') {
    onlyKeys(e, ['op', 'tasks', 'masksBytes'], 'an add entry', bad);
    if (!Array.isArray(e.tasks) || e.tasks.length === 0) bad('an add entry needs a non-empty tasks array');
    if (!Number.isSafeInteger(e.masksBytes) || (e.masksBytes as number) < m.masks.bytes) {
      bad(`masksBytes must be an integer >= the committed length before it (${m.masks.bytes}), got ${JSON.stringify(e.masksBytes)}`);
    }
    for (const [i, t] of (e.tasks as unknown[]).entries()) {
      const entry = validateTaskEntry(t, `tasks[${i}]`, m.architecture.inputSize, bad);
      if (live.has(entry.id)) bad(`task '${entry.id}' is added twice`);
      if (entry.record !== records()) bad(`task '${entry.id}' has record ${entry.record}, the next record is ${records()}`);
      m.tasks.push(entry);
      live.set(entry.id, entry);
    }
    m.masks = { ...m.masks, bytes: e.masksBytes as number };
  } else if (e.op === 'remove') {
    onlyKeys(e, ['op', 'removed'], 'a remove entry', bad);
    const r = validateRemovedRecord(e.removed, 'removed', bad);
    const task = live.get(r.id);
    if (!task || task.record !== r.record) bad(`removes task '${r.id}' (record ${r.record}), which is not a live task with that record`);
    m.tasks.splice(m.tasks.indexOf(task!), 1);
    live.delete(r.id);
    m.removed.push(r);
  } else if (e.op === 'threshold') {
    onlyKeys(e, ['op', 'unknownTask'], 'a threshold entry', bad);
    if (e.unknownTask === null) delete m.unknownTask;
    else m.unknownTask = parseUnknownTask(e.unknownTask, bad);
  } else {
    bad(`unknown op ${JSON.stringify(e.op)}`);
  }
}
