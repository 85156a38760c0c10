/**
 * POST /classify's JSON parser (src/service/http/base64-json-parser.ts) and the piecewise base64 decode behind it:
 * a long inputsBase64 stays bytes and decodes to what the string form decodes to, refusing exactly what it refuses;
 * every other body parses as Fastify's own parser parses it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { BIG_STRING, useBase64JsonParser } from '../src/service/http/base64-json-parser.ts';
import { Base64Text, decodeBase64 } from '../src/service/decode-inputs.ts';
import { Xoshiro128 } from '../src/core/prng.ts';

function randomBytes(n: number, seed: number): Buffer {
  const rng = new Xoshiro128(seed);
  return Buffer.from(Uint8Array.from({ length: n }, () => rng.nextUint32() & 0xff));
}

/** decodeBase64 on the string and on its bytes: the same bytes, or the same refusal. */
function both(text: string): { string: Buffer | string; bytes: Buffer | string } {
  const run = (v: unknown) => {
    try {
      return decodeBase64(v, 'inputsBase64');
    } catch (e) {
      return (e as Error).message;
    }
  };
  return { string: run(text), bytes: run(new Base64Text(Buffer.from(text, 'latin1'))) };
}

describe('base64 from bytes, in pieces', () => {
  it('decodes as the string form does: lengths around the piece size, padding, URL-safe alphabet', () => {
    for (const n of [0, 1, 2, 3, 24575, 24576, 24577, 100_000, 401_408]) {
      const bytes = randomBytes(n, n);
      for (const text of [bytes.toString('base64'), bytes.toString('base64url').padEnd(Math.ceil((n * 4) / 3 / 4) * 4, '=')]) {
        const r = both(text);
        assert.ok(Buffer.isBuffer(r.bytes), `${n} bytes decode`);
        assert.deepEqual(r.bytes, r.string);
        assert.deepEqual(r.bytes, bytes);
      }
    }
  });

  it('refuses what the string form refuses, wherever the fault is', () => {
    const good = randomBytes(100_000, 1).toString('base64');
    const at = (i: number, c: string) => good.slice(0, i) + c + good.slice(i + 1);
    const cases = [good.slice(1), at(5, '$'), at(40_000, '*'), at(good.length - 5, ' '), at(32_768, '='), at(70_000, 'é'), good.slice(0, -4) + '====', 'abc$'];
    for (const text of cases) {
      const r = both(text);
      assert.equal(typeof r.string, 'string', 'the string form refuses');
      assert.equal(r.bytes, r.string);
    }
  });
});

describe('the /classify JSON parser', () => {
  let app: FastifyInstance;
  before(async () => {
    app = Fastify();
    await app.register(async (scope) => {
      useBase64JsonParser(scope);
      scope.post('/echo', async (req) => {
        const b = req.body as Record<string, unknown>;
        const text = b?.inputsBase64;
        return { kept: text instanceof Base64Text, decoded: text instanceof Base64Text ? decodeBase64(text, 'x').toString('hex') : undefined, body: text instanceof Base64Text ? { ...b, inputsBase64: null } : b };
      });
    });
    app.post('/elsewhere', async (req) => ({ body: req.body }));
    await app.ready();
  });
  after(() => app.close());

  const post = async (url: string, payload: string) => {
    const r = await app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json' } });
    return { status: r.statusCode, body: r.json() };
  };
  const big = randomBytes(BIG_STRING, 3).toString('base64'); // longer than BIG_STRING characters

  it('keeps a long top-level inputsBase64 as bytes and parses the rest as JSON', async () => {
    const r = await post('/echo', JSON.stringify({ shape: [1, 2], inputsBase64: big, task: 'é-task', inference: { method: 'binary' } }));
    assert.equal(r.status, 200);
    assert.equal(r.body.kept, true);
    assert.equal(r.body.decoded, Buffer.from(big, 'base64').toString('hex'));
    assert.deepEqual(r.body.body, { shape: [1, 2], inputsBase64: null, task: 'é-task', inference: { method: 'binary' } });
  });

  it('parses every other body whole, as Fastify does', async () => {
    const bodies = [
      { small: 'abc', inputsBase64: 'QUJD' }, // short
      { inputsBase64: big.replace('A', '\\/') }, // escaped: has a backslash
      { nested: { inputsBase64: big } }, // not top level
      { task: big }, // another field
      { inputsBase64: big, task: big }, // two long strings
      [big], // not an object
    ];
    for (const b of bodies) {
      const payload = typeof b === 'object' && !Array.isArray(b) && 'inputsBase64' in b && String(b.inputsBase64).includes('\\/') ? JSON.stringify(b).replace('\\\\/', '\\/') : JSON.stringify(b);
      const r = await post('/echo', payload);
      assert.equal(r.status, 200, payload.slice(0, 40));
      assert.equal(r.body.kept, false);
      assert.deepEqual(r.body.body, JSON.parse(payload));
    }
  });

  it('refuses bad JSON, a marker sent by the client, and prototype keys as Fastify does', async () => {
    for (const payload of [`{"inputsBase64": "${big}"`, `{"inputsBase64": "${big}", }`, `{"inputsBase64": "\\u0000", "x": "${big}"}`, `{"__proto__": {"a": 1}, "inputsBase64": "${big}"}`]) {
      const ours = await post('/echo', payload), theirs = await post('/elsewhere', payload);
      assert.equal(ours.status, theirs.status, payload.slice(0, 40));
      if (ours.status === 200) assert.equal(ours.body.kept, false);
      else assert.deepEqual(ours.body, theirs.body);
    }
  });
});
