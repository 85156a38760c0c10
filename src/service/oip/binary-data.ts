// The binary tensor data extension of OIP REST (Triton's "binary_tensor_data", the default of its HTTP
// client): a body is a JSON header of `Inference-Header-Content-Length` bytes followed by the tensors' raw
// bytes, in the order of the tensors that carry `parameters.binary_data_size`. Without the header the whole
// body is JSON. Answers take the same form when any output is asked for in binary.
import { gunzipSync, inflateSync } from 'node:zlib';
import { SupsupError, invalid } from '../../contract/errors.ts';

export const BINARY_EXTENSION = 'binary_tensor_data';
export const HEADER_LENGTH = 'inference-header-content-length';

/**
 * The body as sent, or inflated when Triton's client compressed it (`Content-Encoding: gzip | deflate`),
 * never to more than `limit` bytes.
 */
export function inflateBody(body: Buffer, encoding: string | undefined, limit: number): Buffer {
  const how = encoding?.trim().toLowerCase();
  if (how === undefined || how === '' || how === 'identity') return body;
  if (how !== 'gzip' && how !== 'deflate') throw invalid(`Content-Encoding "${encoding}" is not accepted: send gzip, deflate or none`);
  try {
    return (how === 'gzip' ? gunzipSync : inflateSync)(body, { maxOutputLength: limit });
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw new SupsupError('payload_too_large', `the request body inflates to more than the server's limit of ${limit} bytes`);
    throw invalid(`the ${how} body could not be inflated: ${(e as Error).message}`);
  }
}

/** The JSON header, parsed, and the binary part after it. */
export function splitBinaryBody(body: Buffer, headerLength: string | string[] | undefined): { json: unknown; binary: Buffer } {
  let length = body.length;
  if (headerLength !== undefined) {
    length = Number(headerLength);
    if (typeof headerLength !== 'string' || !/^\d+$/.test(headerLength) || length > body.length) {
      throw invalid(`Inference-Header-Content-Length must be the JSON header's length in bytes, at most the body's ${body.length}; got ${JSON.stringify(headerLength)}`);
    }
  }
  if (length === 0) throw invalid('the body is empty: send the inference request JSON');
  let json: unknown;
  try {
    json = JSON.parse(body.subarray(0, length).toString('utf8'));
  } catch (e) {
    throw invalid(`the inference request header is not valid JSON: ${(e as Error).message}`);
  }
  return { json, binary: body.subarray(length) };
}

/** Hands out the binary part tensor by tensor, each `binary_data_size` bytes, and checks that all were used. */
export class BinarySlicer {
  private at = 0;
  constructor(private readonly binary: Buffer) {}

  take(size: unknown, where: string): Buffer {
    if (!Number.isSafeInteger(size) || (size as number) < 0) throw invalid(`${where}.parameters.binary_data_size must be a whole number of bytes`);
    const end = this.at + (size as number);
    if (end > this.binary.length) {
      throw invalid(`${where} needs ${size} bytes of binary data, but the body has ${this.binary.length - this.at} left after the JSON header (is Inference-Header-Content-Length set?)`);
    }
    const slice = this.binary.subarray(this.at, end);
    this.at = end;
    return slice;
  }

  finish(): void {
    if (this.at !== this.binary.length) throw invalid(`${this.binary.length - this.at} bytes after the JSON header belong to no tensor (check binary_data_size)`);
  }
}

/** An answer with binary tensors: the JSON header, then each tensor's bytes in the header's order. */
export function binaryBody(header: object, tensors: Buffer[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return { body: Buffer.concat([json, ...tensors]), headerLength: json.length };
}
