import { allowedCount, TopK, type RowEncoding } from '@adanns/compute';
import type { ScanRequest, ScanResult } from '../codecs/codec.js';
import type { InvertedLists } from '../index/inverted-lists.js';

/** A list's members a scan scores: its size, or with a mask its allowed members (counted once per list per call). */
export function memberCounter(lists: InvertedLists, mask?: Uint32Array): (list: number) => number {
  if (!mask) return (l) => lists.size(l);
  const counted = new Map<number, number>();
  return (l) => {
    let n = counted.get(l);
    if (n === undefined) counted.set(l, (n = allowedCount(mask, lists.slots(l), lists.size(l))));
    return n;
  };
}

/**
 * Stage 3 for float codecs (f32, f16, sq8): score the members of each probed
 * list at prefix `scanDim`, one backend call for the whole batch
 * (Backend.scanListsTopK: the CPU backend streams each probed list once for
 * all the queries that probe it, in one kernel call). `stride` is the values
 * each member stores (d_s); sq8 lists pass their min and scale.
 */
export async function scanFloatLists(request: ScanRequest, encoding: 'f32' | RowEncoding, stride: number, params?: Float32Array): Promise<ScanResult> {
  const { backend, queries, probes, nprobe, lists, scanDim, metric, shortlist, mask } = request;
  const best = request.into ?? new TopK(queries.rows, shortlist);
  await backend.scanListsTopK(queries, lists.scanSet(encoding, stride, params), probes, nprobe, scanDim, metric, best, mask);
  return { best, scanned: probedMembers(probes, queries.rows, nprobe, lists, mask) };
}

/**
 * Per query, the members of its probed lists (-1 probes skipped) that the
 * mask allows (all without one): what a list scan scores, for the cost model.
 */
export function probedMembers(probes: Int32Array, rows: number, nprobe: number, lists: InvertedLists, mask?: Uint32Array): Float64Array {
  const scanned = new Float64Array(rows);
  const size = memberCounter(lists, mask);
  for (let q = 0; q < rows; q++) {
    let n = 0;
    for (let p = 0; p < nprobe; p++) {
      const l = probes[q * nprobe + p];
      if (l >= 0) n += size(l);
    }
    scanned[q] = n;
  }
  return scanned;
}
