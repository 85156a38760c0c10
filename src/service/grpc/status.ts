import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { SupsupError, type ErrorCode } from '../../contract/errors.ts';

/** The one place gRPC turns errors into statuses; the messages are the same as REST's. */
export const GRPC_STATUS: Record<ErrorCode, status> = {
  invalid_argument: status.INVALID_ARGUMENT,
  not_found: status.NOT_FOUND,
  already_exists: status.ALREADY_EXISTS,
  failed_precondition: status.FAILED_PRECONDITION,
  resource_exhausted: status.RESOURCE_EXHAUSTED,
  unavailable: status.UNAVAILABLE,
  deadline_exceeded: status.DEADLINE_EXCEEDED,
  unauthenticated: status.UNAUTHENTICATED,
  permission_denied: status.PERMISSION_DENIED,
  payload_too_large: status.RESOURCE_EXHAUSTED,
  internal: status.INTERNAL,
};

export function toServiceError(error: unknown): { serviceError: Partial<ServiceError>; code: ErrorCode } {
  const e = error instanceof SupsupError ? error : new SupsupError('internal', 'internal error');
  const metadata = new Metadata();
  metadata.set('supsup-error-code', e.code);
  if (e.code === 'resource_exhausted' || e.code === 'unavailable') metadata.set('retry-after', '1');
  return { serviceError: { code: GRPC_STATUS[e.code], details: e.message, metadata }, code: e.code };
}
