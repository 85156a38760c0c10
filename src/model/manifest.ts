// manifest.json: the source of truth of a model directory (docs/model-format.md, "manifest.json").
// JSON text in UTF-8 that ends with a checksum line: the file is BODY + `  "checksum": "xxxxxxxx"\n}\n`,
// where xxxxxxxx is the CRC-32 (8 lowercase hex digits) of the bytes of BODY. So any changed byte,
// and any truncation, is detected before the JSON is even parsed.
import type { Architecture, ModelSpec } from '../contract/model.ts';
import { TASK_ID_PATTERN, type TaskInfo, type TaskTransform, isTaskId } from '../contract/task.ts';
import { validateArchitecture, weightCount } from '../core/architecture.ts';
import { PRNG_VERSION } from '../core/prng.ts';
import { FIT_SCORES, type FitScore, type OneExampleRule } from '../core/unknown-score.ts';
import { validateTransform } from '../data/transforms.ts';
import { crc32 } from './crc32.ts';
import { ModelFileError } from './errors.ts';
import { MASKS_HEADER_BYTES } from './mask-file.ts';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 'supsup-model';
export const MANIFEST_FORMAT_VERSION = 1;
/** Names a masks file may have: masks.bin, then masks.1.bin, masks.2.bin, … after each compaction. */
export const MASKS_FILE_PATTERN = /^masks(\.[1-9][0-9]{0,8})?\.bin$/;
/** Names a task log may have: tasks.log, then tasks.1.log, tasks.2.log, … after each checkpoint (task-log.ts). */
export const LOG_FILE_PATTERN = /^tasks(\.[1-9][0-9]{0,8})?\.log$/;
const FILE_ID_PATTERN = /^[0-9a-f]{16}$/;
const ISO_TIME_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const MAX_NAME = 256;
const MAX_DESCRIPTION = 4096;

/** A task as the manifest stores it. */
export interface TaskEntry extends TaskInfo {
  /** Index of the task's record among the committed records of the masks file (0-based). */
  record: number;
}

/** A record of the masks file whose task was removed; it stays until the next compaction. */
export interface RemovedRecord {
  id: string;
  record: number;
  removedAt: string;
}

export interface MasksRef {
  /** File name inside the model directory. */
  file: string;
  /** The 8-byte file id of the masks header, as 16 lowercase hex digits. */
  fileId: string;
  /** Committed length: bytes [0, bytes) hold the header and every record the manifest refers to. */
  bytes: number;
}

/**
 * The model's own unknown-task threshold: a batch is flagged unknown when k · max ν < 1 + epsilon. Optional;
 * readers without it use the paper's 1/8. `calibration` says how the value was chosen (the evidence), so an
 * operator can judge it; `supsup eval --save-epsilon` writes both.
 */
export interface UnknownTaskThreshold {
  epsilon: number;
  calibration: string;
  /**
   * The rule for a task decided from one example (core/unknown-score.ts), with its evidence; written by
   * `supsup eval --calibrate-unknown`. Absent: one-example decisions use k · max ν < 1 + epsilon as well.
   */
  oneExample?: OneExampleRule & { calibration: string };
}

/** The task log whose records apply on top of this manifest (task-log.ts). Absent in models written before the log. */
export interface LogRef {
  file: string;
  /** The 8-byte file id of the log header, as 16 lowercase hex digits. */
  fileId: string;
}

export interface Manifest extends ModelSpec {
  format: typeof MANIFEST_FORMAT;
  formatVersion: typeof MANIFEST_FORMAT_VERSION;
  prngVersion: number;
  unknownTask?: UnknownTaskThreshold;
  masks: MasksRef;
  log?: LogRef;
  tasks: TaskEntry[];
  removed: RemovedRecord[];
}

const CHECKSUM_HEAD = Buffer.from('  "checksum": "', 'ascii');
const CHECKSUM_TAIL = Buffer.from('"\n}\n', 'ascii');
const CHECKSUM_LINE_BYTES = CHECKSUM_HEAD.length + 8 + CHECKSUM_TAIL.length;

/** The exact bytes of manifest.json for `m` (arrays of plain values on one line, 2-space indent). */
export function serializeManifest(m: Manifest): Buffer {
  return sealJson(manifestFields(m));
}

/** serializeManifest's bytes a piece at a time (one per task), so a writer never holds the whole text; end with checksumLine. */
export function manifestPieces(m: Manifest): Generator<string> {
  return sealedBody(manifestFields(m));
}

function manifestFields(m: Manifest): Record<string, unknown> {
  const { format, formatVersion, architecture, seed, prngVersion, normalization, unknownTask, masks, log, tasks, removed } = m;
  return { format, formatVersion, architecture, seed, prngVersion, normalization, unknownTask, masks, log, tasks, removed };
}

/** Checks the checksum line, parses and validates. `file` names the file in errors. */
export function parseManifest(bytes: Uint8Array, file: string): Manifest {
  return validateManifest(unsealJson(bytes, file), file, true);
}

/** A JSON object as manifest bytes: 2-space-indented text whose last line is the CRC-32 of the rest (docs/model-format.md §4). */
export function sealJson(value: Record<string, unknown>): Buffer {
  const body = Buffer.from([...sealedBody(value)].join(''), 'utf8');
  return Buffer.concat([body, checksumLine(crc32(body))]);
}

/**
 * BODY of sealJson(value) in pieces: formatJson(value) without its final "\n}", plus ",\n" (where the checksum line
 * goes); each element of a top-level array of objects (a manifest's tasks) is a piece of its own.
 */
export function* sealedBody(value: Record<string, unknown>): Generator<string> {
  yield '{\n';
  for (const [k, x] of Object.entries(value)) {
    if (x === undefined) continue;
    const head = `  ${JSON.stringify(k)}: `;
    if (Array.isArray(x) && !x.every(isPlain)) {
      yield `${head}[\n`;
      for (let i = 0; i < x.length; i++) yield `    ${formatJson(x[i], '    ')}${i + 1 < x.length ? ',' : ''}\n`;
      yield '  ],\n';
    } else {
      yield `${head}${formatJson(x, '  ')},\n`;
    }
  }
}

/** The last line of a sealed file, for a BODY whose CRC-32 is `crc`. */
export function checksumLine(crc: number): Buffer {
  return Buffer.concat([CHECKSUM_HEAD, Buffer.from(crc.toString(16).padStart(8, '0'), 'ascii'), CHECKSUM_TAIL]);
}

/** Checks the checksum line of sealJson's output and parses it, without the `checksum` key; not validated. */
export function unsealJson(bytes: Uint8Array, file: string): unknown {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = buf.length;
  const hex = buf.subarray(n - CHECKSUM_TAIL.length - 8, n - CHECKSUM_TAIL.length).toString('latin1');
  if (
    n < CHECKSUM_LINE_BYTES + 2 ||
    !buf.subarray(n - CHECKSUM_LINE_BYTES, n - CHECKSUM_LINE_BYTES + CHECKSUM_HEAD.length).equals(CHECKSUM_HEAD) ||
    !buf.subarray(n - CHECKSUM_TAIL.length).equals(CHECKSUM_TAIL) ||
    !/^[0-9a-f]{8}$/.test(hex)
  ) {
    throw new ModelFileError(file, 'truncated or damaged: it does not end with the checksum line `  "checksum": "<8 hex digits>"` and `}`');
  }
  const actual = crc32(buf.subarray(0, n - CHECKSUM_LINE_BYTES));
  if (actual !== parseInt(hex, 16)) {
    throw new ModelFileError(
      file,
      `checksum mismatch (stored ${hex}, computed ${actual.toString(16).padStart(8, '0')}): the file is damaged or was edited by hand`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf));
  } catch (e) {
    throw new ModelFileError(file, `not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (isObject(value)) delete value.checksum;
  return value;
}

/**
 * Validates untrusted manifest data and returns a fresh typed copy; every problem is a ModelFileError for `file`.
 * `fresh`: `value` was just parsed and is referenced nowhere else, so its permutation arrays are kept, not copied.
 */
export function validateManifest(value: unknown, file: string, fresh = false): Manifest {
  const bad = (problem: string): never => {
    throw new ModelFileError(file, problem);
  };
  const o = object(value, 'the manifest', bad);
  onlyKeys(o, ['format', 'formatVersion', 'architecture', 'seed', 'prngVersion', 'normalization', 'unknownTask', 'masks', 'log', 'tasks', 'removed'], 'the manifest', bad);
  if (o.format !== MANIFEST_FORMAT) bad(`format is ${JSON.stringify(o.format)}, expected "${MANIFEST_FORMAT}"`);
  if (o.formatVersion !== MANIFEST_FORMAT_VERSION) {
    bad(`unsupported formatVersion ${JSON.stringify(o.formatVersion)} (this reader knows ${MANIFEST_FORMAT_VERSION})`);
  }
  const architecture = parseArchitecture(o.architecture, bad);
  if (!isUint32(o.seed)) bad(`seed must be an integer in [0, 2^32), got ${JSON.stringify(o.seed)}`);
  if (o.prngVersion !== PRNG_VERSION) {
    bad(`unsupported prngVersion ${JSON.stringify(o.prngVersion)} (this build implements PRNG version ${PRNG_VERSION})`);
  }

  const norm = object(o.normalization, 'normalization', bad);
  onlyKeys(norm, ['mean', 'std'], 'normalization', bad);
  if (!isFiniteNumber(norm.mean) || !isFiniteNumber(norm.std) || !((norm.std as number) > 0)) {
    bad(`normalization needs a finite mean and a finite positive std, got ${JSON.stringify(norm)}`);
  }

  const unknownTask = o.unknownTask === undefined ? undefined : parseUnknownTask(o.unknownTask, bad);

  const masksRef = object(o.masks, 'masks', bad);
  onlyKeys(masksRef, ['file', 'fileId', 'bytes'], 'masks', bad);
  if (typeof masksRef.file !== 'string' || !MASKS_FILE_PATTERN.test(masksRef.file)) {
    bad(`masks.file ${JSON.stringify(masksRef.file)} is not a masks file name (masks.bin or masks.<n>.bin)`);
  }
  if (typeof masksRef.fileId !== 'string' || !FILE_ID_PATTERN.test(masksRef.fileId)) {
    bad(`masks.fileId must be 16 lowercase hex digits, got ${JSON.stringify(masksRef.fileId)}`);
  }
  if (!Number.isSafeInteger(masksRef.bytes) || (masksRef.bytes as number) < MASKS_HEADER_BYTES) {
    bad(`masks.bytes must be an integer >= ${MASKS_HEADER_BYTES}, got ${JSON.stringify(masksRef.bytes)}`);
  }

  let log: LogRef | undefined;
  if (o.log !== undefined) {
    const l = object(o.log, 'log', bad);
    onlyKeys(l, ['file', 'fileId'], 'log', bad);
    if (typeof l.file !== 'string' || !LOG_FILE_PATTERN.test(l.file)) bad(`log.file ${JSON.stringify(l.file)} is not a task log name (tasks.log or tasks.<n>.log)`);
    if (typeof l.fileId !== 'string' || !FILE_ID_PATTERN.test(l.fileId)) bad(`log.fileId must be 16 lowercase hex digits, got ${JSON.stringify(l.fileId)}`);
    log = { file: l.file as string, fileId: l.fileId as string };
  }

  if (!Array.isArray(o.tasks)) bad('tasks must be an array');
  if (!Array.isArray(o.removed)) bad('removed must be an array');
  const recordCount = (o.tasks as unknown[]).length + (o.removed as unknown[]).length;
  const recordUse: string[] = [];
  const useRecord = (r: unknown, what: string) => {
    if (!Number.isInteger(r) || (r as number) < 0 || (r as number) >= recordCount) {
      bad(`${what}: record must be an integer in [0, ${recordCount}) (one record per task or removed entry), got ${JSON.stringify(r)}`);
    }
    const prior = recordUse[r as number];
    if (prior !== undefined) bad(`${what}: record ${r} is also used by ${prior}`);
    recordUse[r as number] = what;
  };

  const ids = new Set<string>();
  const tasks = (o.tasks as unknown[]).map((t, i): TaskEntry => {
    const entry = validateTaskEntry(t, `tasks[${i}]`, architecture.inputSize, bad, fresh);
    if (ids.has(entry.id)) bad(`duplicate task id '${entry.id}' (tasks[${i}])`);
    ids.add(entry.id);
    useRecord(entry.record, `task '${entry.id}'`);
    return entry;
  });

  const removed = (o.removed as unknown[]).map((r, i): RemovedRecord => {
    const entry = validateRemovedRecord(r, `removed[${i}]`, bad);
    useRecord(entry.record, `removed[${i}] (removed task '${entry.id}')`);
    return entry;
  });

  return {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_FORMAT_VERSION,
    architecture,
    seed: o.seed as number,
    prngVersion: o.prngVersion as number,
    normalization: { mean: norm.mean as number, std: norm.std as number },
    ...(unknownTask ? { unknownTask } : {}),
    masks: { file: masksRef.file as string, fileId: masksRef.fileId as string, bytes: masksRef.bytes as number },
    ...(log ? { log } : {}),
    tasks,
    removed,
  };
}

/** One task entry of untrusted data (a manifest's `tasks[i]`, a task log record's task), checked alone; `record` only as a non-negative integer. */
export function validateTaskEntry(t: unknown, where: string, inputSize: number, bad: (p: string) => never, fresh = false): TaskEntry {
  const e = object(t, where, bad);
  onlyKeys(e, ['id', 'name', 'description', 'addedAt', 'density', 'record', 'transform'], where, bad);
  const id = taskId(e.id, where, bad);
  const what = `task '${id}'`;
  if (typeof e.name !== 'string' || e.name.length === 0 || e.name.length > MAX_NAME) {
    bad(`${what}: name must be a string of 1..${MAX_NAME} characters`);
  }
  if (e.description !== undefined && (typeof e.description !== 'string' || e.description.length > MAX_DESCRIPTION)) {
    bad(`${what}: description must be a string of at most ${MAX_DESCRIPTION} characters`);
  }
  isoTime(e.addedAt, `${what}: addedAt`, bad);
  if (!isFiniteNumber(e.density) || (e.density as number) < 0 || (e.density as number) > 1) {
    bad(`${what}: density must be a number in [0, 1], got ${JSON.stringify(e.density)}`);
  }
  if (!Number.isSafeInteger(e.record) || (e.record as number) < 0) bad(`${what}: record must be a non-negative integer, got ${JSON.stringify(e.record)}`);
  let transform: TaskTransform;
  try {
    transform = validateTransform(e.transform, inputSize, fresh);
  } catch (err) {
    return bad(`${what}: bad transform: ${(err as Error).message}`);
  }
  return {
    id,
    name: e.name as string,
    ...(e.description !== undefined ? { description: e.description as string } : {}),
    addedAt: e.addedAt as string,
    density: e.density as number,
    record: e.record as number,
    transform,
  };
}

/** One removed-record entry of untrusted data, checked alone. */
export function validateRemovedRecord(r: unknown, where: string, bad: (p: string) => never): RemovedRecord {
  const e = object(r, where, bad);
  onlyKeys(e, ['id', 'record', 'removedAt'], where, bad);
  const id = taskId(e.id, where, bad);
  isoTime(e.removedAt, `${where}: removedAt`, bad);
  if (!Number.isSafeInteger(e.record) || (e.record as number) < 0) bad(`${where}: record must be a non-negative integer, got ${JSON.stringify(e.record)}`);
  return { id, record: e.record as number, removedAt: e.removedAt as string };
}

export function parseArchitecture(value: unknown, bad: (p: string) => never): Architecture {
  const a = object(value, 'architecture', bad);
  onlyKeys(a, ['inputSize', 'hidden', 'outputs', 'classes'], 'architecture', bad);
  const arch = {
    inputSize: a.inputSize,
    hidden: Array.isArray(a.hidden) ? [...a.hidden] : a.hidden,
    outputs: a.outputs,
    classes: a.classes,
  } as Architecture;
  try {
    validateArchitecture(arch);
  } catch (e) {
    return bad(`bad architecture: ${(e as Error).message}`);
  }
  const p = weightCount(arch);
  if (p > 0xffffffff) bad(`bad architecture: ${p} weights do not fit the masks file's 32-bit weight count`);
  return arch;
}

export function parseUnknownTask(value: unknown, bad: (p: string) => never): UnknownTaskThreshold {
  const u = object(value, 'unknownTask', bad);
  onlyKeys(u, ['epsilon', 'calibration', 'oneExample'], 'unknownTask', bad);
  if (!isFiniteNumber(u.epsilon) || u.epsilon < 0) bad(`unknownTask.epsilon must be a finite number >= 0, got ${JSON.stringify(u.epsilon)}`);
  if (typeof u.calibration !== 'string' || u.calibration.length === 0 || u.calibration.length > MAX_DESCRIPTION) {
    bad(`unknownTask.calibration must be a string of 1..${MAX_DESCRIPTION} characters saying how epsilon was chosen`);
  }
  const threshold = { epsilon: u.epsilon as number, calibration: u.calibration as string };
  return u.oneExample === undefined ? threshold : { ...threshold, oneExample: parseOneExample(u.oneExample, bad) };
}

function parseOneExample(value: unknown, bad: (p: string) => never): OneExampleRule & { calibration: string } {
  const o = object(value, 'unknownTask.oneExample', bad);
  onlyKeys(o, ['score', 'candidates', 'threshold', 'calibration'], 'unknownTask.oneExample', bad);
  if (!FIT_SCORES.includes(o.score as FitScore)) bad(`unknownTask.oneExample.score must be one of ${FIT_SCORES.join(', ')}, got ${JSON.stringify(o.score)}`);
  if (!Number.isInteger(o.candidates) || (o.candidates as number) < 1) bad(`unknownTask.oneExample.candidates must be an integer >= 1, got ${JSON.stringify(o.candidates)}`);
  if (!isFiniteNumber(o.threshold)) bad(`unknownTask.oneExample.threshold must be a finite number, got ${JSON.stringify(o.threshold)}`);
  if (typeof o.calibration !== 'string' || o.calibration.length === 0 || o.calibration.length > MAX_DESCRIPTION) {
    bad(`unknownTask.oneExample.calibration must be a string of 1..${MAX_DESCRIPTION} characters saying how the threshold was chosen`);
  }
  return { score: o.score as FitScore, candidates: o.candidates as number, threshold: o.threshold as number, calibration: o.calibration as string };
}

function taskId(v: unknown, where: string, bad: (p: string) => never): string {
  if (!isTaskId(v)) {
    bad(`${where}: task id ${JSON.stringify(v)} does not match ${TASK_ID_PATTERN}`);
  }
  return v as string;
}

function isoTime(v: unknown, what: string, bad: (p: string) => never): void {
  if (typeof v !== 'string' || !ISO_TIME_PATTERN.test(v) || !Number.isFinite(Date.parse(v))) {
    bad(`${what} must be an ISO 8601 UTC time like 2024-01-31T12:00:00.000Z, got ${JSON.stringify(v)}`);
  }
}

export function object(v: unknown, what: string, bad: (p: string) => never): Record<string, unknown> {
  if (!isObject(v)) bad(`${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

export function onlyKeys(o: Record<string, unknown>, keys: string[], what: string, bad: (p: string) => never): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) bad(`${what} has an unknown field ${JSON.stringify(k)}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function isUint32(v: unknown): boolean {
  return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;
}

const isPlain = (x: unknown) => x === null || typeof x !== 'object';

/** JSON with 2-space indent, but arrays of plain values (permutations, hidden sizes) on one line. */
function formatJson(v: unknown, indent: string): string {
  const inner = indent + '  ';
  if (Array.isArray(v)) {
    if (v.every(isPlain)) return `[${v.map((x) => JSON.stringify(x)).join(', ')}]`;
    return `[\n${v.map((x) => inner + formatJson(x, inner)).join(',\n')}\n${indent}]`;
  }
  if (isObject(v)) {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${formatJson(x, inner)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(v);
}
