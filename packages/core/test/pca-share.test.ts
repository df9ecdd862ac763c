import { describe, expect, it } from 'vitest';
import { PcaTransform } from '../src/index.js';

// PcaTransform.varianceShare: the spectrum `auto` reads and the console plots (GET /v1/collections/{name}, `spectrum`).

describe('PcaTransform.varianceShare', () => {
  const identity = (dim: number) => Float32Array.from({ length: dim * dim }, (_, i) => (i % (dim + 1) === 0 ? 1 : 0));

  it('is the cumulative share of the variances at each prefix', () => {
    const pca = new PcaTransform(4, identity(4), Float64Array.from([4, 2, 1, 1]), undefined);
    expect(pca.varianceShare([1, 2, 3, 4])).toEqual([
      { dim: 1, share: 0.5 },
      { dim: 2, share: 0.75 },
      { dim: 3, share: 0.875 },
      { dim: 4, share: 1 },
    ]);
  });

  it('counts dimensions evenly when there is no variance, and refuses a prefix outside [1, dim]', () => {
    const pca = new PcaTransform(4, identity(4), new Float64Array(4), undefined);
    expect(pca.varianceShare([1, 3])).toEqual([
      { dim: 1, share: 0.25 },
      { dim: 3, share: 0.75 },
    ]);
    expect(() => pca.varianceShare([0])).toThrow('PCA prefix must be in [1, 4], got 0');
    expect(() => pca.varianceShare([5])).toThrow('got 5');
  });

  it('follows a fitted spectrum: rising, 1 at the full dimension', () => {
    const dim = 6;
    let seed = 3;
    const next = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
    const data = Float32Array.from({ length: 500 * dim }, (_, i) => next() / (1 + (i % dim)));
    const shares = PcaTransform.fit(data, 500, dim, 'l2').varianceShare([1, 2, 3, 4, 5, 6]).map((s) => s.share);
    for (let i = 1; i < dim; i++) expect(shares[i]).toBeGreaterThanOrEqual(shares[i - 1]);
    expect(shares[dim - 1]).toBeCloseTo(1, 12);
    // components come largest first: the first holds more than an even share
    expect(shares[0]).toBeGreaterThan(1 / dim);
  });
});
