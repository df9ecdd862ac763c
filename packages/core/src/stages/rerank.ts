import { rowBlock, TopK, type Backend, type Metric, type RowBlock } from '@adanns/compute';

/** Where the re-rank reads a candidate's vector: a buffer and the offset of its first value. */
export type VectorSource = (slot: number) => { data: Float32Array; offset: number };

/**
 * Stage 4 at a prefix below the full dimension: exact scores of each query's
 * shortlist at `rerankDim`, read through `source` (the rotated prefixes
 * stored in the lists, gathered per query), keeping the best k.
 */
export async function rerank(
  backend: Backend,
  queries: RowBlock,
  shortlist: TopK,
  source: VectorSource,
  rerankDim: number,
  metric: Metric,
  k: number,
): Promise<TopK> {
  const final = new TopK(queries.rows, k);
  const gathered = new Float32Array(shortlist.k * rerankDim);
  const row = new Int32Array(1);
  for (let q = 0; q < queries.rows; q++) {
    const m = shortlist.sizes[q];
    if (m === 0) continue;
    const slots = shortlist.ids.subarray(q * shortlist.k, q * shortlist.k + m);
    for (let i = 0; i < m; i++) {
      const { data, offset } = source(slots[i]);
      gathered.set(data.subarray(offset, offset + rerankDim), i * rerankDim);
    }
    row[0] = q;
    const query = rowBlock(queries.data, 1, queries.stride, (queries.offset ?? 0) + q * queries.stride);
    await backend.scanTopK(query, rowBlock(gathered, m, rerankDim), rerankDim, metric, final, slots, row);
  }
  return final;
}

/**
 * Stage 4 over stored full vectors: exact scores of each query's shortlist
 * (slots = rows of `stored`), read in place by the backend, keeping the best k.
 */
export async function rerankStored(backend: Backend, queries: RowBlock, shortlist: TopK, stored: RowBlock, metric: Metric, k: number): Promise<TopK> {
  const final = new TopK(queries.rows, k);
  await backend.rescoreTopK(queries, stored, stored.stride, metric, shortlist, final);
  return final;
}
