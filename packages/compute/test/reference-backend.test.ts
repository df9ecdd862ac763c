import { describe, expect, it } from 'vitest';
import { ReferenceBackend, METRICS, TopK, computeInvNorms, rowBlock, type Metric } from '../src/index.js';
import { naiveScore, naiveTopK, randomMatrix } from './naive.js';

const backend = new ReferenceBackend();

function close(actual: number, expected: number): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(expected)));
}

describe('ReferenceBackend.score', () => {
  for (const metric of METRICS) {
    for (const [stride, dim] of [[1, 1], [7, 3], [13, 13], [64, 8], [70, 33]]) {
      it(`${metric}: stride ${stride}, prefix ${dim} equals the naive score`, async () => {
        const q = randomMatrix(5, stride, 1);
        const b = randomMatrix(11, stride, 2);
        const out = new Float32Array(5 * 11);
        await backend.score(rowBlock(q, 5, stride), rowBlock(b, 11, stride), dim, metric, out);
        for (let i = 0; i < 5; i++) for (let j = 0; j < 11; j++) close(out[i * 11 + j], naiveScore(q, i * stride, b, j * stride, dim, metric));
      });
    }
  }

  it('re-normalises each prefix for cosine: a prefix of a unit vector still scores 1 with itself', async () => {
    const v = randomMatrix(1, 32, 3);
    const out = new Float32Array(1);
    for (const dim of [1, 5, 16, 32]) {
      await backend.score(rowBlock(v, 1, 32), rowBlock(v, 1, 32), dim, 'cosine', out);
      close(out[0], 1);
    }
  });

  it('scores a zero prefix as cosine 0, not NaN', async () => {
    const zero = new Float32Array(8);
    const v = randomMatrix(1, 8, 4);
    const out = new Float32Array(1);
    await backend.score(rowBlock(zero, 1, 8), rowBlock(v, 1, 8), 8, 'cosine', out);
    expect(out[0]).toBe(0);
  });

  it('uses supplied inverse norms and honours row offsets', async () => {
    const b = randomMatrix(6, 10, 5);
    const q = randomMatrix(3, 10, 6);
    const inv = computeInvNorms(rowBlock(b, 4, 10, 20), 7);
    const out = new Float32Array(4);
    await backend.score(rowBlock(q, 1, 10, 10), rowBlock(b, 4, 10, 20, inv), 7, 'cosine', out);
    for (let j = 0; j < 4; j++) close(out[j], naiveScore(q, 10, b, 20 + j * 10, 7, 'cosine'));
  });

  it('rejects a prefix longer than the rows and an output that is too small', async () => {
    const m = randomMatrix(2, 4, 7);
    await expect(backend.score(rowBlock(m, 2, 4), rowBlock(m, 2, 4), 5, 'ip', new Float32Array(4))).rejects.toThrow(/exceeds row length/);
    await expect(backend.score(rowBlock(m, 2, 4), rowBlock(m, 2, 4), 4, 'ip', new Float32Array(3))).rejects.toThrow(/output holds/);
  });
});

describe('ReferenceBackend.scanTopK', () => {
  for (const metric of METRICS) {
    it(`${metric}: equals naive top-k, with base ids and query rows mapped, over several calls`, async () => {
      const dim = 19, stride = 21;
      const q = randomMatrix(4, stride, 8);
      const b = randomMatrix(300, stride, 9);
      const best = new TopK(6, 10);
      // queries 0..3 go to rows 5,1,3,0; base scanned in two blocks with ids offset by 1000
      const rows = Int32Array.from([5, 1, 3, 0]);
      const ids1 = Int32Array.from({ length: 120 }, (_, j) => 1000 + j);
      const ids2 = Int32Array.from({ length: 180 }, (_, j) => 1120 + j);
      await backend.scanTopK(rowBlock(q, 4, stride), rowBlock(b, 120, stride), dim, metric, best, ids1, rows);
      await backend.scanTopK(rowBlock(q, 4, stride), rowBlock(b, 180, stride, 120 * stride), dim, metric, best, ids2, rows);
      best.sort();
      for (let i = 0; i < 4; i++) {
        const want = naiveTopK(q, i * stride, b, 300, stride, dim, metric, 10).map((j) => 1000 + j);
        expect(Array.from(best.ids.subarray(rows[i] * 10, rows[i] * 10 + 10))).toEqual(want);
      }
      expect(best.sizes[2]).toBe(0);
    });
  }

  it('scores a query identically alone and inside a batch (the 4-query tile and the single path agree)', async () => {
    for (const metric of METRICS) {
      const q = randomMatrix(7, 13, 14);
      const b = randomMatrix(37, 13, 15);
      const batch = new Float32Array(7 * 37);
      await backend.score(rowBlock(q, 7, 13), rowBlock(b, 37, 13), 13, metric, batch);
      for (let i = 0; i < 7; i++) {
        const alone = new Float32Array(37);
        await backend.score(rowBlock(q, 1, 13, i * 13), rowBlock(b, 37, 13), 13, metric, alone);
        expect(Array.from(batch.subarray(i * 37, (i + 1) * 37))).toEqual(Array.from(alone));
      }
    }
  });

  it('returns all candidates when k exceeds them, and nothing for an empty block', async () => {
    const q = randomMatrix(1, 4, 10);
    const b = randomMatrix(3, 4, 11);
    const best = new TopK(1, 8);
    await backend.scanTopK(rowBlock(q, 1, 4), rowBlock(b, 0, 4), 4, 'l2', best);
    expect(best.sizes[0]).toBe(0);
    await backend.scanTopK(rowBlock(q, 1, 4), rowBlock(b, 3, 4), 4, 'l2', best);
    expect(best.sizes[0]).toBe(3);
  });
});

describe('ReferenceBackend.assign', () => {
  for (const metric of ['cosine', 'ip', 'l2'] as Metric[]) {
    it(`${metric}: picks the best centroid (lowest index on ties)`, async () => {
      const v = randomMatrix(50, 9, 12);
      const c = randomMatrix(7, 9, 13);
      c.copyWithin(9 * 6, 0, 9); // centroid 6 duplicates centroid 0: ties must go to 0
      const labels = new Int32Array(50);
      const scores = new Float32Array(50);
      await backend.assign(rowBlock(v, 50, 9), rowBlock(c, 7, 9), 5, metric, labels, scores);
      for (let i = 0; i < 50; i++) {
        const all = Array.from({ length: 7 }, (_, j) => naiveScore(v, i * 9, c, j * 9, 5, metric));
        const best = all.indexOf(Math.max(...all));
        expect(labels[i]).toBe(best);
        expect(labels[i]).not.toBe(6);
        close(scores[i], all[best]);
      }
    });
  }
});
