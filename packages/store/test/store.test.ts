import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WasmSimdBackend } from '@adanns/compute';
import { Store, type CollectionOptions } from '../src/index.js';
import { randomMatrix } from '../../compute/test/naive.js';

let backend: WasmSimdBackend;
const dirs: string[] = [];
const logs: string[] = [];
let options: CollectionOptions;

beforeAll(async () => {
  backend = await WasmSimdBackend.create({ threads: 1 });
  const line = (level: string) => (fields: object, message: string) => logs.push(`${level}: ${message} ${JSON.stringify(fields)}`);
  options = { backend, backendName: 'cpu', threads: 1, autoBuildAt: 0, logger: { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') } };
});
afterAll(async () => {
  await backend.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'adanns-store-'));
  dirs.push(d);
  return d;
}

const dim = 16;
const vectors = randomMatrix(3000, dim, 91);
const vectorOf = (i: number) => Array.from(vectors.subarray(i * dim, (i + 1) * dim));
const pointsFrom = (from: number, to: number, prefix = 'p') => Array.from({ length: to - from }, (_, j) => ({ id: `${prefix}${from + j}`, vector: vectorOf(from + j), payload: { n: from + j } }));

describe('collections', () => {
  it('keep acknowledged points and deletes across a restart, exact before any index', async () => {
    const dir = dataDir();
    let store = await Store.open(dir, options);
    const c = await store.create('docs', { dim, metric: 'cosine' });
    await c.upsert(pointsFrom(0, 300));
    await c.upsert([{ id: 7, vector: vectorOf(1000), payload: { kind: 'integer id' } }]);
    await c.delete(['p3', 'p4', 'missing']);
    expect(c.count).toBe(299);
    const answer = await c.search([vectorOf(10)], { k: 3, withPayload: true, params: { nprobe: 4 } }); // exact until trained: params wait for the index
    expect(answer.results[0][0]).toMatchObject({ id: 'p10', payload: { n: 10 } });
    expect(answer.results[0][0].score).toBeCloseTo(1, 5);
    expect(answer.expectedRecall).toBe(1);
    await store.close();

    store = await Store.open(dir, options);
    const again = store.get('docs');
    expect(again.count).toBe(299);
    expect(again.get('p3')).toBeUndefined();
    expect(again.get(7)?.payload).toEqual({ kind: 'integer id' });
    expect(again.get('7')).toBeUndefined(); // 7 and "7" are different ids
    expect(again.get('p5')?.vector).toEqual(Array.from(new Float32Array(vectorOf(5))));
    const hits = (await again.search([vectorOf(3)], { k: 5 })).results[0].map((h) => h.id);
    expect(hits).not.toContain('p3');
    expect(again.stats()).toMatchObject({ name: 'docs', dim, metric: 'cosine', count: 299, index: { state: 'none' } });
    await store.close();
  });

  it('refuses a bad batch as a whole with a message', async () => {
    const store = await Store.open(dataDir(), { ...options, maxPayloadBytes: 100 });
    const c = await store.create('strict', { dim: 4, metric: 'l2' });
    await c.upsert([{ id: 'a', vector: [1, 2, 3, 4] }]);
    const bad: [unknown[], RegExp][] = [
      [[{ id: 'b', vector: [1, 2, 3] }], /3 values, the collection has dimension 4/],
      [[{ id: 'b', vector: [1, 2, 3, 4] }, { id: 'c', vector: [1, NaN, 3, 4] }], /vector\[1\] is null, not a finite number|vector\[1\] is NaN/],
      [[{ id: 'b', vector: [1, 2, Infinity, 4] }], /not a finite number/],
      [[{ id: 'b', vector: [1, 2, 3, 4], payload: { text: 'x'.repeat(200) } }], /payload is \d+ bytes as JSON, the limit is 100/],
      [[{ id: -1, vector: [1, 2, 3, 4] }], /point id must be/],
      [[{ id: 'b', vector: 'nope' }], /vector must be an array/],
      [[], /non-empty array/],
    ];
    for (const [batch, message] of bad) await expect(c.upsert(batch as never)).rejects.toThrow(message);
    expect(c.count).toBe(1);
    expect(c.get('b')).toBeUndefined();
    // duplicate ids in one batch: the last one wins
    await c.upsert([{ id: 'd', vector: [1, 1, 1, 1] }, { id: 'd', vector: [2, 2, 2, 2], payload: { last: true } }]);
    expect(c.get('d')).toEqual({ id: 'd', vector: [2, 2, 2, 2], payload: { last: true } });
    await expect(c.search([[1, 2, 3]], { k: 1 })).rejects.toThrow(/dimension 4/);
    await expect(c.search([[1, 2, 3, 4]], { k: 0 })).rejects.toThrow(/k must be/);
    expect(() => store.get('nope')).toThrow(/no collection named "nope"/);
    await expect(store.create('strict', { dim: 4 })).rejects.toThrow(/already exists/);
    await expect(store.create('bad name', { dim: 4 })).rejects.toThrow(/collection name/);
    await expect(store.create('x', { dim: 0 })).rejects.toThrow(/dim must be/);
    await expect(store.create('x', { dim: 8, index: 'ivf4@16' })).rejects.toThrow(/index/);
    await store.close();
  });

  it('creates a name once when two creates race: the other is a conflict, and the schema is the winner\'s', async () => {
    const store = await Store.open(dataDir(), options);
    // neither awaited before the other starts: both pass the existence checks in the same turn
    const [first, second] = await Promise.allSettled([store.create('twice', { dim: 4 }), store.create('twice', { dim: 8 })]);
    expect(first.status).toBe('fulfilled');
    expect(second.status === 'rejected' && (second.reason as Error).message).toMatch(/already exists/);
    expect(store.get('twice').stats().dim).toBe(4);
    await store.close();
  });

  it('chooses the spec with auto by default, says why, and keeps the reason across a restart', async () => {
    const dir = dataDir();
    let store = await Store.open(dir, options);
    await expect(store.create('bad', { dim, metric: 'cosine', index: 'automatic' })).rejects.toThrow(/unknown token "automatic"/);
    const c = await store.create('auto', { dim, metric: 'l2', index: 'auto' });
    await c.upsert(pointsFrom(0, 2500));
    await c.build();
    const stats = c.stats().index;
    expect(stats).toMatchObject({ state: 'ready', lastError: null });
    expect(stats.spec).toMatch(/^(pca,)?ivf\d+@\d+,flat@\d+/);
    expect(stats.specReason).toMatch(/PCA components hold half the variance/);
    expect(logs.some((l) => l.includes('auto chose it: '))).toBe(true);
    await store.close();
    store = await Store.open(dir, options);
    expect(store.get('auto').stats().index).toMatchObject({ spec: stats.spec, specReason: stats.specReason });
    await store.close();
  });

  it('builds in the background, keeps serving and writing meanwhile, and never brings deletes back', async () => {
    const dir = dataDir();
    let store = await Store.open(dir, options);
    const c = await store.create('ivf', { dim, metric: 'cosine', index: 'pca,ivf16@8,flat@16' });
    await c.upsert(pointsFrom(0, 2000));
    const built = c.build();
    expect(c.stats().index.state).toBe('building');
    expect(() => c.build()).toThrow(/already building/);
    // writes and searches during the build
    await c.upsert(pointsFrom(2000, 2100));
    await c.delete(['p0', 'p2050']);
    expect((await c.search([vectorOf(5)], { k: 1 })).results[0][0].id).toBe('p5');
    await built;
    const stats = c.stats();
    expect(stats.index).toMatchObject({ state: 'ready', spec: 'pca,ivf16@8,flat@16', lastError: null });
    expect(stats.count).toBe(2098);
    // the writes made during the build were replayed into the new index
    const exhaustive = { nprobe: 16, coarseDim: 8, scanDim: 16, shortlist: 10 };
    expect((await c.search([vectorOf(2075)], { k: 1, params: exhaustive })).results[0][0].id).toBe('p2075');
    for (const gone of [0, 2050]) expect((await c.search([vectorOf(gone)], { k: 5, params: exhaustive })).results[0].map((h) => h.id)).not.toContain(`p${gone}`);
    // a budget is planned from the calibration
    const answer = await c.search([vectorOf(9)], { k: 5, budget: { recall: 0.5 } });
    expect(answer.params).not.toBeNull();
    expect(answer.expectedRecall).toBeGreaterThanOrEqual(0.5);
    expect(c.frontier().length).toBeGreaterThan(0);
    // later writes go into the trained index incrementally; restart replays them over the artefact
    await c.upsert(pointsFrom(2100, 2200));
    await c.delete(['p1']);
    await store.close();

    store = await Store.open(dir, options);
    const again = store.get('ivf');
    expect(again.stats().index.state).toBe('ready');
    expect(again.count).toBe(2197);
    for (const gone of [0, 1, 2050]) expect((await again.search([vectorOf(gone)], { k: 5, params: exhaustive })).results[0].map((h) => h.id)).not.toContain(`p${gone}`);
    expect((await again.search([vectorOf(2150)], { k: 1, params: exhaustive })).results[0][0].id).toBe('p2150');
    // a rebuild keeps deletes deleted
    await again.build();
    expect(again.count).toBe(2197);
    for (const gone of [0, 1, 2050]) expect((await again.search([vectorOf(gone)], { k: 5, params: exhaustive })).results[0].map((h) => h.id)).not.toContain(`p${gone}`);
    await store.close();
  });

  it('builds by itself once ingest past the threshold has gone quiet, and rebuilds (by default) once the collection has doubled', async () => {
    // autoRebuild left at its default (on)
    const store = await Store.open(dataDir(), { ...options, autoBuildAt: 300, autoBuildQuietMs: 1000, calibrationSeconds: 2 });
    const c = await store.create('auto', { dim, metric: 'l2', index: 'ivf4@16,flat@16' });
    /** Writes `to - from` points in batches of 20, 50 ms apart (an import), each followed by no build. */
    const ingest = async (from: number, to: number) => {
      for (let i = from; i < to; i += 20) {
        await c.upsert(pointsFrom(i, Math.min(to, i + 20)));
        expect(c.stats().index.state).not.toBe('building');
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const building = async () => {
      for (let waited = 0; c.stats().index.state !== 'building'; waited += 20) {
        if (waited > 10_000) throw new Error('no automatic build started');
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await c.upsert(pointsFrom(0, 299));
    expect(c.stats().index).toMatchObject({ state: 'none', note: null });
    // the threshold is reached in the middle of the import: the build waits until the writes stop
    await ingest(299, 500);
    expect(c.stats().index).toMatchObject({ state: 'none', note: expect.stringMatching(/once writes have been quiet for 1 s/) });
    await building();
    await c.whenBuilt();
    // trained on all of them
    expect(c.stats().index).toMatchObject({ state: 'ready', trainedCount: 500, rebuildAdvised: false });
    await ingest(500, 999);
    expect(c.stats().index).toMatchObject({ state: 'ready', trainedCount: 500, rebuildAdvised: false });
    await ingest(999, 1100);
    expect(c.stats().index).toMatchObject({ state: 'ready', trainedCount: 500, rebuildAdvised: true });
    await building();
    await c.whenBuilt();
    expect(c.stats().index).toMatchObject({ state: 'ready', trainedCount: 1100, rebuildAdvised: false });
    await store.close();
  });

  it('keeps what the index was trained on, not the points replayed into it since', async () => {
    const dir = dataDir();
    let store = await Store.open(dir, options);
    const c = await store.create('counted', { dim, metric: 'l2', index: 'ivf4@16,flat@16' });
    await c.upsert(pointsFrom(0, 400));
    await c.build();
    await c.upsert(pointsFrom(400, 700));
    expect(c.stats().index).toMatchObject({ trainedCount: 400, rebuildAdvised: false });
    await store.close(); // checkpoints 700 points into the artefact
    store = await Store.open(dir, options);
    expect(store.get('counted').stats()).toMatchObject({ count: 700, index: { state: 'ready', trainedCount: 400 } });
    await store.close();
  });

  it('searches a collection too small for an index exactly, and says so', async () => {
    const store = await Store.open(dataDir(), options);
    const c = await store.create('tiny', { dim, metric: 'cosine' });
    await c.upsert(pointsFrom(0, 2));
    const before = await c.search([vectorOf(0)], { k: 2 });
    expect(before.note).toBe('exact search over all 2 points: no index has been built yet');
    await c.build();
    expect(c.stats().index).toMatchObject({ state: 'exact', note: expect.stringMatching(/too few points \(2\) for an index.*searches are exact/), lastError: null, spec: null });
    const answer = await c.search([vectorOf(0)], { k: 2, budget: { recall: 0.99 } });
    expect(answer.results[0].map((h) => h.id)).toEqual(['p0', 'p1']);
    expect(answer).toMatchObject({ params: null, expectedRecall: 1, budgetMet: true, planned: { recall: 1, latencyMs: null, k: null } });
    expect(answer.note).toMatch(/^exact search over all 2 points: too few points \(2\)/);
    expect(logs.some((l) => l.startsWith('info') && /tiny: no index built \(requested\): too few points/.test(l))).toBe(true);
    // big enough (the smallest collection that gets an index): the next request builds
    await c.upsert(pointsFrom(2, 11));
    await c.build();
    expect(c.stats().index).toMatchObject({ state: 'ready', note: null, trainedCount: 11, lastError: null });
    expect((await c.search([vectorOf(3)], { k: 1 })).results[0][0].id).toBe('p3');
    await store.close();
  });

  it('counts the calibrated k when deciding whether a collection can have an index', async () => {
    const store = await Store.open(dataDir(), options);
    const c = await store.create('k100', { dim, metric: 'l2', index: 'ivf2@16,flat@16', calibrationK: [100] });
    // enough for k = 10, not for calibrating at k = 100: exact, not a failed build
    await c.upsert(pointsFrom(0, 60));
    await c.build();
    expect(c.stats().index).toMatchObject({ state: 'exact', note: expect.stringMatching(/too few points \(60\) for an index: calibrating one at k = 100 \(calibrationK\) needs at least 101/), lastError: null });
    await c.upsert(pointsFrom(60, 101));
    await c.build();
    expect(c.stats().index).toMatchObject({ state: 'ready', note: null, trainedCount: 101, lastError: null, calibration: { ks: [100] } });
    await store.close();
  });

  it('detects a flipped byte or a truncated artefact and rebuilds it', async () => {
    for (const damage of ['flip', 'truncate'] as const) {
      const dir = dataDir();
      let store = await Store.open(dir, options);
      const c = await store.create('fragile', { dim, metric: 'l2', index: 'ivf8@16,flat@16' });
      await c.upsert(pointsFrom(0, 1000));
      await c.build();
      await store.close();
      const indexDir = join(dir, 'collections', 'fragile', 'index');
      const artefact = join(indexDir, readFileSync(join(indexDir, 'CURRENT'), 'utf8').trim(), 'list-codes.bin');
      const bytes = readFileSync(artefact);
      if (damage === 'flip') bytes[bytes.length - 5] ^= 0x40;
      writeFileSync(artefact, damage === 'flip' ? bytes : bytes.subarray(0, bytes.length - 100));
      logs.length = 0;
      store = await Store.open(dir, options);
      const again = store.get('fragile');
      expect(logs.some((l) => l.startsWith('warn') && /artefact not used, rebuilding/.test(l))).toBe(true);
      expect(again.stats().index.state).toBe('building');
      // exact meanwhile
      expect((await again.search([vectorOf(17)], { k: 1 })).results[0][0].id).toBe('p17');
      await again.whenBuilt();
      expect(again.stats().index.state).toBe('ready');
      expect(again.count).toBe(1000);
      await store.close();
    }
  });

  it('serves the other collections when one is corrupt', async () => {
    const dir = dataDir();
    let store = await Store.open(dir, options);
    await (await store.create('good', { dim: 4 })).upsert([{ id: 1, vector: [1, 0, 0, 0] }]);
    await (await store.create('broken', { dim: 4 })).upsert([{ id: 1, vector: [1, 0, 0, 0] }]);
    await store.close();
    const lmdbDir = join(dir, 'collections', 'broken', 'points');
    const file = readdirSync(lmdbDir).find((f) => f.endsWith('.mdb') && !f.includes('lock')) ?? readdirSync(lmdbDir)[0];
    const path = join(lmdbDir, file);
    writeFileSync(path, Buffer.alloc(statSync(path).size, 0x5a));
    logs.length = 0;
    store = await Store.open(dir, options);
    expect(store.get('good').count).toBe(1);
    expect(() => store.get('broken')).toThrow(/failed to open/);
    expect(store.list().find((c) => c.name === 'broken')).toHaveProperty('error');
    expect(logs.some((l) => l.startsWith('error') && l.includes('broken'))).toBe(true);
    await store.drop('broken');
    expect(store.names()).toEqual(['good']);
    await store.close();
  });
});
