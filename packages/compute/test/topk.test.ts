import { describe, expect, it } from 'vitest';
import { TopK } from '../src/index.js';

describe('TopK', () => {
  it('keeps ids, scores and sizes apart, whether in the V8 heap (16 entries or fewer) or sharing one buffer', () => {
    for (const [rows, k] of [[1, 10], [2, 8], [3, 7], [1, 100]]) {
      const t = new TopK(rows, k);
      expect([t.ids.length, t.scores.length, t.sizes.length]).toEqual([rows * k, rows * k, rows]);
      t.ids.fill(-7);
      t.scores.fill(0.5);
      t.sizes.fill(k);
      expect(t.ids.every((id) => id === -7) && t.scores.every((s) => s === 0.5) && t.sizes.every((n) => n === k)).toBe(true);
    }
  });

  it('keeps the k best by score, ties broken by lower id, whatever the arrival order', () => {
    const scores = [5, 1, 3, 3, 9, 3, 0, 7, 3, 2];
    const expected = scores.map((s, id) => ({ s, id })).sort((a, b) => b.s - a.s || a.id - b.id).slice(0, 5);
    for (const order of [[...scores.keys()], [...scores.keys()].reverse(), [3, 8, 5, 2, 0, 1, 4, 6, 7, 9]]) {
      const t = new TopK(1, 5);
      for (const id of order) t.push(0, id, scores[id]);
      t.sort();
      expect(Array.from(t.ids)).toEqual(expected.map((e) => e.id));
      expect(Array.from(t.scores)).toEqual(expected.map((e) => e.s));
    }
  });

  it('matches a full sort on random rows and reports short rows', () => {
    const rows = 20, k = 7;
    const t = new TopK(rows, k);
    const all: Array<Array<{ id: number; s: number }>> = [];
    for (let r = 0; r < rows; r++) {
      const n = r % 10; // some rows get fewer than k candidates
      all.push([]);
      for (let id = 0; id < n; id++) {
        const s = Math.round(Math.sin(r * 31 + id * 7) * 4) / 4; // many exact ties
        all[r].push({ id, s });
        t.push(r, id, s);
      }
    }
    t.sort();
    for (let r = 0; r < rows; r++) {
      const want = all[r].sort((a, b) => b.s - a.s || a.id - b.id).slice(0, k);
      expect(t.sizes[r]).toBe(want.length);
      expect(Array.from(t.ids.subarray(r * k, r * k + want.length))).toEqual(want.map((e) => e.id));
    }
  });

  it('sorts again to the same rows, and sorts rows written in any order', () => {
    const t = new TopK(2, 6);
    for (const [id, s] of [[4, 1], [2, 3], [9, 3], [1, -2], [7, 0.5], [3, 3], [8, 3]]) t.push(0, id, s);
    t.sort();
    const once = [Array.from(t.ids.subarray(0, 6)), Array.from(t.scores.subarray(0, 6))];
    expect(once[0]).toEqual([2, 3, 8, 9, 4, 7]);
    t.sort();
    expect([Array.from(t.ids.subarray(0, 6)), Array.from(t.scores.subarray(0, 6))]).toEqual(once);
    // a row filled worst first (not a heap) still sorts best first
    t.ids.set([5, 6, 7, 1], 6);
    t.scores.set([-1, 0, 2, 2], 6);
    t.sizes[1] = 4;
    t.sort();
    expect(Array.from(t.ids.subarray(6, 10))).toEqual([1, 7, 6, 5]);
  });

  it('rejects k < 1', () => {
    expect(() => new TopK(1, 0)).toThrow(/k must be a positive integer/);
  });
});
