import { randomUUID } from 'node:crypto';

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The id that ties a request's log lines together, for REST (X-Request-Id header) and gRPC (x-request-id
 * metadata) alike: the client's own when it sent a sane one, so its traces join ours, else a fresh UUID.
 */
export function requestId(given: unknown): string {
  return typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID();
}
