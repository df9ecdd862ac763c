import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdannsClient } from '@adanns/client';
import { loadConfig, serve } from '../src/index.js';

// Property: whatever arrives (malformed, truncated, wrongly typed, oversized,
// wrong dimension, values at the edges of what JSON and MessagePack decode
// to, bodies that never finish), the answer is a 2xx or a 4xx with
// {error, message}, never a 5xx, and the server keeps serving: /healthz
// answers between and after. The seed is printed on failure (FUZZ_SEED=...
// reruns it); by default each run draws a new one.

const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const packr = new Packr({ moreTypes: true, useRecords: false });
let url: string;
let stop: () => Promise<void>;
let dataDir: string;
let requests = 0;
const REQUEST_TIMEOUT_MS = 400;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'adanns-fuzz-'));
  const config = {
    ...loadConfig([], {}),
    host: '127.0.0.1',
    port: 0,
    dataDir,
    threads: 1,
    logLevel: 'silent',
    autoBuildAt: 0,
    maxBodyBytes: 32 * 1024,
    maxBatch: 20,
    maxK: 100,
    maxSearchHits: 200,
    maxQueryMflops: 0.0005,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  };
  ({ url, stop } = await serve(config));
  const client = new AdannsClient(url);
  await client.createCollection('f', { dim: 8, metric: 'cosine' });
  await client.createCollection('g', { dim: 4, metric: 'l2' });
  await client.upsert('f', Array.from({ length: 20 }, (_, i) => ({ id: i, vector: Array.from({ length: 8 }, (_, j) => Math.sin(i + j)) })));
  await client.upsert('g', Array.from({ length: 20 }, (_, i) => ({ id: `g${i}`, vector: [i, 1, 0, -i] })));
});
afterAll(async () => {
  await stop();
  rmSync(dataDir, { recursive: true, force: true });
});

type Body = { bytes: Uint8Array | string; type: string };

/** JSON text of a value; BigInts as their digits, as a foreign encoder would send them. */
const toJson = (v: unknown): string => {
  const marks: string[] = [];
  const text = JSON.stringify(v, (_key, x: unknown) => (typeof x === 'bigint' ? `\u0000${marks.push(x.toString()) - 1}\u0000` : x)) ?? 'null';
  return text.replace(/"\\u0000(\d+)\\u0000"/g, (_m, i: string) => marks[Number(i)]);
};
const toMsgpack = (v: unknown): Uint8Array => {
  try {
    return new Uint8Array(packr.pack(v));
  } catch {
    return new Uint8Array(packr.pack(String(v)));
  }
};
const encode = (v: unknown) => fc.constantFrom<Body>({ bytes: toJson(v), type: 'application/json' }, { bytes: toMsgpack(v), type: 'application/msgpack' });

async function send(method: string, path: string, bytes: Uint8Array | string, type: string): Promise<void> {
  requests++;
  const response = await fetch(`${url}${path}`, { method, headers: type ? { 'content-type': type } : {}, ...(method === 'GET' ? {} : { body: bytes }) });
  const text = await response.text();
  if (response.status >= 500) throw new Error(`${method} ${path} -> ${response.status}: ${text}`);
  if (response.status >= 400) {
    const reply = JSON.parse(text) as { error: unknown; message: unknown };
    if (typeof reply.error !== 'string' || typeof reply.message !== 'string') throw new Error(`error reply without error and message: ${text}`);
  }
}

async function healthy(): Promise<void> {
  const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
  if (response.status !== 200) throw new Error(`/healthz answered ${response.status}`);
}

/** Runs a property with the run's seed, naming it when the property fails. */
async function check<T>(arbitrary: fc.Arbitrary<T>, property: (value: T) => Promise<void>, numRuns: number): Promise<void> {
  try {
    await fc.assert(fc.asyncProperty(arbitrary, property), { numRuns, seed });
  } catch (e) {
    console.error(`fuzz failed with seed ${seed}: rerun with FUZZ_SEED=${seed}`);
    throw e;
  }
}

// ---- structural fuzz: junk and nearly valid bodies on any route ----

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
const plausible = fc.oneof(
  nearlyValidUpsert,
  nearlyValidSearch,
  fc.record({ points: fc.array(fc.record({ id, vector, payload: fc.option(anything) }, { requiredKeys: [] }), { maxLength: 25 }) }, { requiredKeys: [] }),
  fc.record({ ids: fc.array(id, { maxLength: 25 }) }, { requiredKeys: [] }),
  fc.record({ vector, vectors: fc.array(vector, { maxLength: 25 }), k: fc.oneof(fc.integer({ min: -3, max: 200 }), anything), budget: anything, params: anything, withPayload: anything }, { requiredKeys: [] }),
  fc.record({ dim: fc.oneof(fc.integer({ min: -2, max: 70000 }), anything), metric: anything, index: fc.oneof(fc.string(), anything) }, { requiredKeys: [] }),
);
const junk: fc.Arbitrary<Body> = fc.oneof(
  plausible.map((v) => ({ bytes: toJson(v), type: 'application/json' })),
  fc.tuple(plausible, fc.nat()).map(([v, cut]) => {
    const text = toJson(v);
    return { bytes: text.slice(0, cut % (text.length + 1)), type: 'application/json' }; // truncated
  }),
  plausible.map((v) => ({ bytes: toMsgpack(v), type: 'application/msgpack' })),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ bytes, type: 'application/msgpack' })),
  fc.json().map((text) => ({ bytes: text, type: 'application/json' })),
  fc.tuple(fc.string(), fc.constantFrom('text/plain', 'application/xml', '')).map(([text, type]) => ({ bytes: text, type })),
  fc.integer({ min: 33_000, max: 80_000 }).map((n) => ({ bytes: `{"points":[${'1,'.repeat(n / 2)}1]}`, type: 'application/json' })), // over the body limit
);
const structural = fc.oneof(
  nearlyValidUpsert.chain(encode).map((body) => ({ route: ROUTES[0], body })),
  nearlyValidSearch.chain(encode).map((body) => ({ route: ROUTES[2], body })),
  fc.record({ route: fc.constantFrom(...ROUTES), body: junk }),
);

// ---- value-level fuzz: valid shapes holding the values decoders produce ----

/** Numbers at the edges of float32 and float64, and what JSON or MessagePack turn them into. */
const edgeNumber = fc.oneof(
  fc.constantFrom(-0, 0, 1e-40, -1e-40, 1.4e-45, 1e-46, 5e-324, 1.1754943508222875e-38, 3e38, -3e38, 3.4028234663852886e38, 3.5e38, 1e308, 2 ** 53, 2 ** 53 + 2, 1e18, -1e19),
  fc.double({ noNaN: true }),
  fc.float(),
);
const edgeValue = fc.oneof(edgeNumber, fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }), fc.constantFrom(NaN, Infinity, -Infinity));
/** A vector of the collection's dimension (mostly), each value at an edge. */
const edgeVector = (dim: number) =>
  fc.oneof(
    fc.array(edgeValue, { minLength: dim, maxLength: dim }),
    fc.array(edgeNumber, { minLength: dim, maxLength: dim }),
    fc.array(edgeNumber, { minLength: dim, maxLength: dim }).map((v) => Float32Array.from(v)), // MessagePack typed array
    fc.array(edgeNumber, { minLength: dim, maxLength: dim }).map((v) => Float64Array.from(v)),
    fc.array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { minLength: dim, maxLength: dim }).map((v) => BigInt64Array.from(v)),
    fc.array(edgeNumber, { minLength: 0, maxLength: dim + 2 }),
  );
const surrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
/** Strings mixing ASCII, astral pairs, lone surrogates and key names that mean something to JavaScript. */
const edgeString = fc.oneof(
  fc.string({ unit: fc.oneof(fc.constantFrom('a', '7', 'é', '\u0000', '\ud83d\ude00', '"', '\\'), surrogate), minLength: 1, maxLength: 12 }),
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', '0', '-0'),
);
const edgeId = fc.oneof(edgeString, edgeNumber, fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }), fc.constantFrom(-0, 2 ** 53, -1, 1.5));
const payloadValue = fc.oneof(
  edgeValue,
  edgeString,
  fc.constantFrom(new Map([[1, 2]]), new Set([1]), new Date(0), new Uint8Array(3), null, true),
  fc.array(edgeNumber, { maxLength: 3 }),
);
/** A payload, sometimes with an own `__proto__` key (as JSON.parse makes one). */
const edgePayload = fc.oneof(
  fc.dictionary(edgeString, payloadValue, { maxKeys: 4 }),
  payloadValue.map((v) => JSON.parse(`{"__proto__": ${JSON.stringify(typeof v === 'bigint' ? 1 : v) ?? 'null'}}`) as unknown),
);
const valueRequest = fc.oneof(
  fc.record({ points: fc.array(fc.record({ id: edgeId, vector: edgeVector(8), payload: edgePayload }, { requiredKeys: ['id', 'vector'] }), { minLength: 1, maxLength: 4 }) }).chain(encode).map((body) => ({ route: ROUTES[0], body })),
  fc.record({ points: fc.array(fc.record({ id: edgeId, vector: edgeVector(4) }), { minLength: 1, maxLength: 4 }) }).chain(encode).map((body) => ({ route: ['POST', '/v1/collections/g/points'] as [string, string], body })),
  fc.record({ vector: edgeVector(8), k: fc.oneof(fc.integer({ min: 1, max: 25 }), edgeValue), withPayload: fc.boolean() }, { requiredKeys: ['vector', 'k'] }).chain(encode).map((body) => ({ route: ROUTES[2], body })),
  fc.record({ vectors: fc.array(edgeVector(4), { minLength: 1, maxLength: 25 }), k: fc.integer({ min: 1, max: 100 }) }).chain(encode).map((body) => ({ route: ['POST', '/v1/collections/g/search'] as [string, string], body })),
  fc.record({ ids: fc.array(edgeId, { minLength: 1, maxLength: 5 }) }).chain(encode).map((body) => ({ route: ROUTES[1], body })),
  edgeId.map((i) => ({ route: ['GET', `/v1/collections/g/points/${encodeURIComponent(String(i).replace(/[\ud800-\udfff]/g, '%ED%A0%80'))}`] as [string, string], body: { bytes: '', type: '' } })),
);

/** A request whose head and part of whose body arrive, and the rest never does. */
async function stalled(path: string): Promise<Promise<string>> {
  const { hostname, port } = new URL(url);
  const socket = await new Promise<ReturnType<typeof connect>>((resolve) => {
    const s = connect(Number(port), hostname, () => resolve(s));
  });
  let text = '';
  socket.on('data', (chunk) => (text += chunk.toString()));
  socket.on('error', () => undefined);
  socket.write(`POST ${path} HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"vector": [`);
  return new Promise((resolve) => socket.on('close', () => resolve(text)));
}

describe('fuzzed requests', () => {
  it('never get a 5xx and never stop the server', async () => {
    await check(structural, ({ route: [method, path], body: { bytes, type } }) => send(method, path, bytes, type), 400);
    await healthy();
    const client = new AdannsClient(url);
    expect((await client.search('f', Array.from({ length: 8 }, (_, j) => Math.sin(3 + j)), { k: 1 })).results[0].length).toBe(1);
  }, 300_000);

  it('answer values at the edges of both encodings (BigInt, subnormals, 3e38, -0, lone surrogates, __proto__) with 2xx or 4xx, while slow bodies time out', async () => {
    // bodies that never finish: they hold no search slot and end in 408
    const slow = await Promise.all(Array.from({ length: 8 }, (_, i) => stalled(i % 2 ? '/v1/collections/f/search' : '/v1/collections/f/points')));
    let runs = 0;
    await check(
      valueRequest,
      async ({ route: [method, path], body: { bytes, type } }) => {
        await send(method, path, bytes, type);
        if (++runs % 50 === 0) await healthy();
      },
      500,
    );
    for (const reply of slow) expect(await reply).toMatch(/^HTTP\/1\.1 408 [^]*"error":"request_timeout"/);
    // oversized work: too many hits, too much work per query
    await send('POST', '/v1/collections/g/search', JSON.stringify({ vectors: Array.from({ length: 20 }, () => [1, 2, 3, 4]), k: 20 }), 'application/json');
    const tooMuch = await fetch(`${url}/v1/collections/g/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ vectors: Array.from({ length: 20 }, () => [1, 2, 3, 4]), k: 20 }) });
    expect(tooMuch.status).toBe(413);
    await healthy();
    const client = new AdannsClient(url);
    expect((await client.search('g', [3, 1, 0, -3], { k: 1 })).results[0][0].id).toBe('g3');
    console.log(`fuzz (seed ${seed}): ${requests} requests, no 5xx`);
  }, 300_000);
});
