// CRC-32 as in zlib, PNG and gzip (CRC-32/ISO-HDLC): polynomial 0x04C11DB7 processed LSB-first
// (reflected, 0xEDB88320), initial value 0xFFFFFFFF, final XOR 0xFFFFFFFF. crc32("123456789") = 0xCBF43926.
// Uses node:zlib's native crc32 where the running Node has it (20.15+), else the table below.
import * as zlib from 'node:zlib';

const TABLE = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  TABLE[n] = c >>> 0;
}

/** `previous`: the CRC-32 of the bytes before these, to continue it (crc32(a ‖ b) = crc32(b, crc32(a))). */
export function crc32Table(bytes: Uint8Array, previous = 0): number {
  let c = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const native = typeof zlib.crc32 === 'function' ? zlib.crc32 : undefined;

export function crc32(bytes: Uint8Array, previous = 0): number {
  return native ? native(bytes, previous) >>> 0 : crc32Table(bytes, previous);
}
