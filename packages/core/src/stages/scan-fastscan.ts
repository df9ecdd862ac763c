import { FASTSCAN_CENTROIDS, TopK, type Backend, type Metric } from '@adanns/compute';
import type { ScanResult } from '../codecs/codec.js';
import type { InvertedLists } from '../index/inverted-lists.js';
import { rotateRows } from '../quant/opq.js';
import type { ProductQuantizer } from '../quant/product-quantizer.js';
import { memberCounter } from './scan-flat.js';

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
 * Multiply-adds of one query's fast scan besides the per-vector lookups
 * (cost.ts) when it probes `probed` non-empty lists: rotation, float tables
 * and (without per-list tables) their quantisation, plus per probed list
 * q . ref (ip, cosine residuals) or its table's terms subtracted and
 * re-quantised with ||q - ref||^2 (l2 residuals).
 */
export function fastScanQuantizerFlops(codec: Pick<FastScanQuantizer, 'pq' | 'rotation' | 'refs'>, metric: Metric, probed: number): number {
  const dim = codec.pq.dim;
  const size = codec.pq.m * K;
  const perList = codec.refs !== undefined && metric === 'l2';
  const perQuery = (codec.rotation ? dim * dim : 0) + K * dim + (perList ? 0 : size);
  return perQuery + probed * (perList ? 2 * size + dim : codec.refs ? dim : 0);
}

/**
 * Per query, m x 16 float tables on the host: <q_s, c> (ip) or
 * -||q_s - c||^2 (l2) for each sub-quantiser s and centroid c, 16 x dim
 * multiply-adds per query. With 16 centroids the work is a few hundred
 * nanoseconds per query, less than one backend call per sub-quantiser
 * (ProductQuantizer.lookupTables) costs, so it is done here.
 */
export function fastScanTables(pq: ProductQuantizer, vectors: Float32Array, rows: number, l2: boolean): Float32Array {
  const { dim, m, bounds, codebooks } = pq;
  const out = new Float32Array(rows * m * K);
  for (let q = 0; q < rows; q++) {
    const v = q * dim;
    for (let s = 0; s < m; s++) {
      const from = bounds[s], to = bounds[s + 1];
      const at = (q * m + s) * K;
      for (let c = 0; c < K; c++) {
        const b = c * dim;
        let acc = 0;
        if (l2) {
          for (let j = from; j < to; j++) {
            const d = vectors[v + j] - codebooks[b + j];
            acc += d * d;
          }
          out[at + c] = -acc;
        } else {
          for (let j = from; j < to; j++) acc += vectors[v + j] * codebooks[b + j];
          out[at + c] = acc;
        }
      }
    }
  }
  return out;
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
 * (quantizeTable), then one backend fastScanListsTopK call for the whole
 * batch (every query's probed lists). With residuals, ip and cosine add q . ref_l to
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
  mask?: Uint32Array,
  into?: TopK,
): Promise<ScanResult & { quantizerFlops: Float64Array }> {
  const { pq, rotation, refs, listTerms } = codec;
  const dim = pq.dim;
  const m = pq.m;
  const size = m * K;
  const best = into ?? new TopK(rows, shortlist);
  // with a mask, a list's members are those it allows: a list left empty costs no table or residual term
  const members = memberCounter(lists, mask);
  const scanned = new Float64Array(rows);
  const quantizerFlops = new Float64Array(rows);
  const rotated = rotation ? await rotateRows(backend, rotation, dim, scanVectors, rows) : scanVectors;
  const perList = refs !== undefined && metric === 'l2';
  if (perList && !listTerms) throw new Error('fast scan: l2 residual codes need the lists\' table terms');
  const tables = fastScanTables(pq, rotated, rows, metric === 'l2' && !perList);
  const bytes = new Uint8Array(rows * size);
  const scales = new Float32Array(rows);
  const biases = new Float32Array(rows);
  for (let q = 0; q < rows; q++) {
    if (!perList) quantizeTable(tables, q * size, m, bytes, q * size, scales, biases, q);
  }
  // host work the cost model charges (cost.ts): a counting backend adds it up
  backend.tally?.(rows * (K * dim + (perList ? 0 : size)));
  // per (query, probe): the scale and bias (and for l2 residuals the table) of that list's scan
  const entries = rows * nprobe;
  const probeScales = new Float32Array(entries);
  const probeBiases = new Float32Array(entries);
  const probeBytes = perList ? new Uint8Array(entries * size) : bytes;
  const diff = new Float32Array(perList ? size : 0);
  let host = 0;
  for (let q = 0; q < rows; q++) {
    let probed = 0;
    for (let p = 0; p < nprobe; p++) {
      const i = q * nprobe + p;
      const l = probes[i];
      const n = l >= 0 ? members(l) : 0;
      if (n === 0) continue;
      if (perList) {
        // the (query, list) table 2 <R q, c> - (2 <R ref_l, c> + ||c||^2), bias -||q - ref_l||^2 (R keeps lengths)
        for (let e = 0; e < size; e++) diff[e] = 2 * tables[q * size + e] - listTerms![l * size + e];
        let d2 = 0;
        for (let j = 0; j < dim; j++) {
          const d = scanVectors[q * dim + j] - refs![l * dim + j];
          d2 += d * d;
        }
        quantizeTable(diff, 0, m, probeBytes, i * size, probeScales, probeBiases, i, -d2);
        host += 2 * size + dim;
      } else {
        probeScales[i] = scales[q];
        let bias = biases[q];
        if (refs) {
          // residual codes: q . x = q . ref + q . (x - ref)
          let dot = 0;
          for (let j = 0; j < dim; j++) dot += scanVectors[q * dim + j] * refs[l * dim + j];
          bias += dot;
          host += dim;
        }
        probeBiases[i] = bias;
      }
      scanned[q] += n;
      probed++;
    }
    quantizerFlops[q] = fastScanQuantizerFlops(codec, metric, probed);
  }
  backend.tally?.(host);
  // one call for the whole batch: every query's probed lists, its top-k kept in the kernel
  const view = { count: lists.count, size: (l: number) => lists.size(l), codes: (l: number) => lists.codes(l), ids: (l: number) => lists.slots(l) };
  await backend.fastScanListsTopK(probeBytes, perList, probeScales, probeBiases, m, view, probes, rows, nprobe, best, mask);
  return { best, scanned, quantizerFlops };
}
