import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AdannsClient, AdannsError, type Filter, type Hit } from '@adanns/client';
import { filterMatches, parseFilter } from '@adanns/wire';
import { loadConfig, serve } from '../src/index.js';
import { PointStore } from '@adanns/store';
import { randomMatrix } from '../../../packages/compute/test/naive.js';

// Filtered search, count and delete by filter, and payload index routes,
// through the typed client (JSON and MessagePack) against a real server on a
// loopback socket.

const dirs: string[] = [];
let url: string;
let stop: () => Promise<void>;
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'adanns-api-filter-'));
  dirs.push(dir);
  const config = { ...loadConfig([], {}), host: '127.0.0.1', port: 0, dataDir: dir, threads: 1, logLevel: process.env.FILTER_TEST_LOG ?? 'silent', autoBuildAt: 0, maxBatch: 500 };
  const served = await serve(config);
  await served.store.opened;
  ({ url, stop } = served);
});
afterAll(async () => {
  await stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const dim = 16;
const n = 1500;
const data = randomMatrix(n + 20, dim, 23);
const vec = (i: number) => Array.from(data.subarray(i * dim, (i + 1) * dim));
const COLOURS = ['red', 'green', 'blue', 'black'];
const payloadOf = (i: number) => ({ colour: COLOURS[i % 4], n: i, meta: { tenant: `t${i % 100}` }, ...(i % 7 === 0 ? { tags: ['sale', 'new'] } : {}) });

/** The k nearest (l2) stored points that pass the filter, by brute force. */
function exactFiltered(query: number[], filter: Filter, k: number, live: (i: number) => boolean = () => true): number[] {
  const node = parseFilter(filter);
  const scored: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    if (!live(i) || !filterMatches(node, i, payloadOf(i))) continue;
    let d = 0;
    for (let j = 0; j < dim; j++) d += (query[j] - data[i * dim + j]) ** 2;
    scored.push([d, i]);
  }
  return scored
    .sort((a, b) => a[0] - b[0])
    .slice(0, k)
    .map(([, i]) => i);
}

async function expectError(promise: Promise<unknown>, status: number, message: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AdannsError);
  expect((error as AdannsError).status).toBe(status);
  expect((error as AdannsError).message).toMatch(message);
}

const passes = (filter: Filter) => {
  const node = parseFilter(filter);
  return (h: Hit) => filterMatches(node, h.id, h.payload);
};

describe('filtered search over HTTP', () => {
  const json = () => new AdannsClient(url);
  const msgpack = () => new AdannsClient(url, { format: 'msgpack' });

  it('indexes payloads, searches, counts and deletes by filter (JSON and MessagePack)', async () => {
    const client = json();
    const created = await client.createCollection('items', { dim, metric: 'l2', index: 'ivf16@8,flat@16', payloadIndexes: { colour: 'keyword', n: 'integer' } });
    expect(created.payloadIndexes).toEqual([
      { field: 'colour', type: 'keyword', state: 'ready', progress: 1, error: null },
      { field: 'n', type: 'integer', state: 'ready', progress: 1, error: null },
    ]);
    for (let from = 0; from < n; from += 500) await msgpack().upsert('items', Array.from({ length: 500 }, (_, j) => ({ id: from + j, vector: new Float32Array(vec(from + j)), payload: payloadOf(from + j) })));

    const red: Filter = { must: [{ key: 'colour', match: { value: 'red' } }] };
    expect(await client.count('items', red)).toEqual({ count: n / 4, note: null });
    expect(await msgpack().count('items', red)).toEqual({ count: n / 4, note: null });
    expect(await client.count('items')).toEqual({ count: n, note: null });
    // an unindexed field is answered from the payloads, and the answer says so
    const tenant: Filter = { must: [{ key: 'meta.tenant', match: { any: ['t3', 't4'] } }] };
    const counted = await client.count('items', tenant);
    expect(counted.count).toBe(30);
    expect(counted.note).toMatch(/"meta.tenant"/);

    // before any index is built, search is exact: the filtered answer is the exact filtered answer
    const query = vec(n + 1);
    for (const [filter, k] of [[red, 10], [tenant, 10], [{ must: [{ key: 'n', range: { lt: 3 } }] }, 10]] as [Filter, number][]) {
      const answer = await client.search('items', query, { k, filter, withPayload: true });
      const hits = answer.results[0];
      expect(hits.every(passes(filter))).toBe(true);
      expect(hits.map((h) => h.id)).toEqual(exactFiltered(query, filter, k));
    }
    const tenantAnswer = await client.search('items', query, { k: 5, filter: tenant });
    expect(tenantAnswer.note).toMatch(/read every point's payload for "meta.tenant"/);

    // a batch: one filter for every query vector, over MessagePack
    const batch = await msgpack().searchBatch('items', [new Float32Array(vec(n + 2)), new Float32Array(vec(n + 3))], { k: 8, filter: red, withPayload: true });
    expect(batch.results).toHaveLength(2);
    batch.results.forEach((hits, q) => expect(hits.map((h) => h.id)).toEqual(exactFiltered(vec(n + 2 + q), red, 8)));

    // a filter matching nothing answers no hits and says why
    const none = await client.search('items', query, { k: 5, filter: { must: [{ key: 'colour', match: { value: 'purple' } }] } });
    expect(none.results).toEqual([[]]);
    expect(none.note).toMatch(/no point matches the filter/);

    // a delete by filter matching more than the batch limit (500 here) is refused unless it asks for all:
    // {} matches every point
    await expectError(client.deleteByFilter('items', {}), 413, /the filter matches 1500 points, more than the 500 one delete may remove unless it asks for all of them \("all": true\)/);
    await expectError(client.request('DELETE', '/v1/collections/items/points', { ids: [1], all: true }), 400, /"all" goes with a filter/);
    expect(await client.count('items')).toEqual({ count: n, note: null });
    // delete by filter: acknowledged once durable, like other writes
    const deleted = await client.deleteByFilter('items', { must: [{ key: 'colour', match: { value: 'black' } }, { key: 'n', range: { gte: 1000 } }] });
    expect(deleted.deleted).toBe(125);
    expect(await client.count('items')).toEqual({ count: n - 125, note: null });
    expect(await client.getPoint('items', 1003)).toBeUndefined();
    expect(await client.getPoint('items', 1002)).toBeDefined();
  });

  it('keeps filtered answers exact-filtered once an index is built', async () => {
    const client = json();
    await client.buildIndex('items');
    const index = await client.waitForIndex('items');
    expect(index.state).toBe('ready');
    const live = (i: number) => !(i % 4 === 3 && i >= 1000);
    // about 25% and 1% of the points
    const filters: Filter[] = [{ must: [{ key: 'colour', match: { value: 'green' } }] }, { must: [{ key: 'n', range: { gte: 200, lt: 215 } }] }];
    const recall: number[] = [];
    for (const filter of filters) {
      let found = 0;
      for (let q = 0; q < 10; q++) {
        const query = vec(n + 5 + q);
        const answer = await client.search('items', query, { k: 10, filter, withPayload: true });
        const hits = answer.results[0];
        expect(hits.every(passes(filter))).toBe(true);
        // k hits whenever k points match
        expect(hits).toHaveLength(10);
        const truth = exactFiltered(query, filter, 10, live);
        found += hits.filter((h) => truth.includes(h.id as number)).length;
        expect(answer.note).toMatch(/filter matches \d+ points/);
      }
      recall.push(found / 100);
    }
    // the IVF plan's recall is the index's (default params); the selective filter is scanned exactly
    expect(recall[0]).toBeGreaterThanOrEqual(0.7);
    expect(recall[1]).toBe(1);

    // a recall budget under a selective filter: the exact scan of the matches (recall 1), its latency as the filtered calibration timed it
    const query = vec(n + 5);
    const narrow = await client.search('items', query, { k: 10, filter: filters[1], budget: { recall: 0.9 } });
    expect(narrow.note).toMatch(/exact scan of the matches at dim 16/);
    expect(narrow.budgetMet).toBe(true);
    expect(narrow.planned?.recall).toBe(1);
    expect(narrow.planned?.latencyMs).toEqual(expect.any(Number));
  });

  it('plans recall budgets for the filter: probing when the filtered calibration vouches for it, else the exact scan of the matches', async () => {
    // 64 dimensions scanned at 16 and re-ranked at 64: probing a few lists is far cheaper than scanning many matches exactly
    const client = json();
    const wideDim = 64;
    const wide = randomMatrix(2000, wideDim, 31);
    await client.createCollection('wide', { dim: wideDim, metric: 'l2', index: 'ivf16@8,flat@16,rerank@64', payloadIndexes: { colour: 'keyword', n: 'integer' } });
    for (let from = 0; from < 2000; from += 500) await client.upsert('wide', Array.from({ length: 500 }, (_, j) => ({ id: from + j, vector: Array.from(wide.subarray((from + j) * wideDim, (from + j + 1) * wideDim)), payload: payloadOf(from + j) })));
    await client.buildIndex('wide');
    expect((await client.waitForIndex('wide')).state).toBe('ready');
    const query = Array.from(wide.subarray(5 * wideDim, 6 * wideDim));
    // three quarters of the points: probing is far cheaper, and the filtered calibration estimates its recall there
    const broad = await client.search('wide', query, { k: 10, filter: { must_not: [{ key: 'colour', match: { value: 'green' } }] }, budget: { recall: 0.9 } });
    expect(broad.note).toMatch(/IVF probed lists in centroid order/);
    expect(broad.note).toMatch(/estimated from the filtered calibration at 50% and unfiltered/);
    expect(broad.planned?.recall).toBeGreaterThanOrEqual(0.9);
    expect(broad.budgetMet).toBe(true);
    expect(broad.planned?.latencyMs).toEqual(expect.any(Number));
    // strict, with a target no plan can be shown to reach but the exact scan: the exact scan, not a refusal
    const sure = await client.search('wide', query, { k: 10, filter: { must_not: [{ key: 'colour', match: { value: 'green' } }] }, budget: { recall: 0.999 }, strict: true });
    expect(sure.note).toMatch(/exact scan of the matches at dim 64/);
    expect(sure.budgetMet).toBe(true);
    // 15 points: scanned exactly at full dimension, recall 1, the budget met
    const narrow = await client.search('wide', query, { k: 10, filter: { must: [{ key: 'n', range: { gte: 200, lt: 215 } }] }, budget: { recall: 0.9 } });
    expect(narrow.note).toMatch(/exact scan of the matches at dim 64/);
    expect(narrow.planned?.recall).toBe(1);
    expect(narrow.budgetMet).toBe(true);
    // without a filter the plan's calibrated latency stands
    expect((await client.search('wide', query, { k: 10, budget: { recall: 0.9 } })).planned?.latencyMs).toEqual(expect.any(Number));
  });

  it('creates, builds, lists and drops payload indexes through their routes', async () => {
    const client = json();
    const info = await client.createPayloadIndex('items', 'meta.tenant', 'keyword');
    expect(info).toMatchObject({ field: 'meta.tenant', type: 'keyword' });
    expect(['building', 'ready']).toContain(info.state);
    const indexes = await client.waitForPayloadIndexes('items');
    expect(indexes.map((i) => [i.field, i.type, i.state])).toEqual([
      ['colour', 'keyword', 'ready'],
      ['meta.tenant', 'keyword', 'ready'],
      ['n', 'integer', 'ready'],
    ]);
    const counted = await client.count('items', { must: [{ key: 'meta.tenant', match: { any: ['t3', 't4'] } }] });
    expect(counted).toEqual({ count: 25, note: null }); // t3 and t4 hold 30 points, 5 of them black ones deleted above
    await expectError(client.createPayloadIndex('items', 'n', 'float'), 409, /already has a integer payload index/);
    await expectError(client.createPayloadIndex('items', 'x', 'text' as never), 400, /body\/type/);
    await expectError(client.createPayloadIndex('nowhere', 'x', 'keyword'), 404, /no collection named "nowhere"/);
    expect(await client.dropPayloadIndex('items', 'colour')).toEqual({ deleted: true });
    await client.waitForPayloadIndexes('items');
    expect((await client.getCollection('items')).payloadIndexes.map((i) => i.field)).toEqual(['meta.tenant', 'n']);
    await expectError(client.dropPayloadIndex('items', 'colour'), 404, /no payload index on "colour"/);
    const afterDrop = await client.count('items', { must: [{ key: 'colour', match: { value: 'red' } }] });
    expect(afterDrop.count).toBe(n / 4);
    expect(afterDrop.note).toMatch(/"colour"/);
  });

  it('answers malformed filters with a 400 naming the place', async () => {
    const client = json();
    const v = vec(0);
    await expectError(client.search('items', v, { k: 3, filter: { must: [{ key: 'colour', match: { valu: 'red' } }] } as never }), 400, /filter\.must\[0\]\.match: give exactly one of value, any, except/);
    await expectError(client.search('items', v, { k: 3, filter: { must: [{ key: 'n', range: { gt: 'soon' } }] } }), 400, /filter\.must\[0\]\.range\.gt: "soon" is not an ISO-8601 date-time/);
    await expectError(client.count('items', { must: [{ key: 'n', match: { value: 1 } }], filter: 1 } as never), 400, /unknown key "filter" in a clause/);
    await expectError(msgpack().count('items', { should: [{ has_id: [-1] }] }), 400, /filter\.should\[0\]\.has_id\[0\]/);
    let deep: Filter = { must: [{ key: 'n', match: { value: 1 } }] };
    for (let i = 0; i < 8; i++) deep = { must: [deep] };
    await expectError(client.count('items', deep), 400, /nests deeper than 8/);
    await expectError(client.deleteByFilter('items', { must: [{ colour: 'red' }] } as never), 400, /unknown condition with keys "colour"/);
    await expectError(client.request('DELETE', '/v1/collections/items/points', { ids: [1], filter: {} }), 400, /exactly one of ids and filter/);
    await expectError(client.request('DELETE', '/v1/collections/items/points', {}), 400, /exactly one of ids and filter/);
    await expectError(client.request('POST', '/v1/collections/items/points/count', { filter: {}, extra: 1 }), 400, /must NOT have additional properties/);
    await expectError(client.request('POST', '/v1/collections/items/search', { vector: v, k: 1, filter: [1] }), 400, /filter/);
    // nothing was deleted by the refused requests
    expect((await client.count('items')).count).toBe(n - 125);
  });

  it('deletes more than a batch by filter only when asked for all, and reports a failed payload index build', async () => {
    const client = json();
    await client.createCollection('wipe', { dim, metric: 'l2' });
    for (let from = 0; from < 600; from += 300) await client.upsert('wipe', Array.from({ length: 300 }, (_, j) => ({ id: from + j, vector: vec(from + j), payload: payloadOf(from + j) })));
    // a payload index whose build fails: the client's wait ends with the error instead of polling forever
    const chunk = vi.spyOn(PointStore.prototype, 'indexPayloadChunk').mockRejectedValue(new Error('disk on fire'));
    try {
      await client.createPayloadIndex('wipe', 'colour', 'keyword');
      await expect(client.waitForPayloadIndexes('wipe', 10, 10_000)).rejects.toThrow(/payload index of wipe failed to build: colour: disk on fire/);
      expect((await client.getCollection('wipe')).payloadIndexes).toEqual([{ field: 'colour', type: 'keyword', state: 'failed', progress: 0, error: 'disk on fire' }]);
    } finally {
      chunk.mockRestore();
    }
    // a PUT of the same index retries the build
    await client.createPayloadIndex('wipe', 'colour', 'keyword');
    expect((await client.waitForPayloadIndexes('wipe', 10, 10_000)).map((i) => [i.field, i.state, i.error])).toEqual([['colour', 'ready', null]]);
    await expectError(client.deleteByFilter('wipe', {}), 413, /matches 600 points/);
    expect(await client.deleteByFilter('wipe', {}, { all: true })).toMatchObject({ deleted: 600 });
    expect(await client.count('wipe')).toEqual({ count: 0, note: null });
  });
});
