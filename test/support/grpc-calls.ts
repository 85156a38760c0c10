import assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';

/** A grpc-js client built from a package definition: its methods are looked up by name. */
export type DynamicClient = grpc.Client & Record<string, any>;

/** One unary call as a promise, with a deadline. */
export function unary<T = any>(client: DynamicClient, method: string, request: unknown, deadlineMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

/** Asserts the call fails with `code` and a message matching `message`. */
export async function rejectsWith(promise: Promise<unknown>, code: grpc.status, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: grpc.ServiceError) => {
    assert.equal(err.code, code, `status ${err.code}: ${err.details}`);
    assert.match(err.details, message);
    return true;
  });
}
