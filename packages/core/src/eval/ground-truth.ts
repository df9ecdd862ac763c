import { TopK, rowBlock, type Backend, type Metric } from '@adanns/compute';
import { checkPositiveInt, checkVectors } from '../validate.js';

/** Rows [from, from + rows) of a base set (structurally a @adanns/datasets VectorChunk). */
export interface BaseChunk {
  from: number;
  rows: number;
  data: Float32Array;
}

/** Base rows scored per backend call by exactNeighbours (bounds the ids array of a chunk, and progress steps). */
const BASE_BLOCK = 65_536;

/**
 * Exact k nearest neighbours at the full dimension by brute force on the
 * backend, over a base given chunk by chunk (a base larger than memory is
 * streamed from disk). Row numbers are the chunks' `from` plus the row within
 * the chunk. TopK's total order (score, then lower row) makes the result
 * independent of how the base is chunked. Returns queries x k row numbers,
 * best first, and their scores.
 */
export async function exactNeighboursOf(
  backend: Backend,
  chunks: AsyncIterable<BaseChunk> | Iterable<BaseChunk>,
  baseRows: number,
  queries: Float32Array,
  queryRows: number,
  dim: number,
  metric: Metric,
  k: number,
  onProgress?: (done: number, total: number) => void,
): Promise<{ ids: Int32Array; scores: Float32Array }> {
  checkVectors(queries, queryRows, dim, 'ground truth queries');
  checkPositiveInt(k, 'k', baseRows);
  const best = new TopK(queryRows, k);
  let seen = 0;
  for await (const chunk of chunks) {
    checkVectors(chunk.data, chunk.rows, dim, 'ground truth base');
    const rowNumbers = Int32Array.from({ length: chunk.rows }, (_, i) => chunk.from + i);
    await backend.scanTopK(rowBlock(queries, queryRows, dim), rowBlock(chunk.data, chunk.rows, dim), dim, metric, best, rowNumbers);
    seen += chunk.rows;
    onProgress?.(seen, baseRows);
  }
  if (seen !== baseRows) throw new Error(`ground truth: the base chunks held ${seen} rows, expected ${baseRows}`);
  best.sort();
  return { ids: best.ids, scores: best.scores };
}

/** exactNeighboursOf over a base held in memory (rows x dim). */
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
  function* blocks(): Generator<BaseChunk> {
    for (let from = 0; from < rows; from += BASE_BLOCK) {
      const n = Math.min(BASE_BLOCK, rows - from);
      yield { from, rows: n, data: base.subarray(from * dim, (from + n) * dim) };
    }
  }
  return exactNeighboursOf(backend, blocks(), rows, queries, queryRows, dim, metric, k, onProgress);
}
