import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdannsClient } from '@adanns/client';
import { loadConfig, serve } from '../src/index.js';

// Property: whatever arrives (malformed, truncated, wrongly typed, oversized,
// wrong dimension, JSON or MessagePack), the answer is a 2xx or a 4xx with
// {error, message}, never a 5xx, and the server keeps serving.

const packr = new Packr({ moreTypes: true, useRecords: false });
let url: string;
let stop: () => Promise<void>;
let dataDir: string;
let requests = 0;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'adanns-fuzz-'));
  const config = { ...loadConfig([], {}), host: '127.0.0.1', port: 0, dataDir, threads: 1, logLevel: 'silent', autoBuildAt: 0, maxBodyBytes: 32 * 1024, maxBatch: 20, maxK: 100 };
  ({ url, stop } = await serve(config));
  const client = new AdannsClient(url);
  await client.createCollection('f', { dim: 8, metric: 'cosine' });
  await client.upsert('f', Array.from({ length: 20 }, (_, i) => ({ id: i, vector: Array.from({ length: 8 }, (_, j) => Math.sin(i + j)) })));
});
afterAll(async () => {
  await stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const ROUTES: [string, string][] = [
  ['POST', '/v1/collections/f/points'],
  ['DELETE', '/v1/collections/f/points'],
  ['POST', '/v1/collections/f/search'],
  ['PUT', '/v1/collections/fz'],
  ['POST', '/v1/collections/missing/search'],
  ['GET', '/v1/collections/f/points/%ZZ'],
];

const anything = fc.anything({ withBigInt: true, withMap: true, withSet: true, withDate: true, withTypedArray: true, withNullPrototype: true, withSparseArray: true });
const number = fc.oneof(fc.double(), fc.integer(), fc.constant(1e308), fc.constant(-0));
const vector = fc.oneof(fc.array(number, { maxLength: 12 }), fc.array(anything, { maxLength: 10 }), anything);
const id = fc.oneof(fc.integer({ min: -5, max: 1e6 }), fc.string({ maxLength: 300 }), fc.double(), anything);
// close to valid, so the checks past the schema (dimension, finite values, payloads, budgets) are reached
const eight = fc.array(fc.oneof(fc.double(), fc.integer()), { minLength: 8, maxLength: 8 });
const nearlyValidUpsert = fc.record({
  points: fc.array(fc.record({ id: fc.oneof(fc.nat(), fc.string({ minLength: 1, maxLength: 20 })), vector: eight, payload: fc.oneof(fc.dictionary(fc.string(), anything), anything) }), { minLength: 1, maxLength: 5 }),
});
const nearlyValidSearch = fc.record({ vector: eight, k: fc.integer({ min: 1, max: 30 }), budget: fc.option(anything), params: fc.option(anything), withPayload: fc.boolean() }, { requiredKeys: ['vector', 'k'] });
const nearlyValid = fc.oneof(nearlyValidUpsert, nearlyValidSearch);
const plausible = fc.oneof(
  nearlyValid,
  fc.record({ points: fc.array(fc.record({ id, vector, payload: fc.option(anything) }, { requiredKeys: [] }), { maxLength: 25 }) }, { requiredKeys: [] }),
  fc.record({ ids: fc.array(id, { maxLength: 25 }) }, { requiredKeys: [] }),
  fc.record({ vector, vectors: fc.array(vector, { maxLength: 25 }), k: fc.oneof(fc.integer({ min: -3, max: 200 }), anything), budget: anything, params: anything, withPayload: anything }, { requiredKeys: [] }),
  fc.record({ dim: fc.oneof(fc.integer({ min: -2, max: 70000 }), anything), metric: anything, index: fc.oneof(fc.string(), anything) }, { requiredKeys: [] }),
);

type Body = { bytes: Uint8Array | string; type: string };
const toJson = (v: unknown): string => JSON.stringify(v, (_key, x: unknown) => (typeof x === 'bigint' ? Number(x) : x)) ?? 'null';
const toMsgpack = (v: unknown): Uint8Array => {
  try {
    return new Uint8Array(packr.pack(v));
  } catch {
    return new Uint8Array(packr.pack(String(v)));
  }
};
const body: fc.Arbitrary<Body> = fc.oneof(
  plausible.map((v) => ({ bytes: toJson(v), type: 'application/json' })),
  fc.tuple(plausible, fc.nat()).map(([v, cut]) => {
    const text = toJson(v);
    return { bytes: text.slice(0, cut % (text.length + 1)), type: 'application/json' }; // truncated
  }),
  plausible.map((v) => ({ bytes: toMsgpack(v), type: 'application/msgpack' })),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ bytes, type: 'application/msgpack' })),
  fc.json().map((text) => ({ bytes: text, type: 'application/json' })),
  fc.string().map((text) => ({ bytes: text, type: fc.sample(fc.constantFrom('text/plain', 'application/xml', ''), 1)[0] })),
  fc.integer({ min: 33_000, max: 80_000 }).map((n) => ({ bytes: `{"points":[${'1,'.repeat(n / 2)}1]}`, type: 'application/json' })), // over the body limit
);

const encode = (v: unknown) => fc.constantFrom<Body>({ bytes: toJson(v), type: 'application/json' }, { bytes: toMsgpack(v), type: 'application/msgpack' });
// half the requests are aimed: a nearly valid body on its own route; the rest are junk on any route
const request = fc.oneof(
  nearlyValidUpsert.chain(encode).map((b) => ({ route: ROUTES[0], body: b })),
  nearlyValidSearch.chain(encode).map((b) => ({ route: ROUTES[2], body: b })),
  fc.record({ route: fc.constantFrom(...ROUTES), body }),
  fc.record({ route: fc.constantFrom(...ROUTES), body }),
);

describe('fuzzed requests', () => {
  it('never get a 5xx and never stop the server', async () => {
    await fc.assert(
      fc.asyncProperty(request, async ({ route: [method, path], body: { bytes, type } }) => {
        requests++;
        const response = await fetch(`${url}${path}`, {
          method,
          headers: type ? { 'content-type': type } : {},
          ...(method === 'GET' ? {} : { body: bytes }),
        });
        const text = await response.text();
        if (response.status >= 500) throw new Error(`${method} ${path} -> ${response.status}: ${text}`);
        if (response.status >= 400) {
          const reply = JSON.parse(text) as { error: unknown; message: unknown };
          if (typeof reply.error !== 'string' || typeof reply.message !== 'string') throw new Error(`error reply without error and message: ${text}`);
        }
      }),
      { numRuns: 600, seed: 20261129 },
    );
    const client = new AdannsClient(url);
    expect(await client.health()).toEqual({ status: 'ok' });
    expect((await client.search('f', Array.from({ length: 8 }, (_, j) => Math.sin(3 + j)), { k: 1 })).results[0].length).toBe(1);
    console.log(`fuzz: ${requests} requests, no 5xx`);
  }, 300_000);
});
