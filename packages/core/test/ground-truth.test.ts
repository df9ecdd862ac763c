import { describe, expect, it } from 'vitest';
import { METRICS, ReferenceBackend } from '@adanns/compute';
import { exactNeighbours, exactNeighboursOf, type BaseChunk } from '../src/eval/ground-truth.js';
import { naiveTopK, randomMatrix } from '../../compute/test/naive.js';

const backend = new ReferenceBackend();
const dim = 12;
const n = 301;
const base = randomMatrix(n, dim, 7);
const queries = randomMatrix(9, dim, 8);

function* chunked(size: number): Generator<BaseChunk> {
  for (let from = 0; from < n; from += size) {
    const rows = Math.min(size, n - from);
    yield { from, rows, data: base.subarray(from * dim, (from + rows) * dim) };
  }
}

describe('exact ground truth', () => {
  for (const metric of METRICS) {
    it(`${metric}: streamed in chunks of any size, equals brute force`, async () => {
      const whole = await exactNeighbours(backend, base, n, queries, 9, dim, metric, 10);
      for (let q = 0; q < 9; q++) expect(Array.from(whole.ids.subarray(q * 10, (q + 1) * 10))).toEqual(naiveTopK(queries, q * dim, base, n, dim, dim, metric, 10));
      for (const size of [1, 17, 300, 1000]) {
        const streamed = await exactNeighboursOf(backend, chunked(size), n, queries, 9, dim, metric, 10);
        expect(Array.from(streamed.ids)).toEqual(Array.from(whole.ids));
        expect(Array.from(streamed.scores)).toEqual(Array.from(whole.scores));
      }
    });
  }

  it('says when the chunks do not cover the base', async () => {
    await expect(exactNeighboursOf(backend, chunked(100), n + 5, queries, 9, dim, 'ip', 10)).rejects.toThrow(/held 301 rows, expected 306/);
    await expect(exactNeighboursOf(backend, chunked(100), n, queries, 9, dim, 'ip', n + 1)).rejects.toThrow(/k/);
  });
});
