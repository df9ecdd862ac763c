import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS, ReferenceBackend, TopK, WasmSimdBackend, rowBlock, type Backend, type RowBlock } from '../src/index.js';
import { WasmMemory } from '../src/cpu/wasm-memory.js';
import { expectCentroidSumsAgree, expectClose, expectIdentical, expectSameTopK, tolerance } from './compare.js';
import { randomMatrix } from './naive.js';

// The SIMD backend against the plain TypeScript reference: float32 against
// float64 accumulation, so scores agree to 1e-5 relative rank by rank, and a
// rank may hold a different id only where scores tie to that precision.

const reference = new ReferenceBackend();
let simd: WasmSimdBackend;
let pooled: WasmSimdBackend;

beforeAll(async () => {
  simd = await WasmSimdBackend.create({ threads: 1 });
  // two threads that split every call, however small, so tests exercise the pool
  pooled = await WasmSimdBackend.create({ threads: 2, parallelMinWork: 1 });
});
afterAll(async () => {
  await simd.dispose();
  await pooled.dispose();
});

// (stride, prefix): prefixes of 1, below 4, not a multiple of 4 or 8, and full rows
const SHAPES: [number, number][] = [[1, 1], [7, 3], [13, 13], [64, 8], [70, 33], [36, 36]];

async function scan(backend: Backend, q: RowBlock, b: RowBlock, dim: number, metric: (typeof METRICS)[number], k: number, ids?: Int32Array, rows?: Int32Array, into?: TopK): Promise<TopK> {
  const best = into ?? new TopK(rows ? Math.max(...rows) + 1 : q.rows, k);
  await backend.scanTopK(q, b, dim, metric, best, ids, rows);
  return best;
}

describe('WasmSimdBackend equals the reference backend', () => {
  for (const metric of METRICS) {
    for (const [stride, dim] of SHAPES) {
      it(`${metric} score, stride ${stride}, prefix ${dim}, 1-9 queries x 0-37 rows`, async () => {
        for (const m of [1, 2, 4, 5, 9]) {
          for (const n of [0, 1, 3, 37]) {
            const q = rowBlock(randomMatrix(m, stride, m * 7 + n), m, stride);
            const b = rowBlock(randomMatrix(n, stride, n * 3 + 1), n, stride);
            const want = new Float32Array(m * n);
            const got = new Float32Array(m * n);
            await reference.score(q, b, dim, metric, want);
            await simd.score(q, b, dim, metric, got);
            expectClose(got, want);
          }
        }
      });

      it(`${metric} scanTopK, stride ${stride}, prefix ${dim}: mapped ids and rows, several calls, k above the list size`, async () => {
        const q = rowBlock(randomMatrix(6, stride, 11), 6, stride);
        const data = randomMatrix(400, stride, 12);
        const rows = Int32Array.from([4, 0, 7, 2, 5, 1]);
        for (const k of [1, 10, 500]) {
          const want = new TopK(8, k);
          const got = new TopK(8, k);
          for (const [from, count] of [[0, 150], [150, 0], [150, 1], [151, 249]]) {
            const ids = Int32Array.from({ length: count }, (_, j) => 10_000 + from + j);
            const b = rowBlock(data, count, stride, from * stride);
            await reference.scanTopK(q, b, dim, metric, want, ids, rows);
            await simd.scanTopK(q, b, dim, metric, got, ids, rows);
          }
          expectSameTopK(got, want);
        }
      });
    }

    it(`${metric} assign: labels and scores, centroids in several cache blocks`, async () => {
      for (const [stride, dim] of SHAPES) {
        const v = rowBlock(randomMatrix(23, stride, 21), 23, stride);
        const c = rowBlock(randomMatrix(3000, stride, 22), 3000, stride);
        const want = { labels: new Int32Array(23), scores: new Float32Array(23) };
        const got = { labels: new Int32Array(23), scores: new Float32Array(23) };
        await reference.assign(v, c, dim, metric, want.labels, want.scores);
        await simd.assign(v, c, dim, metric, got.labels, got.scores);
        expectClose(got.scores, want.scores);
        for (let i = 0; i < 23; i++) {
          if (got.labels[i] !== want.labels[i]) {
            const out = new Float32Array(3000);
            await reference.score(rowBlock(v.data, 1, stride, i * stride), c, dim, metric, out);
            expect(Math.abs(out[got.labels[i]] - out[want.labels[i]])).toBeLessThanOrEqual(tolerance(want.scores[i]));
          }
        }
      }
    });
  }

  it('uses supplied inverse norms and row offsets for cosine', async () => {
    const data = randomMatrix(50, 10, 31);
    const inv = new Float32Array(40);
    const block = rowBlock(data, 40, 10, 100);
    await reference.score(rowBlock(new Float32Array(10).fill(1), 1, 10), block, 7, 'ip', inv); // any values: the kernels must use them as given
    const q = rowBlock(randomMatrix(3, 10, 32), 3, 10);
    const want = new Float32Array(120);
    const got = new Float32Array(120);
    await reference.score(q, rowBlock(data, 40, 10, 100, inv), 7, 'cosine', want);
    await simd.score(q, rowBlock(data, 40, 10, 100, inv), 7, 'cosine', got);
    expectClose(got, want);
  });

  it('rescoreTopK: shortlists by row number, empty and repeated-free candidate rows, k above the shortlist', async () => {
    for (const metric of METRICS) {
      for (const [stride, dim] of SHAPES) {
        const base = rowBlock(randomMatrix(200, stride, 61), 200, stride);
        const q = rowBlock(randomMatrix(3, stride, 62), 3, stride);
        const candidates = new TopK(3, 40);
        for (let i = 0; i < 40; i++) candidates.push(0, (i * 7) % 200, i);
        for (let i = 0; i < 5; i++) candidates.push(2, 199 - i, i); // row 1 has no candidates
        for (const k of [1, 10, 60]) {
          const want = new TopK(3, k);
          const got = new TopK(3, k);
          await reference.rescoreTopK(q, base, dim, metric, candidates, want);
          await simd.rescoreTopK(q, base, dim, metric, candidates, got);
          expectSameTopK(got, want);
          expect(got.sizes[1]).toBe(0);
        }
      }
    }
    const outside = new TopK(1, 1);
    outside.push(0, 500, 1);
    await expect(simd.rescoreTopK(rowBlock(randomMatrix(1, 4, 1), 1, 4), rowBlock(randomMatrix(3, 4, 2), 3, 4), 4, 'ip', outside, new TopK(1, 1))).rejects.toThrow(/outside the 3 base rows/);
  });

  it('centroidSums: labelled sums and counts, empty clusters, prefixes not a multiple of 4', () => expectCentroidSumsAgree(simd));

  it('8-bit ADC: m of 1, 3 and 16, bias, mapped rows, code counts around the 4-code unroll', async () => {
    for (const m of [1, 3, 16]) {
      for (const rows of [0, 1, 5, 1003]) {
        const tables = randomMatrix(3, m * 256, m + rows);
        const codes = Uint8Array.from(randomMatrix(rows, m, rows + 5), (x) => Math.floor((x + 0.5) * 256));
        const ids = Int32Array.from({ length: rows }, (_, j) => 3 * j + 1);
        const bias = Float32Array.from([0.25, -1, 0]);
        const queryRows = Int32Array.from([2, 0, 1]);
        for (const k of [1, 7, 2000]) {
          const want = new TopK(3, k);
          const got = new TopK(3, k);
          await reference.adcScanTopK(tables, 3, m, codes, rows, want, ids, queryRows, bias);
          await simd.adcScanTopK(tables, 3, m, codes, rows, got, ids, queryRows, bias);
          expectSameTopK(got, want);
        }
      }
    }
  });

  it('rejects short outputs, prefixes beyond the row and missing ids like the reference', async () => {
    const m = randomMatrix(2, 4, 7);
    await expect(simd.score(rowBlock(m, 2, 4), rowBlock(m, 2, 4), 5, 'ip', new Float32Array(4))).rejects.toThrow(/exceeds row length/);
    await expect(simd.score(rowBlock(m, 2, 4), rowBlock(m, 2, 4), 4, 'ip', new Float32Array(3))).rejects.toThrow(/output holds/);
    await expect(simd.scanTopK(rowBlock(m, 2, 4), rowBlock(m, 2, 4), 4, 'ip', new TopK(2, 1), new Int32Array(1))).rejects.toThrow(/base ids/);
    await expect(simd.adcScanTopK(new Float32Array(10), 1, 1, new Uint8Array(1), 1, new TopK(1, 1))).rejects.toThrow(/tables hold/);
  });
});

describe('WasmSimdBackend thread pool', () => {
  it('gives bit-identical results on 1 and 2 threads for every split', async () => {
    for (const metric of METRICS) {
      const stride = 45, dim = 37;
      const data = randomMatrix(700, stride, 41);
      const base = rowBlock(data, 700, stride);
      for (const queries of [1, 3, 8, 19]) {
        // 8 and 19 queries split by queries, 1 and 3 by base rows with per-thread heaps
        const q = rowBlock(randomMatrix(queries, stride, 42 + queries), queries, stride);
        const one = new Float32Array(queries * 700);
        const two = new Float32Array(queries * 700);
        await simd.score(q, base, dim, metric, one);
        await pooled.score(q, base, dim, metric, two);
        expect(Array.from(two)).toEqual(Array.from(one));
        expectIdentical((await scan(pooled, q, base, dim, metric, 25)).sort(), (await scan(simd, q, base, dim, metric, 25)).sort());
        const labels = [new Int32Array(queries), new Int32Array(queries)];
        const scores = [new Float32Array(queries), new Float32Array(queries)];
        await simd.assign(q, base, dim, metric, labels[0], scores[0]);
        await pooled.assign(q, base, dim, metric, labels[1], scores[1]);
        expect(Array.from(labels[1])).toEqual(Array.from(labels[0]));
        expect(Array.from(scores[1])).toEqual(Array.from(scores[0]));
      }
    }
    for (const queries of [1, 5]) {
      const tables = randomMatrix(queries, 8 * 256, 51);
      const codes = Uint8Array.from(randomMatrix(900, 8, 52), (x) => Math.floor((x + 0.5) * 256));
      const a = new TopK(queries, 30);
      const b = new TopK(queries, 30);
      await simd.adcScanTopK(tables, queries, 8, codes, 900, a);
      await pooled.adcScanTopK(tables, queries, 8, codes, 900, b);
      expectIdentical(b.sort(), a.sort());
    }
  });

  it('scores a query identically alone and in a batch', async () => {
    const stride = 30;
    const q = randomMatrix(9, stride, 61);
    const base = rowBlock(randomMatrix(50, stride, 62), 50, stride);
    const batch = new Float32Array(9 * 50);
    await simd.score(rowBlock(q, 9, stride), base, 29, 'l2', batch);
    for (let i = 0; i < 9; i++) {
      const alone = new Float32Array(50);
      await simd.score(rowBlock(q, 1, stride, i * stride), base, 29, 'l2', alone);
      expect(Array.from(alone)).toEqual(Array.from(batch.subarray(i * 50, (i + 1) * 50)));
    }
  });
});

describe('WasmSimdBackend arena', () => {
  it('reads arena arrays in place with the same results as staged copies', async () => {
    const stride = 20;
    const heap = randomMatrix(100, stride, 71);
    const inArena = simd.arena.float32(heap.length);
    inArena.set(heap);
    expect(simd.arena.locate(inArena)).toBeDefined();
    const q = rowBlock(randomMatrix(2, stride, 72), 2, stride);
    const a = await scan(simd, q, rowBlock(heap, 90, stride, 10 * stride), 19, 'cosine', 5);
    const b = await scan(simd, q, rowBlock(inArena, 90, stride, 10 * stride), 19, 'cosine', 5);
    expectIdentical(b.sort(), a.sort());
    simd.arena.release(inArena);
  });
});

describe('WasmMemory allocator', () => {
  it('reuses and coalesces released blocks, keeps views valid across growth, and zeroes new blocks', () => {
    const memory = new WasmMemory(1);
    const a = memory.allocate(1000)!;
    const b = memory.allocate(1000)!;
    memory.allocate(64); // keeps a and b below the top
    const view = new Uint8Array(memory.memory.buffer, a, 1000);
    view.fill(7);
    const big = memory.allocate(1 << 20)!; // grows the memory
    expect(memory.bytes).toBeGreaterThanOrEqual(big + (1 << 20));
    expect(view[999]).toBe(7); // earlier views survive growth of a shared memory
    memory.releaseAddress(b);
    memory.releaseAddress(a);
    const c = memory.allocate(1500)!; // fits only in the coalesced space of a and b
    expect(c).toBe(a);
    expect(new Uint8Array(memory.memory.buffer, c, 1500).every((x) => x === 0)).toBe(true);
    expect(() => memory.releaseAddress(c + 1)).toThrow(/not allocated/);
  });
});
