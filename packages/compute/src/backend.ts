import type { ArrayArena } from './arena.js';
import type { CodedRows } from './coded.js';
import type { ListCandidates, ListSet, PqQuantizer } from './lists.js';
import type { FastScanLists, FastScanTables } from './fastscan.js';
import type { Metric } from './metric.js';
import type { RowBlock, RowGroups } from './rows.js';
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

  // Filters (mask.ts): the scan ops take an optional trailing `mask`, a bitset
  // over the ids they report (baseIds[j], j without baseIds, a list member's
  // id). A masked op scores only members whose id the mask allows, as if the
  // others were absent; no mask = every member.

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
    mask?: Uint32Array,
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
    mask?: Uint32Array,
  ): Promise<void>;

  /**
   * Exact re-scoring of shortlists: for query q, the base rows numbered
   * candidates.ids[q * candidates.k + i] (i < candidates.sizes[q]) are scored
   * and merged into row q of `best`, reported by row number. The rows are
   * read where they are stored, not gathered. For cosine, a base without
   * invNorms gets them computed as computeInvNorms does (float64 sums), so
   * gathered rows score bit for bit as the same rows kept with their norms.
   * `groups` (optional) groups the base rows (an IVF index's lists): a
   * backend may score a batch group by group, so a group's rows are read
   * once for all the queries that want them; it changes the order of work,
   * never the answer.
   */
  rescoreTopK(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, candidates: TopK, best: TopK, groups?: RowGroups): Promise<void>;

  /**
   * rescoreTopK of members read where they lie in float lists (a funnel
   * stage, a re-rank from the lists): query q's candidates (ListCandidates:
   * list and position) are decoded to their first `dim` values, scored as
   * rescoreTopK scores those rows gathered, and merged into row q of `best`
   * under the ids their lists report (ties: the lower id). For cosine each
   * member's norm is the one its list keeps at dim (ListSet.invNorms), else
   * computed as computeInvNorms does. Defined as composedRescoreListsTopK
   * (lists.ts); the CPU backend reads the rows in place in one kernel call.
   */
  rescoreListsTopK(queries: RowBlock, lists: ListSet, candidates: ListCandidates, dim: number, metric: Metric, best: TopK): Promise<void>;

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
    mask?: Uint32Array,
  ): Promise<void>;

  /**
   * 4-bit fast-scan PQ (fastscan.ts): `codes` hold `rows` members in the
   * block layout, `tables` per query m x 16 unsigned 8-bit entries. Member j
   * scores, for query q of this call, fround(fround(sum * scales[q]) + bias[q])
   * with sum the integer sum over s of tables[(q * m + s) * 16 + code(j, s)];
   * results merge into `best` as in scanTopK. Integer sums are exact, so every
   * backend returns identical ids and scores.
   */
  fastScanTopK(
    tables: Uint8Array,
    queries: number,
    m: number,
    codes: Uint8Array,
    rows: number,
    scales: Float32Array,
    bias: Float32Array,
    best: TopK,
    baseIds?: Int32Array,
    queryRows?: Int32Array,
    mask?: Uint32Array,
  ): Promise<void>;

  /**
   * A whole list-scan stage in one call: query q (row q of `queries`, row q
   * of `best`) scores the members of the lists probes[q * nprobe + p]
   * (entries of -1 are skipped) at prefix `dim`, reading float32, float16 or
   * sq8 members where they lie (lists.encoding) exactly as scanTopK /
   * scanCodedTopK score them, and merges them into its row of `best` under
   * their ids. Equivalent to one scanTopK / scanCodedTopK per probed list
   * (lists.ts, composedScanListsTopK, is that definition); the CPU backend
   * runs it as one kernel call per block of queries.
   */
  scanListsTopK(queries: RowBlock, lists: ListSet, probes: Int32Array, nprobe: number, dim: number, metric: Metric, best: TopK, mask?: Uint32Array): Promise<void>;

  /**
   * The PQ/OPQ list-scan stage in one call: each query's vector (its first
   * pq.dim values) is rotated, turned into lookup tables (per probed list
   * for l2 residuals) and scored against the codes of its probed lists
   * (-1 skipped) by ADC as defined by PqQuantizer; results merge into row q
   * of `best`. metric is ip or l2 (cosine queries come normalised as ip).
   */
  pqScanListsTopK(queries: RowBlock, pq: PqQuantizer, lists: ListSet, probes: Int32Array, nprobe: number, metric: Metric, best: TopK, mask?: Uint32Array): Promise<void>;

  /**
   * fastScanTopK over all the probed lists of a batch in one call: query q
   * (row q of `best`) scans list probes[q * nprobe + p] (-1 skipped) with the
   * byte table, scale and bias that quantizeFastScanTable makes of the
   * probe's float table (FastScanTables: the query's, or per list for l2
   * residuals). Defined as composedFastScanListsTopK (fastscan.ts); results
   * are identical to it.
   */
  fastScanListsTopK(
    tables: FastScanTables,
    m: number,
    lists: FastScanLists,
    probes: Int32Array,
    queries: number,
    nprobe: number,
    best: TopK,
    mask?: Uint32Array,
  ): Promise<void>;

  /** Nearest centroid of each vector: labels[i] and its score (ties: lower centroid index). */
  assign(vectors: RowBlock, centroids: RowBlock, dim: number, metric: Metric, labels: Int32Array, scores: Float32Array): Promise<void>;

  /**
   * k-means update step: sums[c * dim + j] = sum of vectors[i][j] over the
   * vectors labelled c (in order of i), counts[c] = how many there are. The
   * host divides and splits empty clusters.
   */
  centroidSums(vectors: RowBlock, dim: number, labels: Int32Array, k: number, sums: Float32Array, counts: Int32Array): Promise<void>;

  /**
   * Optional: told of multiply-adds a search ran on the host in plain
   * TypeScript rather than in an op (PQ residual terms, cosine norms of
   * gathered re-rank rows), so a counting wrapper sees all the work the cost
   * model charges (packages/core/test/cost-count.test.ts). Backends ignore it.
   */
  tally?(multiplyAdds: number): void;

  dispose(): Promise<void>;
}
