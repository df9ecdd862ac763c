import { describe, expect, it } from 'vitest';
import { computeInvNorms, METRICS, ReferenceBackend, rowBlock, TopK, WasmSimdBackend, type Metric, type RowBlock } from '../src/index.js';
import { cpuBackends } from './blocked-lists.js';
import { expectIdentical, expectSameTopK, sharedShortlists as shortlists } from './compare.js';
import { randomMatrix } from './naive.js';

// rescoreTopK of a batch on the CPU backend takes the candidates of all its
// queries in row order (kernels/cpu/simd.ts, rescoreByRows: a radix sort by
// row, then four (query, row) pairs at a time, split by queries over the
// pool). Every score must be the one the per-query path computes, and each
// query must keep the same best k: batches are bit-identical to their
// queries re-ranked one at a time, on one thread and split over two, for
// shortlists that share rows, empty ones, k above the shortlist, prefixes
// off the 4-value step, rows past one and two radix digits, batches sorted
// in slices, and cosine rows that come without their norms. The backends
// take every batch in row order (rescoreOrder 'rows': by default one thread
// does so only for shortlists that share rows).

const reference = new ReferenceBackend();
const cpu = cpuBackends({ rescoreOrder: 'rows' });

/** Each query's row of `candidates` re-ranked alone (the per-query path). */
async function oneByOne(backend: WasmSimdBackend, queries: RowBlock, base: RowBlock, dim: number, metric: Metric, candidates: TopK, k: number): Promise<TopK> {
  const out = new TopK(queries.rows, k);
  for (let q = 0; q < queries.rows; q++) {
    const mine = new TopK(1, candidates.k);
    for (let i = 0; i < candidates.sizes[q]; i++) mine.push(0, candidates.ids[q * candidates.k + i], candidates.scores[q * candidates.k + i]);
    const best = new TopK(1, k);
    const query = rowBlock(queries.data.subarray(q * queries.stride, (q + 1) * queries.stride), 1, queries.stride, 0, queries.invNorms?.subarray(q, q + 1));
    await backend.rescoreTopK(query, base, dim, metric, mine, best);
    for (let i = 0; i < best.sizes[0]; i++) out.push(q, best.ids[i], best.scores[i]);
  }
  return out;
}

describe('rescoreTopK of a batch in row order', () => {
  for (const metric of METRICS as readonly Metric[]) {
    it(`${metric}: bit-identical to each query alone, and close to the reference`, async () => {
      // (stride, prefix, base rows): prefixes below 4 and off the 4-value step; bases past one radix digit (2048 rows)
      for (const [stride, dim, rows] of [[13, 13, 300], [40, 35, 5000], [20, 3, 2100]] as const) {
        const base = rowBlock(randomMatrix(rows, stride, rows + stride), rows, stride);
        for (const queryCount of [4, 7, 130]) {
          const queries = rowBlock(randomMatrix(queryCount, stride, queryCount + 1), queryCount, stride);
          const candidates = shortlists(queryCount, 30, rows, queryCount * 7 + dim);
          for (const k of [1, 10, 40]) {
            const want = await oneByOne(cpu.one, queries, base, dim, metric, candidates, k);
            for (const backend of [cpu.one, cpu.split]) {
              const got = new TopK(queryCount, k);
              await backend.rescoreTopK(queries, base, dim, metric, candidates, got);
              expectIdentical(got, want);
              if (queryCount % 5 === 2) expect(got.sizes[2]).toBe(0);
            }
            const ref = new TopK(queryCount, k);
            await reference.rescoreTopK(queries, base, dim, metric, candidates, ref);
            expectSameTopK(want, ref);
          }
        }
      }
    });
  }

  it('takes a batch of more than 2^20 shortlist slots in slices of queries', async () => {
    // 300 queries x 4,000 slots: slices of 262 queries (2^20 slots / 4,000), so two sorts
    const base = rowBlock(randomMatrix(5000, 4, 21), 5000, 4);
    const queries = rowBlock(randomMatrix(300, 4, 22), 300, 4);
    const candidates = shortlists(300, 4000, 5000, 23);
    const want = await oneByOne(cpu.one, queries, base, 4, 'ip', candidates, 10);
    for (const backend of [cpu.one, cpu.split]) {
      const got = new TopK(300, 10);
      await backend.rescoreTopK(queries, base, 4, 'ip', candidates, got);
      expectIdentical(got, want);
    }
  });

  it('sorts rows past two radix digits, and scores cosine rows without norms as rows with theirs', async () => {
    // 2^22 + 9 rows of one value: rows 4194304 and up need a third digit
    const rows = (1 << 22) + 9;
    const base = rowBlock(randomMatrix(rows, 1, 3), rows, 1);
    const queries = rowBlock(randomMatrix(6, 1, 4), 6, 1);
    const candidates = new TopK(6, 12);
    for (let q = 0; q < 6; q++) for (let i = 0; i < 12; i++) candidates.push(q, (i * 524_287 + q * 7) % rows, i);
    const got = new TopK(6, 5);
    await cpu.one.rescoreTopK(queries, base, 1, 'l2', candidates, got);
    expectIdentical(got, await oneByOne(cpu.one, queries, base, 1, 'l2', candidates, 5));

    const data = randomMatrix(500, 24, 9);
    const bare = rowBlock(data, 500, 24);
    const q = rowBlock(randomMatrix(9, 24, 10), 9, 24);
    const shortlist = shortlists(9, 40, 500, 11);
    for (const backend of [cpu.one, cpu.split]) {
      const without = new TopK(9, 10);
      const withNorms = new TopK(9, 10);
      await backend.rescoreTopK(q, bare, 21, 'cosine', shortlist, without);
      await backend.rescoreTopK(q, { ...bare, invNorms: computeInvNorms(bare, 21) }, 21, 'cosine', shortlist, withNorms);
      expectIdentical(without, withNorms);
    }
  });

  it('gives the same batch in every rescoreOrder, and refuses an unknown one', async () => {
    await expect(WasmSimdBackend.create({ rescoreOrder: 'rowwise' as 'rows' })).rejects.toThrow(/rescoreOrder must be one of auto, rows, groups, queries, got "rowwise"/);
    const base = rowBlock(randomMatrix(400, 20, 31), 400, 20);
    const queries = rowBlock(randomMatrix(24, 20, 32), 24, 20);
    const others = await Promise.all((['auto', 'queries'] as const).map((rescoreOrder) => WasmSimdBackend.create({ threads: 1, rescoreOrder })));
    try {
      // 24 x 10 slots on 400 rows take the per-query path under 'auto'; 24 x 40 (2.4 a row), row order
      for (const length of [10, 40]) {
        const candidates = shortlists(24, length, 400, length);
        const want = new TopK(24, 8);
        await cpu.one.rescoreTopK(queries, base, 17, 'cosine', candidates, want);
        for (const backend of others) {
          const got = new TopK(24, 8);
          await backend.rescoreTopK(queries, base, 17, 'cosine', candidates, got);
          expectIdentical(got, want);
        }
      }
    } finally {
      await Promise.all(others.map((b) => b.dispose()));
    }
  });
});
