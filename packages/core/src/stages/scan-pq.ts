import { rowBlock, TopK, type Backend, type Metric, type PqQuantizer } from '@adanns/compute';
import type { HeldArray, ScanResult } from '../codecs/codec.js';
import type { InvertedLists } from '../index/inverted-lists.js';
import { PQ_CENTROIDS, type ProductQuantizer } from '../quant/product-quantizer.js';
import { memberCounter, probedMembers } from './scan-flat.js';

/** What a PQ/OPQ scan needs besides the lists. */
export interface PqScanCodec {
  readonly pq: ProductQuantizer;
  /** OPQ rotation (d_s x d_s), applied to scan vectors before encoding. */
  readonly rotation?: Float32Array;
  /** Residual references per list (lists x d_s), when codes encode x - ref (IVF-PQ's default). */
  readonly refs?: Float32Array;
  /** The references rotated by the OPQ rotation, computed once (undefined without both). */
  readonly rotatedRefs?: Float32Array;
}

export interface PqScanResult extends ScanResult {
  /** Per query, multiply-adds spent on the rotation, lookup tables and residual terms. */
  quantizerFlops: Float64Array;
}

/**
 * Multiply-adds of one query's PQ/OPQ scan besides the per-vector lookups
 * (cost.ts) when it probes `probed` non-empty lists: the rotation and the
 * tables, plus per probed list its residual term q . ref (ip, cosine) or
 * its own table on q - ref (l2).
 */
export function pqQuantizerFlops(codec: Pick<PqScanCodec, 'pq' | 'rotation' | 'refs'>, metric: Metric, probed: number): number {
  const dim = codec.pq.dim;
  const perListTables = codec.refs !== undefined && metric === 'l2';
  const perQuery = (codec.rotation ? dim * dim : 0) + (perListTables ? 0 : PQ_CENTROIDS * dim);
  const perProbe = perListTables ? PQ_CENTROIDS * dim : codec.refs ? dim : 0;
  return perQuery + probed * perProbe;
}

/**
 * Stage 3 (PQ/OPQ codecs): asymmetric distance computation, one backend call
 * for the whole batch (Backend.pqScanListsTopK). Each query's scan vector
 * (prefix d_s, normalised for cosine) is rotated (OPQ) and turned into
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
  mask?: Uint32Array,
  into?: TopK,
): Promise<PqScanResult> {
  const { pq } = codec;
  const dim = pq.dim;
  const best = into ?? new TopK(rows, shortlist);
  const lut = metric === 'l2' ? 'l2' : 'ip';
  const quantizer = holdScanArrays(backend, codec);
  await backend.pqScanListsTopK(rowBlock(scanVectors, rows, dim), quantizer, lists.scanSet('pq', pq.m), probes, nprobe, lut, best, mask);
  // modelled work (cost.ts): rotation and tables per query, residual terms per probed list
  const scanned = probedMembers(probes, rows, nprobe, lists, mask);
  const size = memberCounter(lists, mask);
  const quantizerFlops = new Float64Array(rows);
  for (let q = 0; q < rows; q++) {
    let probed = 0;
    // an empty list (or one the mask leaves empty) builds no table and adds no residual term (lists.ts, composedPqScanListsTopK)
    for (let p = 0; p < nprobe; p++) if (probes[q * nprobe + p] >= 0 && size(probes[q * nprobe + p]) > 0) probed++;
    quantizerFlops[q] = pqQuantizerFlops(codec, metric, probed);
  }
  return { best, scanned, quantizerFlops };
}

/** Arena copies of each codec's scan parameters on a backend (see holdScanArrays). */
const held = new WeakMap<PqScanCodec, { backend: Backend; quantizer: PqQuantizer; arrays: HeldArray[] }>();

/**
 * The codec's quantiser as the backend's fused scan reads it: codebooks,
 * sub-space bounds, rotation and references copied once into the backend's
 * arena (read in place, not copied per call), kept until the codec is
 * released (releaseScanArrays) or searched on another backend. The codecs
 * make them when trained or loaded, so the index's size is the same before
 * and after its first search.
 */
export function holdScanArrays(backend: Backend, codec: PqScanCodec): PqQuantizer {
  const kept = held.get(codec);
  if (kept?.backend === backend) return kept.quantizer;
  if (kept) releaseScanArrays(codec);
  const { pq, rotation, refs } = codec;
  const arena = backend.arena;
  const copy = (array: Float32Array) => {
    const out = arena.float32(array.length);
    out.set(array);
    arena.touched(out);
    return out;
  };
  const rotated = rotation && refs ? codec.rotatedRefs : undefined;
  const bounds = arena.int32(pq.bounds.length);
  bounds.set(pq.bounds);
  arena.touched(bounds);
  const quantizer: PqQuantizer = {
    dim: pq.dim,
    m: pq.m,
    codebooks: copy(pq.codebooks),
    bounds,
    ...(rotation ? { rotation: copy(rotation) } : {}),
    ...(refs ? { refs: copy(refs) } : {}),
    ...(rotated ? { rotatedRefs: copy(rotated) } : {}),
  };
  const arrays: HeldArray[] = [
    { kind: 'codebooks', array: quantizer.codebooks, arena: true },
    { kind: 'codebooks', array: bounds, arena: true },
    ...(quantizer.rotation ? [{ kind: 'rotation' as const, array: quantizer.rotation, arena: true }] : []),
    ...(quantizer.refs ? [{ kind: 'codebooks' as const, array: quantizer.refs, arena: true }] : []),
    ...(quantizer.rotatedRefs ? [{ kind: 'codebooks' as const, array: quantizer.rotatedRefs, arena: true }] : []),
  ];
  held.set(codec, { backend, quantizer, arrays });
  return quantizer;
}

/** The arena copies of a codec's scan parameters (for its size breakdown; empty until made or after release). */
export function scanArraysHeld(codec: PqScanCodec): HeldArray[] {
  return held.get(codec)?.arrays ?? [];
}

/** Gives a codec's arena copies back (when the codec is released). */
export function releaseScanArrays(codec: PqScanCodec): void {
  const kept = held.get(codec);
  if (!kept) return;
  for (const { array } of kept.arrays) kept.backend.arena.release(array as Float32Array | Int32Array);
  held.delete(codec);
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
