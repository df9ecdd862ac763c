import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WasmSimdBackend } from '@adanns/compute';
import { decodeQuantiser, encodeQuantiser, Store, type CollectionOptions } from '../src/index.js';
import { randomMatrix } from '../../compute/test/naive.js';

// What a cluster's shards need of a collection (packages/cluster): builds on a quantiser trained by another
// shard, budgets planned at a shard's share of k, and a copy of the whole collection to start a replica from.

let backend: WasmSimdBackend;
const dirs: string[] = [];
let options: CollectionOptions;

beforeAll(async () => {
  backend = await WasmSimdBackend.create({ threads: 1 });
  options = { backend, backendName: 'cpu', threads: 1, autoBuildAt: 0, calibrationSeconds: 10 };
});
afterAll(async () => {
  await backend.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'adanns-shards-'));
  dirs.push(d);
  return d;
}

const dim = 16;
const vectors = randomMatrix(2400, dim, 17);
const points = (from: number, to: number) => Array.from({ length: to - from }, (_, j) => ({ id: from + j, vector: Array.from(vectors.subarray((from + j) * dim, (from + j + 1) * dim)) }));

/** Every file under `dir`, as Store.restore takes them. */
function filesOf(dir: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const walk = (at: string) => {
    for (const entry of readdirSync(at)) {
      const path = join(at, entry);
      if (statSync(path).isDirectory()) walk(path);
      else out.set(relative(dir, path), readFileSync(path));
    }
  };
  walk(dir);
  return out;
}

describe('a shared quantiser', () => {
  it('is what a build given it trains on: the same spec, PCA and centroids, whichever points the collection holds', { timeout: 120_000 }, async () => {
    const store = await Store.open(dataDir(), options);
    const a = await store.create('a', { dim, metric: 'l2', index: 'pca,ivf8@8,flat@16' });
    const b = await store.create('b', { dim, metric: 'l2', index: 'pca,ivf8@8,flat@16' });
    await a.upsert(points(0, 1200));
    await b.upsert(points(1200, 2400));
    expect(a.sharedQuantiser()).toBeNull(); // before training
    // handed over as soon as the build trained it (before filling and calibrating), as the finished index holds it
    let early: Uint8Array | undefined;
    await a.build({ onQuantiser: (q) => (early = q) });
    const blob = a.sharedQuantiser()!;
    expect(Buffer.from(early!).equals(Buffer.from(blob))).toBe(true);
    const q = decodeQuantiser(blob, dim, 'l2');
    expect(q).toMatchObject({ spec: a.stats().index.spec, dim, metric: 'l2' });
    expect(q.centroids).toHaveLength(8 * 8);
    expect(q.pca?.components).toHaveLength(dim * dim);
    expect(Buffer.from(encodeQuantiser(q)).equals(Buffer.from(blob))).toBe(true);
    await b.build({ quantiser: blob });
    expect(Buffer.from(b.sharedQuantiser()!).equals(Buffer.from(blob))).toBe(true);
    // kept for later builds here; null forgets it and the next build trains its own
    await b.build();
    expect(Buffer.from(b.sharedQuantiser()!).equals(Buffer.from(blob))).toBe(true);
    await b.build({ quantiser: null });
    expect(Buffer.from(b.sharedQuantiser()!).equals(Buffer.from(blob))).toBe(false);
    // a quantiser for other vectors is refused, naming why
    const other = await store.create('other', { dim: 8, metric: 'l2' });
    await other.upsert(points(0, 50).map((p) => ({ ...p, vector: p.vector.slice(0, 8) })));
    expect(() => other.build({ quantiser: blob })).toThrow(/for 16-d "l2" vectors, this collection holds 8-d l2/);
    await store.close();
  });

  it('plans a budget at planK while answering k hits', { timeout: 120_000 }, async () => {
    const store = await Store.open(dataDir(), options);
    const c = await store.create('c', { dim, metric: 'l2', index: 'ivf32@16,flat@16', calibrationK: [5, 10] });
    await c.upsert(points(0, 2400));
    await c.build();
    const query = [Array.from(vectors.subarray(0, dim))];
    const at10 = await c.search(query, { k: 10, budget: { recall: 0.8 } });
    const at5 = await c.search(query, { k: 10, budget: { recall: 0.8 }, planK: 5 });
    expect(at5.results[0]).toHaveLength(10);
    // planned on the calibration at k = 5: the top 5 lie nearer than the top 10, so an IVF scan finds more of
    // them with the same probes, and reaches the target with no more probes
    expect(at5.planned!.k).toBe(5);
    // the recall budget is judged at the k it was planned at (calibrated at 5), not at the 10 hits answered
    expect(at5.budgetMet).toBe(true);
    expect(at10.budgetMet).toBe(true);
    expect(at5.params!.nprobe).toBeLessThanOrEqual(at10.params!.nprobe);
    if (at5.params!.nprobe === at10.params!.nprobe) expect(at5.planned!.recall!).toBeGreaterThan(at10.planned!.recall!);
    await expect(c.search(query, { k: 10, budget: { recall: 0.9 }, planK: 0 })).rejects.toThrow(/planK must be a positive integer, got 0/);
    await store.close();
  });
});

describe('a collection snapshot', () => {
  it('restores points, payloads, deletes, the applied log sequence and the index elsewhere', { timeout: 120_000 }, async () => {
    const store = await Store.open(dataDir(), options);
    const c = await store.create('s', { dim, metric: 'cosine', index: 'ivf8@16,flat@16' });
    await c.upsert(points(0, 600), { logSequence: 1 });
    await c.build();
    await c.upsert([{ id: 'late', vector: points(700, 701)[0].vector, payload: { x: 1 } }], { logSequence: 2 });
    await c.delete([3], { logSequence: 3 });
    const copy = mkdtempSync(join(tmpdir(), 'adanns-shards-copy-'));
    dirs.push(copy);
    expect(await c.snapshot(copy)).toEqual({ logSequence: 3, sequence: c.stats().sequence });
    const elsewhere = await Store.open(dataDir(), options);
    const r = await elsewhere.restore('s--s0', filesOf(copy));
    expect(r.logSequence).toBe(3);
    expect(r.count).toBe(600);
    expect(r.get(3)).toBeUndefined();
    expect(r.get('late')?.payload).toEqual({ x: 1 });
    await r.whenBuilt();
    expect(r.stats().index).toMatchObject({ state: 'ready', spec: c.stats().index.spec, sequence: c.stats().index.sequence });
    const query = [points(10, 11)[0].vector];
    expect((await r.search(query, { k: 5, params: { nprobe: 2 } })).results).toEqual((await c.search(query, { k: 5, params: { nprobe: 2 } })).results);
    await expect(elsewhere.restore('s--s0', filesOf(copy))).rejects.toThrow(/already exists/);
    await expect(elsewhere.restore('empty', new Map())).rejects.toThrow(/holds no points database/);
    await elsewhere.close();
    await store.close();
  });
});
