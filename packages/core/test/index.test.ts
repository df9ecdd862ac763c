import { describe, expect, it } from 'vitest';
import { ReferenceBackend, METRICS, type Metric } from '@adanns/compute';
import { generateSynthetic } from '@adanns/datasets';
import { AdannsIndex, recallAtK } from '../src/index.js';
import { naiveScore, naiveTopK, randomMatrix } from '../../compute/test/naive.js';

const backend = new ReferenceBackend();
const dim = 20;
const n = 600;
const base = randomMatrix(n, dim, 101);
const queries = randomMatrix(15, dim, 102);

function rows(result: { ids: Float64Array; k: number }, q: number): number[] {
  return Array.from(result.ids.subarray(q * result.k, (q + 1) * result.k));
}

describe('flat exact index', () => {
  for (const metric of METRICS) {
    it(`${metric}: equals brute force (ids and scores)`, async () => {
      const index = await AdannsIndex.build(backend, 'flat', base, n, dim, { metric });
      const r = await index.search(queries, 15, 10);
      for (let q = 0; q < 15; q++) {
        const want = naiveTopK(queries, q * dim, base, n, dim, dim, metric, 10);
        expect(rows(r, q)).toEqual(want);
        for (let i = 0; i < 10; i++) {
          const s = naiveScore(queries, q * dim, base, want[i] * dim, dim, metric);
          expect(Math.abs(r.scores[q * 10 + i] - s)).toBeLessThan(1e-5 * Math.max(1, Math.abs(s)));
        }
        expect(r.mflops[q]).toBeCloseTo((n * dim) / 1e6, 10);
      }
    });
  }

  it('searches a shorter prefix at query time (scanDim below the built dim)', async () => {
    const index = await AdannsIndex.build(backend, 'flat', base, n, dim, { metric: 'cosine' });
    const r = await index.search(queries, 15, 5, { scanDim: 7 });
    for (let q = 0; q < 15; q++) expect(rows(r, q)).toEqual(naiveTopK(queries, q * dim, base, n, dim, 7, 'cosine', 5));
    // 7 is off the dims ladder: the lists keep no cosine norms there, so the scan computes them (cost.ts)
    expect(r.mflops[0]).toBeCloseTo((n * 7 * 2) / 1e6, 10);
  });
});

describe('AdANNS-IVF', () => {
  for (const metric of METRICS) {
    it(`${metric}: nprobe = lists equals exact search at the scan dim`, async () => {
      const index = await AdannsIndex.build(backend, 'ivf12@6,flat@20', base, n, dim, { metric, seed: 4 });
      const r = await index.search(queries, 15, 10, { nprobe: 12 });
      for (let q = 0; q < 15; q++) expect(rows(r, q)).toEqual(naiveTopK(queries, q * dim, base, n, dim, dim, metric, 10));
      // cost model with real list sizes: every centroid at d_c, every vector at d_s
      expect(r.mflops[0]).toBeCloseTo((12 * 6 + n * 20) / 1e6, 10);
    });
  }

  it('scans at a prefix above the clustering prefix (d_s > d_c) and below it (d_s < d_c)', async () => {
    for (const spec of ['ivf8@4,flat@16', 'ivf8@16,flat@4']) {
      const index = await AdannsIndex.build(backend, spec, base, n, dim, { metric: 'l2' });
      const scanDim = index.spec.scan.dim;
      const r = await index.search(queries, 15, 3, { nprobe: 8 });
      for (let q = 0; q < 15; q++) expect(rows(r, q)).toEqual(naiveTopK(queries, q * dim, base, n, dim, scanDim, 'l2', 3));
    }
  });

  it('charges the real sizes of the probed lists, and less for a shorter coarse prefix', async () => {
    const index = await AdannsIndex.build(backend, 'ivf16@16,flat@8', base, n, dim, { metric: 'cosine' });
    const sizes = Array.from(index.listSizes());
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(n);
    const pairSums = new Set<number>();
    for (let a = 0; a < 16; a++) for (let b = a + 1; b < 16; b++) pairSums.add(sizes[a] + sizes[b]);
    for (const coarseDim of [16, 4]) {
      const r = await index.search(queries, 15, 5, { nprobe: 2, coarseDim });
      for (let q = 0; q < 15; q++) {
        const scanned = (r.mflops[q] * 1e6 - 16 * coarseDim) / 8;
        expect(Math.abs(scanned - Math.round(scanned))).toBeLessThan(1e-6);
        expect(pairSums.has(Math.round(scanned))).toBe(true);
      }
    }
  });

  it('re-rank at the full dimension restores exact order within the shortlist', async () => {
    const index = await AdannsIndex.build(backend, 'ivf10@4,flat@4,rerank@20', base, n, dim, { metric: 'ip' });
    const r = await index.search(queries, 15, 5, { nprobe: 10, shortlist: 40 });
    for (let q = 0; q < 15; q++) {
      const shortlist = naiveTopK(queries, q * dim, base, n, dim, 4, 'ip', 40);
      const exact = shortlist
        .map((j) => ({ j, s: naiveScore(queries, q * dim, base, j * dim, dim, 'ip') }))
        .sort((a, b) => b.s - a.s || a.j - b.j)
        .slice(0, 5)
        .map((e) => e.j);
      expect(rows(r, q)).toEqual(exact);
      expect(r.mflops[q]).toBeCloseTo((10 * 4 + n * 4 + 40 * 20) / 1e6, 10);
    }
  });

  it('with PCA, nprobe = lists and a full-dimension re-rank returns the exact neighbours', async () => {
    for (const metric of ['cosine', 'l2'] as Metric[]) {
      const index = await AdannsIndex.build(backend, 'pca,ivf8@4,flat@8,rerank@20', base, n, dim, { metric });
      const r = await index.search(queries, 15, 5, { nprobe: 8, shortlist: n });
      for (let q = 0; q < 15; q++) expect(rows(r, q)).toEqual(naiveTopK(queries, q * dim, base, n, dim, dim, metric, 5));
    }
  });

  it('re-ranks at a rotated prefix below D from its re-rank store', async () => {
    const index = await AdannsIndex.build(backend, 'pca,ivf8@4,flat@4,rerank@12', base, n, dim, { metric: 'l2' });
    const r = await index.search(queries, 15, 5, { nprobe: 8 });
    expect(r.params.rerankDim).toBe(12);
    // rotating 12 components: D x 12 for PCA is part of the cost
    expect(r.mflops[0]).toBeCloseTo((20 * 12 + 8 * 4 + n * 4 + 100 * 12) / 1e6, 10);
    await expect(index.search(queries, 15, 5, { rerankDim: 16 })).rejects.toThrow(/rerankDim must be at most 12, got 16/);
  });

  it('reaches high recall on Matryoshka-like data at a fraction of the exact cost', async () => {
    const { base: b, queries: qs } = generateSynthetic({ n: 5000, dim: 64, clusters: 50, queries: 100, seed: 9 });
    const index = await AdannsIndex.build(backend, 'ivf50@16,flat@32,rerank@64', b.data, b.rows, b.dim, { metric: 'cosine' });
    const truth = await index.exactSearch(qs.data, qs.rows, 10);
    const r = await index.search(qs.data, qs.rows, 10, { nprobe: 5, shortlist: 100 });
    const recall = recallAtK(r.ids, 10, truth.ids, 10, qs.rows, 10);
    const mflops = r.mflops.reduce((a, c) => a + c, 0) / qs.rows;
    expect(recall).toBeGreaterThanOrEqual(0.9);
    expect(mflops).toBeLessThan((5000 * 64) / 1e6 / 4);
  });
});

describe('index updates', () => {
  it('adds after training, removes, and never returns removed ids', async () => {
    const index = await AdannsIndex.build(backend, 'ivf8@8,flat@20', base.subarray(0, 400 * dim), 400, dim, { metric: 'l2' });
    await index.add(Float64Array.from({ length: 200 }, (_, i) => 400 + i), base.subarray(400 * dim), 200);
    expect(index.size).toBe(n);
    let r = await index.search(queries, 15, 10, { nprobe: 8 });
    for (let q = 0; q < 15; q++) expect(rows(r, q)).toEqual(naiveTopK(queries, q * dim, base, n, dim, dim, 'l2', 10));
    const removed = rows(r, 0).slice(0, 5);
    expect(index.remove([...removed, 99999])).toBe(5);
    r = await index.search(queries, 15, 10, { nprobe: 8 });
    for (let q = 0; q < 15; q++) for (const id of rows(r, q)) expect(removed).not.toContain(id);
    // re-adding one id puts it back
    await index.add([removed[0]], base.subarray(removed[0] * dim, (removed[0] + 1) * dim), 1);
    r = await index.search(queries.subarray(0, dim), 1, 1, { nprobe: 8 });
    expect(r.ids[0]).toBe(removed[0]);
  });

  it('rejects duplicate and invalid ids, leaving the index unchanged', async () => {
    const index = await AdannsIndex.build(backend, 'flat', base.subarray(0, 100 * dim), 100, dim, { metric: 'ip' });
    const v = base.subarray(0, 2 * dim);
    await expect(index.add([5, 1000], v, 2)).rejects.toThrow(/id 5 is already in the index/);
    await expect(index.add([1000, 1000], v, 2)).rejects.toThrow(/appears twice/);
    await expect(index.add([-1, 1001], v, 2)).rejects.toThrow(/non-negative safe integer/);
    await expect(index.add([1000], v, 2)).rejects.toThrow(/1 ids for 2 vectors/);
    expect(index.size).toBe(100);
  });
});

describe('bad input', () => {
  it('names the problem', async () => {
    const nan = base.slice(0, 10 * dim);
    nan[3 * dim + 2] = NaN;
    await expect(AdannsIndex.build(backend, 'flat', nan, 10, dim, { metric: 'l2' })).rejects.toThrow(/row 3 has a non-finite value \(NaN\) at position 2/);
    const inf = base.slice(0, 10 * dim);
    inf[0] = Infinity;
    await expect(AdannsIndex.build(backend, 'flat', inf, 10, dim, { metric: 'l2' })).rejects.toThrow(/non-finite value \(Infinity\)/);
    await expect(AdannsIndex.build(backend, 'flat@20', new Float32Array(0), 0, dim, { metric: 'l2' })).rejects.toThrow(/empty data set/);
    await expect(AdannsIndex.build(backend, 'ivf8@30,flat@20', base, n, dim, { metric: 'l2' })).rejects.toThrow(/exceeds the vector dimension 20/);
    await expect(AdannsIndex.build(backend, 'flat', base, n, 19, { metric: 'l2' })).rejects.toThrow(/wrong dimension/);

    const index = await AdannsIndex.build(backend, 'ivf8@8,flat@16', base, n, dim, { metric: 'cosine' });
    await expect(index.search(queries.subarray(0, 19), 1, 5)).rejects.toThrow(/wrong dimension/);
    await expect(index.search(queries, 15, 0)).rejects.toThrow(/k must be a positive integer, got 0/);
    await expect(index.search(queries, 15, n + 1)).rejects.toThrow(/exceeds the 600 vectors/);
    await expect(index.search(queries, 15, 5, { nprobe: 9 })).rejects.toThrow(/nprobe must be at most 8/);
    await expect(index.search(queries, 15, 5, { coarseDim: 9 })).rejects.toThrow(/coarseDim must be at most 8/);
    await expect(index.search(queries, 15, 5, { scanDim: 17 })).rejects.toThrow(/scanDim must be at most 16/);
    const flat = await AdannsIndex.build(backend, 'flat', base, n, dim, { metric: 'cosine' });
    await expect(flat.search(queries, 15, 5, { nprobe: 2 })).rejects.toThrow(/no IVF stage/);
  });
});
