import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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

const CODES: Record<number, string> = {
  400: 'invalid',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  408: 'request_timeout',
  409: 'conflict',
  413: 'too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
  431: 'headers_too_large',
  503: 'unavailable',
};

/**
 * Errors Fastify answers before routing (a URL that does not decode, a path
 * parameter over its length limit): the same {error, message} shape.
 */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const status = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : (error.statusCode ?? 400);
  const message = error.code === 'FST_ERR_BAD_URL' ? 'the URL does not decode (malformed percent-encoding)' : error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path segment of the URL is too long' : error.message;
  void reply.status(status).send({ error: CODES[status] ?? 'invalid', message });
}

/**
 * Errors Node answers on the socket before a request exists (the request did
 * not arrive in time, headers too large, unparsable HTTP): {error, message} too.
 */
export function clientErrorHandler(requestTimeoutMs: number) {
  return (error: NodeJS.ErrnoException, socket: Socket): void => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const [status, message] =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, `the request (headers and body) did not arrive within ${requestTimeoutMs} ms`]
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'the request headers are too large']
          : [400, 'the request is not valid HTTP'];
    const body = JSON.stringify({ error: CODES[status], message });
    if (socket.writable) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncontent-type: application/json; charset=utf-8\r\nconnection: close\r\n\r\n${body}`);
    socket.destroy(error);
  };
}

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
      if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
    } else if ((error as FastifyError).code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      // Fastify's parser drops the cause; both are answered alike
      status = 400;
      code = 'invalid';
      message = 'the body is not valid JSON, or it holds a "__proto__" or "constructor.prototype" key, which is refused';
    } else if ((error as FastifyError).validation) {
      status = 400;
      code = 'invalid';
      message = `request ${error.message}`;
    } else {
      const given = (error as FastifyError).statusCode;
      status = given !== undefined && given >= 400 && given < 500 ? given : 500;
      code = CODES[status] ?? (status === 500 ? 'internal' : 'invalid');
    }
    // 503s are states (a collection opening or failed, a search whose client left), not faults
    if (status === 500) request.log.error({ err: error }, 'request failed');
    else if (status >= 500) request.log.debug({ statusCode: status, reason: message }, 'request unavailable');
    if (status === 500) message = 'internal error (logged on the server)';
    void reply.status(status).send({ error: code, message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url}` });
  });
}
