import type { TopK } from './topk.js';

/**
 * A block of row-major float32 vectors inside a larger buffer: row i starts at
 * data[offset + i * stride]. Kernels read only the first `dim` values of a row
 * (the Matryoshka prefix), so one stored matrix serves every prefix length.
 */
export interface RowBlock {
  readonly data: Float32Array;
  readonly rows: number;
  readonly stride: number;
  readonly offset?: number;
  /**
   * For cosine: 1 / ||row[:dim]|| for each row at the dim being scored (0 for a
   * zero prefix). Kernels compute it when absent; stored indexes pass it so a
   * scan does not pay for the norms again.
   */
  readonly invNorms?: Float32Array;
}

/** The rows numbered by `which` of a row-major rows x dim matrix, copied in that order. */
export function gatherRows(data: Float32Array, dim: number, which: ArrayLike<number>): Float32Array {
  const out = new Float32Array(which.length * dim);
  for (let i = 0; i < which.length; i++) out.set(data.subarray(which[i] * dim, (which[i] + 1) * dim), i * dim);
  return out;
}

export function rowBlock(data: Float32Array, rows: number, stride: number, offset = 0, invNorms?: Float32Array): RowBlock {
  if (!Number.isInteger(rows) || rows < 0) throw new Error(`rows must be a non-negative integer, got ${rows}`);
  if (!Number.isInteger(stride) || stride < 1) throw new Error(`stride must be a positive integer, got ${stride}`);
  if (rows > 0 && offset + (rows - 1) * stride > data.length) {
    throw new Error(`row block of ${rows} rows x stride ${stride} at offset ${offset} exceeds buffer of ${data.length} floats`);
  }
  return invNorms ? { data, rows, stride, offset, invNorms } : { data, rows, stride, offset };
}

/** Checks that every row has at least `dim` readable values. */
export function checkPrefix(block: RowBlock, dim: number, what: string): void {
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`${what}: prefix length must be a positive integer, got ${dim}`);
  if (dim > block.stride) throw new Error(`${what}: prefix length ${dim} exceeds row length ${block.stride}`);
  const end = (block.offset ?? 0) + (block.rows - 1) * block.stride + dim;
  if (block.rows > 0 && end > block.data.length) {
    throw new Error(`${what}: ${block.rows} rows of prefix ${dim} need ${end} floats, buffer has ${block.data.length}`);
  }
}

/**
 * Groups of a block's rows (Backend.rescoreTopK's hint): of[row] is the
 * group of base row `row` (an IVF index's list); a value outside [0, count)
 * counts as group 0.
 */
export interface RowGroups {
  readonly of: Int32Array;
  readonly count: number;
}

/** Checks the shapes of a rescoreTopK call: one candidate row and one result row per query, candidates inside the base, groups covering the base. */
export function checkRescore(queries: RowBlock, base: RowBlock, dim: number, candidates: TopK, best: TopK, groups?: RowGroups): void {
  checkPrefix(queries, dim, 'rescore queries');
  checkPrefix(base, dim, 'rescore base');
  if (groups && (groups.of.length < base.rows || !Number.isInteger(groups.count) || groups.count < 1)) {
    throw new Error(`rescore: row groups need a group for each of the ${base.rows} base rows and a positive count (got ${groups.of.length} rows, count ${groups.count})`);
  }
  if (candidates.rows < queries.rows || best.rows < queries.rows) throw new Error(`rescore: ${queries.rows} queries need as many candidate and result rows (${candidates.rows}, ${best.rows})`);
  for (let q = 0; q < queries.rows; q++) {
    for (let i = 0; i < candidates.sizes[q]; i++) {
      const row = candidates.ids[q * candidates.k + i];
      if (row < 0 || row >= base.rows) throw new Error(`rescore: candidate row ${row} outside the ${base.rows} base rows`);
    }
  }
}

/** Checks the arguments of an adcScanTopK call against each other. */
export function checkAdcScan(tables: Float32Array, queries: number, m: number, codes: Uint8Array, rows: number, baseIds?: Int32Array, bias?: Float32Array): void {
  if (tables.length < queries * m * 256) throw new Error(`ADC tables hold ${tables.length} values, ${queries} queries x ${m} x 256 needed`);
  if (codes.length < rows * m) throw new Error(`ADC codes hold ${codes.length} bytes, ${rows} x ${m} needed`);
  if (baseIds && baseIds.length < rows) throw new Error(`ADC scan: ${baseIds.length} ids for ${rows} codes`);
  if (bias && bias.length < queries) throw new Error(`ADC scan: ${bias.length} biases for ${queries} queries`);
}

/** Checks the arguments of an assign call: prefixes, at least one centroid, outputs for every vector. */
export function checkAssign(vectors: RowBlock, centroids: RowBlock, dim: number, labels: Int32Array, scores: Float32Array): void {
  checkPrefix(vectors, dim, 'assign vectors');
  checkPrefix(centroids, dim, 'assign centroids');
  if (centroids.rows === 0) throw new Error('assign: no centroids');
  if (labels.length < vectors.rows || scores.length < vectors.rows) throw new Error(`assign: outputs hold ${Math.min(labels.length, scores.length)} values for ${vectors.rows} vectors`);
}

/** Checks the arguments of a centroidSums call: labels for every vector, all below k, outputs of k x dim and k. */
export function checkCentroidSums(vectors: RowBlock, dim: number, labels: Int32Array, k: number, sums: Float32Array, counts: Int32Array): void {
  checkPrefix(vectors, dim, 'centroid sums');
  if (labels.length < vectors.rows) throw new Error(`centroid sums: ${labels.length} labels for ${vectors.rows} vectors`);
  if (sums.length < k * dim || counts.length < k) throw new Error(`centroid sums: outputs hold ${sums.length} sums and ${counts.length} counts, ${k} x ${dim} and ${k} needed`);
  for (let i = 0; i < vectors.rows; i++) {
    if (labels[i] < 0 || labels[i] >= k) throw new Error(`centroid sums: label ${labels[i]} of vector ${i} is not below k = ${k}`);
  }
}
