import { expect } from 'vitest';
import { ReferenceBackend, rowBlock, type Backend, type TopK } from '../src/index.js';
import { randomMatrix } from './naive.js';

// Comparisons of a backend against the reference: float32 against float64
// accumulation, so scores agree to a relative tolerance rank by rank (1e-5
// for the CPU backend; 1e-4 for device backends, whose accumulation order
// differs more), and a rank may hold a different id only where scores tie to
// that precision.

export const tolerance = (x: number, relative = 1e-5) => relative * Math.max(1, Math.abs(x));

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, relative = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (Math.abs(actual[i] - expected[i]) > tolerance(expected[i], relative)) expect.fail(`value ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

export function expectSameTopK(actual: TopK, expected: TopK, relative = 1e-5): void {
  actual.sort();
  expected.sort();
  expect(Array.from(actual.sizes)).toEqual(Array.from(expected.sizes));
  for (let r = 0; r < expected.rows; r++) {
    for (let i = 0; i < expected.sizes[r]; i++) {
      const at = r * expected.k + i;
      const want = expected.scores[at];
      if (Math.abs(actual.scores[at] - want) > tolerance(want, relative)) expect.fail(`row ${r} rank ${i}: score ${actual.scores[at]} vs ${want}`);
    }
    // Ids: the same set, except that an id the reference left out may take the
    // place of one it kept only when both score as the reference's last
    // (a tie at the boundary to float32 precision).
    const n = expected.sizes[r];
    const base = r * expected.k;
    const kept = new Set(expected.ids.subarray(base, base + n));
    const last = expected.scores[base + n - 1];
    for (let i = 0; i < n; i++) {
      const id = actual.ids[base + i];
      if (!kept.has(id) && Math.abs(actual.scores[base + i] - last) > tolerance(last, relative)) expect.fail(`row ${r}: id ${id} (score ${actual.scores[base + i]}) is not in the reference top-k`);
    }
    expect(new Set(actual.ids.subarray(base, base + n)).size).toBe(n);
  }
}


/** centroidSums of `backend` against the reference: labelled sums and counts, an empty cluster, prefixes not a multiple of 4, a bad label refused. */
export async function expectCentroidSumsAgree(backend: Backend, relative = 1e-5): Promise<void> {
  const reference = new ReferenceBackend();
  for (const [stride, dim] of [[1, 1], [7, 3], [13, 13], [70, 33]]) {
    const n = 57, k = 6;
    const v = rowBlock(randomMatrix(n, stride, n + dim), n, stride);
    const labels = Int32Array.from({ length: n }, (_, i) => (i * 5) % (k - 1)); // cluster k - 1 stays empty
    const want = { sums: new Float32Array(k * dim), counts: new Int32Array(k) };
    const got = { sums: new Float32Array(k * dim), counts: new Int32Array(k) };
    await reference.centroidSums(v, dim, labels, k, want.sums, want.counts);
    await backend.centroidSums(v, dim, labels, k, got.sums, got.counts);
    expect(Array.from(got.counts)).toEqual(Array.from(want.counts));
    expect(want.counts[k - 1]).toBe(0);
    expectClose(got.sums, want.sums, relative);
  }
  await expect(backend.centroidSums(rowBlock(new Float32Array(4), 1, 4), 4, Int32Array.of(9), 3, new Float32Array(12), new Int32Array(3))).rejects.toThrow(/label 9 of vector 0 is not below k = 3/);
}
