import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WasmSimdBackend, createRng } from '@adanns/compute';
import type { AdannsIndex } from '@adanns/core';
import { filterMatches, parseFilter, type Filter } from '@adanns/wire';
import { Store, StoreError, type CollectionOptions } from '../src/index.js';
import { evaluateFilter, filterWork } from '../src/filter.js';
import { PointStore, type Point, type PointId } from '../src/points.js';
import { makeSchema } from '../src/schema.js';
import type { PayloadIndexType } from '../src/payload-index.js';

// Real LMDB environments in temporary directories: the filter language over
// hand-made payloads (each answer written out by hand), the same answers with
// and without payload indexes, index maintenance through upserts, deletes,
// reopen and interrupted builds, and count and delete by filter.

let backend: WasmSimdBackend;
let options: CollectionOptions;
const dirs: string[] = [];
beforeAll(async () => {
  backend = await WasmSimdBackend.create({ threads: 1 });
  options = { backend, backendName: 'cpu', threads: 1, autoBuildAt: 0 };
});
afterAll(async () => {
  await backend.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'adanns-filter-'));
  dirs.push(d);
  return d;
}

const dim = 4;
const vector = (i: number) => new Float32Array([1 + i, 2, 3 - i * 0.1, 0.5]);
const PAYLOADS: [PointId, Record<string, unknown> | undefined][] = [
  ['a', { lang: 'en', price: 10, tags: ['x', 'y'], meta: { lang: 'en', score: 0.5 }, ok: true, at: '2026-01-01T00:00:00Z' }],
  ['b', { lang: 'de', price: 99.5, tags: ['y'], meta: { lang: 'de' }, ok: false, at: '2026-06-01' }],
  ['c', { lang: 'en', price: 150, tags: [], ok: true, at: '2025-12-31T23:00:00-02:00' }], // 01:00 UTC on Jan 1
  ['d', { lang: null, price: '12', meta: { lang: ['en', 'fr'] }, at: 'not a date' }],
  [5, undefined],
  ['f', { lang: 'fr', price: -3, tags: ['x', 7], meta: [{ lang: 'it' }, { lang: 'en' }], ok: 'yes' }],
];
const INDEXES: Record<string, PayloadIndexType> = { lang: 'keyword', price: 'float', tags: 'keyword', 'meta.lang': 'keyword', ok: 'bool', at: 'datetime' };

/** Each filter and the ids it matches, worked out by hand from PAYLOADS. */
const CASES: [string, Filter, PointId[]][] = [
  ['empty filter: everything', {}, ['a', 'b', 'c', 'd', 5, 'f']],
  ['empty must and should', { must: [], should: [] }, ['a', 'b', 'c', 'd', 5, 'f']],
  ['match value', { must: [{ key: 'lang', match: { value: 'en' } }] }, ['a', 'c']],
  ['match any', { must: [{ key: 'lang', match: { any: ['de', 'fr'] } }] }, ['b', 'f']],
  ['match except: null and missing are not "en"', { must: [{ key: 'lang', match: { except: ['en'] } }] }, ['b', 'd', 5, 'f']],
  ['match on an array: any element', { must: [{ key: 'tags', match: { value: 'x' } }] }, ['a', 'f']],
  ['match a number inside a keyword array', { must: [{ key: 'tags', match: { any: [7] } }] }, ['f']],
  ['except on arrays: some element outside the list', { must: [{ key: 'tags', match: { except: ['y'] } }] }, ['a', 'c', 'd', 5, 'f']],
  ['range gte/lt (a string is not a number)', { must: [{ key: 'price', range: { gte: 10, lt: 100 } }] }, ['a', 'b']],
  ['range gt excludes the bound', { must: [{ key: 'price', range: { gt: 10 } }] }, ['b', 'c']],
  ['range below zero', { must: [{ key: 'price', range: { lt: 0 } }] }, ['f']],
  ['is_empty: null, missing', { must: [{ is_empty: { key: 'lang' } }] }, ['d', 5]],
  ['is_empty: [] too', { must: [{ is_empty: { key: 'tags' } }] }, ['c', 'd', 5]],
  ['nested key, through arrays of objects', { must: [{ key: 'meta.lang', match: { value: 'en' } }] }, ['a', 'd', 'f']],
  ['has_id (unknown ids ignored)', { must: [{ has_id: ['a', 5, 'zz', 99] }] }, ['a', 5]],
  ['datetime range, offsets honoured', { must: [{ key: 'at', range: { gte: '2026-01-01T00:00:00Z', lt: '2026-01-01T02:00:00Z' } }] }, ['a', 'c']],
  ['datetime range, date only is UTC midnight', { must: [{ key: 'at', range: { gte: '2026-06-01' } }] }, ['b']],
  ['bool', { must: [{ key: 'ok', match: { value: true } }] }, ['a', 'c']],
  ['must_not', { must_not: [{ key: 'lang', match: { value: 'en' } }] }, ['b', 'd', 5, 'f']],
  ['should: at least one', { should: [{ key: 'lang', match: { value: 'de' } }, { key: 'price', range: { lt: 0 } }] }, ['b', 'f']],
  [
    'nested clauses',
    { should: [{ must: [{ key: 'lang', match: { value: 'en' } }, { key: 'price', range: { lt: 100 } }] }, { key: 'ok', match: { value: false } }] },
    ['a', 'b'],
  ],
  [
    'must with a nested must_not of shoulds',
    { must: [{ key: 'lang', match: { any: ['en', 'fr'] } }], must_not: [{ should: [{ key: 'price', range: { gt: 100 } }, { key: 'tags', match: { value: 'y' } }] }] },
    ['f'],
  ],
];

async function storeWith(indexes: Record<string, PayloadIndexType>): Promise<PointStore> {
  const { store } = PointStore.open(join(dataDir(), 'points'), makeSchema('t', { dim, metric: 'l2' }));
  for (const [field, type] of Object.entries(indexes)) await store.declarePayloadIndex(field, type, 'ready');
  await store.upsert(PAYLOADS.map(([id, payload], i): Point => (payload ? { id, vector: vector(i), payload } : { id, vector: vector(i) })));
  return store;
}

async function matching(store: PointStore, filter: unknown): Promise<{ ids: PointId[]; note: string | null }> {
  const { allowed, note } = await evaluateFilter(store, parseFilter(filter));
  const ids: PointId[] = [];
  for (let iid = 0; iid < allowed.bits.length * 32; iid++) if ((allowed.bits[iid >>> 5] >>> (iid & 31)) & 1) ids.push(store.externalId(iid)!);
  expect(ids.length).toBe(allowed.count);
  return { ids, note };
}

const sorted = (ids: PointId[]) => [...ids].map(String).sort();

describe('the filter language', () => {
  for (const indexed of [false, true]) {
    it(`gives the documented answers ${indexed ? 'from payload indexes' : 'by reading payloads'}`, async () => {
      const store = await storeWith(indexed ? INDEXES : {});
      try {
        for (const [what, filter, want] of CASES) {
          const { ids, note } = await matching(store, filter);
          expect(sorted(ids), what).toEqual(sorted(want));
          const fields = JSON.stringify(filter).match(/"key":"[^"]+"/g) ?? [];
          // the answer names the fields it read payloads for, and only when it did
          if (indexed) expect(note, what).toBeNull();
          else if (fields.length > 0) expect(note, what).toMatch(/read every point's payload/);
          // the per-point meaning agrees
          const oracle = PAYLOADS.filter(([id, p]) => filterMatches(parseFilter(filter), id, p ?? {})).map(([id]) => id);
          expect(sorted(oracle), what).toEqual(sorted(want));
        }
        expect(store.checkPayloadIndexes()).toEqual([]);
      } finally {
        await store.close();
      }
    });
  }

  for (const mixed of [false, true]) {
    it(`answers the same from ${mixed ? 'some indexes, in small turns,' : 'indexes'} as from payloads on random payloads and filters`, async () => {
      const rng = createRng(11);
      const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)];
      const words = ['a', 'b', 'c', 'd'];
      const randomValue = (): unknown => pick<() => unknown>([() => pick(words), () => rng.int(7) - 3, () => rng.int(7) / 2, () => pick([true, false]), () => null, () => [pick(words), rng.int(5)], () => [], () => `2026-0${1 + rng.int(9)}-01`])();
      const randomPayload = () => {
        const p: Record<string, unknown> = {};
        for (const f of ['k', 'i', 'x', 'b', 't']) if (rng.next() < 0.8) p[f] = randomValue();
        if (rng.next() < 0.5) p.m = { k: randomValue() };
        return p;
      };
      const leaf = (): Filter => {
        const key = pick(['k', 'i', 'x', 'b', 't', 'm.k']);
        return pick<() => Filter>([
          () => ({ must: [{ key, match: { value: pick<string | number | boolean>([...words, 1, 0, -2, 1.5, true, false]) } }] }),
          () => ({ must: [{ key, match: { any: [pick(words), rng.int(5) - 2] } }] }),
          () => ({ must: [{ key, match: { except: [pick(words), rng.int(3)] } }] }),
          () => ({ must: [{ key, range: pick([{ gt: rng.int(5) - 2 }, { gte: -1, lte: 1.5 }, { lt: 2 }]) }] }),
          () => ({ must: [{ key, range: { gte: `2026-0${1 + rng.int(9)}-01`, lt: '2026-08-01' } }] }),
          () => ({ must: [{ is_empty: { key } }] }),
        ])();
      };
      const randomFilter = (depth: number): Filter => {
        if (depth === 0 || rng.next() < 0.3) return leaf();
        const some = () => Array.from({ length: rng.int(3) }, () => randomFilter(depth - 1));
        return { must: some(), should: some(), must_not: some() };
      };
      const payloads = Array.from({ length: 300 }, randomPayload);
      // every field indexed, then some (conditions mixing indexed and read payloads), in small turns
      const indexes: Record<string, PayloadIndexType> = mixed ? { k: 'keyword', x: 'float', 'm.k': 'keyword' } : { k: 'keyword', i: 'integer', x: 'float', b: 'bool', t: 'datetime', 'm.k': 'keyword' };
      const { store } = PointStore.open(join(dataDir(), 'points'), makeSchema('t', { dim, metric: 'l2' }));
      const work = { ...filterWork };
      if (mixed) Object.assign(filterWork, { keysPerTurn: 7, conditionChecksPerTurn: 40 });
      try {
        for (const [field, type] of Object.entries(indexes)) await store.declarePayloadIndex(field, type, 'ready');
        await store.upsert(payloads.map((payload, i) => ({ id: i, vector: vector(i), payload })));
        // rewrite a third and delete a tenth: the indexes must follow
        await store.upsert(payloads.slice(0, 100).map((_, i) => ({ id: i * 3, vector: vector(i), payload: (payloads[i * 3] = randomPayload()) })));
        await store.delete(Array.from({ length: 30 }, (_, i) => i * 10));
        expect(store.checkPayloadIndexes()).toEqual([]);
        const live = payloads.map((p, id) => ({ id, p })).filter(({ id }) => id % 10 !== 0);
        for (let t = 0; t < 200; t++) {
          const filter = randomFilter(3);
          const want = live.filter(({ id, p }) => filterMatches(parseFilter(filter), id, p)).map(({ id }) => id);
          const { ids, note } = await matching(store, filter);
          expect(sorted(ids), JSON.stringify(filter)).toEqual(sorted(want));
          expect(note === null || /"t"|"k"|"i"|"x"|"b"|"m.k"/.test(note)).toBe(true);
        }
      } finally {
        Object.assign(filterWork, work);
        await store.close();
      }
    });
  }

  it('refuses malformed filters with a message naming the place', () => {
    const refuse = (filter: unknown, message: RegExp) => expect(() => parseFilter(filter)).toThrow(message);
    refuse({ must: [{ key: 'a', match: { valu: 1 } }] }, /filter\.must\[0\]\.match: give exactly one of value, any, except, got "valu"/);
    refuse({ must: [{ key: 'a', match: { value: 1, fuzzy: true } }] }, /filter\.must\[0\]\.match\.fuzzy: Unexpected property/);
    refuse({ must: [{ key: 'a', match: { value: 1, any: [1] } }] }, /give exactly one of value, any, except/);
    refuse({ must: [{ key: 'a', range: { gt: 'soon' } }] }, /filter\.must\[0\]\.range\.gt: "soon" is not an ISO-8601 date-time/);
    refuse({ must: [{ key: 'a', range: { gt: 1, lt: '2026-01-01' } }] }, /all numbers or all ISO-8601/);
    refuse({ must: [{ key: 'a', range: {} }] }, /give at least one of gt, gte, lt, lte/);
    refuse({ must: [{ key: 'a', match: { value: { deep: 1 } } }] }, /filter\.must\[0\]\.match/);
    refuse({ must: [{ key: 'a', match: { any: 'x' } }] }, /filter\.must\[0\]\.match/);
    refuse({ must: [{ key: 7, match: { value: 1 } }] }, /filter\.must\[0\]\.key: Expected string/);
    refuse({ must: [{ key: 'a..b', match: { value: 1 } }] }, /empty part/);
    refuse({ must: { key: 'a', match: { value: 1 } } }, /filter\.must must be an array/);
    refuse({ must: [{ colour: 'red' }] }, /unknown condition with keys "colour"/);
    refuse({ must: [], filter: {} }, /unknown key "filter" in a clause/);
    refuse({ should: [{ has_id: [-1] }] }, /filter\.should\[0\]\.has_id\[0\]/);
    refuse({ must: [{ is_empty: { key: 'a', also: 1 } }] }, /is_empty\.also: Unexpected property/);
    refuse([{ key: 'a' }], /filter must be an object/);
    let deep: Filter = { must: [{ key: 'a', match: { value: 1 } }] };
    for (let i = 0; i < 8; i++) deep = { must: [deep] };
    refuse(deep, /nests deeper than 8 clauses/);
    refuse({ should: Array.from({ length: 300 }, () => ({ key: 'a', match: { value: 1 } })) }, /more than 256 clauses and conditions/);
    refuse({ must: Array.from({ length: 3 }, () => ({ key: 'a', match: { any: Array.from({ length: 4000 }, (_, i) => i) } })) }, /more than 10000 values/);
  });
});

describe('payload indexes in a collection', () => {
  const point = (id: PointId, payload: Record<string, unknown>, i = 0) => ({ id, vector: Array.from(vector(i)), payload });

  it('follow upserts and deletes, survive a reopen, and count and delete by filter', async () => {
    const dir = dataDir();
    let store = await Store.open(dir, options);
    const c = await store.create('docs', { dim, metric: 'l2', payloadIndexes: { lang: 'keyword', n: 'integer' } });
    expect(c.stats().payloadIndexes).toEqual([
      { field: 'lang', type: 'keyword', state: 'ready', progress: 1, error: null },
      { field: 'n', type: 'integer', state: 'ready', progress: 1, error: null },
    ]);
    await c.upsert(Array.from({ length: 40 }, (_, i) => point(i, { lang: i % 4 === 0 ? 'en' : 'de', n: i }, i)));
    const en = { must: [{ key: 'lang', match: { value: 'en' } }] };
    expect(await c.countPoints(en)).toEqual({ count: 10, note: null });
    // a changed payload moves the point between keys
    await c.upsert([point(0, { lang: 'de', n: 0 }), point(1, { lang: 'en', n: 1 })]);
    expect((await c.countPoints(en)).count).toBe(10);
    expect((await c.countPoints({ must: [{ key: 'lang', match: { value: 'en' } }, { key: 'n', range: { lte: 4 } }] })).count).toBe(2); // 1 and 4
    await c.delete([4]);
    expect((await c.countPoints({ must: [{ key: 'lang', match: { value: 'en' } }, { key: 'n', range: { lte: 4 } }] })).count).toBe(1);
    expect(await c.countPoints()).toEqual({ count: 39, note: null });
    expect(c.checkPayloadIndexes()).toEqual([]);
    await store.close();

    store = await Store.open(dir, options);
    const again = store.get('docs');
    expect((await again.countPoints(en)).count).toBe(9);
    expect(again.checkPayloadIndexes()).toEqual([]);
    const before = again.stats().sequence;
    const { deleted, sequence } = await again.deleteByFilter({ must: [{ key: 'n', range: { gte: 30 } }] });
    expect(deleted).toBe(10);
    expect(sequence).toBe(before + 1);
    expect(again.count).toBe(29);
    expect(again.get(35)).toBeUndefined();
    await expect(again.deleteByFilter({ must: [{ key: 'n', range: { gte: 30 } }] })).resolves.toMatchObject({ deleted: 0 });
    await expect(again.countPoints({ must: [{ key: 'n', rang: {} }] })).rejects.toThrow(StoreError);
    await store.close();

    store = await Store.open(dir, options);
    expect(store.get('docs').count).toBe(29);
    expect((await store.get('docs').countPoints({ must: [{ key: 'n', range: { gte: 30 } }] })).count).toBe(0);
    await store.close();
  });

  it('search only matching points, before and after training, and never a deleted one', async () => {
    const dir = dataDir();
    const store = await Store.open(dir, options);
    try {
      const c = await store.create('docs', { dim, metric: 'l2', index: 'ivf4@4,flat@4', payloadIndexes: { group: 'integer' } });
      const many = 400;
      const at = (i: number) => [Math.sin(i), Math.cos(i * 0.7), Math.sin(i * 1.3), (i % 17) / 17];
      await c.upsert(Array.from({ length: many }, (_, i) => ({ id: i, vector: at(i), payload: { group: i % 10 } })));
      const group3 = { must: [{ key: 'group', match: { value: 3 } }] };
      const check = async (trained: boolean) => {
        const answer = await c.search([at(3), at(123)], { k: 10, filter: group3, withPayload: true, ...(trained ? { params: { nprobe: 4 } } : {}) });
        for (const hits of answer.results) {
          expect(hits).toHaveLength(10);
          expect(hits.every((h) => h.payload?.group === 3)).toBe(true);
          expect(hits.some((h) => h.id === 3 || h.id === 13)).toBe(false); // deleted below
        }
        expect(answer.results[1][0].id).toBe(123); // its own nearest neighbour
        expect(answer.note).toMatch(/filter matches 38 points/);
      };
      await c.delete([3, 13]);
      await check(false);
      await c.build();
      expect(c.stats().index.state).toBe('ready');
      await check(true);
      // a filter that nothing passes answers at once
      const none = await c.search([at(1)], { k: 5, filter: { must: [{ key: 'group', match: { value: 11 } }] } });
      expect(none.results).toEqual([[]]);
    } finally {
      await store.close();
    }
  });

  it('drop twice at once, and refuse a create while a drop runs', async () => {
    const store = await Store.open(dataDir(), options);
    try {
      const c = await store.create('docs', { dim, metric: 'l2', payloadIndexes: { n: 'integer' } });
      await c.upsert(Array.from({ length: 3000 }, (_, i) => point(i, { n: i }, i)));
      const drops = [c.dropPayloadIndex('n'), c.dropPayloadIndex('n')];
      await Promise.all(drops);
      await expect(c.createPayloadIndex('n', 'integer')).rejects.toThrow(/being dropped/);
      await c.whenPayloadIndexed();
      expect(c.stats().payloadIndexes).toEqual([]);
      await c.createPayloadIndex('n', 'float');
      await c.whenPayloadIndexed();
      expect(c.checkPayloadIndexes()).toEqual([]);
      expect(await c.countPoints({ must: [{ key: 'n', range: { gte: 2990 } }] })).toEqual({ count: 10, note: null });
    } finally {
      await store.close();
    }
  });

  it('build in the background over existing points, resume after a stop, and drop', async () => {
    const dir = dataDir();
    let store = await Store.open(dir, options);
    const c = await store.create('docs', { dim, metric: 'l2' });
    const n = 5000;
    for (let from = 0; from < n; from += 1000) await c.upsert(Array.from({ length: 1000 }, (_, j) => point(from + j, { n: from + j, meta: { even: (from + j) % 2 === 0 } })));
    const filter = { must: [{ key: 'n', range: { gte: 100, lt: 1100 } }, { key: 'meta.even', match: { value: true } }] };
    const unindexed = await c.countPoints(filter);
    expect(unindexed.count).toBe(500);
    expect(unindexed.note).toMatch(/"n", "meta.even"/);
    const info = await c.createPayloadIndex('n', 'integer');
    expect(info).toMatchObject({ field: 'n', type: 'integer', state: 'building' });
    await expect(c.createPayloadIndex('n', 'keyword')).rejects.toThrow(/already has a integer payload index/);
    // stopped after its first chunk: the state stays on disk and the build goes on at the next open
    await store.close();
    store = await Store.open(dir, options);
    const reopened = store.get('docs');
    await reopened.whenPayloadIndexed();
    expect(reopened.stats().payloadIndexes).toEqual([{ field: 'n', type: 'integer', state: 'ready', progress: 1, error: null }]);
    await reopened.createPayloadIndex('meta.even', 'bool');
    // writes during a build are indexed by the writes themselves
    await reopened.upsert([point(100, { n: 100, meta: { even: false } })]);
    await reopened.whenPayloadIndexed();
    expect(reopened.checkPayloadIndexes()).toEqual([]);
    expect(await reopened.countPoints(filter)).toEqual({ count: 499, note: null });
    await reopened.dropPayloadIndex('n');
    await reopened.whenPayloadIndexed();
    expect(reopened.stats().payloadIndexes.map((i) => i.field)).toEqual(['meta.even']);
    const after = await reopened.countPoints(filter);
    expect(after.count).toBe(499);
    expect(after.note).toMatch(/"n"/);
    await expect(reopened.dropPayloadIndex('n')).rejects.toThrow(/no payload index on "n"/);
    await expect(reopened.createPayloadIndex('n', 'text')).rejects.toThrow(/must be one of keyword, integer, float, bool, datetime/);
    await store.close();
  });
});

describe('filter evaluation: turns, snapshots, failures and limits', () => {
  const point = (id: PointId, payload: Record<string, unknown>, i = 0) => ({ id, vector: Array.from(vector(i)), payload });
  /** Runs `work` with small filter turns, counting the event-loop turns other code got meanwhile. */
  async function inSmallTurns<T>(work: () => Promise<T>): Promise<{ result: T; ticks: number }> {
    const saved = { ...filterWork };
    Object.assign(filterWork, { keysPerTurn: 100, conditionChecksPerTurn: 100 });
    let ticks = 0;
    let running = true;
    const tick = () => {
      ticks++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    try {
      return { result: await work(), ticks };
    } finally {
      running = false;
      Object.assign(filterWork, saved);
    }
  }

  it('scans indexes and reads payloads in bounded turns, stops when cancelled, and answers for the state it began on', async () => {
    const store = await Store.open(dataDir(), options);
    try {
      const c = await store.create('docs', { dim, metric: 'l2', payloadIndexes: { n: 'integer' } });
      await c.upsert(Array.from({ length: 2000 }, (_, i) => point(i, { n: i, odd: i % 2 === 1 }, i)));
      // an indexed range over 1500 keys, then an unindexed pass: both give the event loop turns
      const indexed = await inSmallTurns(() => c.countPoints({ must: [{ key: 'n', range: { gte: 500 } }] }));
      expect(indexed.result).toEqual({ count: 1500, note: null });
      expect(indexed.ticks).toBeGreaterThanOrEqual(10);
      const unindexed = await inSmallTurns(() => c.countPoints({ must: [{ key: 'odd', match: { value: true } }] }));
      expect(unindexed.result.count).toBe(1000);
      expect(unindexed.ticks).toBeGreaterThanOrEqual(10);

      // writes landing while a filter is evaluated do not show in its answer (one read snapshot)
      const flipped = await inSmallTurns(async () => {
        const counting = c.countPoints({ must: [{ key: 'odd', match: { value: true } }] });
        await new Promise((resolve) => setImmediate(resolve));
        await c.upsert(Array.from({ length: 1000 }, (_, j) => point(1000 + j, { n: 1000 + j, odd: true }, j)));
        return counting;
      });
      expect(flipped.result.count).toBe(1000);
      expect((await c.countPoints({ must: [{ key: 'odd', match: { value: true } }] })).count).toBe(1500);

      // a search whose client went away stops evaluating its filter at the next turn
      const gone = new AbortController();
      const cancelled = inSmallTurns(() => c.search([Array.from(vector(1))], { k: 3, filter: { must: [{ key: 'odd', match: { value: false } }] }, signal: gone.signal }));
      setImmediate(() => gone.abort());
      await expect(cancelled).rejects.toThrow(/cancelled/);
    } finally {
      await store.close();
    }
  });

  it('validates a search before evaluating its filter', async () => {
    const store = await Store.open(dataDir(), options);
    try {
      const c = await store.create('docs', { dim, metric: 'l2', index: 'ivf4@4,flat@4' });
      await c.upsert(Array.from({ length: 300 }, (_, i) => point(i, { g: i % 3 }, i)));
      await c.build();
      const reads = vi.spyOn(PointStore.prototype, 'readSnapshot');
      try {
        await expect(c.search([Array.from(vector(1))], { k: 3, params: { nprobe: 0 }, filter: { must: [{ key: 'g', match: { value: 1 } }] } })).rejects.toThrow(/nprobe/);
        expect(reads).not.toHaveBeenCalled();
      } finally {
        reads.mockRestore();
      }
    } finally {
      await store.close();
    }
  });

  it('checks work limits on the filtered plan and prices it once per request', async () => {
    const store = await Store.open(dataDir(), options);
    try {
      const c = await store.create('docs', { dim, metric: 'l2', index: 'ivf8@4,flat@4' });
      const at = (i: number) => [Math.sin(i), Math.cos(i * 0.7), Math.sin(i * 1.3), (i % 17) / 17];
      await c.upsert(Array.from({ length: 800 }, (_, i) => ({ id: i, vector: at(i), payload: { g: i % 2 } })));
      await c.build();
      const index = (c as unknown as { index: AdannsIndex }).index;
      const half = { must: [{ key: 'g', match: { value: 1 } }] };
      const params = { nprobe: 1 };
      const unfiltered = index.boundMflops(index.resolveParams(5, params));
      const allowed = (await evaluateFilter((c as unknown as { points: PointStore }).points, parseFilter(half))).allowed;
      const filtered = index.priceFilter(5, params, allowed);
      expect(filtered.plan).toBe('probe');
      // the filtered plan may probe every list holding a match: its worst case is above the unfiltered plan's
      expect(filtered.mflopsMax).toBeGreaterThan(unfiltered * 1.5);
      const limit = (unfiltered + filtered.mflopsMax) / 2;
      await expect(c.search([at(5)], { k: 5, params, limits: { maxQueryMflops: limit } })).resolves.toBeDefined();
      await expect(c.search([at(5)], { k: 5, params, filter: half, limits: { maxQueryMflops: limit } })).rejects.toThrow(/one query of this search plans .* MFLOPs, the limit per query is/);
      await expect(c.search([at(5), at(6)], { k: 5, params, filter: half, limits: { maxMflops: limit } })).rejects.toThrow(/this search plans/);
      // the slot mask is derived once per request, not once per slice
      const prepares = vi.spyOn(index, 'prepareFilter');
      const answer = await c.search(Array.from({ length: 6 }, (_, q) => at(q)), { k: 5, params, filter: half, limits: { sliceMs: 0.001 } });
      expect(answer.results.every((hits) => hits.length === 5)).toBe(true);
      expect(prepares).toHaveBeenCalledTimes(1);
      // budgets under a filter: planned for the filter, its latency as the filtered calibration timed that plan
      const budgeted = await c.search([at(5)], { k: 5, budget: { recall: 0.5 }, filter: half });
      expect(budgeted.budgetMet).toBe(true);
      expect(budgeted.planned?.recall).toBeGreaterThanOrEqual(0.5);
      expect(budgeted.planned?.latencyMs).toEqual(expect.any(Number));
      expect((await c.search([at(5)], { k: 5, budget: { recall: 0.5 } })).planned?.latencyMs).toEqual(expect.any(Number));
    } finally {
      await store.close();
    }
  });

  it('refuses a delete by filter above its limit, deleting nothing', async () => {
    const store = await Store.open(dataDir(), options);
    try {
      const c = await store.create('docs', { dim, metric: 'l2' });
      await c.upsert(Array.from({ length: 40 }, (_, i) => point(i, { n: i }, i)));
      await expect(c.deleteByFilter({}, { limit: 39 })).rejects.toMatchObject({ kind: 'too_large', message: expect.stringMatching(/matches 40 points, more than the 39/) });
      expect(c.count).toBe(40);
      expect(await c.deleteByFilter({ must: [{ key: 'n', range: { lt: 10 } }] }, { limit: 10 })).toMatchObject({ deleted: 10 });
      expect(await c.deleteByFilter({})).toMatchObject({ deleted: 30 });
      expect(c.count).toBe(0);
    } finally {
      await store.close();
    }
  });

  it('records a failed payload index build, reads payloads meanwhile, and retries on a PUT and on open', async () => {
    const dir = dataDir();
    let store = await Store.open(dir, options);
    const c = await store.create('docs', { dim, metric: 'l2' });
    await c.upsert(Array.from({ length: 100 }, (_, i) => point(i, { n: i }, i)));
    const chunk = vi.spyOn(PointStore.prototype, 'indexPayloadChunk').mockRejectedValue(new Error('disk on fire'));
    try {
      await c.createPayloadIndex('n', 'integer');
      await c.whenPayloadIndexed();
      expect(c.stats().payloadIndexes).toEqual([{ field: 'n', type: 'integer', state: 'failed', progress: 0, error: 'disk on fire' }]);
      const counted = await c.countPoints({ must: [{ key: 'n', range: { lt: 10 } }] });
      expect(counted.count).toBe(10);
      expect(counted.note).toMatch(/n failed to build/);
      // a PUT of the same index retries it (failing again here)
      await c.createPayloadIndex('n', 'integer');
      await c.whenPayloadIndexed();
      expect(chunk).toHaveBeenCalledTimes(2);
      expect(c.stats().payloadIndexes[0].state).toBe('failed');
    } finally {
      chunk.mockRestore();
    }
    await store.close();
    // the failure is on disk; the next open retries and completes it
    store = await Store.open(dir, options);
    const reopened = store.get('docs');
    await reopened.whenPayloadIndexed();
    expect(reopened.stats().payloadIndexes).toEqual([{ field: 'n', type: 'integer', state: 'ready', progress: 1, error: null }]);
    expect(reopened.checkPayloadIndexes()).toEqual([]);
    expect(await reopened.countPoints({ must: [{ key: 'n', range: { lt: 10 } }] })).toEqual({ count: 10, note: null });
    await store.close();
  });
});
