import { TopK, type Backend, type Metric, type RowBlock } from '@adanns/compute';

/**
 * Stage 2: score every centroid at prefix `coarseDim` and keep the `nprobe`
 * best lists per query. Returns rows x nprobe list numbers, best first
 * (-1 where fewer lists exist).
 */
export async function probeLists(
  backend: Backend,
  queries: RowBlock,
  centroids: RowBlock,
  coarseDim: number,
  nprobe: number,
  metric: Metric,
): Promise<Int32Array> {
  const best = new TopK(queries.rows, nprobe);
  await backend.scanTopK(queries, centroids, coarseDim, metric, best);
  best.sort();
  const probes = new Int32Array(queries.rows * nprobe).fill(-1);
  for (let q = 0; q < queries.rows; q++) probes.set(best.ids.subarray(q * nprobe, q * nprobe + best.sizes[q]), q * nprobe);
  return probes;
}
