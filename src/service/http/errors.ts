import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { SupsupError, type ErrorCode } from '../../contract/errors.ts';

// The one place REST turns errors into answers: the status and headers below, and a body in the scope's
// own format (supsup's `{"error": {"code", "message"}}`, or the Open Inference Protocol's `{"error": "..."}`).
// SupsupError codes are protocol-neutral; Fastify's own errors (bad JSON, body too large, wrong content type,
// unknown route) are given codes of the same family.
export type HttpErrorCode = ErrorCode | 'unsupported_media_type' | 'method_not_allowed';

export const HTTP_STATUS: Record<HttpErrorCode, number> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  method_not_allowed: 405,
  already_exists: 409,
  failed_precondition: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  internal: 500,
  resource_exhausted: 503,
  unavailable: 503,
  deadline_exceeded: 504,
};

/** Seconds a client should wait before retrying a refused (busy or draining) request. */
export const RETRY_AFTER_SECONDS = 1;

declare module 'fastify' {
  interface FastifyRequest {
    /** The error code answered, for the request metrics. */
    errorCode?: HttpErrorCode;
  }
}

/** How a scope writes an error's body. */
export type ErrorBody = (code: HttpErrorCode, message: string) => unknown;

/** supsup's own routes: `{"error": {"code", "message"}}`. */
export const supsupErrorBody: ErrorBody = (code, message) => ({ error: { code, message } });

export function sendError(request: FastifyRequest, reply: FastifyReply, code: HttpErrorCode, message: string, body = supsupErrorBody): FastifyReply {
  request.errorCode = code;
  if (code === 'resource_exhausted' || code === 'unavailable') reply.header('retry-after', String(RETRY_AFTER_SECONDS));
  if (code === 'unauthenticated') reply.header('www-authenticate', 'Bearer realm="supsup"');
  return reply.code(HTTP_STATUS[code]).type('application/json; charset=utf-8').send(body(code, message));
}

const FASTIFY_CODES: Record<string, { code: HttpErrorCode; message?: (e: FastifyError) => string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'payload_too_large', message: () => 'the request body is over the server\'s limit' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'unsupported_media_type',
    message: () => 'unsupported content type: send application/json',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'invalid_argument', message: () => 'the body is empty: send a JSON object' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'invalid_argument', message: (e) => `the body is not valid JSON: ${e.message}` },
};

const BY_STATUS: Record<number, HttpErrorCode> = { 400: 'invalid_argument', 401: 'unauthenticated', 403: 'permission_denied', 404: 'not_found', 405: 'method_not_allowed', 413: 'payload_too_large', 415: 'unsupported_media_type' };

/** The code and message for any error a route or Fastify raised. */
export function describeError(error: FastifyError, bodyLimit: number): { code: HttpErrorCode; message: string } {
  if (error instanceof SupsupError) return { code: error.code, message: error.message };
  const known = FASTIFY_CODES[error.code];
  if (known) {
    const message = known.code === 'payload_too_large' ? `the request body is over the server's limit of ${bodyLimit} bytes` : (known.message?.(error) ?? error.message);
    return { code: known.code, message };
  }
  if (error instanceof SyntaxError) return { code: 'invalid_argument', message: `the body is not valid JSON: ${error.message}` };
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return { code: BY_STATUS[status] ?? 'invalid_argument', message: error.message };
  return { code: 'internal', message: 'internal error' };
}

/** Answers every error raised in `scope` (and the scopes it registers) with `body`. */
export function handleErrors(scope: FastifyInstance, bodyLimit: number, body: ErrorBody = supsupErrorBody): void {
  scope.setErrorHandler((error: FastifyError, request, reply) => {
    const { code, message } = describeError(error, bodyLimit);
    if (code === 'internal') request.log.error({ err: error }, 'request failed');
    return sendError(request, reply, code, message, body);
  });
}

export const errorsPlugin = fp<{ bodyLimit: number }>(async (app: FastifyInstance, opts) => {
  handleErrors(app, opts.bodyLimit);
  app.setNotFoundHandler((request, reply) => sendError(request, reply, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`));
});
