import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendError } from './errors.ts';

/**
 * Bearer-token check for the task-management routes, run before the body is read. With no token configured
 * those routes are disabled (403), so a server never accepts mask uploads by accident.
 */
export function adminAuth(token: string | undefined) {
  const expected = token === undefined ? undefined : digest(token);
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (!expected) {
      return sendError(request, reply, 'permission_denied', 'task management is disabled: start the server with --admin-token or SUPSUP_ADMIN_TOKEN');
    }
    const m = /^Bearer ([^\s]+)$/i.exec(request.headers.authorization ?? '');
    if (!m) return sendError(request, reply, 'unauthenticated', 'this route needs the header "Authorization: Bearer <admin token>"');
    if (!timingSafeEqual(digest(m[1]), expected)) return sendError(request, reply, 'unauthenticated', 'the bearer token is not the admin token');
  };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
