import { TopK, rowBlock, type Backend, type Metric } from '@adanns/compute';
import { checkPositiveInt, checkVectors } from '../validate.js';

/**
 * Exact k nearest neighbours at the full dimension by brute force on the
 * backend, in query blocks (for progress). Returns queries x k row indices
 * into `base`, best first, and their scores.
 */
export async function exactNeighbours(
  backend: Backend,
  base: Float32Array,
  rows: number,
  queries: Float32Array,
  queryRows: number,
  dim: number,
  metric: Metric,
  k: number,
  onProgress?: (done: number, total: number) => void,
): Promise<{ ids: Int32Array; scores: Float32Array }> {
  checkVectors(base, rows, dim, 'ground truth base');
  checkVectors(queries, queryRows, dim, 'ground truth queries');
  checkPositiveInt(k, 'k', rows);
  const ids = new Int32Array(queryRows * k);
  const scores = new Float32Array(queryRows * k);
  const step = 64;
  for (let from = 0; from < queryRows; from += step) {
    const n = Math.min(step, queryRows - from);
    const best = new TopK(n, k);
    await backend.scanTopK(rowBlock(queries, n, dim, from * dim), rowBlock(base, rows, dim), dim, metric, best);
    best.sort();
    ids.set(best.ids, from * k);
    scores.set(best.scores, from * k);
    onProgress?.(from + n, queryRows);
  }
  return { ids, scores };
}
