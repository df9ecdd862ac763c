import { TopK, type Backend, type Metric } from '@adanns/compute';
import type { ScanResult } from '../codecs/codec.js';
import type { InvertedLists } from '../index/inverted-lists.js';
import { rotateRows } from '../quant/opq.js';
import { PQ_CENTROIDS, type ProductQuantizer } from '../quant/product-quantizer.js';

/** What a PQ/OPQ scan needs besides the lists. */
export interface PqScanCodec {
  readonly pq: ProductQuantizer;
  /** OPQ rotation (d_s x d_s), applied to scan vectors before encoding. */
  readonly rotation?: Float32Array;
  /** Residual references per list (lists x d_s), when codes encode x - ref (IVF-PQ's default). */
  readonly refs?: Float32Array;
  /** The references rotated by the OPQ rotation, computed once (undefined without both). */
  rotatedRefs(backend: Backend): Promise<Float32Array> | undefined;
}

export interface PqScanResult extends ScanResult {
  /** Per query, multiply-adds spent on the rotation, lookup tables and residual terms. */
  quantizerFlops: Float64Array;
}

/**
 * Stage 3 (PQ/OPQ codecs): asymmetric distance computation. Each query's scan
 * vector (prefix d_s, normalised for cosine) is rotated (OPQ) and turned into
 * M x 256 lookup tables; a code's score is the sum of its M table entries.
 * With residuals, inner-product metrics add the per-list term q . ref and keep
 * one table per query; l2 needs a table per (query, probed list) on q - ref.
 */
export async function scanPqLists(
  backend: Backend,
  scanVectors: Float32Array,
  rows: number,
  probes: Int32Array,
  nprobe: number,
  lists: InvertedLists,
  codec: PqScanCodec,
  metric: Metric,
  shortlist: number,
): Promise<PqScanResult> {
  const { pq, rotation, refs } = codec;
  const dim = pq.dim;
  const m = pq.m;
  const best = new TopK(rows, shortlist);
  const scanned = new Float64Array(rows);
  const quantizerFlops = new Float64Array(rows);
  const lutMetric = metric === 'l2' ? 'l2' : 'ip';
  const rotated = rotation ? await rotateRows(backend, rotation, dim, scanVectors, rows) : scanVectors;
  const perListTables = refs !== undefined && lutMetric === 'l2';
  const tables = perListTables ? new Float32Array(m * PQ_CENTROIDS) : await pq.lookupTables(backend, rotated, rows, lutMetric);
  const rotatedRefs = perListTables && rotation ? await codec.rotatedRefs(backend) : refs;
  const diff = new Float32Array(dim);
  const bias = new Float32Array(1);
  const row = new Int32Array(1);
  for (let q = 0; q < rows; q++) {
    row[0] = q;
    let flops = (rotation ? dim * dim : 0) + (perListTables ? 0 : PQ_CENTROIDS * dim);
    for (let p = 0; p < nprobe; p++) {
      const l = probes[q * nprobe + p];
      if (l < 0) continue;
      const size = lists.size(l);
      let qTables = tables.subarray(q * m * PQ_CENTROIDS, (q + 1) * m * PQ_CENTROIDS);
      bias[0] = 0;
      if (perListTables) {
        // table on (R q - R ref): the residual the codes encode
        for (let i = 0; i < dim; i++) diff[i] = rotated[q * dim + i] - rotatedRefs![l * dim + i];
        qTables = await pq.lookupTables(backend, diff, 1, 'l2', dim, 0, tables);
        flops += PQ_CENTROIDS * dim;
      } else if (refs) {
        let dot = 0;
        for (let i = 0; i < dim; i++) dot += scanVectors[q * dim + i] * refs[l * dim + i];
        bias[0] = dot;
        flops += dim;
      }
      if (size === 0) continue;
      scanned[q] += size;
      await backend.adcScanTopK(qTables, 1, m, lists.codes(l), size, best, lists.slots(l), row, bias);
    }
    quantizerFlops[q] = flops;
  }
  return { best, scanned, quantizerFlops };
}

/** The rows' first `dim` values as a contiguous matrix, L2-normalised when the metric is cosine. */
export function scanVectorsOf(data: Float32Array, rows: number, stride: number, offset: number, dim: number, metric: Metric): Float32Array {
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const from = offset + r * stride;
    let norm = 0;
    for (let i = 0; i < dim; i++) norm += data[from + i] * data[from + i];
    const scale = metric === 'cosine' && norm > 0 ? 1 / Math.sqrt(norm) : 1;
    for (let i = 0; i < dim; i++) out[r * dim + i] = data[from + i] * scale;
  }
  return out;
}
