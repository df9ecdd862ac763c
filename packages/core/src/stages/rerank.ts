import { rowBlock, TopK, type Backend, type Metric, type RowBlock } from '@adanns/compute';

/** Where the re-rank reads a candidate's vector: a buffer and the offset of its first value. */
export type VectorSource = (slot: number) => { data: Float32Array; offset: number };

/**
 * Stage 4: exact scores of each query's shortlist at prefix `rerankDim`,
 * read through `source` (stored full vectors, or stored rotated prefixes),
 * keeping the best k. `invNorms` (by slot) is passed when the source's norms
 * at rerankDim are already known (cosine at the full dimension).
 */
export async function rerank(
  backend: Backend,
  queries: RowBlock,
  shortlist: TopK,
  source: VectorSource,
  rerankDim: number,
  metric: Metric,
  k: number,
  invNorms?: Float32Array,
): Promise<TopK> {
  const final = new TopK(queries.rows, k);
  const gathered = new Float32Array(shortlist.k * rerankDim);
  const gatheredInv = invNorms ? new Float32Array(shortlist.k) : undefined;
  const row = new Int32Array(1);
  for (let q = 0; q < queries.rows; q++) {
    const m = shortlist.sizes[q];
    if (m === 0) continue;
    const slots = shortlist.ids.subarray(q * shortlist.k, q * shortlist.k + m);
    for (let i = 0; i < m; i++) {
      const { data, offset } = source(slots[i]);
      gathered.set(data.subarray(offset, offset + rerankDim), i * rerankDim);
      if (gatheredInv) gatheredInv[i] = invNorms![slots[i]];
    }
    row[0] = q;
    const query = rowBlock(queries.data, 1, queries.stride, (queries.offset ?? 0) + q * queries.stride);
    await backend.scanTopK(query, rowBlock(gathered, m, rerankDim, 0, gatheredInv), rerankDim, metric, final, slots, row);
  }
  return final;
}
