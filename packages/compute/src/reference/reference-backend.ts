import { heapArena } from '../arena.js';
import type { Backend } from '../backend.js';
import { checkCoded, codedInvNorms, decodeRows, type CodedRows } from '../coded.js';
import { checkFastScan, composedFastScanListsTopK, fastScanScore, type FastScanLists, type FastScanTables } from '../fastscan.js';
import type { Metric } from '../metric.js';
import { checkAdcScan, checkAssign, checkCentroidSums, checkPrefix, checkRescore, type RowBlock } from '../rows.js';
import type { TopK } from '../topk.js';
import { composedPqScanListsTopK, composedRescoreListsTopK, composedScanListsTopK, type ListCandidates, type ListSet, type PqQuantizer } from '../lists.js';
import { checkMask, maskCodes, maskCoded, maskFastScanCodes, maskRows } from '../mask.js';
import { computeInvNorms, scoreFourQueriesAgainstRows, scoreQueryAgainstRows } from './kernels.js';

/** Base rows per cache block: about 64 KiB of vector data, at least 16 rows. */
function blockRows(dim: number): number {
  return Math.max(16, Math.floor(16384 / dim));
}

function baseInvNorms(base: RowBlock, dim: number, metric: Metric): Float32Array | undefined {
  if (metric !== 'cosine') return undefined;
  if (base.invNorms) {
    if (base.invNorms.length < base.rows) throw new Error(`invNorms has ${base.invNorms.length} entries for ${base.rows} rows`);
    return base.invNorms;
  }
  return computeInvNorms(base, dim);
}

/**
 * Scores queries [q, q + count) (count <= 4) against base rows [from, to)
 * into out (row t of the group at out[t * outStride]), four at a time when it can.
 */
function scoreGroup(
  queries: RowBlock,
  qInv: Float32Array | undefined,
  q: number,
  count: number,
  base: RowBlock,
  bInv: Float32Array | undefined,
  from: number,
  to: number,
  dim: number,
  metric: Metric,
  out: Float32Array,
  outStride: number,
): void {
  const qo = (queries.offset ?? 0) + q * queries.stride;
  if (count === 4) {
    scoreFourQueriesAgainstRows(queries.data, qo, queries.stride, qInv?.subarray(q, q + 4), base, bInv, from, to, dim, metric, out, 0, outStride);
    return;
  }
  for (let t = 0; t < count; t++) {
    scoreQueryAgainstRows(queries.data, qo + t * queries.stride, qInv ? qInv[q + t] : 1, base, bInv, from, to, dim, metric, out, t * outStride);
  }
}

/** The plain TypeScript backend: the reference every faster backend is tested against. */
export class ReferenceBackend implements Backend {
  readonly name = 'reference';
  readonly arena = heapArena;

  async score(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, out: Float32Array): Promise<void> {
    checkPrefix(queries, dim, 'score queries');
    checkPrefix(base, dim, 'score base');
    if (out.length < queries.rows * base.rows) throw new Error(`score output holds ${out.length} values, needs ${queries.rows * base.rows}`);
    const bInv = baseInvNorms(base, dim, metric);
    const qInv = metric === 'cosine' ? (queries.invNorms ?? computeInvNorms(queries, dim)) : undefined;
    for (let q = 0; q < queries.rows; q += 4) {
      const count = Math.min(4, queries.rows - q);
      scoreGroup(queries, qInv, q, count, base, bInv, 0, base.rows, dim, metric, out.subarray(q * base.rows), base.rows);
    }
  }

  async scanTopK(
    queries: RowBlock,
    base: RowBlock,
    dim: number,
    metric: Metric,
    best: TopK,
    baseIds?: Int32Array,
    queryRows?: Int32Array,
    mask?: Uint32Array,
  ): Promise<void> {
    checkPrefix(queries, dim, 'scan queries');
    checkPrefix(base, dim, 'scan base');
    checkMask(mask, 'scan');
    if (base.rows === 0 || queries.rows === 0) return;
    if (mask) {
      // the allowed rows alone, compacted (mask.ts): masked rows are never scored
      const kept = maskRows(mask, base, dim, baseIds);
      if (kept) return kept.base.rows > 0 ? this.scanTopK(queries, kept.base, dim, metric, best, kept.ids, queryRows) : undefined;
    }
    const bInv = baseInvNorms(base, dim, metric);
    const qInv = metric === 'cosine' ? (queries.invNorms ?? computeInvNorms(queries, dim)) : undefined;
    const step = blockRows(dim);
    const width = Math.min(step, base.rows);
    const scratch = new Float32Array(4 * width);
    for (let from = 0; from < base.rows; from += step) {
      const to = Math.min(base.rows, from + step);
      for (let q = 0; q < queries.rows; q += 4) {
        const count = Math.min(4, queries.rows - q);
        scoreGroup(queries, qInv, q, count, base, bInv, from, to, dim, metric, scratch, width);
        for (let t = 0; t < count; t++) {
          const row = queryRows ? queryRows[q + t] : q + t;
          let threshold = best.threshold(row);
          for (let j = from; j < to; j++) {
            const s = scratch[t * width + j - from];
            if (s >= threshold) {
              best.push(row, baseIds ? baseIds[j] : j, s);
              threshold = best.threshold(row);
            }
          }
        }
      }
    }
  }

  async scanCodedTopK(queries: RowBlock, base: CodedRows, dim: number, metric: Metric, best: TopK, baseIds?: Int32Array, queryRows?: Int32Array, mask?: Uint32Array): Promise<void> {
    checkPrefix(queries, dim, 'scan queries');
    checkCoded(base, dim, 'scan base');
    checkMask(mask, 'scan');
    if (base.rows === 0 || queries.rows === 0) return;
    if (mask) {
      const kept = maskCoded(mask, base, baseIds);
      if (kept) return kept.base.rows > 0 ? this.scanCodedTopK(queries, kept.base, dim, metric, best, kept.ids, queryRows) : undefined;
    }
    if (baseIds && baseIds.length < base.rows) throw new Error(`scan: ${baseIds.length} base ids for ${base.rows} rows`);
    // decode a cache block of rows at a time and score it as float32 rows
    const inv = metric === 'cosine' ? (base.invNorms ?? codedInvNorms(base, dim)) : undefined;
    const step = blockRows(dim);
    const decoded = new Float32Array(Math.min(step, base.rows) * dim);
    for (let from = 0; from < base.rows; from += step) {
      const to = Math.min(base.rows, from + step);
      decodeRows(base, from, to, dim, decoded);
      const block = { data: decoded, rows: to - from, stride: dim, offset: 0, ...(inv ? { invNorms: inv.subarray(from, to) } : {}) };
      await this.scanTopK(queries, block, dim, metric, best, baseIds ? baseIds.subarray(from, to) : Int32Array.from({ length: to - from }, (_, j) => from + j), queryRows);
    }
  }

  async rescoreTopK(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, candidates: TopK, best: TopK): Promise<void> {
    checkRescore(queries, base, dim, candidates, best);
    const bInv = baseInvNorms(base, dim, metric);
    const qInv = metric === 'cosine' ? (queries.invNorms ?? computeInvNorms(queries, dim)) : undefined;
    const score = new Float32Array(1);
    const qo = queries.offset ?? 0;
    for (let q = 0; q < queries.rows; q++) {
      for (let i = 0; i < candidates.sizes[q]; i++) {
        const row = candidates.ids[q * candidates.k + i];
        scoreQueryAgainstRows(queries.data, qo + q * queries.stride, qInv ? qInv[q] : 1, base, bInv, row, row + 1, dim, metric, score, 0);
        if (score[0] >= best.threshold(q)) best.push(q, row, score[0]);
      }
    }
  }

  /** rescoreTopK of the gathered, decoded members (the contract's definition, lists.ts). */
  rescoreListsTopK(queries: RowBlock, lists: ListSet, candidates: ListCandidates, dim: number, metric: Metric, best: TopK): Promise<void> {
    return composedRescoreListsTopK(this, queries, lists, candidates, dim, metric, best);
  }

  async adcScanTopK(
    tables: Float32Array,
    queries: number,
    m: number,
    codes: Uint8Array,
    rows: number,
    best: TopK,
    baseIds?: Int32Array,
    queryRows?: Int32Array,
    bias?: Float32Array,
    mask?: Uint32Array,
  ): Promise<void> {
    checkAdcScan(tables, queries, m, codes, rows, baseIds, bias);
    checkMask(mask, 'ADC scan');
    if (mask) {
      const kept = maskCodes(mask, codes, rows, m, baseIds);
      if (kept) return kept.rows > 0 ? this.adcScanTopK(tables, queries, m, kept.codes, kept.rows, best, kept.ids, queryRows, bias) : undefined;
    }
    for (let q = 0; q < queries; q++) {
      const row = queryRows ? queryRows[q] : q;
      const t = q * m * 256;
      const b = bias ? bias[q] : 0;
      let threshold = best.threshold(row);
      for (let j = 0; j < rows; j++) {
        const c = j * m;
        let s = 0;
        for (let k = 0; k < m; k++) s += tables[t + k * 256 + codes[c + k]];
        const score = Math.fround(s + b);
        if (score >= threshold) {
          best.push(row, baseIds ? baseIds[j] : j, score);
          threshold = best.threshold(row);
        }
      }
    }
  }

  async fastScanTopK(
    tables: Uint8Array,
    queries: number,
    m: number,
    codes: Uint8Array,
    rows: number,
    scales: Float32Array,
    bias: Float32Array,
    best: TopK,
    baseIds?: Int32Array,
    queryRows?: Int32Array,
    mask?: Uint32Array,
  ): Promise<void> {
    checkFastScan(tables, queries, m, codes, rows, scales, bias, best, baseIds, queryRows);
    checkMask(mask, 'fast scan');
    if (mask) {
      const kept = maskFastScanCodes(mask, codes, rows, m, baseIds);
      if (kept) return kept.rows > 0 ? this.fastScanTopK(tables, queries, m, kept.codes, kept.rows, scales, bias, best, kept.ids, queryRows) : undefined;
    }
    for (let q = 0; q < queries; q++) {
      const row = queryRows ? queryRows[q] : q;
      const t = q * m * 16;
      let threshold = best.threshold(row);
      for (let j = 0; j < rows; j++) {
        // the block layout of fastscan.ts: block j >> 5, byte j & 15 of each sub-quantiser's 16, high nibble for lanes 16-31
        const at = (j >> 5) * 16 * m + (j & 15);
        const shift = j & 16 ? 4 : 0;
        let sum = 0;
        for (let s = 0; s < m; s++) sum += tables[t + s * 16 + ((codes[at + 16 * s] >> shift) & 15)];
        const score = fastScanScore(sum, scales[q], bias[q]);
        if (score >= threshold) {
          best.push(row, baseIds ? baseIds[j] : j, score);
          threshold = best.threshold(row);
        }
      }
    }
  }

  /** One scanTopK / scanCodedTopK per probed list (the contract's definition, lists.ts). */
  scanListsTopK(queries: RowBlock, lists: ListSet, probes: Int32Array, nprobe: number, dim: number, metric: Metric, best: TopK, mask?: Uint32Array): Promise<void> {
    return composedScanListsTopK(this, queries, lists, probes, nprobe, dim, metric, best, mask);
  }

  /** Rotation and tables through score(), one adcScanTopK per (query, probed list) (lists.ts). */
  pqScanListsTopK(queries: RowBlock, pq: PqQuantizer, lists: ListSet, probes: Int32Array, nprobe: number, metric: Metric, best: TopK, mask?: Uint32Array): Promise<void> {
    return composedPqScanListsTopK(this, queries, pq, lists, probes, nprobe, metric, best, mask);
  }

  fastScanListsTopK(tables: FastScanTables, m: number, lists: FastScanLists, probes: Int32Array, queries: number, nprobe: number, best: TopK, mask?: Uint32Array): Promise<void> {
    return composedFastScanListsTopK(this, tables, m, lists, probes, queries, nprobe, best, mask);
  }

  async assign(vectors: RowBlock, centroids: RowBlock, dim: number, metric: Metric, labels: Int32Array, scores: Float32Array): Promise<void> {
    checkAssign(vectors, centroids, dim, labels, scores);
    const cInv = baseInvNorms(centroids, dim, metric);
    const vInv = metric === 'cosine' ? (vectors.invNorms ?? computeInvNorms(vectors, dim)) : undefined;
    const k = centroids.rows;
    const scratch = new Float32Array(4 * k);
    for (let i = 0; i < vectors.rows; i += 4) {
      const count = Math.min(4, vectors.rows - i);
      scoreGroup(vectors, vInv, i, count, centroids, cInv, 0, k, dim, metric, scratch, k);
      for (let t = 0; t < count; t++) {
        let bestIndex = 0;
        let bestScore = scratch[t * k];
        for (let c = 1; c < k; c++) {
          if (scratch[t * k + c] > bestScore) {
            bestScore = scratch[t * k + c];
            bestIndex = c;
          }
        }
        labels[i + t] = bestIndex;
        scores[i + t] = bestScore;
      }
    }
  }

  async centroidSums(vectors: RowBlock, dim: number, labels: Int32Array, k: number, sums: Float32Array, counts: Int32Array): Promise<void> {
    checkCentroidSums(vectors, dim, labels, k, sums, counts);
    const total = new Float64Array(k * dim);
    counts.fill(0, 0, k);
    const { data, stride } = vectors;
    const offset = vectors.offset ?? 0;
    for (let i = 0; i < vectors.rows; i++) {
      const c = labels[i];
      counts[c]++;
      for (let j = 0; j < dim; j++) total[c * dim + j] += data[offset + i * stride + j];
    }
    sums.set(total);
  }

  async dispose(): Promise<void> {}
}
