import { describe, expect, it } from 'vitest';
import { ReferenceBackend } from '@adanns/compute';
import { PcaTransform } from '../src/index.js';
import { naiveScore, randomMatrix } from '../../compute/test/naive.js';

/** Correlated data: random vectors times a fixed mixing matrix, plus an offset. */
function correlated(rows: number, dim: number, offset = 0): Float32Array {
  const z = randomMatrix(rows, dim, 21);
  const mix = randomMatrix(dim, dim, 22);
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < dim; j++) {
      let s = offset;
      for (let i = 0; i < dim; i++) s += z[r * dim + i] * mix[i * dim + j] * (i + 1);
      out[r * dim + j] = s;
    }
  }
  return out;
}

describe('PcaTransform', () => {
  const dim = 24;
  const data = correlated(2000, dim, 0.3);

  for (const metric of ['cosine', 'ip', 'l2'] as const) {
    it(`${metric}: components are orthonormal and ordered by variance`, () => {
      const pca = PcaTransform.fit(data, 2000, dim, metric);
      for (let a = 0; a < dim; a++) {
        for (let b = 0; b < dim; b++) {
          let dot = 0;
          for (let i = 0; i < dim; i++) dot += pca.components[a * dim + i] * pca.components[b * dim + i];
          expect(Math.abs(dot - (a === b ? 1 : 0))).toBeLessThan(1e-4);
        }
      }
      for (let p = 1; p < dim; p++) expect(pca.variances[p]).toBeLessThanOrEqual(pca.variances[p - 1]);
      expect(pca.variances[0]).toBeGreaterThan(10 * pca.variances[dim - 1]);
      expect(pca.mean !== undefined).toBe(metric === 'l2');
    });
  }

  it('puts the most variance in the first rotated coordinates', async () => {
    const pca = PcaTransform.fit(data, 2000, dim, 'l2');
    const rotated = await pca.apply(new ReferenceBackend(), data, 2000, dim);
    const variance = (c: number) => {
      let s = 0;
      for (let r = 0; r < 2000; r++) s += rotated[r * dim + c] ** 2;
      return s / 2000;
    };
    expect(variance(0)).toBeGreaterThan(variance(dim / 2));
    expect(variance(dim / 2)).toBeGreaterThan(variance(dim - 1));
    // centred and rotated: the first component's variance matches its eigenvalue
    expect(Math.abs(variance(0) - pca.variances[0]) / pca.variances[0]).toBeLessThan(0.02);
  });

  it('preserves inner products (ip, cosine) and distances (l2) at the full dimension, and computes only the prefix asked for', async () => {
    const backend = new ReferenceBackend();
    for (const metric of ['cosine', 'ip', 'l2'] as const) {
      const pca = PcaTransform.fit(data, 2000, dim, metric);
      const full = await pca.apply(backend, data.subarray(0, 10 * dim), 10, dim);
      const prefix = await pca.apply(backend, data.subarray(0, 10 * dim), 10, 5);
      for (let r = 0; r < 10; r++) for (let i = 0; i < 5; i++) expect(prefix[r * 5 + i]).toBeCloseTo(full[r * dim + i], 4);
      for (let a = 0; a < 5; a++) {
        const before = naiveScore(data, a * dim, data, (a + 1) * dim, dim, metric);
        const after = naiveScore(full, a * dim, full, (a + 1) * dim, dim, metric);
        expect(Math.abs(after - before)).toBeLessThan(1e-3 * Math.max(1, Math.abs(before)));
      }
    }
  });

  for (const metric of ['cosine', 'l2'] as const) {
    it(`${metric}: mapPrefix carries vectors from one fit's space to another's (exactly at the full dimension)`, async () => {
      const backend = new ReferenceBackend();
      const a = PcaTransform.fit(data, 2000, dim, metric, { sampleSize: 300, seed: 1 });
      const b = PcaTransform.fit(data, 2000, dim, metric, { sampleSize: 300, seed: 2 });
      const x = data.subarray(0, 10 * dim);
      const [inA, inB] = [await a.apply(backend, x, 10, dim), await b.apply(backend, x, 10, dim)];
      const mapped = b.mapPrefix(a, inA, 10, dim);
      for (let i = 0; i < mapped.length; i++) expect(mapped[i]).toBeCloseTo(inB[i], 2);
      // a prefix maps to the vector cut to a's first components, in b's space (its prefix of b's components)
      const cut = new Float32Array(10 * dim);
      for (let r = 0; r < 10; r++) cut.set(inA.subarray(r * dim, r * dim + 6), r * dim);
      const full = b.mapPrefix(a, cut, 10, dim);
      const prefix = b.mapPrefix(a, Float32Array.from({ length: 60 }, (_, i) => inA[Math.floor(i / 6) * dim + (i % 6)]), 10, 6);
      for (let r = 0; r < 10; r++) for (let j = 0; j < 6; j++) expect(prefix[r * 6 + j]).toBeCloseTo(full[r * dim + j], 3);
    });
  }

  it('needs at least two vectors', () => {
    expect(() => PcaTransform.fit(new Float32Array(4), 1, 4, 'ip')).toThrow(/at least 2 vectors/);
  });
});
