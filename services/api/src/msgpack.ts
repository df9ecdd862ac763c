import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Packr, Unpackr } from 'msgpackr';
import { searchSlices } from '@adanns/store';

export const MSGPACK = 'application/msgpack';

// moreTypes: Float32Array and other typed arrays travel as themselves.
// int64AsType 'auto' (msgpackr supports it, its typings do not list it):
// int64-encoded integers within 2^53 (some encoders always use int64) decode
// as numbers; larger ones stay BigInt and are refused by validation with a 400.
const INT64 = { int64AsType: 'auto' as unknown as 'number' };
const packr = new Packr({ moreTypes: true, useRecords: false, ...INT64 });
// maps as Map objects: shows keys msgpackr would otherwise rename (__proto__)
const mapReader = new Unpackr({ moreTypes: true, useRecords: false, mapsAsObjects: false, ...INT64 });
const PROTO = Buffer.from('__proto__');

/** Whether any map, at any depth, holds the key (iterative: a body may nest as deep as the decoder allowed). */
function hasProtoKey(root: unknown): boolean {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (value instanceof Map) {
      for (const [key, v] of value) {
        if (key === '__proto__') return true;
        if (v !== null && typeof v === 'object') pending.push(v);
      }
    } else if (Array.isArray(value)) {
      for (const v of value) if (v !== null && typeof v === 'object') pending.push(v);
    }
  }
  return false;
}

export const packMsgpack = (value: unknown): Buffer => packr.pack(value);

/**
 * Decodes a body. msgpackr renames a `__proto__` key to `__proto_`; such a
 * body is refused, as the JSON parser refuses it, rather than stored renamed.
 */
export function unpackMsgpack(bytes: Uint8Array): unknown {
  const value = packr.unpack(bytes);
  // the byte string appears in every body with such a key; decode again as Maps only then
  if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes(PROTO) && hasProtoKey(mapReader.unpack(bytes))) {
    throw new Error('a map holds the key "__proto__", which is not accepted');
  }
  return value;
}

function wantsMsgpack(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return accept.includes(MSGPACK) || accept.includes('application/x-msgpack');
}

/** Bodies up to this size are decoded at once; larger ones wait for their event-loop turn. */
const DECODE_AT_ONCE_BYTES = 64 * 1024;

/**
 * MessagePack beside JSON: bodies are parsed by Content-Type, replies are
 * MessagePack when Accept asks for it (errors included), JSON otherwise.
 * Large bodies are decoded one per event-loop turn, in the queue search
 * slices take turns in (a 4 MB body of 10,000 vectors takes ~50 ms to
 * decode): a burst of big requests does not hold /healthz behind all of
 * their decoding at once.
 */
export function registerMsgpack(app: FastifyInstance): void {
  const inTurn = (bytes: number, decode: () => void) => {
    if (bytes <= DECODE_AT_ONCE_BYTES) decode();
    else void searchSlices.run(async () => decode());
  };
  const parse = (_request: FastifyRequest, body: Buffer, done: (err: Error | null, value?: unknown) => void) => {
    inTurn(body.length, () => {
      let value: unknown;
      try {
        value = unpackMsgpack(body);
      } catch (e) {
        const error = new Error(`MessagePack body does not decode: ${(e as Error).message}`) as Error & { statusCode: number };
        error.statusCode = 400;
        done(error);
        return;
      }
      done(null, value);
    });
  };
  app.addContentTypeParser([MSGPACK, 'application/x-msgpack'], { parseAs: 'buffer' }, parse);
  // Fastify's own JSON parser (with its __proto__ checks), taking its turn like MessagePack
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => inTurn(body.length, () => json(request, body as string, done)));
  app.addHook('preSerialization', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (wantsMsgpack(request) && payload !== null && typeof payload === 'object') {
      reply.type(MSGPACK);
      // Fastify sends a Buffer from a serializer as is; its typing only names strings
      reply.serializer(packMsgpack as unknown as (payload: unknown) => string);
    }
    return payload;
  });
}
