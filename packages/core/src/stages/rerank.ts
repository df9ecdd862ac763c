import { computeInvNorms, rowBlock, TopK, type Backend, type Metric, type RowBlock } from '@adanns/compute';
import type { RerankStore } from '../rerank/store.js';

/**
 * Stage 4 from a re-rank store: exact scores of each query's shortlist at
 * `rerankDim` (a prefix of the store's rows), the shortlist's rows gathered
 * from the store (by slot, ascending, so a disk store reads in file order),
 * keeping the best k.
 */
export async function rerankGathered(
  backend: Backend,
  queries: RowBlock,
  shortlist: TopK,
  store: RerankStore,
  rerankDim: number,
  metric: Metric,
  k: number,
): Promise<TopK> {
  const final = new TopK(queries.rows, k);
  const d = store.dim;
  const gathered = new Float32Array(shortlist.k * d);
  const row = new Int32Array(1);
  const norms = new Float32Array(shortlist.k);
  for (let q = 0; q < queries.rows; q++) {
    const m = shortlist.sizes[q];
    if (m === 0) continue;
    const slots = shortlist.ids.slice(q * shortlist.k, q * shortlist.k + m).sort();
    await store.read(slots, gathered.subarray(0, m * d));
    row[0] = q;
    const query = rowBlock(queries.data, 1, queries.stride, (queries.offset ?? 0) + q * queries.stride);
    // cosine norms of the rows as a resident store computes them, so every store scores bit-identically
    const inv = metric === 'cosine' ? computeInvNorms(rowBlock(gathered, m, d), rerankDim, norms) : undefined;
    await backend.scanTopK(query, rowBlock(gathered, m, d, 0, inv), rerankDim, metric, final, slots, row);
  }
  return final;
}

/**
 * Stage 4 over resident float32 rows (slot = row): exact scores of each
 * query's shortlist, read in place by the backend, keeping the best k.
 */
export async function rerankStored(backend: Backend, queries: RowBlock, shortlist: TopK, stored: RowBlock, metric: Metric, k: number): Promise<TopK> {
  const final = new TopK(queries.rows, k);
  await backend.rescoreTopK(queries, stored, stored.stride, metric, shortlist, final);
  return final;
}
