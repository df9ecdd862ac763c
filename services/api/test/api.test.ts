import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AdannsClient, AdannsError } from '@adanns/client';
import { loadConfig, serve, type ServiceConfig } from '../src/index.js';
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
  const { url, stop } = await serve(config);
  stops.push(stop);
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
 * Opens `count` connections, sends every request head and half its body,
 * waits, then sends the rest: the requests are all in flight at once.
 */
async function slowRequests(url: string, path: string, body: string, count: number): Promise<{ status: number; head: string; body: string }[]> {
  const { hostname, port } = new URL(url);
  const half = Math.floor(body.length / 2);
  const sockets = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof connect>>((resolve) => {
      const socket = connect(Number(port), hostname, () => resolve(socket));
    })),
  );
  const replies = sockets.map((socket) => {
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString()));
    return new Promise<string>((resolve) => socket.on('close', () => resolve(text)));
  });
  for (const socket of sockets) socket.write(`POST ${path} HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body.slice(0, half)}`);
  await new Promise((r) => setTimeout(r, 300));
  for (const socket of sockets) if (!socket.destroyed) socket.end(body.slice(half));
  return (await Promise.all(replies)).map((text) => {
    const [head, rest = ''] = text.split('\r\n\r\n');
    return { status: Number(head.split(' ')[1]), head: `${head}\r\n`, body: rest };
  });
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

  it('sheds searches past the in-flight limit with 429 and Retry-After', async () => {
    const server = await start({ maxInflightSearches: 1 });
    const client = new AdannsClient(server.url);
    await client.createCollection('busy', { dim, metric: 'cosine' });
    for (let i = 0; i < 2000; i += 1000) await client.upsert('busy', Array.from({ length: 1000 }, (_, j) => ({ id: i + j, vector: vec(i + j) })));
    // requests whose bodies are still arriving are in flight: send every head first, bodies later
    const body = JSON.stringify({ vector: vec(0), k: 10 });
    const answers = await slowRequests(server.url, '/v1/collections/busy/search', body, 4);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(3);
    const shed = answers.find((a) => a.status === 429)!;
    expect(shed.head).toMatch(/\r\nretry-after: 1\r\n/i);
    expect(shed.body).toMatch(/"error":"too_many_requests"/);
    // the limit frees up again
    expect((await client.search('busy', vec(1), { k: 1 })).results[0][0].id).toBe(1);
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
  });
});
