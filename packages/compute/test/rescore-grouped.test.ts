import { describe, expect, it } from 'vitest';
import { METRICS, ReferenceBackend, rowBlock, TopK, type Metric, type RowBlock, type RowGroups } from '../src/index.js';
import { cpuBackends } from './blocked-lists.js';
import { expectIdentical, expectSameTopK, sharedShortlists as shortlists } from './compare.js';
import { randomMatrix } from './naive.js';

// rescoreTopK of a batch with its rows grouped (an IVF index's lists) takes
// the candidates group by group (kernels/cpu/simd.ts, rescoreGrouped: a
// counting sort by group, then each query's run scored as the per-query path
// scores a shortlist; split by groups over the pool into private heaps that
// are merged). Batches must be bit-identical to the per-query path (same ids,
// scores and order after sorting) on one thread, split over two, and across
// memories; for 1, 7, 130 and 1000 queries, every metric, k below and above
// the shortlist, prefixes off the 4-value step, groups out of range (counted
// as group 0), empty groups and empty shortlists.

const reference = new ReferenceBackend();
const grouped = cpuBackends({ rescoreOrder: 'groups' });
const perQuery = cpuBackends({ rescoreOrder: 'queries' });
const auto = cpuBackends();

/** `count` groups over `rows` rows, a few rows outside [0, count) (-1, count, far above) and group 1 left empty. */
function rowGroups(rows: number, count: number, seed: number): RowGroups {
  const of = new Int32Array(rows);
  let s = seed >>> 0;
  for (let r = 0; r < rows; r++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const g = s % count;
    of[r] = r % 97 === 5 ? -1 : r % 89 === 7 ? count : r % 83 === 9 ? 1 << 30 : g === 1 ? 0 : g;
  }
  return { of, count };
}

async function rescore(backend: { rescoreTopK: (...a: never[]) => Promise<void> } & object, queries: RowBlock, base: RowBlock, dim: number, metric: Metric, candidates: TopK, k: number, groups?: RowGroups): Promise<TopK> {
  const out = new TopK(queries.rows, k);
  await (backend as unknown as { rescoreTopK(q: RowBlock, b: RowBlock, d: number, m: Metric, c: TopK, o: TopK, g?: RowGroups): Promise<void> }).rescoreTopK(queries, base, dim, metric, candidates, out, groups);
  return out;
}

describe('rescoreTopK of a batch group by group', () => {
  for (const metric of METRICS as readonly Metric[]) {
    it(`${metric}: bit-identical to the per-query path, and close to the reference`, async () => {
      for (const [stride, dim, rows, count] of [[13, 13, 300, 7], [40, 35, 3000, 37], [20, 3, 2100, 1]] as const) {
        const base = rowBlock(randomMatrix(rows, stride, rows + stride), rows, stride);
        const groups = rowGroups(rows, count, rows + count);
        for (const queryCount of [1, 7, 130, 1000]) {
          const queries = rowBlock(randomMatrix(queryCount, stride, queryCount + 1), queryCount, stride);
          const candidates = shortlists(queryCount, 30, rows, queryCount * 7 + dim);
          for (const k of queryCount === 1000 ? [10] : [1, 10, 40]) {
            const want = await rescore(perQuery.one, queries, base, dim, metric, candidates, k);
            // spread: memories of 1 MiB, too small for the staging of 1000 queries
            for (const backend of queryCount <= 130 ? [grouped.one, grouped.split, grouped.spread] : [grouped.one, grouped.split]) expectIdentical(await rescore(backend, queries, base, dim, metric, candidates, k, groups), want);
            // 'auto' takes group order for batches of four queries or more whose shortlists are many beside the rows (1000 here)
            expectIdentical(await rescore(auto.split, queries, base, dim, metric, candidates, k, groups), want);
            if (queryCount <= 130) expectSameTopK(want, await rescore(reference, queries, base, dim, metric, candidates, k));
          }
        }
      }
    });
  }

  it('scores cosine rows without norms as rows with theirs, and refuses groups that do not cover the base', async () => {
    const base = rowBlock(randomMatrix(500, 24, 9), 500, 24);
    const queries = rowBlock(randomMatrix(9, 24, 10), 9, 24);
    const candidates = shortlists(9, 40, 500, 11);
    const groups = rowGroups(500, 5, 12);
    const want = await rescore(perQuery.one, queries, base, 21, 'cosine', candidates, 10);
    for (const backend of [grouped.one, grouped.split]) expectIdentical(await rescore(backend, queries, base, 21, 'cosine', candidates, 10, groups), want);
    await expect(rescore(grouped.one, queries, base, 21, 'cosine', candidates, 10, { of: new Int32Array(499), count: 5 })).rejects.toThrow(/row groups need a group for each of the 500 base rows/);
    await expect(rescore(grouped.one, queries, base, 21, 'cosine', candidates, 10, { of: groups.of, count: 0 })).rejects.toThrow(/positive count \(got 500 rows, count 0\)/);
  });
});
