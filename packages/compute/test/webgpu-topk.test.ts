import { afterAll, describe, expect, it } from 'vitest';
import { ReferenceBackend, TopK, WebGpuBackend, rowBlock } from '../src/index.js';
import { expectSameTopK } from './compare.js';
import { randomMatrix } from './naive.js';

// The WebGPU backend's parallel top-k (kernels/wgsl/topk.wgsl: tiles of 512
// sorted per workgroup, reduce passes, a rank merge) and its reuse of device
// objects. Runs on llvmpipe without a GPU; REQUIRE_WEBGPU=1 fails without an adapter.

const TILE = 512;
const reference = new ReferenceBackend();
let gpu: WebGpuBackend | undefined;
try {
  gpu = await WebGpuBackend.create();
} catch (e) {
  if (process.env.REQUIRE_WEBGPU === '1') throw e;
  console.warn(`WebGPU top-k tests skipped: ${(e as Error).message}`);
}
afterAll(async () => gpu?.dispose());

/** Sorted rows of a TopK, for exact comparison. */
function rows(best: TopK): { ids: number[][]; scores: number[][] } {
  best.sort();
  const ids: number[][] = [], scores: number[][] = [];
  for (let r = 0; r < best.rows; r++) {
    ids.push(Array.from(best.ids.subarray(r * best.k, r * best.k + best.sizes[r])));
    scores.push(Array.from(best.scores.subarray(r * best.k, r * best.k + best.sizes[r])));
  }
  return { ids, scores };
}

/** ADC tables of small integers with m = 1: every score is exact and most tie, so only the id order can separate them. */
function tieTables(queries: number, seed: number): Float32Array {
  return Float32Array.from(randomMatrix(queries, 256, seed), (x) => Math.round(x * 16));
}

describe.skipIf(!gpu)('WebGPU parallel top-k', () => {
  const g = gpu!;

  it('equals the reference exactly on tied scores: one and several tiles, partial tiles, reduce passes, k above a tile, merged into earlier heaps', async () => {
    // 3 queries into rows 2, 0, 1 of the heaps; candidate counts from one entry to 12 tiles (reduce passes for k <= 256)
    const queryRows = Int32Array.from([2, 0, 1]);
    for (const k of [1, 7, 256, 300, TILE, 700]) {
      const want = new TopK(3, k);
      const got = new TopK(3, k);
      let seed = k;
      for (const count of [1, TILE - 1, TILE + 1, 12 * TILE + 37, 3 * TILE]) {
        const tables = tieTables(3, seed++);
        const codes = Uint8Array.from(randomMatrix(count, 1, seed++), (x) => Math.floor((x + 0.5) * 256));
        // ids from a permutation-like map, so id order differs from row order
        const ids = Int32Array.from({ length: count }, (_, j) => ((j * 7919) % 100_003) + seed * 100_003);
        await reference.adcScanTopK(tables, 3, 1, codes, count, want, ids, queryRows);
        await g.adcScanTopK(tables, 3, 1, codes, count, got, ids, queryRows);
      }
      const a = rows(got), b = rows(want);
      expect(a.scores, `k = ${k}`).toEqual(b.scores);
      expect(a.ids, `k = ${k}`).toEqual(b.ids);
    }
  });

  it('keeps duplicates as the reference does when the same candidates are merged twice', async () => {
    const tables = tieTables(1, 9);
    const codes = Uint8Array.from(randomMatrix(1300, 1, 10), (x) => Math.floor((x + 0.5) * 256));
    for (const k of [50, 700]) {
      const want = new TopK(1, k);
      const got = new TopK(1, k);
      for (let i = 0; i < 2; i++) {
        await reference.adcScanTopK(tables, 1, 1, codes, 1300, want);
        await g.adcScanTopK(tables, 1, 1, codes, 1300, got);
      }
      expect(rows(got)).toEqual(rows(want));
    }
  });

  it('keeps a valid min-heap: TopK.push after a device merge gives the reference result', async () => {
    const tables = tieTables(1, 5);
    const codes = Uint8Array.from(randomMatrix(2000, 1, 6), (x) => Math.floor((x + 0.5) * 256));
    const want = new TopK(1, 40);
    const got = new TopK(1, 40);
    await reference.adcScanTopK(tables, 1, 1, codes, 2000, want);
    await g.adcScanTopK(tables, 1, 1, codes, 2000, got);
    for (let i = 0; i < 100; i++) {
      want.push(0, 5000 + i, (i % 20) - 2);
      got.push(0, 5000 + i, (i % 20) - 2);
    }
    expect(rows(got)).toEqual(rows(want));
  });

  it('scanTopK and rescoreTopK with k above a tile over several workgroups agree with the reference', async () => {
    const dim = 6;
    const data = randomMatrix(1500, dim, 40);
    const q = rowBlock(randomMatrix(2, dim, 41), 2, dim);
    for (const metric of ['cosine', 'ip', 'l2'] as const) {
      for (const k of [5, 600]) {
        const want = new TopK(2, k);
        const got = new TopK(2, k);
        await reference.scanTopK(q, rowBlock(data, 1500, dim), dim, metric, want);
        await g.scanTopK(q, rowBlock(data, 1500, dim), dim, metric, got);
        expectSameTopK(got, want, 1e-4);
      }
      // shortlists longer than a tile, of different lengths per query
      const candidates = new TopK(2, 900);
      for (let i = 0; i < 900; i++) candidates.push(0, (i * 13) % 1500, i);
      for (let i = 0; i < 530; i++) candidates.push(1, (i * 29) % 1500, i);
      for (const k of [3, 520]) {
        const want = new TopK(2, k);
        const got = new TopK(2, k);
        await reference.rescoreTopK(q, rowBlock(data, 1500, dim), dim, metric, candidates, want);
        await g.rescoreTopK(q, rowBlock(data, 1500, dim), dim, metric, candidates, got);
        expectSameTopK(got, want, 1e-4);
      }
    }
  });

  it('runs concurrent calls one at a time, each with its own result', async () => {
    const dim = 4;
    const data = randomMatrix(900, dim, 50);
    const queries = Array.from({ length: 6 }, (_, i) => rowBlock(randomMatrix(1, dim, 60 + i), 1, dim));
    const wants = queries.map(() => new TopK(1, 9));
    for (let i = 0; i < queries.length; i++) await reference.scanTopK(queries[i], rowBlock(data, 900, dim), dim, 'l2', wants[i]);
    const gots = queries.map(() => new TopK(1, 9));
    await Promise.all(queries.map((q, i) => g.scanTopK(q, rowBlock(data, 900, dim), dim, 'l2', gots[i])));
    for (let i = 0; i < queries.length; i++) expectSameTopK(gots[i], wants[i], 1e-4);
  });

  it('reuses its device objects: 400 repeated calls create no buffer, 400 more with a refreshed device copy keep the live ones bounded', async () => {
    const dim = 8;
    const resident = g.arena.float32(300 * dim);
    resident.set(randomMatrix(300, dim, 70));
    const ids = g.arena.int32(300);
    ids.set(Int32Array.from({ length: 300 }, (_, j) => 1000 + j));
    const loose = randomMatrix(200, dim, 71);
    const tables = tieTables(2, 72);
    const codes = Uint8Array.from(randomMatrix(700, 1, 73), (x) => Math.floor((x + 0.5) * 256));
    const round = async (i: number, touch: boolean) => {
      const q = rowBlock(randomMatrix(2, dim, 100 + i), 2, dim);
      await g.scanTopK(q, rowBlock(resident, 300, dim), dim, 'cosine', new TopK(2, 10), ids);
      await g.scanTopK(q, rowBlock(loose, 200, dim), dim, 'l2', new TopK(2, 10));
      await g.adcScanTopK(tables, 2, 1, codes, 700, new TopK(2, 20));
      await g.score(q, rowBlock(loose, 200, dim), dim, 'ip', new Float32Array(400));
      if (!touch) return;
      // a resident array written in place: its device copy (and bind groups on it) go, a new one comes
      resident[i % resident.length] += 1;
      g.arena.touched(resident);
    };
    for (let i = 0; i < 10; i++) await round(i, i < 9);
    const warm = g.resources;
    // the same calls again create nothing: scratch, read-back, uniform and bind groups are reused
    for (let i = 10; i < 110; i++) await round(i, false);
    expect(g.resources).toEqual(warm);
    // a device copy refreshed every round: what it replaces is destroyed
    for (let i = 110; i < 210; i++) await round(i, true);
    expect(g.resources.buffers).toBeLessThanOrEqual(warm.buffers);
    expect(g.resources.bindGroups).toBeLessThanOrEqual(warm.bindGroups);
    g.arena.release(resident);
    g.arena.release(ids);
    expect(g.resources.buffers).toBeLessThan(warm.buffers);
  });
});
