import { rowBlock, type Backend, type RowBlock } from '@adanns/compute';
import type { PcaTransform } from '../transform/pca.js';

/**
 * Stage 1: bring queries (rows x fullDim) into the index's space. With PCA
 * only the first `prefix` rotated components are computed; without it the
 * queries are used in place (no copy, stride fullDim).
 */
export async function transformQueries(
  backend: Backend,
  pca: PcaTransform | undefined,
  queries: Float32Array,
  rows: number,
  fullDim: number,
  prefix: number,
): Promise<RowBlock> {
  if (!pca) return rowBlock(queries, rows, fullDim);
  return rowBlock(await pca.apply(backend, queries, rows, prefix), rows, prefix);
}
