// The JSON body parser of POST /classify. Fastify's own reads the body into one string, and JSON.parse copies the
// base64 field into a second: at batch 128 (535 KB of base64) both are V8 large objects, each a fresh memory mapping
// whose page faults cost milliseconds, more than the forward pass. This parser keeps the body as bytes. When it
// holds no backslash (so no string in it is escaped and every '"' opens or closes one) and its only string longer
// than BIG_STRING bytes is the top-level "inputsBase64", that string stays a view of the body (Base64Text, decoded
// in pieces by decodeBase64) and the small rest goes through Fastify's own JSON parser, with the long string cut
// out and a marker in its place: a NUL, which a JSON string can hold only escaped, so no client text is taken for
// it. Any other body goes through Fastify's parser whole, as before.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Base64Text } from '../decode-inputs.ts';

/** Strings longer than this (bytes) are cut out; V8 puts strings over ~128 KiB in large-object space. */
export const BIG_STRING = 64 * 1024;
const MARKER = '\u0000';
const QUOTE = 0x22, BACKSLASH = 0x5c;

type Done = (err: Error | null, body?: unknown) => void;

/** Replaces the scope's application/json parser (the scope only: other routes keep Fastify's). */
export function useBase64JsonParser(scope: FastifyInstance): void {
  const json = scope.getDefaultJsonParser('error', 'error') as (req: FastifyRequest, body: string | Buffer, done: Done) => void;
  scope.removeContentTypeParser('application/json');
  scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const bytes = body as Buffer;
    const cut = cutLongString(bytes);
    if (!cut) return json(req, bytes, done);
    json(req, cut.rest, (err, parsed) => {
      if (err) return done(err);
      const o = parsed as Record<string, unknown> | null;
      if (typeof o !== 'object' || o === null || Array.isArray(o) || o.inputsBase64 !== MARKER) return json(req, bytes, done);
      o.inputsBase64 = new Base64Text(cut.text);
      done(null, o);
    });
  });
}

/** The body with its one long string replaced by "\u0000", and that string's bytes; null unless there is exactly one. */
function cutLongString(body: Buffer): { rest: string; text: Buffer } | null {
  if (body.length <= BIG_STRING || body.indexOf(BACKSLASH) !== -1) return null;
  let found: { open: number; close: number } | null = null;
  for (let pos = 0; ; ) {
    const open = body.indexOf(QUOTE, pos);
    if (open === -1) break;
    const close = body.indexOf(QUOTE, open + 1);
    if (close === -1) return null; // unterminated: the whole-body parse says so
    if (close - open - 1 > BIG_STRING) {
      if (found) return null;
      found = { open, close };
    }
    pos = close + 1;
  }
  if (!found) return null;
  // Cut at quotes (ASCII), so never inside a multi-byte UTF-8 character.
  const rest = body.toString('utf8', 0, found.open) + '"\\u0000"' + body.toString('utf8', found.close + 1);
  return { rest, text: body.subarray(found.open + 1, found.close) };
}
