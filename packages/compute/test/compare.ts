import { expect } from 'vitest';
import { codedInvNorms, codedRows, encodedBytes, floatToHalf, METRICS, ReferenceBackend, ROW_ENCODINGS, rowBlock, TopK, type Backend, type CodedRows, type RowEncoding } from '../src/index.js';
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

/** The same ids and scores rank by rank, bit for bit (both sorted first: their heaps are consumed). */
export function expectIdentical(got: TopK, want: TopK): void {
  got.sort();
  want.sort();
  expect(Array.from(got.sizes)).toEqual(Array.from(want.sizes));
  expect(Array.from(got.ids)).toEqual(Array.from(want.ids));
  expect(Array.from(got.scores)).toEqual(Array.from(want.scores));
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

/** Random encoded rows: float16 bits of random values, or random bytes with per-element min and scale (sq8). */
export function randomCoded(encoding: RowEncoding, rows: number, stride: number, seed: number, withNorms = false): CodedRows {
  const values = randomMatrix(rows, stride, seed);
  let codes: Uint8Array;
  let params: Float32Array | undefined;
  if (encoding === 'f16') {
    const halves = Uint16Array.from(values, (v) => floatToHalf(v * 3));
    codes = new Uint8Array(halves.buffer);
  } else {
    codes = Uint8Array.from(values, (v) => Math.floor((v + 0.5) * 255.99));
    params = Float32Array.from({ length: 2 * stride }, (_, j) => (j < stride ? -0.5 - (j % 5) * 0.1 : 1 / 255 + (j % 3) * 0.001));
  }
  const block = codedRows(encoding, codes, rows, stride, params);
  return withNorms ? { ...block, invNorms: codedInvNorms(block, stride) } : block;
}

/**
 * scanCodedTopK of `backend` against the reference's (which scans the decoded
 * float32 rows): both encodings, every metric, prefixes below the stride,
 * mapped ids and rows over several calls, norms given or computed.
 */
export async function expectCodedScanAgrees(backend: Backend, relative = 1e-5, sizes: { queries: number; rows: number } = { queries: 6, rows: 300 }): Promise<void> {
  const reference = new ReferenceBackend();
  for (const encoding of ROW_ENCODINGS) {
    for (const metric of METRICS) {
      for (const [stride, dim] of [[1, 1], [7, 3], [20, 17], [40, 40]]) {
        const { queries: m, rows: n } = sizes;
        const q = rowBlock(randomMatrix(m, stride, stride + 5), m, stride);
        const base = randomCoded(encoding, n, stride, stride * 3 + 1, dim === stride);
        const rows = Int32Array.from({ length: m }, (_, i) => (i * 3) % (m + 2));
        for (const k of [1, 10, n + 5]) {
          const want = new TopK(m + 2, k);
          const got = new TopK(m + 2, k);
          for (const [from, to] of [[0, Math.floor(n / 3)], [Math.floor(n / 3), n]]) {
            const part = { ...base, codes: base.codes.subarray(from * stride * encodedBytes(encoding)), rows: to - from, invNorms: base.invNorms?.subarray(from, to) };
            const ids = Int32Array.from({ length: to - from }, (_, j) => 1000 + from + j);
            await reference.scanCodedTopK(q, part, dim, metric, want, ids, rows);
            await backend.scanCodedTopK(q, part, dim, metric, got, ids, rows);
          }
          expectSameTopK(got, want, relative);
        }
      }
    }
  }
}

/**
 * Shortlists of about `length` rows below `rows`, drawn from a pool of a third of the base (spread over all of it,
 * the last rows too) so queries share rows; query q % 5 == 2 has none, q % 3 shortens a row. Scores are -row.
 */
export function sharedShortlists(queries: number, length: number, rows: number, seed: number): TopK {
  const out = new TopK(queries, length);
  const pool = Math.max(length, Math.floor(rows / 3));
  let s = seed >>> 0;
  for (let q = 0; q < queries; q++) {
    if (q % 5 === 2) continue;
    const taken = new Set<number>();
    while (taken.size < length - (q % 3)) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      taken.add(rows - 1 - Math.floor(((s % pool) * rows) / pool));
    }
    for (const row of taken) out.push(q, row, -row);
  }
  return out;
}
