// Wire decoding shared by REST and gRPC: turns what a client sent (JSON rows, or packed bytes with a dtype
// and a shape) into a flat Float32Array and an example count. It checks only the wire structure; what the
// values must be (length per example, finite, batch limits) is the engine validator's job.
import { invalid } from '../contract/errors.ts';
import { float32FromLittleEndian, float32ViewLittleEndian, uint32FromLittleEndian } from '../platform/byte-order.ts';

const INPUT_DTYPES = ['float32', 'uint8'];

export interface DecodedInputs {
  inputs: Float32Array;
  batch: number;
}

/** `inputs` as JSON: an array of examples, each an array of numbers. */
export function decodeJsonRows(rows: unknown, field = 'inputs'): DecodedInputs {
  if (!Array.isArray(rows)) throw invalid(`${field} must be an array of examples, each an array of numbers`);
  const width = Array.isArray(rows[0]) ? rows[0].length : 0;
  const inputs = new Float32Array(rows.length * width);
  rows.forEach((row, i) => {
    if (!Array.isArray(row)) throw invalid(`${field}[${i}] must be an array of numbers`);
    if (row.length !== width) throw invalid(`${field}[${i}] has ${row.length} values but ${field}[0] has ${width}: every example must have the same length`);
    for (let j = 0; j < width; j++) {
      const v = row[j];
      if (typeof v !== 'number') throw invalid(`${field}[${i}][${j}] must be a number, got ${v === null ? 'null' : typeof v}`);
      inputs[i * width + j] = v;
    }
  });
  return { inputs, batch: rows.length };
}

/**
 * Padded base64 (RFC 4648, standard or URL-safe alphabet) to bytes. Node's decoder skips characters it does
 * not know, so a string with any is caught by the decoded length: L characters must give 3L/4 bytes less
 * the padding. (A regular expression over a half-megabyte string would block the event loop for milliseconds.)
 */
export function decodeBase64(text: unknown, field: string): Buffer {
  if (text instanceof Base64Text) return decodeBase64Bytes(text.bytes, field);
  if (typeof text !== 'string') throw invalid(`${field} must be a base64 string`);
  const bytes = Buffer.from(text, 'base64');
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  if (text.length % 4 !== 0 || bytes.length !== (text.length / 4) * 3 - padding) throw notBase64(field);
  return bytes;
}

/**
 * Base64 text that is still the bytes it came in (a view of a request body), never made a string: long strings
 * cost page faults (http/base64-json-parser.ts). decodeBase64 decodes it.
 */
export class Base64Text {
  constructor(readonly bytes: Uint8Array) {}
}

/** Base64 bytes to bytes, in pieces small enough to stay ordinary strings, each checked as decodeBase64 checks a whole. */
function decodeBase64Bytes(text: Uint8Array, field: string): Buffer {
  if (text.length % 4 !== 0) throw notBase64(field);
  const src = Buffer.from(text.buffer, text.byteOffset, text.byteLength);
  const padding = text[text.length - 1] === 0x3d ? (text[text.length - 2] === 0x3d ? 2 : 1) : 0;
  const out = Buffer.allocUnsafe((text.length / 4) * 3 - padding);
  let written = 0;
  for (let at = 0; at < text.length; at += BASE64_PIECE) {
    const end = Math.min(text.length, at + BASE64_PIECE);
    const expected = ((end - at) / 4) * 3 - (end === text.length ? padding : 0);
    if (out.write(src.toString('latin1', at, end), written, expected, 'base64') !== expected) throw notBase64(field);
    written += expected;
  }
  return out;
}

/** Characters of base64 decoded at a time (a multiple of 4). */
const BASE64_PIECE = 32 * 1024;

const notBase64 = (field: string) => invalid(`${field} is not valid base64 (padded with "=" to a multiple of 4 characters, no other characters)`);

/**
 * Packed examples: `dtype` float32 (little-endian IEEE 754) or uint8 (pixel values 0..255, divided by 255),
 * `shape` [examples, values per example], row-major. `owned`: nothing else holds `bytes` (decodeBase64's answer), so
 * float32 values are read in place instead of copied.
 */
export function decodePacked(bytes: Uint8Array, dtype: unknown, shape: unknown, field = 'inputs', owned = false): DecodedInputs {
  const type = dtype ?? 'float32';
  if (typeof type !== 'string' || !INPUT_DTYPES.includes(type)) {
    throw invalid(`dtype must be one of ${INPUT_DTYPES.map((d) => `"${d}"`).join(', ')}`);
  }
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw invalid('shape must be [examples, values per example], two non-negative integers');
  }
  const [batch, width] = shape as number[];
  const size = type === 'float32' ? 4 : 1;
  if (bytes.byteLength !== batch * width * size) {
    throw invalid(`${field} holds ${bytes.byteLength} bytes, but shape [${batch}, ${width}] of ${type} needs ${batch * width * size}`);
  }
  if (type === 'float32') return { inputs: owned ? float32ViewLittleEndian(bytes) : float32FromLittleEndian(bytes), batch };
  const inputs = new Float32Array(batch * width);
  for (let i = 0; i < inputs.length; i++) inputs[i] = bytes[i] / 255;
  return { inputs, batch };
}

/** Packed little-endian 32-bit words (a task mask) from bytes. */
export function decodeWords(bytes: Uint8Array, field: string): Uint32Array {
  if (bytes.byteLength % 4 !== 0) throw invalid(`${field} holds ${bytes.byteLength} bytes: a packed mask is a whole number of 32-bit words`);
  return uint32FromLittleEndian(bytes);
}
