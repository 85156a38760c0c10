import type { onRequestAsyncHookHandler } from 'fastify';
import type { ServiceContext } from '../context.ts';

/**
 * Cheap refusal under overload: a classification request is admitted in onRequest, Fastify's earliest hook,
 * before its body is read or parsed (runtime/admission.ts). While the queue is full it waits there unread, its body
 * held back in the socket, for up to --admission-wait-ms; then it is refused with 503 + Retry-After through the
 * error table. Its place is held until the answer is sent or the connection closes.
 */
export function admission(ctx: ServiceContext): onRequestAsyncHookHandler {
  return async (_request, reply) => {
    const gone = new AbortController();
    const onClose = () => gone.abort();
    reply.raw.once('close', onClose);
    let release: () => void;
    try {
      release = await ctx.runtime.admit(gone.signal);
    } catch (e) {
      // Close the connection with the refusal: keeping it alive would make Node read and discard the whole
      // unread body (megabytes a second under a flood), which costs more main-thread time than the refusal.
      reply.header('connection', 'close');
      throw e;
    } finally {
      reply.raw.off('close', onClose);
    }
    if (gone.signal.aborted) return release();
    reply.raw.once('close', release);
  };
}
