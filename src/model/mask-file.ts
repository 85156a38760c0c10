// The masks file (docs/model-format.md, "The masks file"): a 36-byte header, then append-only records,
// one per task mask. All integers little-endian; every checksum is CRC-32 (crc32.ts).
//
// Header:  0 magic "SUPSUPMK" | 8 u32 version | 12 u32 P | 16 u32 words | 20 u32 fingerprint
//          | 24 8-byte file id | 32 u32 CRC-32 of bytes 0..31
// Record:  0 magic "TASK" | 4 u16 id length L | 6 id (L ASCII bytes) | 6+L u32 payload words W
//          | 10+L u32 CRC-32 of the payload | 14+L u32 CRC-32 of record bytes 0..13+L | 18+L payload (W u32)
import { randomBytes } from 'node:crypto';
import type { Architecture } from '../contract/model.ts';
import { isTaskId } from '../contract/task.ts';
import { maskWords, weightCount } from '../core/architecture.ts';
import { paddingBitsSet } from '../core/mask-bank.ts';
import { uint32FromLittleEndian, uint32ToLittleEndian } from '../platform/byte-order.ts';
import { crc32 } from './crc32.ts';
import { ModelFileError } from './errors.ts';

export const MASKS_MAGIC = Buffer.from('SUPSUPMK', 'ascii');
export const MASKS_FORMAT_VERSION = 1;
export const MASKS_HEADER_BYTES = 36;
export const RECORD_MAGIC = Buffer.from('TASK', 'ascii');
/** A record's header is this many bytes plus the id length. */
export const RECORD_FIXED_BYTES = 18;
export const MAX_ID_BYTES = 64;

export interface MasksHeader {
  version: number;
  /** P, weights per mask. */
  weights: number;
  /** 32-bit words per mask, ceil(P / 32). */
  words: number;
  fingerprint: number;
  /** 16 lowercase hex digits. */
  fileId: string;
}

/** What a masks file must match: from the manifest. */
export interface MasksExpectation {
  architecture: Architecture;
  seed: number;
  prngVersion: number;
  fileId: string;
}

export interface MaskRecord {
  /** Position among the file's records, from 0. */
  index: number;
  /** Byte offset of the record in the file. */
  offset: number;
  id: string;
  mask: Uint32Array;
}

/** The ASCII text whose CRC-32 is the architecture fingerprint. */
export function fingerprintText(architecture: Architecture, seed: number, prngVersion: number): string {
  const a = architecture;
  return `supsup-base-v1;input=${a.inputSize};hidden=${a.hidden.join(',')};outputs=${a.outputs};classes=${a.classes};seed=${seed};prng=${prngVersion}`;
}

export function architectureFingerprint(architecture: Architecture, seed: number, prngVersion: number): number {
  return crc32(Buffer.from(fingerprintText(architecture, seed, prngVersion), 'ascii'));
}

export function newFileId(): string {
  return randomBytes(8).toString('hex');
}

export function encodeHeader(expect: MasksExpectation): Buffer {
  const b = Buffer.alloc(MASKS_HEADER_BYTES);
  MASKS_MAGIC.copy(b, 0);
  b.writeUInt32LE(MASKS_FORMAT_VERSION, 8);
  b.writeUInt32LE(weightCount(expect.architecture), 12);
  b.writeUInt32LE(maskWords(expect.architecture), 16);
  b.writeUInt32LE(architectureFingerprint(expect.architecture, expect.seed, expect.prngVersion), 20);
  Buffer.from(expect.fileId, 'hex').copy(b, 24);
  b.writeUInt32LE(crc32(b.subarray(0, 32)), 32);
  return b;
}

/** Decodes and checks the header at the start of `buf` against the manifest; throws ModelFileError naming `file`. */
export function checkHeader(buf: Buffer, file: string, expect: MasksExpectation): MasksHeader {
  const bad = (problem: string): never => {
    throw new ModelFileError(file, problem);
  };
  const m = Math.min(buf.length, MASKS_MAGIC.length);
  if (!buf.subarray(0, m).equals(MASKS_MAGIC.subarray(0, m))) bad('bad magic: not a SupSup masks file (expected "SUPSUPMK")');
  if (buf.length < MASKS_HEADER_BYTES) bad(`truncated header: ${buf.length} bytes, a header has ${MASKS_HEADER_BYTES}`);
  const h: MasksHeader = {
    version: buf.readUInt32LE(8),
    weights: buf.readUInt32LE(12),
    words: buf.readUInt32LE(16),
    fingerprint: buf.readUInt32LE(20),
    fileId: buf.subarray(24, 32).toString('hex'),
  };
  if (crc32(buf.subarray(0, 32)) !== buf.readUInt32LE(32)) {
    const hint = h.version !== MASKS_FORMAT_VERSION ? `, or format version ${h.version} which this reader does not know` : '';
    bad(`header checksum mismatch (damaged header${hint})`);
  }
  if (h.version !== MASKS_FORMAT_VERSION) bad(`unsupported format version ${h.version} (this reader knows ${MASKS_FORMAT_VERSION})`);
  if (h.words !== Math.ceil(h.weights / 32)) bad(`invalid header: ${h.words} words per mask for P = ${h.weights}`);
  const p = weightCount(expect.architecture);
  if (h.weights !== p) {
    bad(`written for another architecture: it holds masks of P = ${h.weights} weights, the manifest's architecture has P = ${p}`);
  }
  const fp = architectureFingerprint(expect.architecture, expect.seed, expect.prngVersion);
  if (h.fingerprint !== fp) {
    bad(
      `written for another architecture, seed or PRNG version: header fingerprint ${hex32(h.fingerprint)}, ` +
        `the manifest's (${fingerprintText(expect.architecture, expect.seed, expect.prngVersion)}) is ${hex32(fp)}`,
    );
  }
  if (h.fileId !== expect.fileId) bad(`belongs to another model: file id ${h.fileId}, the manifest expects ${expect.fileId}`);
  return h;
}

/** One complete record (header + payload) for a canonical mask. */
export function encodeRecord(id: string, mask: Uint32Array): Buffer {
  const idBytes = Buffer.from(id, 'ascii');
  if (idBytes.length < 1 || idBytes.length > MAX_ID_BYTES) throw new RangeError(`task id must have 1..${MAX_ID_BYTES} bytes`);
  const payload = uint32ToLittleEndian(mask);
  const L = idBytes.length;
  const rec = Buffer.alloc(RECORD_FIXED_BYTES + L + payload.length);
  RECORD_MAGIC.copy(rec, 0);
  rec.writeUInt16LE(L, 4);
  idBytes.copy(rec, 6);
  rec.writeUInt32LE(mask.length, 6 + L);
  rec.writeUInt32LE(crc32(payload), 10 + L);
  rec.writeUInt32LE(crc32(rec.subarray(0, 14 + L)), 14 + L);
  payload.copy(rec, RECORD_FIXED_BYTES + L);
  return rec;
}

/** Bytes of the record header inside an encoded record (the rest is payload). */
export function recordHeaderBytes(record: Buffer): number {
  return RECORD_FIXED_BYTES + record.readUInt16LE(4);
}

/**
 * Reads every record in buf[start, end) (the committed region, or a window of it that starts at record `base.index`,
 * byte `base.offset` of the file). Each must be whole and intact, hold exactly `words` payload words and no bits
 * past P: any problem throws a ModelFileError naming `file`. With `into`, record i's mask is decoded into its words
 * [i·words, (i+1)·words) and is a view of it (nothing allocated per record; valid until the caller reuses `into`).
 */
export function readRecords(
  buf: Buffer,
  file: string,
  start: number,
  end: number,
  words: number,
  weights: number,
  base = { index: 0, offset: 0 },
  into?: Uint32Array,
): MaskRecord[] {
  const records: MaskRecord[] = [];
  let off = start;
  while (off < end) {
    const index = base.index + records.length;
    const bad = (problem: string): never => {
      throw new ModelFileError(file, `record ${index} at byte ${base.offset + off}: ${problem}`);
    };
    const truncated = () => bad(`truncated: the committed length (${end} bytes) ends inside this record`);
    if (end - off < 6) truncated();
    if (!buf.subarray(off, off + 4).equals(RECORD_MAGIC)) bad('bad record magic (damaged record header)');
    const L = buf.readUInt16LE(off + 4);
    if (L < 1 || L > MAX_ID_BYTES) bad(`damaged record header: id length ${L} is outside 1..${MAX_ID_BYTES}`);
    if (end - off < RECORD_FIXED_BYTES + L) truncated();
    if (crc32(buf.subarray(off, off + 14 + L)) !== buf.readUInt32LE(off + 14 + L)) {
      bad('record header checksum mismatch (damaged record header)');
    }
    const id = buf.subarray(off + 6, off + 6 + L).toString('latin1');
    if (!isTaskId(id)) bad(`invalid task id ${JSON.stringify(id)}`);
    const w = buf.readUInt32LE(off + 6 + L);
    const where = `task '${id}'`;
    if (w !== words) bad(`${where}: wrong word count ${w}, masks of P = ${weights} weights have ${words} words`);
    const p0 = off + RECORD_FIXED_BYTES + L;
    if (end - p0 < 4 * w) truncated();
    const payload = buf.subarray(p0, p0 + 4 * w);
    if (crc32(payload) !== buf.readUInt32LE(off + 10 + L)) bad(`${where}: payload checksum mismatch (damaged mask)`);
    const n = records.length * words;
    if (into && into.length < n + words) throw new RangeError(`more records than the ${into.length / words} masks \`into\` has room for`);
    const mask = uint32FromLittleEndian(payload, into?.subarray(n, n + words));
    const pad = paddingProblem(mask, weights);
    if (pad) bad(`${where}: ${pad}`);
    records.push({ index, offset: base.offset + off, id, mask });
    off = p0 + 4 * w;
  }
  return records;
}

/** Bytes [0, n) of buf that are whole records by their length fields (not checked here: readRecords does). */
export function wholeRecordsPrefix(buf: Buffer, words: number): number {
  let off = 0;
  while (buf.length - off >= 6) {
    const next = off + RECORD_FIXED_BYTES + buf.readUInt16LE(off + 4) + 4 * words;
    if (next > buf.length) break;
    off = next;
  }
  return off;
}

/** Why a canonical mask is not valid for P weights, or null when it is. */
export function paddingProblem(mask: Uint32Array, weights: number): string | null {
  return !paddingBitsSet(mask, weights) ? null : `bits set in padding (past weight ${weights - 1}, in the last word)`;
}

function hex32(v: number): string {
  return v.toString(16).padStart(8, '0');
}
