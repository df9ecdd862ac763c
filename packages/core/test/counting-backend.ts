import { composedPqScanListsTopK, composedScanListsTopK, maskCodes, maskCoded, maskFastScanCodes, maskFastScanLists, maskListSet, maskRows, ReferenceBackend, type Backend, type CodedRows, type FastScanLists, type FastScanTables, type ListCandidates, type ListSet, type Metric, type PqQuantizer, type RowBlock, type TopK } from '@adanns/compute';

/**
 * A Backend that counts the multiply-adds each op executes (one multiply-add =
 * 1 FLOP, the cost model's unit: packages/core/src/cost.ts) and runs it on an
 * inner backend (the reference by default). What it counts per op is what the
 * reference implementation does:
 *   score, scanTopK, assign  queries x rows x dim, plus rows x dim when a cosine
 *                            base comes without its norms (the op computes them)
 *   scanCodedTopK            as scanTopK, plus rows x dim decoded values (each
 *                            block is decoded once per call, whatever the queries),
 *                            plus 2 x rows x dim when cosine norms are missing
 *                            (decoded again, then normed)
 *   rescoreTopK              candidates x dim (+ base norms when missing: every row)
 *   rescoreListsTopK         candidates x dim, x 2 for f16/sq8 lists (decoded), plus
 *                            dim per cosine candidate whose list keeps no norms at dim
 *   adcScanTopK              queries x rows x M table look-ups
 *   fastScanTopK             queries x rows x M (4-bit table look-ups)
 *   fastScanListsTopK        M per member of every probed list (one fastScanTopK per probe),
 *                            plus the tables it quantises: 16 M per query, or 32 M per
 *                            probed list for l2 residuals (2 t - terms, then quantised)
 *   scanListsTopK            the reference's definition, one scanTopK / scanCodedTopK
 *                            per probed list (composed through this counter's ops)
 *   pqScanListsTopK          the reference's definition: rotation and tables through
 *                            score, one adcScanTopK per (query, probed non-empty list),
 *                            plus dim per such pair for the ip residual term q . ref
 *   centroidSums             rows x dim
 *   tally(n)                 n: host work a search reports (Backend.tally)
 * Query-side preparation inside an op (a query's own norm) is not counted,
 * as the cost model leaves it out. An op this counter does not know throws:
 * a new Backend op must be counted here before the cost test can pass.
 */
export class CountingBackend implements Backend {
  readonly name: string;
  readonly arena: Backend['arena'];
  /** Multiply-adds executed since construction (or the last reset). */
  flops = 0;
  /** Per op, for messages. */
  readonly byOp = new Map<string, number>();

  constructor(readonly inner: Backend = new ReferenceBackend()) {
    this.name = `counting(${inner.name})`;
    this.arena = inner.arena;
    const known = new Set(['name', 'arena', 'score', 'scanTopK', 'scanCodedTopK', 'rescoreTopK', 'rescoreListsTopK', 'adcScanTopK', 'fastScanTopK', 'fastScanListsTopK', 'scanListsTopK', 'pqScanListsTopK', 'assign', 'centroidSums', 'tally', 'dispose']);
    for (const op of Object.getOwnPropertyNames(Object.getPrototypeOf(inner))) {
      if (op !== 'constructor' && !known.has(op) && typeof (inner as unknown as Record<string, unknown>)[op] === 'function') {
        (this as unknown as Record<string, unknown>)[op] = () => {
          throw new Error(`CountingBackend: op "${op}" of ${inner.name} is not counted yet (extend packages/core/test/counting-backend.ts)`);
        };
      }
    }
  }

  reset(): number {
    const was = this.flops;
    this.flops = 0;
    this.byOp.clear();
    return was;
  }

  private add(op: string, flops: number): void {
    this.flops += flops;
    this.byOp.set(op, (this.byOp.get(op) ?? 0) + flops);
  }

  private static baseNorms(base: { rows: number; invNorms?: Float32Array }, dim: number, metric: Metric): number {
    return metric === 'cosine' && !base.invNorms ? base.rows * dim : 0;
  }

  score(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, out: Float32Array): Promise<void> {
    this.add('score', queries.rows * base.rows * dim + CountingBackend.baseNorms(base, dim, metric));
    return this.inner.score(queries, base, dim, metric, out);
  }

  // A mask (Backend ops' filter) is counted as the reference defines it: the op on the allowed members alone, compacted (mask.ts).

  async scanTopK(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, best: TopK, baseIds?: Int32Array, queryRows?: Int32Array, mask?: Uint32Array): Promise<void> {
    const kept = mask && maskRows(mask, base, dim, baseIds);
    if (kept) return this.scanTopK(queries, kept.base, dim, metric, best, kept.ids, queryRows);
    if (base.rows > 0 && queries.rows > 0) this.add('scanTopK', queries.rows * base.rows * dim + CountingBackend.baseNorms(base, dim, metric));
    return this.inner.scanTopK(queries, base, dim, metric, best, baseIds, queryRows);
  }

  async scanCodedTopK(queries: RowBlock, base: CodedRows, dim: number, metric: Metric, best: TopK, baseIds?: Int32Array, queryRows?: Int32Array, mask?: Uint32Array): Promise<void> {
    const kept = mask && maskCoded(mask, base, baseIds);
    if (kept) return this.scanCodedTopK(queries, kept.base, dim, metric, best, kept.ids, queryRows);
    if (base.rows > 0 && queries.rows > 0) this.add('scanCodedTopK', queries.rows * base.rows * dim + base.rows * dim + 2 * CountingBackend.baseNorms(base, dim, metric));
    return this.inner.scanCodedTopK(queries, base, dim, metric, best, baseIds, queryRows);
  }

  rescoreTopK(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, candidates: TopK, best: TopK): Promise<void> {
    let n = 0;
    for (let q = 0; q < queries.rows; q++) n += candidates.sizes[q];
    this.add('rescoreTopK', n * dim + CountingBackend.baseNorms(base, dim, metric));
    return this.inner.rescoreTopK(queries, base, dim, metric, candidates, best);
  }

  /** Counted per candidate: dim, plus dim decoded (f16/sq8), plus dim for a cosine norm its list does not keep at dim. */
  rescoreListsTopK(queries: RowBlock, lists: ListSet, candidates: ListCandidates, dim: number, metric: Metric, best: TopK): Promise<void> {
    let n = 0;
    let normed = 0;
    for (let q = 0; q < queries.rows; q++) {
      for (let i = 0; i < candidates.sizes[q]; i++) {
        n++;
        if (metric === 'cosine' && !lists.invNorms?.(candidates.lists[q * candidates.k + i], dim)) normed++;
      }
    }
    this.add('rescoreListsTopK', n * dim * (lists.encoding === 'f32' ? 1 : 2) + normed * dim);
    return this.inner.rescoreListsTopK(queries, lists, candidates, dim, metric, best);
  }

  async adcScanTopK(tables: Float32Array, queries: number, m: number, codes: Uint8Array, rows: number, best: TopK, baseIds?: Int32Array, queryRows?: Int32Array, bias?: Float32Array, mask?: Uint32Array): Promise<void> {
    const kept = mask && maskCodes(mask, codes, rows, m, baseIds);
    if (kept) return this.adcScanTopK(tables, queries, m, kept.codes, kept.rows, best, kept.ids, queryRows, bias);
    this.add('adcScanTopK', queries * rows * m);
    return this.inner.adcScanTopK(tables, queries, m, codes, rows, best, baseIds, queryRows, bias);
  }

  async fastScanTopK(tables: Uint8Array, queries: number, m: number, codes: Uint8Array, rows: number, scales: Float32Array, bias: Float32Array, best: TopK, baseIds?: Int32Array, queryRows?: Int32Array, mask?: Uint32Array): Promise<void> {
    const kept = mask && maskFastScanCodes(mask, codes, rows, m, baseIds);
    if (kept) return this.fastScanTopK(tables, queries, m, kept.codes, kept.rows, scales, bias, best, kept.ids, queryRows);
    this.add('fastScanTopK', queries * rows * m);
    return this.inner.fastScanTopK(tables, queries, m, codes, rows, scales, bias, best, baseIds, queryRows);
  }

  fastScanListsTopK(tables: FastScanTables, m: number, lists: FastScanLists, probes: Int32Array, queries: number, nprobe: number, best: TopK, mask?: Uint32Array): Promise<void> {
    if (mask) lists = maskFastScanLists(lists, mask, m);
    let members = 0, probed = 0;
    for (let i = 0; i < queries * nprobe; i++) {
      if (probes[i] < 0 || lists.size(probes[i]) === 0) continue;
      members += lists.size(probes[i]);
      probed++;
    }
    // and the tables it quantises (cost.ts): per (query, list) 2 t - terms and its quantisation for l2 residuals, else one per query
    this.add('fastScanListsTopK', members * m + (tables.listTerms ? probed * 2 * m * 16 : queries * m * 16));
    return this.inner.fastScanListsTopK(tables, m, lists, probes, queries, nprobe, best);
  }

  /** Counted as the reference defines it: its per-list ops, run through this counter (the results are the reference's). */
  scanListsTopK(queries: RowBlock, lists: ListSet, probes: Int32Array, nprobe: number, dim: number, metric: Metric, best: TopK, mask?: Uint32Array): Promise<void> {
    return composedScanListsTopK(this, queries, lists, probes, nprobe, dim, metric, best, mask);
  }

  pqScanListsTopK(queries: RowBlock, pq: PqQuantizer, lists: ListSet, probes: Int32Array, nprobe: number, metric: Metric, best: TopK, mask?: Uint32Array): Promise<void> {
    if (mask) lists = maskListSet(lists, mask);
    // the ip residual terms q . ref run in the definition's TypeScript: dim per (query, probed non-empty list)
    if (pq.refs && metric !== 'l2') {
      let pairs = 0;
      for (let i = 0; i < queries.rows * nprobe; i++) if (probes[i] >= 0 && lists.size(probes[i]) > 0) pairs++;
      this.add('pqResidualTerms', pairs * pq.dim);
    }
    return composedPqScanListsTopK(this, queries, pq, lists, probes, nprobe, metric, best);
  }

  assign(vectors: RowBlock, centroids: RowBlock, dim: number, metric: Metric, labels: Int32Array, scores: Float32Array): Promise<void> {
    this.add('assign', vectors.rows * centroids.rows * dim + CountingBackend.baseNorms(centroids, dim, metric));
    return this.inner.assign(vectors, centroids, dim, metric, labels, scores);
  }

  centroidSums(vectors: RowBlock, dim: number, labels: Int32Array, k: number, sums: Float32Array, counts: Int32Array): Promise<void> {
    this.add('centroidSums', vectors.rows * dim);
    return this.inner.centroidSums(vectors, dim, labels, k, sums, counts);
  }

  tally(multiplyAdds: number): void {
    this.add('host', multiplyAdds);
    this.inner.tally?.(multiplyAdds);
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}
