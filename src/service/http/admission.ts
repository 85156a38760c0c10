import type { onRequestAsyncHookHandler } from 'fastify';
import type { ServiceContext } from '../context.ts';

/**
 * Cheap refusal under overload: a classification request is admitted (or refused with 503 + Retry-After, through
 * the error table) in onRequest, Fastify's earliest hook, before its body is read or parsed, so that refusing
 * costs a small fraction of serving and a flood of refused requests cannot starve the engine. Its place is held
 * until the answer is sent or the connection closes.
 */
export function admission(ctx: ServiceContext): onRequestAsyncHookHandler {
  return async (_request, reply) => {
    let release: () => void;
    try {
      release = ctx.runtime.admit();
    } catch (e) {
      // Close the connection with the refusal: keeping it alive would make Node read and discard the whole
      // unread body (megabytes a second under a flood), which costs more main-thread time than the refusal.
      reply.header('connection', 'close');
      throw e;
    }
    reply.raw.once('close', release);
  };
}
