import { afterEach, describe, expect, it, vi } from 'vitest';
import { WasmSimdBackend, type Backend, type Metric, type RowBlock } from '@adanns/compute';
import { generateSynthetic, memoryStream } from '@adanns/datasets';
import { AdannsIndex, autoLists, buildFromStream, chooseAutoSpec, exactNeighbours, heldOutRows, normalizePrefixInPlace, parseSpec, PcaTransform, recallAtK, reusedFromTrial } from '../src/index.js';
import { fitPca, trainStages } from '../src/index/training.js';

// A build of spec "auto" starts its IVF k-means from the trial's centroids at
// the chosen d_c, mapped into its own PCA (planner/auto.ts,
// AutoChoice.trained; index/training.ts, reusedFromTrial). The trial trains
// at the real list count from about 24,000 vectors (autoTrialRows), so these
// sets are that large.

const dim = 32;
const n = 30_000;
const { base, queries } = generateSynthetic({ n, dim, decay: 1.2, clusters: 100, queries: 200, seed: 21 });

/** The backend, recording the centroids of every assignment (the trial's and the build's k-means iterations, adds). */
function recording(backend: Backend): { backend: Backend; calls: { dim: number; rows: number; centroids: Float32Array }[] } {
  const calls: { dim: number; rows: number; centroids: Float32Array }[] = [];
  const assign = (vectors: RowBlock, centroids: RowBlock, d: number, metric: Metric, labels: Int32Array, scores: Float32Array): Promise<void> => {
    const at = centroids.offset ?? 0;
    calls.push({ dim: d, rows: vectors.rows, centroids: centroids.data.slice(at, at + centroids.rows * centroids.stride) });
    return backend.assign(vectors, centroids, d, metric, labels, scores);
  };
  const proxy = new Proxy(backend, {
    get: (target, key) => {
      if (key === 'assign') return assign;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { backend: proxy, calls };
}

describe('auto reuses its trial in the build', () => {
  afterEach(() => vi.restoreAllMocks());

  it('the trial hands over its centroids at the chosen d_c and list count, with the PCA they live in', async () => {
    const backend = await WasmSimdBackend.create({ threads: 1 });
    const choice = await chooseAutoSpec(backend, base.data, n, dim, { metric: 'cosine', seed: 3 });
    const spec = parseSpec(choice.spec, dim);
    expect(spec.transform).toBe('pca');
    expect(spec.coarse!.lists).toBe(autoLists(n));
    const { pca, coarse } = choice.trained!;
    expect(pca.varianceShare([8])).toEqual(choice.spectrum.filter((s) => s.dim === 8));
    expect(coarse).toMatchObject({ lists: spec.coarse!.lists, dim: spec.coarse!.dim });
    expect(coarse!.centroids.length).toBe(spec.coarse!.lists * spec.coarse!.dim);
    // spherical k-means leaves unit centroids
    expect(Math.hypot(...coarse!.centroids.subarray(0, coarse!.dim))).toBeCloseTo(1, 5);
    // reused only by a build of that spec with a PCA stage
    expect(reusedFromTrial(spec, choice.trained, { metric: 'cosine' })).toEqual({ kmeansStart: { centroids: coarse!.centroids, iterations: coarse!.iterations, pca } });
    expect(reusedFromTrial({ ...spec, coarse: { ...spec.coarse!, dim: spec.coarse!.dim / 2 } }, choice.trained, { metric: 'cosine' })).toEqual({});
    expect(reusedFromTrial({ ...spec, transform: undefined }, choice.trained, { metric: 'cosine' })).toEqual({});
  }, 120_000);

  it('the build\'s k-means starts from the trial\'s centroids mapped into its own PCA; recall as a cold build\'s', async () => {
    const { backend, calls } = recording(await WasmSimdBackend.create({ threads: 1 }));
    const choice = await chooseAutoSpec(backend, base.data, n, dim, { metric: 'cosine', seed: 3 });
    const spec = parseSpec(choice.spec, dim);
    const { lists, dim: dc } = spec.coarse!;
    calls.length = 0;
    const reused = await AdannsIndex.build(backend, 'auto', base.data, n, dim, { metric: 'cosine', seed: 3 });
    expect(reused.spec).toEqual(spec);
    // the build's k-means draws every row (lists x 256 > n): its first iteration assigns them to the trial's centroids
    // in the build's PCA (the one fitPca fits), re-normalised
    const own = fitPca(base.data, n, dim, { metric: 'cosine', seed: 3 });
    expect(reused.varianceShare([4, 8, 16])).toEqual(own.varianceShare([4, 8, 16]));
    const start = own.mapPrefix(choice.trained!.pca, choice.trained!.coarse!.centroids, lists, dc);
    normalizePrefixInPlace(start, lists, dc, dc);
    const first = calls.find((c) => c.dim === dc && c.rows === n && c.centroids.length === lists * dc)!;
    for (let i = 0; i < start.length; i++) expect(first.centroids[i]).toBeCloseTo(start[i], 4);
    // the same spec built cold (own PCA, k-means from random seeds) finds as many neighbours at a few probes
    const cold = await AdannsIndex.build(backend, choice.spec, base.data, n, dim, { metric: 'cosine', seed: 3 });
    const truth = await exactNeighbours(backend, base.data, n, queries.data, queries.rows, dim, 'cosine', 10);
    const recall = async (index: AdannsIndex) => {
      const r = await index.search(queries.data, queries.rows, 10, { coarseDim: dc, nprobe: 8, scanDim: spec.scan.dim, shortlist: 40, rerankDim: spec.rerank?.dim });
      return recallAtK(r.ids, 10, truth.ids, 10, queries.rows, 10);
    };
    const [withReuse, without] = [await recall(reused), await recall(cold)];
    expect(without).toBeGreaterThan(0.5);
    expect(withReuse).toBeGreaterThanOrEqual(without - 0.02);
  }, 240_000);

  it('the trial samples none of the calibration rows (they are left out of everything the build fits)', async () => {
    const backend = await WasmSimdBackend.create({ threads: 1 });
    // rows the trial must not read: far out along one axis, they would take the whole first PCA component
    const data = base.data.slice();
    const excluded = heldOutRows(n, 7, 300, 1);
    for (const r of excluded) data[r * dim + dim - 1] = 1e4;
    const plain = await chooseAutoSpec(backend, base.data, n, dim, { metric: 'l2', seed: 3 });
    const kept = await chooseAutoSpec(backend, data, n, dim, { metric: 'l2', seed: 3, excluded });
    const leaked = await chooseAutoSpec(backend, data, n, dim, { metric: 'l2', seed: 3 });
    const first = (c: typeof plain) => c.trained!.pca.varianceShare([1])[0].share;
    expect(first(leaked)).toBeGreaterThan(0.99);
    expect(Math.abs(first(kept) - first(plain))).toBeLessThan(0.05);
    // a build's held-out rows are among the superset its trial leaves out (drawn before the spec is known)
    const held = new Set(heldOutRows(n, 7, 300, 1));
    expect(heldOutRows(n, 7, 300, autoLists(n)).every((r) => held.has(r))).toBe(true);
  }, 120_000);

  it('a k-means start counts its iterations towards the warm-up half (trainStages)', async () => {
    const { backend, calls } = recording(await WasmSimdBackend.create({ threads: 1 }));
    const small = generateSynthetic({ n: 4000, dim: 8, clusters: 20, queries: 1, seed: 5 }).base;
    const spec = parseSpec('ivf16@8,flat@8', 8);
    const start = small.data.slice(0, 16 * 8);
    // 4,000 rows, 16 lists: 10 of the 18 iterations on a half of 2,000 rows, then 8 on all
    for (const [iterations, firstRows, halfIterations] of [[6, 2000, 4], [10, 4000, 0]]) {
      calls.length = 0;
      await trainStages(backend, spec, small.data, 4000, 8, { metric: 'l2', kmeansStart: { centroids: start, iterations } });
      expect(calls[0].rows).toBe(firstRows);
      expect(Array.from(calls[0].centroids)).toEqual(Array.from(start));
      expect(calls.filter((c) => c.rows === 2000).length).toBeLessThanOrEqual(halfIterations);
    }
  }, 60_000);

  it('a streaming build starts its k-means from its trial\'s centroids too', async () => {
    const backend = await WasmSimdBackend.create({ threads: 1 });
    const mapped = vi.spyOn(PcaTransform.prototype, 'mapPrefix');
    const streamed = await buildFromStream(backend, 'auto', memoryStream({ name: 'decaying', data: base.data, rows: n, dim }), { metric: 'cosine', seed: 3, chunkRows: 8192 });
    expect(streamed.size).toBe(n);
    const { lists, dim: dc } = streamed.spec.coarse!;
    expect(mapped).toHaveBeenCalledTimes(1);
    const [from, centroids, rows, d] = mapped.mock.calls[0];
    expect([rows, d, centroids.length]).toEqual([lists, dc, lists * dc]);
    expect(from).not.toBe(mapped.mock.contexts[0]);
  }, 120_000);
});
