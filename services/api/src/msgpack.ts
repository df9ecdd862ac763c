import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Packr } from 'msgpackr';

export const MSGPACK = 'application/msgpack';

// moreTypes: Float32Array and other typed arrays travel as themselves
const packr = new Packr({ moreTypes: true, useRecords: false });

export const packMsgpack = (value: unknown): Buffer => packr.pack(value);
export const unpackMsgpack = (bytes: Uint8Array): unknown => packr.unpack(bytes);

function wantsMsgpack(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return accept.includes(MSGPACK) || accept.includes('application/x-msgpack');
}

/**
 * MessagePack beside JSON: bodies are parsed by Content-Type, replies are
 * MessagePack when Accept asks for it (errors included), JSON otherwise.
 */
export function registerMsgpack(app: FastifyInstance): void {
  const parse = (_request: FastifyRequest, body: Buffer, done: (err: Error | null, value?: unknown) => void) => {
    try {
      done(null, unpackMsgpack(body));
    } catch (e) {
      const error = new Error(`MessagePack body does not decode: ${(e as Error).message}`) as Error & { statusCode: number };
      error.statusCode = 400;
      done(error);
    }
  };
  app.addContentTypeParser([MSGPACK, 'application/x-msgpack'], { parseAs: 'buffer' }, parse);
  app.addHook('preSerialization', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (wantsMsgpack(request) && payload !== null && typeof payload === 'object') {
      reply.type(MSGPACK);
      // Fastify sends a Buffer from a serializer as is; its typing only names strings
      reply.serializer(packMsgpack as unknown as (payload: unknown) => string);
    }
    return payload;
  });
}
