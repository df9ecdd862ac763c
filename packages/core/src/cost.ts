/**
 * The cost model (docs/ARCHITECTURE.md, "Cost model"), in multiply-adds per query (one
 * multiply-add = 1 FLOP, as in the AdANNS paper). Top-k selection is free.
 *   PCA rotation   D x (largest prefix the query needs in the rotated space)
 *   coarse         lists x coarseDim
 *   flat scan      (vectors in the probed lists) x scanDim; without IVF this is N x dim
 *   f16/sq8 scan   (vectors in the probed lists) x scanDim x 2: each value is decoded
 *                  (one multiply or multiply-add) before its multiply-add
 *   PQ/OPQ scan    (opq: scanDim^2) + 256 x scanDim + (vectors in the probed lists) x bytes,
 *                  plus with residuals scanDim per probed list (ip, cosine) or
 *                  256 x scanDim per further probed list (l2: one table per list);
 *                  a probed list that is empty costs nothing (no table, no q . ref)
 *   4-bit fast scan (opq: scanDim^2) + 16 x scanDim + 16 M (quantising the tables) + (vectors in
 *                  the probed lists) x M (one byte lookup-add per sub-quantiser), plus with
 *                  residuals scanDim per probed list (ip, cosine) or 32 M + scanDim (l2: the
 *                  list's precomputed terms subtracted, the table re-quantised)
 *   re-rank        (shortlist actually re-ranked) x rerankDim, x2 for cosine when the rows are
 *                  gathered (disk, float16, a collection's store, a prefix of the stored rows):
 *                  their norms at rerankDim are computed per search
 *   funnel stage   (candidates it rescores) x its dim x (1, +1 when read from f16/sq8 lists: each
 *                  value decoded; +1 for cosine: the gathered rows' norms at dim are computed),
 *                  before the re-rank, which then rescores the last stage's keep
 * A cosine float scan at a prefix whose norms the lists do not keep (off the dims ladder) also
 * computes the members' norms: one more multiply-add per value (two for decoding codecs).
 * Not counted: preparing the query itself (normalising its prefixes, subtracting the PCA mean,
 * q - ref differences), which is O(d) per query whatever the index holds.
 * packages/core/test/cost-count.test.ts checks these terms against the multiply-adds a counting
 * backend sees for every index shape.
 */
export interface QueryWork {
  /** Full dimension D of the stored vectors. */
  fullDim: number;
  /** Rotated components computed for the query (0 without PCA). */
  rotatedDims: number;
  /** Centroids scored (0 without IVF). */
  lists: number;
  coarseDim: number;
  /** Vectors scored in the scan stage (real sizes of the probed lists). */
  scanned: number;
  scanDim: number;
  /** PQ table lookup-adds per vector: M (bytes for 8-bit codes, twice the bytes for 4-bit fast scan); 0 for a flat scan, which costs scanDim per vector instead. */
  codeBytes: number;
  /** Float codecs: multiply-adds per scanned value (1 for float32, 2 for f16 and sq8); default 1. */
  scanFlopsPerValue?: number;
  /** PQ only: rotation, lookup-table and residual multiply-adds. */
  quantizerFlops: number;
  /** Candidates re-scored in the re-rank stage (0 without re-rank). */
  reranked: number;
  rerankDim: number;
  /** Multiply-adds per re-ranked value: 1, or 2 when cosine norms of gathered rows are computed; default 1. */
  rerankFlopsPerValue?: number;
  /** Funnel stages run between scan and re-rank (params.ts FunnelStage), in order. */
  funnel?: FunnelWork[];
}

/** One funnel stage's work: candidates rescored at dim, at flopsPerValue multiply-adds per value. */
export interface FunnelWork {
  rescored: number;
  dim: number;
  flopsPerValue: number;
}

export function queryFlops(w: QueryWork): number {
  const scan = w.codeBytes > 0 ? w.quantizerFlops + w.scanned * w.codeBytes : w.scanned * w.scanDim * (w.scanFlopsPerValue ?? 1);
  let funnel = 0;
  for (const stage of w.funnel ?? []) funnel += stage.rescored * stage.dim * stage.flopsPerValue;
  return w.fullDim * w.rotatedDims + w.lists * w.coarseDim + scan + funnel + w.reranked * w.rerankDim * (w.rerankFlopsPerValue ?? 1);
}

export function queryMflops(w: QueryWork): number {
  return queryFlops(w) / 1e6;
}
