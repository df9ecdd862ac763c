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
 * Stage 3 for the 4-bit fast-scan codecs: per query 16-entry float tables
 * per sub-quantiser (on the rotated scan vector for OPQ) and per probe the
 * residual term (q . ref_l for ip and cosine, -||q - ref_l||^2 for l2), then
 * one backend fastScanListsTopK call for the whole batch, which quantises
 * each probe's table to bytes (per (query, list) for l2 residuals: 2 <R q, c>
 * less the list's terms) and scans its list. Scores are approximate (8-bit
 * tables): the index's re-rank stage, which the spec requires, makes the
 * answer exact.
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
  const best = into ?? new TopK(rows, shortlist);
  // with a mask, a list's members are those it allows: a list left empty costs no table or residual term
  const members = memberCounter(lists, mask);
  const scanned = new Float64Array(rows);
  const quantizerFlops = new Float64Array(rows);
  const rotated = rotation ? await rotateRows(backend, rotation, dim, scanVectors, rows) : scanVectors;
  const perList = refs !== undefined && metric === 'l2';
  if (perList && !listTerms) throw new Error('fast scan: l2 residual codes need the lists\' table terms');
  // for l2 residuals <R q, c>: the kernel makes each probe's 2 <R q, c> - terms_l
  const query = fastScanTables(pq, rotated, rows, metric === 'l2' && !perList);
  // host work the cost model charges (cost.ts), for a counting backend to add up (it counts the call's quantisation itself)
  backend.tally?.(rows * K * dim);
  // per (query, probe) residual term, summed in float64 and rounded once: q . ref_l (R keeps lengths for l2)
  const extra = refs ? new Float32Array(rows * nprobe) : undefined;
  let host = 0;
  for (let q = 0; q < rows; q++) {
    let probed = 0;
    for (let p = 0; p < nprobe; p++) {
      const i = q * nprobe + p;
      const l = probes[i];
      const n = l >= 0 ? members(l) : 0;
      if (n === 0) continue;
      if (extra) {
        let acc = 0;
        for (let j = 0; j < dim; j++) {
          const x = scanVectors[q * dim + j], r = refs![l * dim + j];
          acc += perList ? (x - r) * (x - r) : x * r;
        }
        extra[i] = perList ? -acc : acc;
        host += dim;
      }
      scanned[q] += n;
      probed++;
    }
    quantizerFlops[q] = fastScanQuantizerFlops(codec, metric, probed);
  }
  backend.tally?.(host);
  // one call for the whole batch: every query's probed lists, its top-k kept in the kernel
  const view = { count: lists.count, size: (l: number) => lists.size(l), codes: (l: number) => lists.codes(l), ids: (l: number) => lists.slots(l) };
  await backend.fastScanListsTopK({ query, listTerms: perList ? listTerms : undefined, extra }, pq.m, view, probes, rows, nprobe, best, mask);
  return { best, scanned, quantizerFlops };
}
