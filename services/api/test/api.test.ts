import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AdannsClient, AdannsError } from '@adanns/client';
import { WasmSimdBackend } from '@adanns/compute';
import { Store } from '@adanns/store';
import { buildServer, createLogger, loadConfig, packMsgpack, serve, type ServiceConfig } from '../src/index.js';
import { randomMatrix } from '../../../packages/compute/test/naive.js';

// Every test talks to a real server over a loopback socket through the typed client.

const dirs: string[] = [];
const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const stop of stops) await stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function start(overrides: Partial<ServiceConfig> = {}, dataDir?: string): Promise<{ url: string; dataDir: string; stop: () => Promise<void> }> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'adanns-api-'));
  if (!dataDir) dirs.push(dir);
  const config = { ...loadConfig([], {}), host: '127.0.0.1', port: 0, dataDir: dir, threads: 1, logLevel: 'silent', autoBuildAt: 0, ...overrides };
  const { url, stop, store } = await serve(config);
  stops.push(stop);
  // it listens at once; the tests start once its collections are open (/readyz)
  await store.opened;
  return { url, dataDir: dir, stop };
}

const dim = 16;
const data = randomMatrix(2000, dim, 5);
const vec = (i: number) => Array.from(data.subarray(i * dim, (i + 1) * dim));

async function expectError(promise: Promise<unknown>, status: number, code: string, message?: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AdannsError);
  const e = error as AdannsError;
  expect([e.status, e.code]).toEqual([status, code]);
  if (message) expect(e.message).toMatch(message);
}

async function raw(url: string, method: string, path: string, body: string | Uint8Array, type = 'application/json', headers: Record<string, string> = {}): Promise<{ status: number; json: { error?: string; message?: string } | undefined; headers: Headers }> {
  const response = await fetch(`${url}${path}`, { method, headers: { 'content-type': type, ...headers }, ...(method === 'GET' ? {} : { body }) });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, headers: response.headers };
}

/**
 * Opens a connection and sends a request head and part of its body, never
 * the rest; resolves with the socket and a promise of everything the server
 * sent back by the time it closed the connection.
 */
async function stalledRequest(url: string, path: string, body: string, headers = ''): Promise<{ socket: Socket; reply: Promise<string> }> {
  const { hostname, port } = new URL(url);
  const socket = await new Promise<Socket>((resolve) => {
    const s = connect(Number(port), hostname, () => resolve(s));
  });
  let text = '';
  socket.on('data', (chunk) => (text += chunk.toString()));
  socket.on('error', () => undefined);
  const reply = new Promise<string>((resolve) => socket.on('close', () => resolve(text)));
  socket.write(`POST ${path} HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n${headers}\r\n${body.slice(0, Math.floor(body.length / 2))}`);
  return { socket, reply };
}

/** Polls `probe` until it returns a value, or fails at the deadline. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, deadlineMs = 20_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('HTTP API over a socket', () => {
  it('serves every route in JSON and keeps data across a restart', async () => {
    const server = await start();
    const client = new AdannsClient(server.url);
    expect(await client.health()).toEqual({ status: 'ok' });
    expect(await client.ready()).toEqual({ status: 'ready' });
    const created = await client.createCollection('docs', { dim, metric: 'cosine', index: 'pca,ivf16@8,flat@16' });
    expect(created).toMatchObject({ name: 'docs', dim, count: 0, index: { state: 'none' } });
    const points = Array.from({ length: 1500 }, (_, i) => ({ id: i % 3 === 0 ? `s${i}` : i, vector: vec(i), payload: { n: i } }));
    for (let i = 0; i < points.length; i += 500) await client.upsert('docs', points.slice(i, i + 500));
    expect((await client.getCollection('docs')).count).toBe(1500);
    expect(await client.getPoint('docs', 's3')).toMatchObject({ id: 's3', payload: { n: 3 } });
    expect((await client.getPoint('docs', 4))?.vector).toEqual(Array.from(new Float32Array(vec(4))));
    expect(await client.getPoint('docs', '4')).toBeUndefined(); // "4" is not 4
    expect(await client.getPoint('docs', 99_999)).toBeUndefined();

    const exact = await client.search('docs', vec(7), { k: 3, withPayload: true });
    expect(exact.results[0][0]).toMatchObject({ id: 7, payload: { n: 7 } });
    expect(exact).toMatchObject({ params: null, expectedRecall: 1 });

    expect(await client.buildIndex('docs')).toMatchObject({ state: 'building' });
    await expectError(client.buildIndex('docs'), 409, 'conflict', /already building/);
    const index = await client.waitForIndex('docs');
    expect(index).toMatchObject({ state: 'ready', spec: 'pca,ivf16@8,flat@16', lastError: null });
    const info = await client.getCollection('docs');
    expect(info.frontier!.length).toBeGreaterThan(0);

    const budgeted = await client.search('docs', vec(8), { k: 5, budget: { recall: 0.6 } });
    expect(budgeted.params).not.toBeNull();
    expect(budgeted.expectedRecall).toBeGreaterThanOrEqual(0.6);
    expect(typeof budgeted.budgetMet).toBe('boolean');
    expect(budgeted.mflops).toBeGreaterThan(0);
    const explicit = await client.searchBatch('docs', [vec(10), vec(11)], { k: 2, params: { nprobe: 16 } });
    expect(explicit.results.map((r) => r[0].id)).toEqual([10, 11]);
    expect(explicit.params).toMatchObject({ nprobe: 16 });
    // adaptive probing over HTTP: the margin comes back in the params, a bad one is a 400 naming it
    const adaptive = await client.search('docs', vec(11), { k: 2, params: { nprobe: 16, probeMargin: 0.05 } });
    expect(adaptive.params).toMatchObject({ nprobe: 16, probeMargin: 0.05 });
    expect(adaptive.results[0][0].id).toBe(11);
    await expectError(client.search('docs', vec(11), { k: 2, params: { probeMargin: -1 } }), 400, 'invalid', /probeMargin/);
    // a funnel over HTTP: a scan at 8, a stage from the lists at 16 keeping 5; it comes back in the params, a bad one is a 400 naming the stage
    const funnel = await client.search('docs', vec(13), { k: 2, params: { nprobe: 16, scanDim: 8, shortlist: 20, funnel: [{ dim: 16, keep: 5 }] } });
    expect(funnel.params).toMatchObject({ scanDim: 8, shortlist: 20, funnel: [{ dim: 16, keep: 5 }] });
    expect(funnel.results[0][0].id).toBe(13);
    await expectError(client.search('docs', vec(12), { k: 2, params: { shortlist: 20, funnel: [{ dim: 32, keep: 5 }] } }), 400, 'invalid', /funnel stage 0 \(keep 5 at dim 32\)/);
    await expectError(client.search('docs', vec(12), { k: 2, params: { shortlist: 20, funnel: [{ dim: 16, keep: 0 }] } }), 400, 'invalid', /funnel/);
    // re-rank patience over HTTP: malformed, or on params without a re-rank (this index has none), is a 400 naming it
    await expectError(client.search('docs', vec(12), { k: 2, params: { rerankPatience: { first: 0, step: 5, newMax: 0 } } }), 400, 'invalid', /rerankPatience/);
    await expectError(client.search('docs', vec(12), { k: 2, params: { rerankPatience: { first: 10, step: 5, newMax: 0 } } }), 400, 'invalid', /rerankPatience 10\/5\/0: .* no rerankDim/);

    expect(await client.deletePoints('docs', [10, 's3', 'never'])).toMatchObject({ deleted: 2 });
    expect((await client.search('docs', vec(10), { k: 3, params: { nprobe: 16 } })).results[0].map((h) => h.id)).not.toContain(10);
    expect((await client.listCollections()).map((c) => c.name)).toEqual(['docs']);
    const metrics = await client.metrics();
    expect(metrics).toMatch(/adanns_http_requests_total\{route="\/v1\/collections\/:name\/search",method="POST",status="200"\} \d+/);
    expect(metrics).toMatch(/adanns_collection_points\{collection="docs"\} 1498/);
    expect(metrics).toMatch(/adanns_search_mflops_bucket/);
    expect(metrics).toMatch(/adanns_ingested_points_total\{collection="docs"\} 1500/);
    const openapi = (await client.request<{ paths: Record<string, unknown> }>('GET', '/openapi.json')).paths;
    expect(Object.keys(openapi)).toEqual(expect.arrayContaining(['/v1/collections/{name}', '/v1/collections/{name}/points', '/v1/collections/{name}/search', '/v1/collections/{name}/index']));

    await server.stop();
    const again = await start({}, server.dataDir);
    const client2 = new AdannsClient(again.url);
    const reopened = await client2.getCollection('docs');
    expect(reopened).toMatchObject({ count: 1498, index: { state: 'ready' } });
    expect(await client2.getPoint('docs', 10)).toBeUndefined();
    expect((await client2.search('docs', vec(13), { k: 1, params: { nprobe: 16 } })).results[0][0].id).toBe(13);
    expect(await client2.dropCollection('docs')).toEqual({ deleted: true });
    await expectError(client2.getCollection('docs'), 404, 'not_found');
  });

  it('speaks MessagePack with Float32Array vectors, errors included', async () => {
    const server = await start();
    const client = new AdannsClient(server.url, { format: 'msgpack' });
    await client.createCollection('mp', { dim, metric: 'l2' });
    await client.upsert('mp', Array.from({ length: 50 }, (_, i) => ({ id: i, vector: new Float32Array(vec(i)), payload: { tag: `t${i}` } })));
    const answer = await client.search('mp', new Float32Array(vec(3)), { k: 2, withPayload: true });
    expect(answer.results[0][0]).toMatchObject({ id: 3, payload: { tag: 't3' } });
    expect(answer.results[0][0].score).toBeCloseTo(0, 5);
    await expectError(client.search('mp', new Float32Array(3), { k: 1 }), 400, 'invalid', /3 values, the collection has dimension 16/);
    // a MessagePack body that does not decode
    const bad = await raw(server.url, 'POST', '/v1/collections/mp/search', Uint8Array.of(0xc1, 0xff), 'application/msgpack');
    expect(bad.status).toBe(400);
    expect(bad.json?.error).toBe('invalid');
  });

  it('checks API keys: 401 without, 403 for the read key on writes', async () => {
    const server = await start({ apiKey: 'admin-secret', readKey: 'reader' });
    const anonymous = new AdannsClient(server.url);
    const reader = new AdannsClient(server.url, { apiKey: 'reader' });
    const admin = new AdannsClient(server.url, { apiKey: 'admin-secret' });
    await expectError(anonymous.createCollection('k', { dim: 4 }), 401, 'unauthorized', /API key is required/);
    await expectError(new AdannsClient(server.url, { apiKey: 'wrong' }).listCollections(), 401, 'unauthorized', /not valid/);
    await expectError(reader.createCollection('k', { dim: 4 }), 403, 'forbidden');
    await admin.createCollection('k', { dim: 4 });
    await expectError(reader.upsert('k', [{ id: 1, vector: [1, 2, 3, 4] }]), 403, 'forbidden');
    await admin.upsert('k', [{ id: 1, vector: [1, 2, 3, 4] }]);
    expect((await reader.search('k', [1, 2, 3, 4], { k: 1 })).results[0][0].id).toBe(1);
    expect((await reader.getPoint('k', 1))?.id).toBe(1);
    const viaHeader = await raw(server.url, 'POST', '/v1/collections/k/search', JSON.stringify({ vector: [1, 2, 3, 4], k: 1 }), 'application/json', { 'api-key': 'reader' });
    expect(viaHeader.status).toBe(200);
    expect(await anonymous.health()).toEqual({ status: 'ok' });
  });

  it('answers every bad request with the right status and {error, message}', async () => {
    const server = await start({ maxBodyBytes: 4096, maxBatch: 5, maxK: 50 });
    const client = new AdannsClient(server.url);
    await client.createCollection('e', { dim: 4, metric: 'ip' });
    await client.upsert('e', [{ id: 1, vector: [1, 0, 0, 0] }]);
    await client.createCollection('empty', { dim: 4 });
    const cases: [string, string, string, number, string, RegExp][] = [
      ['POST', '/v1/collections/e/search', '{"vector":[1,2,3', 400, 'invalid', /not valid JSON/],
      ['POST', '/v1/collections/e/search', '{"vector":[1,2,3,4]}', 400, 'invalid', /k/],
      ['POST', '/v1/collections/e/search', '{"vector":[1,2,3,4],"k":"ten"}', 400, 'invalid', /k/],
      ['POST', '/v1/collections/e/search', '{"vector":[1,2,3,4],"k":51}', 400, 'invalid', /exceeds the limit 50/],
      ['POST', '/v1/collections/e/search', '{"vector":[1,2,3,4],"vectors":[[1,2,3,4]],"k":1}', 400, 'invalid', /exactly one of vector and vectors/],
      ['POST', '/v1/collections/e/search', '{"vector":[1,"x",3,4],"k":1}', 400, 'invalid', /vector\[1\]/],
      ['POST', '/v1/collections/e/search', '{"vector":[1,2,3,4],"k":1,"budget":{"recall":2}}', 400, 'invalid', /budget/],
      ['POST', '/v1/collections/e/search', '{"vectors":[[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4]],"k":1}', 413, 'too_large', /limit is 5/],
      ['POST', '/v1/collections/nope/search', '{"vector":[1,2,3,4],"k":1}', 404, 'not_found', /no collection named "nope"/],
      ['POST', '/v1/collections/e/points', '{"points":[{"id":2,"vector":[1,2,3]}]}', 400, 'invalid', /dimension 4/],
      ['POST', '/v1/collections/e/points', '{"points":[{"id":2.5,"vector":[1,2,3,4]}]}', 400, 'invalid', /id/],
      ['POST', '/v1/collections/e/points', JSON.stringify({ points: Array.from({ length: 6 }, (_, i) => ({ id: i, vector: [1, 2, 3, 4] })) }), 413, 'too_large', /limit is 5/],
      ['POST', '/v1/collections/e/points', JSON.stringify({ points: [{ id: 3, vector: [1, 2, 3, 4], payload: { text: 'x'.repeat(5000) } }] }), 413, 'too_large', /.*/],
      ['PUT', '/v1/collections/e', '{"dim":4}', 409, 'conflict', /already exists/],
      ['PUT', '/v1/collections/bad%20name', '{"dim":4}', 400, 'invalid', /name/],
      ['PUT', '/v1/collections/z', '{"dim":0}', 400, 'invalid', /dim/],
      ['PUT', '/v1/collections/z', '{"dim":4,"index":"ivf8@9"}', 400, 'invalid', /index/],
      ['POST', '/v1/collections/empty/index', '', 400, 'invalid', /has no points to index/],
      ['GET', '/v2/nothing', '', 404, 'not_found', /no route/],
    ];
    for (const [method, path, body, status, code, message] of cases) {
      const response = await raw(server.url, method, path, body, body === '' ? 'text/plain' : 'application/json');
      expect([method, path, response.status, response.json?.error]).toEqual([method, path, status, code]);
      expect(response.json?.message).toMatch(message);
    }
    expect((await client.getCollection('e')).count).toBe(1); // nothing from the bad batches was applied
  });

  it('reads back a point by any id an upsert accepts, up to the 256-character limit', async () => {
    const server = await start();
    const client = new AdannsClient(server.url);
    await client.createCollection('long-ids', { dim: 2 });
    for (const id of ['x'.repeat(256), 'é'.repeat(256)]) {
      await client.upsert('long-ids', [{ id, vector: [1, 2] }]);
      expect((await client.getPoint('long-ids', id))?.id).toBe(id);
    }
    // one character more is refused, in {error, message} form
    const tooLong = await raw(server.url, 'GET', `/v1/collections/long-ids/points/${'x'.repeat(257)}`, '');
    expect([tooLong.status, tooLong.json?.error]).toEqual([414, 'uri_too_long']);
  });

  it('sheds searches past the in-flight limit with 429 and Retry-After, counting only searches whose body has arrived', async () => {
    const server = await start({ maxInflightSearches: 1, searchSliceMs: 1 });
    const client = new AdannsClient(server.url);
    await client.createCollection('busy', { dim, metric: 'cosine' });
    for (let i = 0; i < 2000; i += 1000) await client.upsert('busy', Array.from({ length: 1000 }, (_, j) => ({ id: i + j, vector: vec(i + j) })));
    // requests whose bodies are still arriving hold no slot
    const stalled = await Promise.all(Array.from({ length: 3 }, () => stalledRequest(server.url, '/v1/collections/busy/search', JSON.stringify({ vector: vec(0), k: 10 }))));
    expect((await client.search('busy', vec(1), { k: 1 })).results[0][0].id).toBe(1);
    // a long batch (many slices) admitted and running: a search arriving meanwhile is shed
    const heavy = JSON.stringify({ vectors: Array.from({ length: 2400 }, (_, i) => vec(i % 2000)), k: 10 }); // 24,000 hits: within the default limit
    let running: Promise<{ status: number }> | undefined;
    const shed = await until('a 429 while a batch runs', async () => {
      running ??= raw(server.url, 'POST', '/v1/collections/busy/search', heavy).finally(() => (running = undefined));
      if (!/^adanns_searches_in_flight 1$/m.test(await client.metrics())) return undefined;
      const answer = await raw(server.url, 'POST', '/v1/collections/busy/search', JSON.stringify({ vector: vec(2), k: 1 }));
      return answer.status === 429 ? answer : undefined;
    });
    expect(shed.headers.get('retry-after')).toBe('1');
    expect(shed.json).toMatchObject({ error: 'too_many_requests', message: expect.stringMatching(/the limit is 1/) });
    if (running) expect((await running).status).toBe(200);
    // the limit frees up again
    expect((await client.search('busy', vec(1), { k: 1 })).results[0][0].id).toBe(1);
    for (const { socket } of stalled) socket.destroy();
  });

  it('times out a request whose body does not arrive, with 408 and {error, message}', async () => {
    const server = await start({ requestTimeoutMs: 300, maxInflightSearches: 1 });
    const client = new AdannsClient(server.url);
    await client.createCollection('t', { dim: 4, metric: 'l2' });
    await client.upsert('t', [{ id: 1, vector: [1, 2, 3, 4] }]);
    const stalled = await Promise.all(Array.from({ length: 5 }, () => stalledRequest(server.url, '/v1/collections/t/search', JSON.stringify({ vector: [1, 2, 3, 4], k: 1 }))));
    expect((await client.search('t', [1, 2, 3, 4], { k: 1 })).results[0][0].id).toBe(1);
    for (const { reply } of stalled) {
      const text = await reply; // the server closes it
      expect(text).toMatch(/^HTTP\/1\.1 408 /);
      expect(JSON.parse(text.split('\r\n\r\n')[1])).toEqual({ error: 'request_timeout', message: 'the request (headers and body) did not arrive within 300 ms' });
    }
    expect(await client.health()).toEqual({ status: 'ok' });
  });

  it('refuses searches over the work limits with 413 saying what to reduce', async () => {
    const server = await start({ maxSearchHits: 1000, maxQueryMflops: 0.01, maxSearchMflops: 0.1 });
    const client = new AdannsClient(server.url);
    await client.createCollection('w', { dim, metric: 'l2', index: 'ivf8@16,flat@16' });
    await client.upsert('w', Array.from({ length: 1000 }, (_, i) => ({ id: i, vector: vec(i) })));
    await expectError(client.searchBatch('w', [vec(0), vec(1)], { k: 600 }), 413, 'too_large', /2 query vectors x k = 600 is 1200 hits, the limit is 1000/);
    // untrained: every query scans all 1000 points (0.016 MFLOPs)
    await expectError(client.search('w', vec(0), { k: 1 }), 413, 'too_large', /plans 0.01600 MFLOPs, the limit per query is 0.01: build the index/);
    await client.buildIndex('w');
    await client.waitForIndex('w');
    await expectError(client.search('w', vec(0), { k: 1, params: { nprobe: 8 } }), 413, 'too_large', /lower nprobe, shortlist or rerankDim/);
    const one = await client.search('w', vec(0), { k: 1, params: { nprobe: 1 } });
    expect(one.results[0]).toHaveLength(1);
    await expectError(client.searchBatch('w', Array.from({ length: 200 }, (_, i) => vec(i)), { k: 1, params: { nprobe: 1 } }), 413, 'too_large', /the limit is 0.1: send fewer query vectors/);
  });

  it('answers findings of the outside probe with 4xx, not 500, and scores cosine edge vectors', async () => {
    const server = await start({ apiKey: 'admin', readKey: 'reader' });
    const admin = new AdannsClient(server.url, { apiKey: 'admin' });
    // the scheme is case-insensitive
    const lower = await raw(server.url, 'GET', '/v1/collections', '', 'application/json', { authorization: 'bearer reader' });
    expect(lower.status).toBe(200);
    expect((await raw(server.url, 'GET', '/v1/collections', '', 'application/json', { authorization: 'BEARER admin' })).status).toBe(200);
    expect((await raw(server.url, 'GET', '/v1/collections', '', 'application/json', { authorization: 'Bearer admi' })).status).toBe(401);
    await admin.createCollection('bi', { dim: 1, metric: 'l2' });
    await admin.upsert('bi', [{ id: 1, vector: [1] }]);
    const search = (bytes: Uint8Array) => raw(server.url, 'POST', '/v1/collections/bi/search', bytes, 'application/msgpack', { authorization: 'Bearer reader' });
    // {vector: [int64 2^60], k: 1}, then int64 1: the repro
    const big = Uint8Array.of(0x82, 0xa6, ...Buffer.from('vector'), 0x91, 0xd3, 0x10, 0, 0, 0, 0, 0, 0, 0, 0xa1, 0x6b, 0x01);
    const bigAnswer = await search(big);
    expect([bigAnswer.status, bigAnswer.json?.message]).toEqual([400, expect.stringMatching(/vector\[0\] is 1152921504606846976n \(a 64-bit integer\), not a finite number/)]);
    const small = Uint8Array.of(0x82, 0xa6, ...Buffer.from('vector'), 0x91, 0xd3, 0, 0, 0, 0, 0, 0, 0, 1, 0xa1, 0x6b, 0x01);
    expect((await search(small)).status).toBe(200);
    // a msgpack __proto__ key is refused, not renamed
    const proto = packMsgpack({ points: [{ id: 2, vector: [1], payload: { ['__proto__']: { polluted: true } } }] });
    const protoAnswer = await raw(server.url, 'POST', '/v1/collections/bi/points', proto, 'application/msgpack', { authorization: 'Bearer admin' });
    expect([protoAnswer.status, protoAnswer.json?.message]).toEqual([400, expect.stringMatching(/__proto__/)]);
    // however deep it is nested
    const deepPayload = JSON.parse(`${'{"a":'.repeat(100)}{"__proto__":{"x":1}}${'}'.repeat(100)}`) as Record<string, unknown>;
    const deepProto = packMsgpack({ points: [{ id: 2, vector: [1], payload: deepPayload }] });
    const deepAnswer = await raw(server.url, 'POST', '/v1/collections/bi/points', deepProto, 'application/msgpack', { authorization: 'Bearer admin' });
    expect([deepAnswer.status, deepAnswer.json?.message]).toEqual([400, expect.stringMatching(/__proto__/)]);
    const jsonProto = await raw(server.url, 'POST', '/v1/collections/bi/points', '{"points":[{"id":2,"vector":[1],"payload":{"__proto__":{"x":1}}}]}', 'application/json', { authorization: 'Bearer admin' });
    expect([jsonProto.status, jsonProto.json?.message]).toEqual([400, expect.stringMatching(/__proto__/)]);
    // a lone surrogate id is refused (it would come back as U+FFFD)
    const lone = await raw(server.url, 'POST', '/v1/collections/bi/points', '{"points":[{"id":"a\\ud800","vector":[1]}]}', 'application/json', { authorization: 'Bearer admin' });
    expect([lone.status, lone.json?.message]).toEqual([400, expect.stringMatching(/lone UTF-16 surrogate/)]);
    // URLs Fastify refuses before routing answer in the same shape
    const badUrl = await raw(server.url, 'GET', '/v1/collections/bi/points/%E0%A4%A', '', 'application/json', { authorization: 'Bearer admin' });
    expect([badUrl.status, badUrl.json]).toEqual([400, { error: 'invalid', message: expect.stringMatching(/does not decode/) }]);
    const long = await raw(server.url, 'GET', `/v1/collections/bi/points/${'x'.repeat(600)}`, '', 'application/json', { authorization: 'Bearer admin' });
    expect([long.status, long.json]).toEqual([414, { error: 'uri_too_long', message: expect.stringMatching(/too long/) }]);
    // cosine: tiny, huge and ordinary vectors score finitely, and n >= k points give k hits
    await admin.createCollection('cos', { dim: 2, metric: 'cosine' });
    await admin.upsert('cos', [{ id: 'a', vector: [0, 1] }, { id: 'tiny', vector: [1e-40, 0] }, { id: 'b', vector: [1, 1] }, { id: 'huge', vector: [3e38, 3e38] }]);
    const answer = await admin.search('cos', [0.1, 1], { k: 4 });
    expect(answer.results[0].map((h) => h.id)).toEqual(['a', expect.stringMatching(/^(b|huge)$/), expect.stringMatching(/^(b|huge)$/), 'tiny']);
    expect(answer.results[0].map((h) => h.score)).toEqual([expect.closeTo(0.99504, 4), expect.closeTo(0.77396, 4), expect.closeTo(0.77396, 4), expect.closeTo(0.0995, 4)]);
    expect((await admin.search('cos', [0, 1], { k: 3 })).results[0]).toHaveLength(3);
    expect((await admin.search('cos', [3e38, 3e38], { k: 2 })).results[0].map((h) => h.id).sort()).toEqual(['b', 'huge']);
    await expectError(admin.upsert('cos', [{ id: 'z', vector: [0, 0] }]), 400, 'invalid', /all zeros/);
  });

  it('takes concurrent ingest and search without losing writes', async () => {
    const server = await start();
    const client = new AdannsClient(server.url);
    await client.createCollection('mixed', { dim, metric: 'l2' });
    const work: Promise<unknown>[] = [];
    for (let b = 0; b < 10; b++) {
      work.push(client.upsert('mixed', Array.from({ length: 100 }, (_, j) => ({ id: b * 100 + j, vector: vec(b * 100 + j) }))));
      work.push(client.search('mixed', vec(b), { k: 3 }));
    }
    await Promise.all(work);
    expect((await client.getCollection('mixed')).count).toBe(1000);
    expect((await client.search('mixed', vec(999), { k: 1 })).results[0][0].id).toBe(999);
  });
});

describe('logs', () => {
  it('writes one line per request at info, none for health checks, store events with the collection, and no keys', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const dir = mkdtempSync(join(tmpdir(), 'adanns-log-'));
    dirs.push(dir);
    const backend = await WasmSimdBackend.create({ threads: 1 });
    const store = await Store.open(dir, { backend, backendName: 'cpu', threads: 1, autoBuildAt: 0, logger });
    const app = await buildServer(store, { ...loadConfig([], {}), apiKey: 'secret-admin', logLevel: 'info' }, { ready: true }, logger);
    try {
      const auth = { authorization: 'Bearer secret-admin' };
      expect((await app.inject({ method: 'PUT', url: '/v1/collections/logged', headers: auth, payload: { dim: 2, metric: 'l2' } })).statusCode).toBe(201);
      for (const url of ['/healthz', '/readyz']) expect((await app.inject({ method: 'GET', url })).statusCode).toBe(200);
      // with a key configured, /metrics needs it (metrics-access.test.ts); it is still logged only at debug
      expect((await app.inject({ method: 'GET', url: '/metrics', headers: auth })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/v1/collections/nope', headers: auth })).statusCode).toBe(404);
      const requests = lines.filter((l) => l.msg === 'request');
      expect(requests.map((l) => [l.method, l.url, l.statusCode, l.level])).toEqual([
        ['PUT', '/v1/collections/logged', 201, 30],
        ['GET', '/v1/collections/nope', 404, 30],
      ]);
      expect(lines.some((l) => l.collection === 'logged' && /opened without a trained index/.test(String(l.msg)))).toBe(true);
      logger.info({ req: { headers: { authorization: 'Bearer secret-admin', 'api-key': 'secret-admin' } } }, 'headers');
      expect(JSON.stringify(lines)).not.toContain('secret-admin');
      expect(lines.at(-1)).toMatchObject({ req: { headers: { authorization: '[redacted]', 'api-key': '[redacted]' } } });
    } finally {
      await app.close();
      await store.close();
      await backend.dispose();
    }
  });
});

describe('configuration', () => {
  it('reads flags over environment over defaults and names bad values', () => {
    const c = loadConfig(['--port', '9000'], { ADANNS_PORT: '8000', ADANNS_DATA_DIR: '/x', ADANNS_API_KEY: 'k', ADANNS_THREADS: '3' });
    expect(c).toMatchObject({ port: 9000, dataDir: '/x', apiKey: 'k', threads: 3, host: '127.0.0.1', backend: 'auto' });
    expect(loadConfig([], {}).port).toBe(8080);
    expect(() => loadConfig([], { ADANNS_PORT: 'eighty' })).toThrow(/port must be a non-negative integer, got "eighty"/);
    expect(() => loadConfig(['--backend', 'gpu'], {})).toThrow(/backend must be one of/);
    expect(() => loadConfig(['--bogus'], {})).toThrow(/bogus/);
    expect(loadConfig([], { ADANNS_AUTO_REBUILD: 'true' }).autoRebuild).toBe(true);
    expect(() => loadConfig([], { ADANNS_AUTO_REBUILD: 'sometimes' })).toThrow(/ADANNS_AUTO_REBUILD must be true or false, got "sometimes"/);
    expect(loadConfig([], { ADANNS_REQUEST_TIMEOUT_MS: '1500', ADANNS_SEARCH_SLICE_MS: '4' })).toMatchObject({ requestTimeoutMs: 1500, searchSliceMs: 4, maxSearchHits: 25_000 });
  });

  it('refuses to listen beyond loopback without a key unless told to serve open', () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.com']) {
      expect(() => loadConfig(['--host', host], {})).toThrow(new RegExp(`host ${host.replace(/\./g, '\\.')} is reachable from other machines and no ADANNS_API_KEY is set`));
      expect(loadConfig(['--host', host], { ADANNS_API_KEY: 'k' }).host).toBe(host);
      expect(loadConfig(['--host', host], { ADANNS_ALLOW_OPEN: 'true' })).toMatchObject({ host, allowOpen: true });
    }
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) expect(loadConfig(['--host', host], {}).host).toBe(host);
    expect(() => loadConfig(['--host', '0.0.0.0'], { ADANNS_ALLOW_OPEN: 'yes' })).toThrow(/ADANNS_ALLOW_OPEN must be true or false, got "yes"/);
  });
});
