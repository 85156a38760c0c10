import type { onRequestAsyncHookHandler } from 'fastify';
import { SupsupError } from '../../contract/errors.ts';
import type { ServiceContext } from '../context.ts';

/**
 * Cheap refusal under overload: a classification request is admitted in onRequest, Fastify's earliest hook,
 * before its body is read or parsed (runtime/admission.ts). While the queue is full it waits there unread, its body
 * held back in the socket, for up to --admission-wait-ms; then it is refused with 503 + Retry-After through the
 * error table. Its place is held until the answer is sent or the connection closes.
 */
export function admission(ctx: ServiceContext): onRequestAsyncHookHandler {
  const waitMs = ctx.config.admissionWaitMs;
  return async (request, reply) => {
    const gone = new AbortController();
    const onClose = () => gone.abort();
    reply.raw.once('close', onClose);
    let release: () => void;
    try {
      release = await ctx.runtime.admit(gone.signal);
    } catch (e) {
      // Refused at once: close the connection with the refusal. Keeping it alive would make Node read and discard
      // the whole unread body, and refusals at once come as fast as clients retry (megabytes a second under a
      // flood). Refused after waiting for a place: refusals are paced by the wait (at most one per connection per
      // wait), so the body is read and discarded and the connection kept, as a client still sending it expects
      // (closing on it would break its write).
      // With a wait configured, the queue-full refusal only ever comes after waiting (runtime/admission.ts); an
      // unavailable engine is refused at once.
      const waited = waitMs > 0 && e instanceof SupsupError && e.code === 'resource_exhausted';
      const length = Number(request.headers['content-length'] ?? NaN);
      if (!(waited && length <= ctx.config.bodyLimit)) reply.header('connection', 'close');
      throw e;
    } finally {
      reply.raw.off('close', onClose);
    }
    if (gone.signal.aborted) return release();
    reply.raw.once('close', release);
  };
}
