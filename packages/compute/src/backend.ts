import type { ArrayArena } from './arena.js';
import type { CodedRows } from './coded.js';
import type { Metric } from './metric.js';
import type { RowBlock } from './rows.js';
import type { TopK } from './topk.js';

/**
 * What the index layer asks of a compute backend. Everything is batched over
 * flat float32 buffers: a block of queries against a block of vectors at a
 * prefix length `dim`. Methods are asynchronous so that a device backend
 * (WebGPU) can implement them with queued work and read-back; the CPU backend
 * completes synchronously inside the promise.
 */
export interface Backend {
  readonly name: string;

  /** Where index arrays should live so this backend reads them without copying. */
  readonly arena: ArrayArena;

  /** out[q * base.rows + j] = score(queries[q][:dim], base[j][:dim]). */
  score(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, out: Float32Array): Promise<void>;

  /**
   * Scores every query against every base row and merges the results into
   * `best`: query q goes to row queryRows[q] of `best` (row q when omitted),
   * base row j is reported as baseIds[j] (j when omitted). The rows named in
   * queryRows must be distinct within one call.
   */
  scanTopK(
    queries: RowBlock,
    base: RowBlock,
    dim: number,
    metric: Metric,
    best: TopK,
    baseIds?: Int32Array,
    queryRows?: Int32Array,
  ): Promise<void>;

  /**
   * scanTopK over encoded rows (float16 or 8-bit scalar-quantised): each
   * row's first `dim` elements are decoded to float32 (coded.ts) and scored
   * exactly as scanTopK scores float32 rows.
   */
  scanCodedTopK(
    queries: RowBlock,
    base: CodedRows,
    dim: number,
    metric: Metric,
    best: TopK,
    baseIds?: Int32Array,
    queryRows?: Int32Array,
  ): Promise<void>;

  /**
   * Exact re-scoring of shortlists: for query q, the base rows numbered
   * candidates.ids[q * candidates.k + i] (i < candidates.sizes[q]) are scored
   * and merged into row q of `best`, reported by row number. The rows are
   * read where they are stored, not gathered.
   */
  rescoreTopK(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, candidates: TopK, best: TopK): Promise<void>;

  /**
   * 8-bit ADC scan (product-quantised codes): code j (M bytes at codes[j * m])
   * scores bias[q] + sum over s of tables[(q * m + s) * 256 + code[s]] for
   * query q of this call; results merge into `best` as in scanTopK.
   */
  adcScanTopK(
    tables: Float32Array,
    queries: number,
    m: number,
    codes: Uint8Array,
    rows: number,
    best: TopK,
    baseIds?: Int32Array,
    queryRows?: Int32Array,
    bias?: Float32Array,
  ): Promise<void>;

  /** Nearest centroid of each vector: labels[i] and its score (ties: lower centroid index). */
  assign(vectors: RowBlock, centroids: RowBlock, dim: number, metric: Metric, labels: Int32Array, scores: Float32Array): Promise<void>;

  /**
   * k-means update step: sums[c * dim + j] = sum of vectors[i][j] over the
   * vectors labelled c (in order of i), counts[c] = how many there are. The
   * host divides and splits empty clusters.
   */
  centroidSums(vectors: RowBlock, dim: number, labels: Int32Array, k: number, sums: Float32Array, counts: Int32Array): Promise<void>;

  dispose(): Promise<void>;
}
