import { describe, expect, it } from 'vitest';
import { ReferenceBackend } from '@adanns/compute';
import { AdannsIndex, kmeans, normalizePrefixInPlace, parseSpec } from '../src/index.js';
import { randomMatrix } from '../../compute/test/naive.js';

const backend = new ReferenceBackend();

/** Points around `centres` well-separated centres. */
function blobs(rows: number, dim: number, centres: number, seed: number): Float32Array {
  const c = randomMatrix(centres, dim, seed);
  const noise = randomMatrix(rows, dim, seed + 1);
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) for (let i = 0; i < dim; i++) out[r * dim + i] = 10 * c[(r % centres) * dim + i] + noise[r * dim + i];
  return out;
}

describe('kmeans', () => {
  const data = blobs(3000, 12, 20, 31);

  it('is deterministic for a seed and differs across seeds', async () => {
    const a = await kmeans(backend, data, 3000, 12, 16, { seed: 5 });
    const b = await kmeans(backend, data, 3000, 12, 16, { seed: 5 });
    const c = await kmeans(backend, data, 3000, 12, 16, { seed: 6 });
    expect(Array.from(a.centroids)).toEqual(Array.from(b.centroids));
    expect(a.objective).toEqual(b.objective);
    expect(Array.from(a.centroids)).not.toEqual(Array.from(c.centroids));
  });

  for (const init of ['kmeans++', 'random'] as const) {
    it(`${init}: the objective never increases and falls well below the first assignment`, async () => {
      const r = await kmeans(backend, data, 3000, 12, 20, { seed: 3, init });
      for (let i = 1; i < r.objective.length; i++) expect(r.objective[i]).toBeLessThanOrEqual(r.objective[i - 1] * (1 + 1e-6));
      expect(r.objective.at(-1)!).toBeLessThan(r.objective[0]);
    });
  }

  it('spherical k-means keeps unit centroids and does not increase the objective', async () => {
    const unit = data.slice();
    normalizePrefixInPlace(unit, 3000, 12, 12);
    const r = await kmeans(backend, unit, 3000, 12, 10, { seed: 2, spherical: true });
    for (let c = 0; c < 10; c++) {
      let s = 0;
      for (let i = 0; i < 12; i++) s += r.centroids[c * 12 + i] ** 2;
      expect(s).toBeCloseTo(1, 4);
    }
    for (let i = 1; i < r.objective.length; i++) expect(r.objective[i]).toBeLessThanOrEqual(r.objective[i - 1] + 1e-3);
  });

  it('samples at most maxPointsPerCentroid x k points', async () => {
    const r = await kmeans(backend, data, 3000, 12, 4, { maxPointsPerCentroid: 100 });
    expect(r.trainedOn).toBe(400);
  });

  it('repairs empty clusters: every centroid is finite and in use on duplicated data', async () => {
    // 3 distinct points repeated: random init picks duplicates, so clusters go empty and must be split
    const base = randomMatrix(3, 4, 40);
    const dup = new Float32Array(600 * 4);
    for (let r = 0; r < 600; r++) dup.set(base.subarray((r % 3) * 4, (r % 3) * 4 + 4), r * 4);
    const r = await kmeans(backend, dup, 600, 4, 6, { seed: 1, init: 'random' });
    expect(r.centroids.every(Number.isFinite)).toBe(true);
    // all three points matched: a missed one would cost about 200 x 0.25 = 50
    expect(r.objective.at(-1)!).toBeLessThan(1e-2);
  });

  it('rejects more centroids than points', async () => {
    await expect(kmeans(backend, data, 10, 12, 11)).rejects.toThrow(/need at least 11 training points/);
  });
});

describe('IVF k-means (index/training.ts coarseKmeans)', () => {
  const data = blobs(3000, 12, 20, 41);
  const train = async (options: { seed?: number; kmeansIterations?: number } = {}) => {
    const progress: [number, number][] = [];
    const index = await AdannsIndex.train(backend, parseSpec('ivf8@12,flat@12', 12), data, 3000, 12, {
      metric: 'l2',
      ...options,
      onProgress: (stage, done, total) => {
        if (stage === 'kmeans') progress.push([done, total]);
      },
    });
    const centroids = index.arrays().find((a) => a.kind === 'centroids')!.array as Float32Array;
    return { centroids: Array.from(centroids), progress };
  };

  it('is deterministic for a seed, and its progress rises to the iterations asked across the warm-up and the whole sample', async () => {
    const a = await train({ seed: 4 });
    const b = await train({ seed: 4 });
    const c = await train({ seed: 5 });
    expect(a.centroids).toEqual(b.centroids);
    expect(a.centroids).not.toEqual(c.centroids);
    for (const { progress } of [a, await train({ seed: 4, kmeansIterations: 2 }), await train({ seed: 4, kmeansIterations: 1 })]) {
      const total = progress[0][1];
      expect(progress.every(([, t]) => t === total)).toBe(true);
      // strictly rising (a phase may stop early once no assignment changes), never past the total
      for (let i = 1; i < progress.length; i++) expect(progress[i][0]).toBeGreaterThan(progress[i - 1][0]);
      expect(progress.at(-1)![0]).toBeLessThanOrEqual(total);
    }
    expect(a.progress[0][1]).toBe(18);
  });

  it('names an iteration count that is not a positive integer', async () => {
    await expect(train({ kmeansIterations: 0 })).rejects.toThrow(/kmeansIterations must be a positive integer, got 0/);
    await expect(train({ kmeansIterations: 2.5 })).rejects.toThrow(/got 2.5/);
  });
});
