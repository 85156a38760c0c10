// The one error type a caller is ever told about: a protocol-neutral code and a message meant for people.
// Each rule throws it where the rule lives; each protocol maps the codes once, in one table (REST:
// service/http/errors.ts, gRPC: service/grpc/status.ts), so REST and gRPC always agree.
// Errors that are not SupsupErrors are the server's own faults and reach callers as `internal`.

export type ErrorCode =
  | 'invalid_argument'
  | 'not_found'
  | 'already_exists'
  | 'failed_precondition'
  | 'resource_exhausted'
  | 'unavailable'
  | 'deadline_exceeded'
  | 'unauthenticated'
  | 'permission_denied'
  | 'payload_too_large'
  | 'internal';

export class SupsupError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SupsupError';
  }
}

/** The caller sent something malformed or out of range. */
export const invalid = (message: string) => new SupsupError('invalid_argument', message);

// The errors more than one layer raises, worded once.
export const taskNotFound = (id: string) => new SupsupError('not_found', `task "${id}" does not exist`);
export const taskExists = (id: string) => new SupsupError('already_exists', `task "${id}" already exists`);
export const noTasks = () => new SupsupError('failed_precondition', 'the model has no tasks: add one before classifying');
export const modelNotLoaded = () => new SupsupError('unavailable', 'the model is not loaded yet');
