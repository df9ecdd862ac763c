import { rowBlock, type Backend } from '@adanns/compute';
import { kmeans } from '../kmeans.js';

/** Centroids per sub-quantiser: 8-bit codes. */
export const PQ_CENTROIDS = 256;

/**
 * Sub-space boundaries for M sub-quantisers over `dim` values: M + 1 offsets.
 * When dim is not a multiple of M the first (dim mod M) sub-spaces take one
 * extra dimension, so every dimension is quantised and nothing is padded.
 */
export function subspaceBounds(dim: number, m: number): Int32Array {
  if (!Number.isInteger(m) || m < 1) throw new Error(`PQ: byte count M must be a positive integer, got ${m}`);
  if (m > dim) throw new Error(`PQ: M = ${m} sub-quantisers need at least ${m} dimensions, the scan prefix has ${dim}`);
  const bounds = new Int32Array(m + 1);
  const base = Math.floor(dim / m);
  const extra = dim % m;
  for (let s = 0; s < m; s++) bounds[s + 1] = bounds[s] + base + (s < extra ? 1 : 0);
  return bounds;
}

function checkCentroids(k: number): number {
  if (!Number.isInteger(k) || k < 1 || k > 256) throw new Error(`PQ: centroids per sub-quantiser must be an integer from 1 to 256 (codes are bytes), got ${k}`);
  return k;
}

export interface PqTrainOptions {
  seed?: number;
  /** Lloyd iterations per sub-quantiser (default 16). */
  iterations?: number;
  /** Warm start (previous codebooks), as OPQ does between rotation updates. */
  initial?: ProductQuantizer;
  /** Centroids per sub-quantiser (default 256, 8-bit codes; 16 for 4-bit fast-scan codes). */
  centroids?: number;
}

/**
 * Product quantiser: M sub-quantisers of `centroids` centroids each (256 by
 * default: M bytes per vector; at most 256, codes are bytes). Codebooks are
 * stored as `centroids` rows of `dim` values where row c
 * holds centroid c of every sub-space side by side, so sub-space s of the
 * codebook is a row block at offset bounds[s] with the same stride as the data.
 */
export class ProductQuantizer {
  readonly bounds: Int32Array;

  constructor(
    readonly dim: number,
    readonly m: number,
    /** centroids x dim. */
    readonly codebooks: Float32Array,
    readonly centroids = PQ_CENTROIDS,
  ) {
    this.bounds = subspaceBounds(dim, m);
    checkCentroids(centroids);
    if (codebooks.length !== centroids * dim) throw new Error(`PQ codebooks must be ${centroids} x ${dim}`);
  }

  static async train(backend: Backend, data: Float32Array, rows: number, dim: number, m: number, options: PqTrainOptions = {}): Promise<ProductQuantizer> {
    const bounds = subspaceBounds(dim, m);
    const k = checkCentroids(options.centroids ?? PQ_CENTROIDS);
    if (rows < k) throw new Error(`PQ: training needs at least ${k} vectors for ${k} centroids per sub-quantiser, got ${rows}`);
    const codebooks = new Float32Array(k * dim);
    for (let s = 0; s < m; s++) {
      const from = bounds[s];
      const sub = bounds[s + 1] - from;
      const slice = new Float32Array(rows * sub);
      for (let r = 0; r < rows; r++) slice.set(data.subarray(r * dim + from, r * dim + from + sub), r * sub);
      let initialCentroids: Float32Array | undefined;
      if (options.initial) {
        initialCentroids = new Float32Array(k * sub);
        for (let c = 0; c < k; c++) initialCentroids.set(options.initial.codebooks.subarray(c * dim + from, c * dim + from + sub), c * sub);
      }
      const { centroids } = await kmeans(backend, slice, rows, sub, k, {
        seed: (options.seed ?? 1) + s,
        iterations: options.iterations ?? 16,
        maxPointsPerCentroid: Math.ceil(rows / k),
        init: 'random',
        initialCentroids,
      });
      for (let c = 0; c < k; c++) codebooks.set(centroids.subarray(c * sub, (c + 1) * sub), c * dim + from);
    }
    return new ProductQuantizer(dim, m, codebooks, k);
  }

  /** Codes of rows x dim vectors (read with row stride `stride`): rows x M bytes. */
  async encode(backend: Backend, data: Float32Array, rows: number, stride = this.dim, offset = 0): Promise<Uint8Array> {
    const codes = new Uint8Array(rows * this.m);
    const labels = new Int32Array(rows);
    const scores = new Float32Array(rows);
    for (let s = 0; s < this.m; s++) {
      const from = this.bounds[s];
      const sub = this.bounds[s + 1] - from;
      await backend.assign(rowBlock(data, rows, stride, offset + from), rowBlock(this.codebooks, this.centroids, this.dim, from), sub, 'l2', labels, scores);
      for (let r = 0; r < rows; r++) codes[r * this.m + s] = labels[r];
    }
    return codes;
  }

  /** Reconstructions of rows x M codes: rows x dim. */
  decode(codes: Uint8Array, rows: number): Float32Array {
    const out = new Float32Array(rows * this.dim);
    for (let r = 0; r < rows; r++) {
      for (let s = 0; s < this.m; s++) {
        const from = this.bounds[s];
        const c = codes[r * this.m + s];
        out.set(this.codebooks.subarray(c * this.dim + from, c * this.dim + this.bounds[s + 1]), r * this.dim + from);
      }
    }
    return out;
  }

  /**
   * Lookup tables for ADC: for each query row, M x centroids partial scores
   * (inner products, or negated squared distances for l2), so that the score
   * of a code is the sum of its M table entries. Written to out[q * M * centroids ...].
   */
  async lookupTables(
    backend: Backend,
    queries: Float32Array,
    rows: number,
    metric: 'ip' | 'l2',
    stride = this.dim,
    offset = 0,
    out: Float32Array = new Float32Array(rows * this.m * this.centroids),
  ): Promise<Float32Array> {
    const k = this.centroids;
    const tables = new Float32Array(rows * k);
    for (let s = 0; s < this.m; s++) {
      const from = this.bounds[s];
      await backend.score(rowBlock(queries, rows, stride, offset + from), rowBlock(this.codebooks, k, this.dim, from), this.bounds[s + 1] - from, metric, tables);
      for (let q = 0; q < rows; q++) out.set(tables.subarray(q * k, (q + 1) * k), (q * this.m + s) * k);
    }
    return out;
  }
}
