import { FASTSCAN_CENTROIDS, TopK, type Backend, type Metric } from '@adanns/compute';
import type { ScanResult } from '../codecs/codec.js';
import type { InvertedLists } from '../index/inverted-lists.js';
import { rotateRows } from '../quant/opq.js';
import type { ProductQuantizer } from '../quant/product-quantizer.js';
import { groupQueriesByList } from './probe-groups.js';

const K = FASTSCAN_CENTROIDS;

/** What a fast-scan scan needs besides the lists. */
export interface FastScanQuantizer {
  /** 16 centroids per sub-quantiser. */
  readonly pq: ProductQuantizer;
  /** OPQ rotation (d_s x d_s), applied to scan vectors before encoding. */
  readonly rotation?: Float32Array;
  /** Residual references per list (lists x d_s), when codes encode x - ref. */
  readonly refs?: Float32Array;
  /**
   * l2 with residuals: per list l, sub-quantiser s and centroid c,
   * 2 <(R ref_l)_s, c> + ||c||^2 (lists x M x 16), so a (query, list) table
   * is the query's 2 <(R q)_s, c> less these, plus the bias -||q - ref_l||^2.
   */
  readonly listTerms?: Float32Array;
}

/**
 * Quantises one query's float tables (m x 16 from tables[at]) to bytes as
 * FAISS does: each sub-quantiser's minimum is subtracted and all share one
 * scale a = 255 / (largest span), so a code's byte sum S maps back to the
 * float score as bias + S / a with bias the sum of the minima (+ `extra`).
 * The error per entry is at most half a step, span / 510.
 */
export function quantizeTable(tables: Float32Array, at: number, m: number, out: Uint8Array, outAt: number, scales: Float32Array, biases: Float32Array, i: number, extra = 0): void {
  let bias = extra;
  let span = 0;
  for (let s = 0; s < m; s++) {
    let lo = Infinity, hi = -Infinity;
    for (let c = 0; c < K; c++) {
      const v = tables[at + s * K + c];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    bias += lo;
    span = Math.max(span, hi - lo);
  }
  // a constant table (a zero query) scores every code alike: all bytes 0
  const a = span > 0 ? 255 / span : 1;
  for (let s = 0; s < m; s++) {
    let lo = Infinity;
    for (let c = 0; c < K; c++) lo = Math.min(lo, tables[at + s * K + c]);
    for (let c = 0; c < K; c++) out[outAt + s * K + c] = Math.min(255, Math.round((tables[at + s * K + c] - lo) * a));
  }
  scales[i] = 1 / a;
  biases[i] = bias;
}

/**
 * Stage 3 for the 4-bit fast-scan codecs: per query 16-entry float tables
 * per sub-quantiser (on the rotated scan vector for OPQ), quantised to bytes
 * (quantizeTable), then one backend fastScanTopK call per probed list for all
 * the queries that probe it. With residuals, ip and cosine add q . ref_l to
 * the bias; l2 subtracts the list's precomputed terms from 2 <R q, c> and
 * re-quantises per (query, list). Scores are approximate (8-bit tables): the
 * index's re-rank stage, which the spec requires, makes the answer exact.
 */
export async function scanFastScanLists(
  backend: Backend,
  scanVectors: Float32Array,
  rows: number,
  probes: Int32Array,
  nprobe: number,
  lists: InvertedLists,
  codec: FastScanQuantizer,
  metric: Metric,
  shortlist: number,
): Promise<ScanResult & { quantizerFlops: Float64Array }> {
  const { pq, rotation, refs, listTerms } = codec;
  const dim = pq.dim;
  const m = pq.m;
  const size = m * K;
  const best = new TopK(rows, shortlist);
  const scanned = new Float64Array(rows);
  const quantizerFlops = new Float64Array(rows);
  const rotated = rotation ? await rotateRows(backend, rotation, dim, scanVectors, rows) : scanVectors;
  const perList = refs !== undefined && metric === 'l2';
  if (perList && !listTerms) throw new Error('fast scan: l2 residual codes need the lists\' table terms');
  const tables = await pq.lookupTables(backend, rotated, rows, metric === 'l2' && !perList ? 'l2' : 'ip');
  const bytes = new Uint8Array(rows * size);
  const scales = new Float32Array(rows);
  const biases = new Float32Array(rows);
  for (let q = 0; q < rows; q++) {
    if (!perList) quantizeTable(tables, q * size, m, bytes, q * size, scales, biases, q);
    quantizerFlops[q] = (rotation ? dim * dim : 0) + K * dim + (perList ? 0 : size);
  }
  // host work the cost model charges (cost.ts): a counting backend adds it up
  if (!perList) backend.tally?.(rows * size);
  const { start, members } = groupQueriesByList(probes, rows, nprobe, lists.count);
  const groupBytes = new Uint8Array(rows * size);
  const groupScales = new Float32Array(rows);
  const groupBiases = new Float32Array(rows);
  const diff = new Float32Array(perList ? size : 0);
  for (let l = 0; l < lists.count; l++) {
    const count = start[l + 1] - start[l];
    const n = lists.size(l);
    if (count === 0 || n === 0) continue;
    const which = members.subarray(start[l], start[l + 1]);
    let host = 0;
    for (let i = 0; i < count; i++) {
      const q = which[i];
      if (perList) {
        // the (query, list) table 2 <R q, c> - (2 <R ref_l, c> + ||c||^2), bias -||q - ref_l||^2 (R keeps lengths)
        for (let e = 0; e < size; e++) diff[e] = 2 * tables[q * size + e] - listTerms![l * size + e];
        let d2 = 0;
        for (let j = 0; j < dim; j++) {
          const d = scanVectors[q * dim + j] - refs![l * dim + j];
          d2 += d * d;
        }
        quantizeTable(diff, 0, m, groupBytes, i * size, groupScales, groupBiases, i, -d2);
        quantizerFlops[q] += 2 * size + dim;
        host += 2 * size + dim;
      } else {
        groupBytes.set(bytes.subarray(q * size, (q + 1) * size), i * size);
        groupScales[i] = scales[q];
        let bias = biases[q];
        if (refs) {
          // residual codes: q . x = q . ref + q . (x - ref)
          let dot = 0;
          for (let j = 0; j < dim; j++) dot += scanVectors[q * dim + j] * refs[l * dim + j];
          bias += dot;
          quantizerFlops[q] += dim;
          host += dim;
        }
        groupBiases[i] = bias;
      }
      scanned[q] += n;
    }
    backend.tally?.(host);
    await backend.fastScanTopK(groupBytes, count, m, lists.codes(l), n, groupScales, groupBiases, best, lists.slots(l), which);
  }
  return { best, scanned, quantizerFlops };
}
