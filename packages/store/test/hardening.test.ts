import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WasmSimdBackend } from '@adanns/compute';
import { Store, StoreError, toVector, type CollectionOptions } from '../src/index.js';
import { randomMatrix } from '../../compute/test/naive.js';

// Values a decoder can produce and vectors at the edges of float32, through the store's whole path.

let backend: WasmSimdBackend;
const dirs: string[] = [];
const logs: { level: string; fields: Record<string, unknown>; message: string }[] = [];
let options: CollectionOptions;

beforeAll(async () => {
  backend = await WasmSimdBackend.create({ threads: 1 });
  const line = (level: string) => (fields: object, message: string) => logs.push({ level, fields: fields as Record<string, unknown>, message });
  options = { backend, backendName: 'cpu', threads: 1, autoBuildAt: 0, calibrationSeconds: 1, logger: { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') } };
});
afterAll(async () => {
  await backend.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'adanns-hard-'));
  dirs.push(d);
  return d;
}

async function rejection(promise: Promise<unknown> | (() => unknown)): Promise<StoreError> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (e) {
    expect(e).toBeInstanceOf(StoreError);
    return e as StoreError;
  }
  throw new Error('expected a StoreError');
}

/** Cosine computed in float64, the reference the answers must match. */
function cosine(a: number[], b: number[]): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa) / Math.sqrt(bb);
}

describe('decoded values', () => {
  it('names a BigInt, a string or a hole in a vector instead of failing on it', () => {
    expect(() => toVector([1n], 1, 'query')).toThrow(/vector\[0\] is 1n \(a 64-bit integer\), not a finite number/);
    expect(() => toVector(BigInt64Array.of(1n), 1, 'query')).toThrow(/1n/);
    expect(() => toVector(['1'], 1, 'query')).toThrow(/vector\[0\] is "1"/);
    expect(() => toVector([1, , 2], 3, 'query')).toThrow(/vector\[1\] is undefined/); // eslint-disable-line no-sparse-arrays
    expect(() => toVector([3.5e38], 1, 'query')).toThrow(/outside the float32 range/);
    expect(Array.from(toVector([-0, 1e-40, 3e38], 3, 'query'))).toEqual([-0, Math.fround(1e-40), Math.fround(3e38)]);
  });

  it('refuses lone surrogates in ids and payloads, and Maps, typed arrays and NaN in payloads; -0 is the id 0', async () => {
    const store = await Store.open(dataDir(), options);
    const c = await store.create('ids', { dim: 2, metric: 'l2' });
    expect((await rejection(c.upsert([{ id: 'a\ud800', vector: [1, 2] }]))).message).toMatch(/lone UTF-16 surrogate/);
    expect((await rejection(c.upsert([{ id: 'x', vector: [1, 2], payload: { t: '\udc00' } }]))).message).toMatch(/value of "t" holds a lone UTF-16 surrogate/);
    expect((await rejection(c.upsert([{ id: 'x', vector: [1, 2], payload: { ['k\ud800']: 1 } }]))).message).toMatch(/key .* lone UTF-16 surrogate/);
    expect((await rejection(c.upsert([{ id: 'x', vector: [1, 2], payload: { m: new Map([[1, 2]]) } }]))).message).toMatch(/a Map; payloads hold JSON values/);
    expect((await rejection(c.upsert([{ id: 'x', vector: [1, 2], payload: { f: new Float32Array(2) } }]))).message).toMatch(/a Float32Array/);
    expect((await rejection(c.upsert([{ id: 'x', vector: [1, 2], payload: { n: NaN } }]))).message).toMatch(/NaN, which JSON cannot represent/);
    expect((await rejection(c.upsert([{ id: 12n, vector: [1, 2] }]))).message).toMatch(/got 12n/);
    // a well-formed pair is fine and comes back as sent
    await c.upsert([{ id: 'pair\ud83d\ude00', vector: [1, 2], payload: { e: '\ud83d\ude00' } }, { id: -0, vector: [3, 4] }]);
    expect(c.get('pair\ud83d\ude00')).toMatchObject({ payload: { e: '\ud83d\ude00' } });
    expect(Object.is(c.get(0)?.id, 0)).toBe(true);
    expect(c.count).toBe(2);
    await store.close();
  });
});

describe('cosine at the edges of float32', () => {
  const points = [
    { id: 'a', vector: [0, 1] },
    { id: 'tiny', vector: [1e-40, 0] },
    { id: 'b', vector: [1, 1] },
    { id: 'huge', vector: [3e38, 3e38] },
    { id: 'mixed', vector: [1e-30, -3e38] },
  ];
  const queries = [[0.1, 1], [0, 1], [1e-42, 1e-42], [3e38, 3e38], [-1, 0]];

  function expectExact(answer: { results: { id: unknown; score: number }[][] }): void {
    queries.forEach((q, i) => {
      const hits = answer.results[i];
      expect(hits).toHaveLength(points.length);
      for (const hit of hits) {
        expect(Number.isFinite(hit.score)).toBe(true);
        const stored = points.find((p) => p.id === hit.id)!.vector.map(Math.fround);
        expect(hit.score).toBeCloseTo(cosine(q.map(Math.fround), stored), 5);
      }
      // in score order
      for (let j = 1; j < hits.length; j++) expect(hits[j - 1].score).toBeGreaterThanOrEqual(hits[j].score - 1e-6);
    });
  }

  it('scores tiny, huge and mixed vectors finitely and correctly, before and after training', async () => {
    const store = await Store.open(dataDir(), options);
    const c = await store.create('edge', { dim: 2, metric: 'cosine', index: 'ivf2@2,flat@2' });
    await c.upsert(points);
    expectExact(await c.search(queries, { k: points.length }));
    // a stored [3e38, 3e38] finds itself first
    expect((await c.search([[3e38, 3e38]], { k: 1 })).results[0][0].id).toMatch(/^(huge|b)$/);
    // zero vectors have no cosine: refused, for points and for queries
    expect((await rejection(c.upsert([{ id: 'z', vector: [0, 0] }]))).message).toMatch(/all zeros/);
    expect((await rejection(c.search([[0, 0]], { k: 1 }))).message).toMatch(/query: vector is all zeros/);
    // enough points to train two lists; the edge points stay in
    await c.upsert(Array.from({ length: 60 }, (_, i) => ({ id: `r${i}`, vector: [Math.cos(i), Math.sin(i)] })));
    await c.build();
    expect(c.stats().index.state).toBe('ready');
    const trained = await c.search(queries, { k: 65, params: { nprobe: 2 } });
    for (const [i, hits] of trained.results.entries()) {
      expect(hits).toHaveLength(65);
      for (const hit of hits) expect(Number.isFinite(hit.score)).toBe(true);
      const edge = hits.filter((h) => points.some((p) => p.id === h.id));
      expect(edge).toHaveLength(points.length);
      for (const hit of edge) expect(hit.score).toBeCloseTo(cosine(queries[i].map(Math.fround), points.find((p) => p.id === hit.id)!.vector.map(Math.fround)), 5);
    }
    // the stored vectors are returned as given, not normalised
    expect(c.get('huge')?.vector).toEqual([Math.fround(3e38), Math.fround(3e38)]);
    await store.close();
  }, 60_000);

  it('scores a prefix scan finitely and returns every point when a Matryoshka prefix is tiny but not zero', async () => {
    // the kernels score a prefix as dot x (query inverse norm x row inverse norm) in float32: two
    // prefixes of norm ~1e-20 overflow that product (+Infinity), and ~1e-25 underflows the dot (NaN, dropped)
    const store = await Store.open(dataDir(), options);
    const c = await store.create('prefix', { dim: 4, metric: 'cosine', dims: [2, 4], index: 'ivf4@2,flat@2' });
    const tiny = [
      { id: 't25', vector: [1e-25, 0, 1, 0] },
      { id: 't20', vector: [1e-20, 1e-20, 1, 0] },
      { id: 'tneg', vector: [-1e-25, 1e-25, 0, 1] },
    ];
    const ordinary = Array.from({ length: 80 }, (_, i) => ({ id: `o${i}`, vector: [Math.sin(i), Math.cos(i), Math.sin(2 * i), Math.cos(3 * i)] }));
    await c.upsert([...ordinary, ...tiny]);
    await c.build();
    expect(c.stats().index).toMatchObject({ state: 'ready', lastError: null });
    const n = ordinary.length + tiny.length;
    for (const query of [[1e-25, 0, 1, 0], [1e-30, 1e-30, 0, 1], [1, 1, 0, 0]]) {
      const hits = (await c.search([query], { k: n, params: { nprobe: 4 } })).results[0];
      expect(hits).toHaveLength(n);
      for (const hit of hits) expect(Number.isFinite(hit.score)).toBe(true);
    }
    // ordinary prefixes still score their prefix cosine
    const hits = (await c.search([[1, 1, 0, 0]], { k: n, params: { nprobe: 4 } })).results[0];
    for (const hit of hits.filter((h) => String(h.id).startsWith('o'))) {
      const v = ordinary.find((p) => p.id === hit.id)!.vector;
      expect(hit.score).toBeCloseTo(cosine([1, 1], v.slice(0, 2).map(Math.fround)), 5);
    }
    await store.close();
  }, 60_000);

  it('re-ranks tiny and huge vectors read back from the collection finitely and correctly', async () => {
    const store = await Store.open(dataDir(), options);
    const c = await store.create('rr', { dim: 2, metric: 'cosine', index: 'ivf2@1,flat@1,rerank@2' });
    await c.upsert(points);
    await c.upsert(Array.from({ length: 60 }, (_, i) => ({ id: `r${i}`, vector: [Math.cos(i) + 2, Math.sin(i)] })));
    await c.build();
    expect(c.stats().index).toMatchObject({ state: 'ready', lastError: null });
    const answer = await c.search(queries, { k: 65, params: { nprobe: 2, shortlist: 65 } });
    for (const [i, hits] of answer.results.entries()) {
      expect(hits).toHaveLength(65);
      for (const hit of hits) expect(Number.isFinite(hit.score)).toBe(true);
      for (const hit of hits.filter((h) => points.some((p) => p.id === h.id))) {
        expect(hit.score).toBeCloseTo(cosine(queries[i].map(Math.fround), points.find((p) => p.id === hit.id)!.vector.map(Math.fround)), 5);
      }
    }
    await store.close();
  }, 60_000);

  it('refuses ip and l2 vectors whose scores would overflow float32', async () => {
    const store = await Store.open(dataDir(), options);
    for (const metric of ['ip', 'l2'] as const) {
      const c = await store.create(metric, { dim: 2, metric });
      expect((await rejection(c.upsert([{ id: 1, vector: [3e38, 0] }]))).message).toMatch(/norm 3.00e\+38 is above 1e\+18/);
      await c.upsert([{ id: 1, vector: [1e18 / 2, 0] }, { id: 2, vector: [1e-40, -0] }]);
      const answer = await c.search([[-1e18 / 2, 0]], { k: 2 });
      expect(answer.results[0]).toHaveLength(2);
      for (const hit of answer.results[0]) expect(Number.isFinite(hit.score)).toBe(true);
    }
    await store.close();
  });

  it('refuses ip and l2 vectors that float16 lists would saturate, and ranks what it takes correctly', async () => {
    const store = await Store.open(dataDir(), options);
    const half = await store.create('half', { dim: 2, metric: 'ip', index: 'ivf2@2,f16@2' });
    expect((await rejection(half.upsert([{ id: 1, vector: [1e5, 1e5] }]))).message).toMatch(/norm 1.41e\+5 is above 32752, which float16 lists .* cannot hold/);
    // the same vector in a collection with float32 lists, and in a cosine one with float16 lists, is fine
    await (await store.create('full', { dim: 2, metric: 'ip', index: 'ivf2@2,flat@2' })).upsert([{ id: 1, vector: [1e5, 1e5] }]);
    await (await store.create('unit', { dim: 2, metric: 'cosine', index: 'ivf2@2,f16@2' })).upsert([{ id: 1, vector: [1e5, 1e5] }]);
    // within the bound, trained float16 lists rank by the true inner product
    const points = Array.from({ length: 40 }, (_, i) => ({ id: i, vector: [(i - 20) * 1000, (i % 7) * 3000] }));
    await half.upsert(points);
    await half.build();
    const answer = await half.search([[1, 1]], { k: 3, params: { nprobe: 2 } });
    const want = [...points].sort((a, b) => b.vector[0] + b.vector[1] - (a.vector[0] + a.vector[1]) || a.id - b.id).slice(0, 3).map((p) => p.id);
    expect(answer.results[0].map((h) => h.id)).toEqual(want);
    await store.close();
  });
});

describe('search work', () => {
  const dim = 16;
  const data = randomMatrix(2000, dim, 3);
  const vec = (i: number) => Array.from(data.subarray(i * dim, (i + 1) * dim));

  it('answers a batch sliced into many event-loop turns exactly as in one piece', async () => {
    const store = await Store.open(dataDir(), options);
    const c = await store.create('w', { dim, metric: 'l2' });
    await c.upsert(Array.from({ length: 2000 }, (_, i) => ({ id: i, vector: vec(i) })));
    const queries = Array.from({ length: 300 }, (_, i) => vec(i));
    const whole = await c.search(queries, { k: 5 });
    // count the event-loop turns the sliced search leaves to others
    let turns = 0;
    let counting = true;
    const tick = () => {
      if (!counting) return;
      turns++;
      setImmediate(tick);
    };
    setImmediate(tick);
    const sliced = await c.search(queries, { k: 5, limits: { sliceMs: 0.01 } });
    counting = false;
    expect(sliced.results).toEqual(whole.results);
    expect(turns).toBeGreaterThan(5);
    await store.close();
  });

  it('refuses work over the limits with a message that says what to reduce', async () => {
    const store = await Store.open(dataDir(), options);
    const c = await store.create('w', { dim, metric: 'l2' });
    await c.upsert(Array.from({ length: 2000 }, (_, i) => ({ id: i, vector: vec(i) })));
    const queries = Array.from({ length: 10 }, (_, i) => vec(i));
    let e = await rejection(c.search(queries, { k: 100, limits: { maxHits: 500 } }));
    expect([e.kind, e.message]).toEqual(['too_large', expect.stringMatching(/10 query vectors x k = 100 is 1000 hits, the limit is 500: send fewer query vectors or ask for a smaller k/)]);
    // one exact query scans 2000 x 16 = 0.032 MFLOPs
    e = await rejection(c.search(queries, { k: 1, limits: { maxQueryMflops: 0.01 } }));
    expect(e.message).toMatch(/one query of this search plans 0.03200 MFLOPs, the limit per query is 0.01: build the index/);
    e = await rejection(c.search(queries, { k: 1, limits: { maxMflops: 0.1 } }));
    expect(e.message).toMatch(/plans 0.3200 MFLOPs \(10 query vectors x 0.03200\), the limit is 0.1: send fewer query vectors/);
    expect((await c.search(queries, { k: 1, limits: { maxMflops: 1, maxHits: 10, maxQueryMflops: 0.1 } })).results).toHaveLength(10);
    await c.upsert([{ id: 'p', vector: vec(0), payload: { text: 'x'.repeat(1000) } }]);
    e = await rejection(c.search([vec(0)], { k: 2, withPayload: true, limits: { maxPayloadBytes: 500 } }));
    expect(e.message).toMatch(/payloads of this answer exceed 500 bytes/);
    await store.close();
  });
});

describe('opening and logging', () => {
  it('answers unavailable with a retry hint for a collection still opening, and logs with the collection name', async () => {
    const dir = dataDir();
    let store = await Store.open(dir, options);
    await (await store.create('slow', { dim: 2, metric: 'l2', index: 'ivf2@2,flat@2' })).upsert(Array.from({ length: 40 }, (_, i) => ({ id: i, vector: [i, 1] })));
    logs.length = 0;
    await store.get('slow').build();
    const build = logs.filter((l) => l.fields.collection === 'slow').map((l) => `${l.level} ${l.message}`);
    expect(build[0]).toMatch(/^info collection slow: index build started \(requested\) over 40 points/);
    expect(build.some((l) => /^info collection slow: index build stage /.test(l))).toBe(true);
    expect(build.at(-1)).toMatch(/^info collection slow: index ivf2@2,flat@2 over 40 points ready in/);
    await store.close();

    logs.length = 0;
    store = Store.start(dir, options);
    // nothing opens before the caller has had its turn
    expect(store.pending()).toEqual(['slow']);
    const e = await rejection(() => store.get('slow'));
    expect([e.kind, e.retryAfterSeconds, e.message]).toEqual(['unavailable', 5, expect.stringMatching(/still opening/)]);
    expect(store.list()).toEqual([{ name: 'slow', error: expect.stringMatching(/still opening/) }]);
    await store.opened;
    expect(store.pending()).toEqual([]);
    expect(store.get('slow').count).toBe(40);
    expect(logs.some((l) => l.fields.collection === 'slow' && /recovered: index ivf2@2,flat@2/.test(l.message))).toBe(true);
    expect(logs.some((l) => l.fields.collection === 'slow' && /: open$/.test(l.message))).toBe(true);
    await store.close();
  }, 60_000);
});
