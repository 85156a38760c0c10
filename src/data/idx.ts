// The IDX file format (LeCun's MNIST format, also used by Fashion-MNIST), pure functions only: the
// loaders in datasets.ts read the bytes and pass them here together with the file name for errors.
//
// Layout: a 4-byte magic (two zero bytes, a type code, the number of dimensions), then one big-endian
// uint32 per dimension, then the elements row-major. Only type code 0x08 (unsigned byte) is
// supported, which is what MNIST and Fashion-MNIST use: images are magic 0x00000803 (count, rows,
// cols), labels 0x00000801 (count). Files may be gzipped; that is detected by the 1f 8b magic.
import { gunzipSync, gzipSync } from 'node:zlib';

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;
const UBYTE = 0x08;

/** Type codes defined by the IDX format, for error messages. */
const TYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

/** A data file that cannot be used; the message names the file and the problem. */
export class DataFileError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'DataFileError';
  }
}

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  /** count × rows × cols bytes, row-major. */
  pixels: Uint8Array;
}

export interface IdxLabels {
  count: number;
  labels: Uint8Array;
}

/** True when the bytes start with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Returns the bytes, gunzipped when they are gzip. */
export function maybeGunzip(bytes: Uint8Array, file: string): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  try {
    return new Uint8Array(gunzipSync(bytes));
  } catch (e) {
    throw new DataFileError(file, `gzip data is corrupt or truncated (${(e as Error).message})`);
  }
}

function hex32(v: number): string {
  return '0x' + (v >>> 0).toString(16).padStart(8, '0');
}

/** Parses an unsigned-byte IDX array with `ndims` dimensions; returns the dims and the element bytes. */
function parseIdx(raw: Uint8Array, file: string, expectedMagic: number, what: string): { dims: number[]; data: Uint8Array } {
  const bytes = maybeGunzip(raw, file);
  const ndims = expectedMagic & 0xff;
  if (bytes.length < 4) {
    throw new DataFileError(file, `truncated: ${bytes.length} bytes, too short for the 4-byte IDX magic`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DataFileError(file, `wrong magic ${hex32(magic)}: not an IDX file (expected ${hex32(expectedMagic)} for ${what})`);
  }
  const typeCode = bytes[2];
  if (typeCode !== UBYTE) {
    const name = TYPE_NAMES[typeCode] ?? 'not an IDX type';
    throw new DataFileError(
      file,
      `unsupported type code 0x${typeCode.toString(16).padStart(2, '0')} (${name}); only 0x08 (unsigned byte) is supported`,
    );
  }
  if (magic !== expectedMagic) {
    const hint =
      magic === IDX_IMAGES_MAGIC ? ' (this is an IDX image file)' : magic === IDX_LABELS_MAGIC ? ' (this is an IDX label file)' : '';
    throw new DataFileError(file, `wrong magic ${hex32(magic)}${hint}: expected ${hex32(expectedMagic)} for ${what}`);
  }
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    throw new DataFileError(file, `truncated: ${bytes.length} bytes, the header of ${ndims} dimension(s) needs ${headerBytes}`);
  }
  const dims: number[] = [];
  let elements = 1;
  for (let d = 0; d < ndims; d++) {
    const size = view.getUint32(4 + 4 * d, false);
    dims.push(size);
    elements *= size;
  }
  const have = bytes.length - headerBytes;
  if (have < elements) {
    throw new DataFileError(
      file,
      `truncated: the header says ${dims.join(' × ')} = ${elements} elements but the file holds only ${have} bytes of data`,
    );
  }
  if (have > elements) {
    throw new DataFileError(
      file,
      `element count mismatch: the header says ${dims.join(' × ')} = ${elements} elements but the file holds ${have} bytes of data`,
    );
  }
  return { dims, data: bytes.subarray(headerBytes, headerBytes + elements) };
}

/** Parses an IDX image file (magic 0x00000803), gzipped or not. */
export function parseIdxImages(bytes: Uint8Array, file: string): IdxImages {
  const { dims, data } = parseIdx(bytes, file, IDX_IMAGES_MAGIC, 'images (unsigned byte, 3 dimensions)');
  const [count, rows, cols] = dims;
  if (count > 0 && (rows === 0 || cols === 0)) {
    throw new DataFileError(file, `images of size ${rows} × ${cols} are empty`);
  }
  return { count, rows, cols, pixels: data };
}

/** Parses an IDX label file (magic 0x00000801), gzipped or not. */
export function parseIdxLabels(bytes: Uint8Array, file: string): IdxLabels {
  const { dims, data } = parseIdx(bytes, file, IDX_LABELS_MAGIC, 'labels (unsigned byte, 1 dimension)');
  return { count: dims[0], labels: data };
}

/** Throws when an image file and its label file disagree on the number of examples. */
export function checkIdxPair(images: IdxImages, labels: IdxLabels, imagesFile: string, labelsFile: string): void {
  if (images.count !== labels.count) {
    throw new DataFileError(
      imagesFile,
      `image/label count mismatch: ${images.count} images here but ${labels.count} labels in ${labelsFile}`,
    );
  }
}

/** Encodes images as IDX (magic 0x00000803), optionally gzipped. For tests and for exporting data. */
export function encodeIdxImages(images: IdxImages, gzip = false): Uint8Array {
  if (images.pixels.length !== images.count * images.rows * images.cols) {
    throw new RangeError(`pixels has ${images.pixels.length} bytes, expected ${images.count} × ${images.rows} × ${images.cols}`);
  }
  return encodeIdx(IDX_IMAGES_MAGIC, [images.count, images.rows, images.cols], images.pixels, gzip);
}

/** Encodes labels as IDX (magic 0x00000801), optionally gzipped. */
export function encodeIdxLabels(labels: Uint8Array, gzip = false): Uint8Array {
  return encodeIdx(IDX_LABELS_MAGIC, [labels.length], labels, gzip);
}

function encodeIdx(magic: number, dims: number[], data: Uint8Array, gzip: boolean): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return gzip ? new Uint8Array(gzipSync(out)) : out;
}
