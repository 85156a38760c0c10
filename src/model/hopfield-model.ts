// A HopSupSup model directory (docs/model-format.md §8): manifest.json (kind "supsup-hopfield-model", same
// checksum line as every manifest) + one reservoir file holding, per hidden layer, Ψ and the sum of the
// stored patterns. Task masks are not stored; each task keeps only a short cue (its mask bits at `cueBits`
// evenly spaced neurons per layer) so that a task id can address the reservoir. Every change replaces the
// whole reservoir file under a new name, then the manifest, then deletes the old file: a crash leaves the
// old model or the new one.
import { mkdir, open, readFile, readdir, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { invalid, taskExists } from '../contract/errors.ts';
import { TASK_ID_PATTERN, checkTaskId } from '../contract/task.ts';
import type { Architecture } from '../core/architecture.ts';
import { HopfieldReservoir, STORAGE_RULES, type StorageRule } from '../core/hopfield-reservoir.ts';
import { PRNG_VERSION } from '../core/prng.ts';
import { crc32 } from './crc32.ts';
import { type FaultHook, fsyncDir, replaceFileAtomically, stepper, writeFileDurably } from './durable-fs.ts';
import { ModelFileError } from './errors.ts';
import { MANIFEST_FILE, object, onlyKeys, parseArchitecture, sealJson, unsealJson } from './manifest.ts';
import { architectureFingerprint, newFileId } from './mask-file.ts';
import { withWriteLock } from './model-store.ts';

export const HOPFIELD_FORMAT = 'supsup-hopfield-model';
export const HOPFIELD_FORMAT_VERSION = 1;
export const RESERVOIR_MAGIC = Buffer.from('SUPSUPHF', 'ascii');
export const RESERVOIR_FORMAT_VERSION = 1;
export const RESERVOIR_HEADER_BYTES = 40;
const RESERVOIR_FILE_PATTERN = /^reservoir(\.[1-9][0-9]{0,8})?\.bin$/;
const FILE_ID_PATTERN = /^[0-9a-f]{16}$/;

export interface HopfieldTask {
  id: string;
  name: string;
  addedAt: string;
  /** Hex of the cue bits: per layer, ceil(cueBits / 8) bytes, neuron k of the cue is bit (k & 7) of byte k >>> 3. */
  cue: string;
}

export interface HopfieldManifest {
  format: typeof HOPFIELD_FORMAT;
  formatVersion: typeof HOPFIELD_FORMAT_VERSION;
  architecture: Architecture;
  seed: number;
  prngVersion: number;
  rule: StorageRule;
  /** Cue bits kept per hidden layer and task. */
  cueBits: number;
  reservoir: { file: string; fileId: string; bytes: number; patterns: number };
  tasks: HopfieldTask[];
}

export interface HopfieldModel {
  manifest: HopfieldManifest;
  /** One per hidden layer. */
  reservoirs: HopfieldReservoir[];
}

export interface HopfieldInit {
  architecture: Architecture;
  seed: number;
  rule: StorageRule;
  cueBits: number;
}

export interface NewHopfieldTask {
  id: string;
  name: string;
  /** One 0/1 mask per hidden layer. */
  masks: Uint8Array[];
  addedAt?: string;
}

/** The neurons whose bits form a task's cue: floor(k · d / cueBits) for k < cueBits. */
export function cueNeurons(d: number, cueBits: number): number[] {
  return Array.from({ length: cueBits }, (_, k) => Math.floor((k * d) / cueBits));
}

/** A task's cue for one layer as the (neuron → ±1) map HopfieldReservoir.recallFromCue takes. */
export function cueOfTask(manifest: HopfieldManifest, task: HopfieldTask, layer: number): Map<number, number> {
  const bytesPerLayer = Math.ceil(manifest.cueBits / 8);
  const bytes = Buffer.from(task.cue, 'hex').subarray(layer * bytesPerLayer, (layer + 1) * bytesPerLayer);
  const cue = new Map<number, number>();
  cueNeurons(manifest.architecture.hidden[layer], manifest.cueBits).forEach((n, k) => cue.set(n, (bytes[k >>> 3] >>> (k & 7)) & 1 ? 1 : -1));
  return cue;
}

function encodeCue(masks: Uint8Array[], cueBits: number): string {
  const bytesPerLayer = Math.ceil(cueBits / 8);
  const out = Buffer.alloc(bytesPerLayer * masks.length);
  masks.forEach((m, l) => cueNeurons(m.length, cueBits).forEach((n, k) => (out[l * bytesPerLayer + (k >>> 3)] |= m[n] << (k & 7))));
  return out.toString('hex');
}

/** Bytes of the reservoir file for an architecture: header + per layer (d sums, d(d+1)/2 floats, CRC). */
export function reservoirFileBytes(architecture: Architecture): number {
  return architecture.hidden.reduce((n, d) => n + 4 * d + 2 * d * (d + 1) + 4, RESERVOIR_HEADER_BYTES);
}

export function encodeReservoirFile(manifest: HopfieldManifest, reservoirs: HopfieldReservoir[]): Buffer {
  const { architecture, seed, prngVersion, rule } = manifest;
  const out = Buffer.alloc(reservoirFileBytes(architecture));
  RESERVOIR_MAGIC.copy(out, 0);
  out.writeUInt32LE(RESERVOIR_FORMAT_VERSION, 8);
  out.writeUInt32LE(architectureFingerprint(architecture, seed, prngVersion), 12);
  out.writeUInt32LE(reservoirs.length, 16);
  out.writeUInt32LE(manifest.reservoir.patterns, 20);
  out.writeUInt32LE(STORAGE_RULES.indexOf(rule), 24);
  Buffer.from(manifest.reservoir.fileId, 'hex').copy(out, 28);
  out.writeUInt32LE(crc32(out.subarray(0, 36)), 36);
  let o = RESERVOIR_HEADER_BYTES;
  for (const r of reservoirs) {
    const start = o;
    const d = r.size;
    for (let i = 0; i < d; i++, o += 4) out.writeInt32LE(r.patternSum[i], o);
    for (let i = 0; i < d; i++) for (let j = i; j < d; j++, o += 4) out.writeFloatLE(r.weights[i * d + j], o);
    out.writeUInt32LE(crc32(out.subarray(start, o)), o);
    o += 4;
  }
  return out;
}

export function decodeReservoirFile(buf: Buffer, file: string, manifest: HopfieldManifest): HopfieldReservoir[] {
  const bad = (problem: string): never => {
    throw new ModelFileError(file, problem);
  };
  const { architecture, seed, prngVersion } = manifest;
  if (buf.length < RESERVOIR_HEADER_BYTES) bad(`truncated: ${buf.length} bytes, shorter than the ${RESERVOIR_HEADER_BYTES}-byte header`);
  if (!buf.subarray(0, 8).equals(RESERVOIR_MAGIC)) bad('not a reservoir file (bad magic)');
  if (buf.readUInt32LE(36) !== crc32(buf.subarray(0, 36))) bad('header checksum mismatch: the header is damaged');
  if (buf.readUInt32LE(8) !== RESERVOIR_FORMAT_VERSION) bad(`unsupported reservoir format version ${buf.readUInt32LE(8)}`);
  if (buf.readUInt32LE(12) !== architectureFingerprint(architecture, seed, prngVersion)) {
    bad("architecture fingerprint mismatch: the file was written for another base network than the manifest's");
  }
  if (buf.readUInt32LE(16) !== architecture.hidden.length) bad(`holds ${buf.readUInt32LE(16)} layers, the architecture has ${architecture.hidden.length}`);
  if (buf.readUInt32LE(20) !== manifest.reservoir.patterns) bad(`holds ${buf.readUInt32LE(20)} patterns, the manifest says ${manifest.reservoir.patterns}`);
  if (buf.readUInt32LE(24) !== STORAGE_RULES.indexOf(manifest.rule)) bad(`storage rule code ${buf.readUInt32LE(24)} is not the manifest's "${manifest.rule}"`);
  if (buf.subarray(28, 36).toString('hex') !== manifest.reservoir.fileId) bad("file id differs from the manifest's: this file belongs to another manifest");
  const expected = reservoirFileBytes(architecture);
  if (buf.length !== expected) bad(`${buf.length} bytes, expected exactly ${expected}${buf.length < expected ? ' (truncated)' : ''}`);
  let o = RESERVOIR_HEADER_BYTES;
  return architecture.hidden.map((d, l) => {
    const start = o;
    const sum = new Int32Array(d);
    for (let i = 0; i < d; i++, o += 4) sum[i] = buf.readInt32LE(o);
    const w = new Float32Array(d * d);
    for (let i = 0; i < d; i++) {
      for (let j = i; j < d; j++, o += 4) {
        const v = buf.readFloatLE(o);
        w[i * d + j] = v;
        w[j * d + i] = v;
      }
    }
    if (buf.readUInt32LE(o) !== crc32(buf.subarray(start, o))) bad(`layer ${l}: checksum mismatch, the reservoir is damaged`);
    o += 4;
    if (sum.some((s) => Math.abs(s) > manifest.reservoir.patterns || (s + manifest.reservoir.patterns) % 2 !== 0)) {
      bad(`layer ${l}: pattern sums impossible for ${manifest.reservoir.patterns} ±1 patterns`);
    }
    return new HopfieldReservoir(d, w, sum, manifest.reservoir.patterns);
  });
}

export function validateHopfieldManifest(value: unknown, file: string): HopfieldManifest {
  const bad = (problem: string): never => {
    throw new ModelFileError(file, problem);
  };
  const o = object(value, 'the manifest', bad);
  onlyKeys(o, ['format', 'formatVersion', 'architecture', 'seed', 'prngVersion', 'rule', 'cueBits', 'reservoir', 'tasks'], 'the manifest', bad);
  if (o.format !== HOPFIELD_FORMAT) bad(`format is ${JSON.stringify(o.format)}, expected "${HOPFIELD_FORMAT}"`);
  if (o.formatVersion !== HOPFIELD_FORMAT_VERSION) bad(`unsupported formatVersion ${JSON.stringify(o.formatVersion)}`);
  const architecture = parseArchitecture(o.architecture, bad);
  if (architecture.hidden.length === 0) bad('a HopSupSup architecture needs at least one hidden layer');
  if (!Number.isInteger(o.seed) || (o.seed as number) < 0 || (o.seed as number) > 0xffffffff) bad(`seed must be an integer in [0, 2^32)`);
  if (o.prngVersion !== PRNG_VERSION) bad(`unsupported prngVersion ${JSON.stringify(o.prngVersion)}`);
  if (!STORAGE_RULES.includes(o.rule as StorageRule)) bad(`rule must be one of ${STORAGE_RULES.join(', ')}, got ${JSON.stringify(o.rule)}`);
  const minWidth = Math.min(...architecture.hidden);
  if (!Number.isInteger(o.cueBits) || (o.cueBits as number) < 1 || (o.cueBits as number) > minWidth) {
    bad(`cueBits must be an integer in [1, ${minWidth}], got ${JSON.stringify(o.cueBits)}`);
  }
  const res = object(o.reservoir, 'reservoir', bad);
  onlyKeys(res, ['file', 'fileId', 'bytes', 'patterns'], 'reservoir', bad);
  if (typeof res.file !== 'string' || !RESERVOIR_FILE_PATTERN.test(res.file)) bad(`reservoir.file ${JSON.stringify(res.file)} is not reservoir.bin or reservoir.<n>.bin`);
  if (typeof res.fileId !== 'string' || !FILE_ID_PATTERN.test(res.fileId)) bad('reservoir.fileId must be 16 lowercase hex digits');
  if (res.bytes !== reservoirFileBytes(architecture)) bad(`reservoir.bytes must be ${reservoirFileBytes(architecture)} for this architecture`);
  if (!Number.isInteger(res.patterns) || (res.patterns as number) < 0) bad('reservoir.patterns must be a non-negative integer');
  if (!Array.isArray(o.tasks)) bad('tasks must be an array');
  const cueHex = 2 * Math.ceil((o.cueBits as number) / 8) * architecture.hidden.length;
  const seen = new Set<string>();
  const tasks = (o.tasks as unknown[]).map((t, i): HopfieldTask => {
    const r = object(t, `tasks[${i}]`, bad);
    onlyKeys(r, ['id', 'name', 'addedAt', 'cue'], `tasks[${i}]`, bad);
    if (typeof r.id !== 'string' || !TASK_ID_PATTERN.test(r.id)) bad(`tasks[${i}].id must match ${TASK_ID_PATTERN}`);
    if (seen.has(r.id as string)) bad(`task id "${r.id}" appears twice`);
    seen.add(r.id as string);
    if (typeof r.name !== 'string' || r.name.length < 1 || r.name.length > 256) bad(`tasks[${i}].name must be 1..256 characters`);
    if (typeof r.addedAt !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(r.addedAt)) bad(`tasks[${i}].addedAt must be ISO 8601 UTC`);
    if (typeof r.cue !== 'string' || !new RegExp(`^[0-9a-f]{${cueHex}}$`).test(r.cue)) bad(`tasks[${i}].cue must be ${cueHex} lowercase hex digits`);
    return { id: r.id as string, name: r.name as string, addedAt: r.addedAt as string, cue: r.cue as string };
  });
  if ((res.patterns as number) < tasks.length) bad(`reservoir.patterns (${res.patterns}) is less than the ${tasks.length} tasks`);
  return {
    format: HOPFIELD_FORMAT,
    formatVersion: HOPFIELD_FORMAT_VERSION,
    architecture,
    seed: o.seed as number,
    prngVersion: PRNG_VERSION,
    rule: o.rule as StorageRule,
    cueBits: o.cueBits as number,
    reservoir: { file: res.file as string, fileId: res.fileId as string, bytes: res.bytes as number, patterns: res.patterns as number },
    tasks,
  };
}

/**
 * True when `dir` holds a HopSupSup model (its manifest's format says so); reads only the manifest, and of one that
 * starts as sealJson writes a format (`{\n  "format": …`) only that line: a 10 MB manifest is not parsed twice at start.
 */
export async function isHopfieldModel(dir: string): Promise<boolean> {
  const file = path.join(dir, MANIFEST_FILE);
  const head = await readHead(file, 64).catch(() => undefined);
  if (!head) return false;
  const format = /^\{\n  "format": "([a-z-]+)",\n/.exec(head.toString('latin1'))?.[1];
  if (format !== undefined) return format === HOPFIELD_FORMAT;
  const bytes = await readFile(file).catch(() => undefined);
  if (!bytes) return false;
  try {
    return (unsealJson(bytes, MANIFEST_FILE) as { format?: unknown }).format === HOPFIELD_FORMAT;
  } catch {
    return false;
  }
}

async function readHead(file: string, bytes: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Reads and fully verifies a HopSupSup model. */
export async function loadHopfieldModel(dir: string): Promise<HopfieldModel> {
  const manifestFile = path.join(dir, MANIFEST_FILE);
  const bytes = await readFile(manifestFile).catch((e) => {
    throw new ModelFileError(manifestFile, `cannot read: ${(e as Error).message}`);
  });
  const manifest = validateHopfieldManifest(unsealJson(bytes, manifestFile), manifestFile);
  const file = path.join(dir, manifest.reservoir.file);
  const buf = await readFile(file).catch((e) => {
    throw new ModelFileError(file, `cannot read the reservoir: ${(e as Error).message}`);
  });
  return { manifest, reservoirs: decodeReservoirFile(buf, file, manifest) };
}

/** Creates a model in an empty (or new) directory, with `tasks` stored in order. */
export async function createHopfieldModel(dir: string, init: HopfieldInit, tasks: NewHopfieldTask[] = [], options: { faults?: FaultHook } = {}): Promise<HopfieldModel> {
  const manifest = validateHopfieldManifest(
    {
      format: HOPFIELD_FORMAT,
      formatVersion: HOPFIELD_FORMAT_VERSION,
      ...init,
      prngVersion: PRNG_VERSION,
      reservoir: { file: 'reservoir.bin', fileId: newFileId(), bytes: reservoirFileBytes(init.architecture), patterns: 0 },
      tasks: [],
    },
    'model',
  );
  if (await mkdir(dir, { recursive: true })) await fsyncDir(path.dirname(path.resolve(dir)));
  const existing = await readdir(dir);
  if (existing.includes(MANIFEST_FILE)) throw new Error(`${dir} already holds a model (${MANIFEST_FILE} exists)`);
  const empty: HopfieldModel = { manifest, reservoirs: init.architecture.hidden.map((d) => new HopfieldReservoir(d)) };
  return addHopfieldTasks(dir, empty, tasks, options, true);
}

/**
 * Stores `tasks` in a copy of `model`'s reservoirs and makes that durable: new reservoir file (fsynced),
 * then the manifest (atomic replace), then the old file is removed. Resolves with the new model once the
 * manifest is durable; `model` itself is not modified.
 */
export async function addHopfieldTasks(
  dir: string,
  model: HopfieldModel,
  tasks: NewHopfieldTask[],
  options: { faults?: FaultHook } = {},
  creating = false,
): Promise<HopfieldModel> {
  return withWriteLock(dir, async () => {
    const { manifest } = model;
    const widths = manifest.architecture.hidden;
    const ids = new Set(manifest.tasks.map((t) => t.id));
    for (const t of tasks) {
      checkTaskId(t.id);
      if (ids.has(t.id)) throw taskExists(t.id);
      ids.add(t.id);
      if (t.masks.length !== widths.length || t.masks.some((m, l) => m.length !== widths[l] || m.some((b) => b !== 0 && b !== 1))) {
        throw invalid(`task "${t.id}": expected one 0/1 mask per hidden layer, of ${widths.join(', ')} neurons`);
      }
    }
    const reservoirs = model.reservoirs.map((r) => new HopfieldReservoir(r.size, r.weights.slice(), r.patternSum.slice(), r.count));
    for (const t of tasks) t.masks.forEach((m, l) => reservoirs[l].storeMask(m, manifest.rule));
    const file = creating ? manifest.reservoir.file : nextReservoirFile(manifest.reservoir.file);
    const next: HopfieldManifest = {
      ...manifest,
      reservoir: { ...manifest.reservoir, file, fileId: newFileId(), patterns: manifest.reservoir.patterns + tasks.length },
      tasks: [
        ...manifest.tasks,
        ...tasks.map((t) => ({ id: t.id, name: t.name, addedAt: t.addedAt ?? new Date().toISOString(), cue: encodeCue(t.masks, manifest.cueBits) })),
      ],
    };
    validateHopfieldManifest(next, 'model');
    const step = stepper(options.faults, 'reservoir');
    await writeFileDurably(path.join(dir, file), encodeReservoirFile(next, reservoirs), step, 'reservoir:write', 'reservoir:fsync');
    await step('reservoir:fsync-dir');
    await fsyncDir(dir);
    const { format, formatVersion, architecture, seed, prngVersion, rule, cueBits, reservoir } = next;
    await replaceFileAtomically(dir, MANIFEST_FILE, sealJson({ format, formatVersion, architecture, seed, prngVersion, rule, cueBits, reservoir, tasks: next.tasks }), step);
    await step('reservoir:remove-old');
    for (const f of await readdir(dir)) if (RESERVOIR_FILE_PATTERN.test(f) && f !== file) await unlink(path.join(dir, f));
    return { manifest: next, reservoirs };
  });
}

function nextReservoirFile(current: string): string {
  const n = current === 'reservoir.bin' ? 0 : Number(current.slice('reservoir.'.length, -'.bin'.length));
  return `reservoir.${n + 1}.bin`;
}
