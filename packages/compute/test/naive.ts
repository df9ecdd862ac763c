/** Independent, deliberately naive scoring used as the oracle in tests. */
export type NaiveMetric = 'cosine' | 'ip' | 'l2';

export function naiveScore(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, dim: number, metric: NaiveMetric): number {
  let dot = 0, na = 0, nb = 0, l2 = 0;
  for (let i = 0; i < dim; i++) {
    const x = a[ao + i];
    const y = b[bo + i];
    dot += x * y;
    na += x * x;
    nb += y * y;
    l2 += (x - y) * (x - y);
  }
  if (metric === 'ip') return dot;
  if (metric === 'l2') return -l2;
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

export function randomMatrix(rows: number, dim: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(rows * dim);
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** Ids of the k best base rows for query q, ordered by score then id (the engine's total order). */
export function naiveTopK(q: Float32Array, qo: number, base: Float32Array, rows: number, stride: number, dim: number, metric: NaiveMetric, k: number): number[] {
  const scored = Array.from({ length: rows }, (_, j) => ({ j, s: naiveScore(q, qo, base, j * stride, dim, metric) }));
  scored.sort((x, y) => y.s - x.s || x.j - y.j);
  return scored.slice(0, k).map((e) => e.j);
}
