import type { FastifyError, FastifyInstance } from 'fastify';
import { StoreError, type StoreErrorKind } from '@adanns/store';

/** An error with its HTTP status and short code, answered as {error, message}. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const STORE_STATUS: Record<StoreErrorKind, number> = { invalid: 400, not_found: 404, conflict: 409, too_large: 413, unavailable: 503 };

const CODES: Record<number, string> = { 400: 'invalid', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 405: 'method_not_allowed', 409: 'conflict', 413: 'too_large', 415: 'unsupported_media_type', 429: 'too_many_requests', 503: 'unavailable' };

/** Maps every failure to a status and {error, message}; only unexpected ones are 500 (and logged with their stack). */
export function registerErrors(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | ApiError | StoreError, request, reply) => {
    let status: number;
    let code: string;
    let message = error.message;
    if (error instanceof ApiError) {
      status = error.statusCode;
      code = error.code;
      reply.headers(error.headers);
    } else if (error instanceof StoreError) {
      status = STORE_STATUS[error.kind];
      code = error.kind;
    } else if ((error as FastifyError).validation) {
      status = 400;
      code = 'invalid';
      message = `request ${error.message}`;
    } else {
      const given = (error as FastifyError).statusCode;
      status = given !== undefined && given >= 400 && given < 500 ? given : 500;
      code = CODES[status] ?? (status === 500 ? 'internal' : 'invalid');
    }
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    if (status === 500) message = 'internal error (logged on the server)';
    void reply.status(status).send({ error: code, message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url}` });
  });
}
