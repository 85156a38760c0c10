// Bearer tokens, for REST (Authorization header) and gRPC (authorization metadata) alike. Tokens are compared
// as SHA-256 digests with timingSafeEqual, so neither their content nor their length leaks through timing.
import { createHash, timingSafeEqual } from 'node:crypto';
import { SupsupError } from '../contract/errors.ts';

export function bearerCheck(tokens: readonly string[], what: string): (authorization: unknown) => void {
  const expected = tokens.map(digest);
  return (authorization) => {
    const m = typeof authorization === 'string' ? /^Bearer ([^\s]+)$/i.exec(authorization) : null;
    if (!m) throw new SupsupError('unauthenticated', `this call needs "Authorization: Bearer <${what}>"`);
    const given = digest(m[1]);
    if (!expected.some((e) => timingSafeEqual(e, given))) throw new SupsupError('unauthenticated', `the bearer token is not the ${what}`);
  };
}

/**
 * The check for serving calls when --api-token is set (else null: open). The admin token, which already
 * guards the stronger task-management calls, is accepted too.
 */
export function apiTokenCheck(apiToken: string | undefined, adminToken: string | undefined): ((authorization: unknown) => void) | null {
  if (apiToken === undefined) return null;
  return bearerCheck(adminToken === undefined ? [apiToken] : [apiToken, adminToken], 'API token');
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
