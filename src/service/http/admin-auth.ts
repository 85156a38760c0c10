import type { FastifyReply, FastifyRequest } from 'fastify';
import { SupsupError } from '../../contract/errors.ts';
import { bearerCheck } from '../bearer-token.ts';

/**
 * Bearer-token check for the task-management routes, run before the body is read. With no token configured
 * those routes are disabled (403), so a server never accepts mask uploads by accident.
 */
export function adminAuth(token: string | undefined) {
  const check = token === undefined ? undefined : bearerCheck([token], 'admin token');
  return async (request: FastifyRequest, _reply: FastifyReply) => {
    if (!check) throw new SupsupError('permission_denied', 'task management is disabled: start the server with --admin-token or SUPSUP_ADMIN_TOKEN');
    check(request.headers.authorization);
  };
}
