// Typed arrays use the machine's byte order; files and wire formats are little-endian. These convert,
// with a plain copy on little-endian machines (all of ours) and an element-wise read elsewhere.

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Little-endian 32-bit words (a whole number of them) as a fresh Uint32Array, or in `into` (which must fit them exactly). */
export function uint32FromLittleEndian(bytes: Uint8Array, into?: Uint32Array): Uint32Array {
  const words = into ?? new Uint32Array(bytes.byteLength >>> 2);
  if (words.length !== bytes.byteLength >>> 2) throw new RangeError(`${bytes.byteLength >>> 2} words do not fit an array of ${words.length}`);
  if (LITTLE_ENDIAN) new Uint8Array(words.buffer, words.byteOffset, words.byteLength).set(bytes.subarray(0, words.length * 4));
  else for (let i = 0; i < words.length; i++) words[i] = readView(bytes).getUint32(i * 4, true);
  return words;
}

/** Little-endian IEEE 754 floats (a whole number of them) as a fresh Float32Array. */
export function float32FromLittleEndian(bytes: Uint8Array): Float32Array {
  const values = new Float32Array(bytes.byteLength >>> 2);
  if (LITTLE_ENDIAN) new Uint8Array(values.buffer).set(bytes.subarray(0, values.length * 4));
  else for (let i = 0; i < values.length; i++) values[i] = readView(bytes).getFloat32(i * 4, true);
  return values;
}

/**
 * The same floats without a copy where the machine is little-endian and the bytes are 4-byte aligned (a view that
 * shares their memory: for bytes the caller owns), else a fresh copy.
 */
export function float32ViewLittleEndian(bytes: Uint8Array): Float32Array {
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  return float32FromLittleEndian(bytes);
}

/** The words' little-endian bytes (a view of the same memory where the machine is little-endian). */
export function uint32ToLittleEndian(words: Uint32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(words.buffer, words.byteOffset, words.byteLength);
  const b = Buffer.alloc(words.length * 4);
  for (let j = 0; j < words.length; j++) b.writeUInt32LE(words[j], j * 4);
  return b;
}

function readView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
