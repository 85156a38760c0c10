/**
 * Errors the engine reports to callers, with a protocol-neutral code that each adapter maps to its
 * own status (REST: 4xx/5xx; gRPC: status codes). One place, so REST and gRPC always agree.
 */
export type EngineErrorCode =
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

export class EngineError extends Error {
  constructor(
    readonly code: EngineErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

export const invalid = (message: string) => new EngineError('invalid_argument', message);
