import { join } from 'node:path';
import { expect } from 'vitest';
import { ReferenceBackend, type Backend, type Metric } from '@adanns/compute';
import { AdannsIndex, loadIndex, saveIndex, type SearchParams, type SearchResult, type VectorReader } from '../src/index.js';
import { randomMatrix } from '../../compute/test/naive.js';

/** Two backends' answers to the same search: equal costs, scores within `relative`, ids equal but for rare float ties. */
export function expectSameResults(actual: SearchResult, expected: SearchResult, relative = 1e-4): void {
  expect(Array.from(actual.counts)).toEqual(Array.from(expected.counts));
  expect(Array.from(actual.mflops)).toEqual(Array.from(expected.mflops));
  let differentIds = 0;
  for (let i = 0; i < expected.ids.length; i++) {
    const want = expected.scores[i];
    if (Number.isNaN(want)) continue;
    expect(Math.abs(actual.scores[i] - want)).toBeLessThanOrEqual(relative * Math.max(1, Math.abs(want)));
    if (actual.ids[i] !== expected.ids[i]) differentIds++;
  }
  // shortlists cut at float32 ties may differ in a rare id, never wholesale
  expect(differentIds).toBeLessThanOrEqual(expected.ids.length / 100);
}

/** IVF-flat (with PCA and prefix re-rank), IVF-OPQ, IVF-PQ, exact, IVF-sq8 and IVF-f16 indexes, with search params that exercise each stage. */
export const AGREEMENT_CASES: [string, Metric, Partial<SearchParams>][] = [
  ['ivf16@24,flat@24', 'l2', { nprobe: 4 }],
  ['pca,ivf16@8,flat@16,rerank@24', 'cosine', { nprobe: 5, coarseDim: 8, scanDim: 8, shortlist: 40 }],
  ['ivf8@16,opq8@16,rerank@24', 'ip', { nprobe: 3, shortlist: 30 }],
  ['pca,ivf8@8,pq4@16', 'l2', { nprobe: 8 }],
  ['flat', 'cosine', {}],
  // encoded lists: sq8 at a scan prefix below d_s with a disk re-rank, f16 over every list
  ['pca,ivf8@8,sq8@16,rerank@24', 'cosine', { nprobe: 4, scanDim: 8, shortlist: 30 }],
  ['ivf8@8,f16@24', 'l2', { nprobe: 8 }],
  // funnels: from float32 lists under PCA; from a float16 store in the index space; from sq8 lists answering without a re-rank
  ['pca,ivf16@8,flat@12,rerank@24', 'cosine', { nprobe: 5, scanDim: 8, shortlist: 60, funnel: [{ dim: 12, keep: 25 }] }],
  ['pca,ivf8@8,sq8@16,rerank@20:f16', 'ip', { nprobe: 4, scanDim: 8, shortlist: 40, funnel: [{ dim: 12, keep: 20 }, { dim: 16, keep: 12 }] }],
  ['ivf8@8,sq8@24', 'l2', { nprobe: 8, scanDim: 8, shortlist: 40, funnel: [{ dim: 16, keep: 10 }] }],
];

const dim = 24;
const base = randomMatrix(1500, dim, 81);
const queries = randomMatrix(30, dim, 82);

/**
 * One index, two backends: built on the reference backend, saved, and loaded
 * on both, so differences can only come from the kernels. Searched as built,
 * then after adds (arena arrays grow) and removes (list members move).
 */
export async function expectBackendsAgree(other: Backend, dir: string, spec: string, metric: Metric, params: Partial<SearchParams>): Promise<void> {
  const reference = new ReferenceBackend();
  const built = await AdannsIndex.build(reference, spec, base.subarray(0, 1200 * dim), 1200, dim, { metric, seed: 3 });
  const out = join(dir, `${other.name}-${spec.replace(/[^a-z0-9]/g, '_')}`);
  saveIndex(built, out);
  const a = loadIndex(reference, out);
  const b = loadIndex(other, out);
  expectSameResults(await b.search(queries, 30, 10, params), await a.search(queries, 30, 10, params));
  const ids = Array.from({ length: 300 }, (_, i) => 1200 + i);
  for (const index of [a, b]) {
    await index.add(ids, base.subarray(1200 * dim), 300);
    index.remove([0, 5, 1250, 77]);
  }
  expectSameResults(await b.search(queries, 30, 10, params), await a.search(queries, 30, 10, params));
  // an index that keeps no full vectors (PQ without re-rank) is given them: ids are rows of `base`
  const vectorsOf = (index: AdannsIndex): VectorReader | undefined =>
    index.fullVectors()
      ? undefined
      : (slots, out) => {
          for (let i = 0; i < slots.length; i++) {
            const row = index.parts().slots.idOf(slots[i]);
            out.set(base.subarray(row * dim, (row + 1) * dim), i * dim);
          }
        };
  const exactA = await a.exactSearch(queries, 30, 5, vectorsOf(a));
  const exactB = await b.exactSearch(queries, 30, 5, vectorsOf(b));
  expect(Array.from(exactB.ids)).toEqual(Array.from(exactA.ids));
  b.release();
}
