import { computeInvNorms, rowBlock, TopK, type RowBlock } from '@adanns/compute';
import type { ScanRequest, ScanResult } from '../codecs/codec.js';
import { groupQueriesByList } from './probe-groups.js';

/**
 * Scans one probed list for a group of queries: `queries` are the gathered
 * query prefixes (with cosine inverse norms), `which` their rows in `best`.
 */
export type ListScan = (queries: RowBlock, list: number, which: Int32Array, best: TopK) => Promise<void>;

/**
 * Stage 3 for float codecs (f32, f16, sq8): score the members of each probed
 * list at prefix `scanDim`. Work is grouped by list, so each list is streamed
 * once for all the queries that probe it, as one batched backend call made
 * by `scanList` (float32 rows or encoded rows).
 */
export async function scanFloatLists(request: ScanRequest, scanList: ListScan): Promise<ScanResult> {
  const { queries, probes, nprobe, lists, scanDim, metric, shortlist } = request;
  const rows = queries.rows;
  const best = new TopK(rows, shortlist);
  const scanned = new Float64Array(rows);
  const { start, members } = groupQueriesByList(probes, rows, nprobe, lists.count);
  const queryInv = metric === 'cosine' ? computeInvNorms(queries, scanDim) : undefined;
  const gathered = new Float32Array(rows * scanDim);
  const gatheredInv = new Float32Array(rows);
  const qo = queries.offset ?? 0;
  for (let l = 0; l < lists.count; l++) {
    const size = lists.size(l);
    const m = start[l + 1] - start[l];
    if (m === 0 || size === 0) continue;
    const which = members.subarray(start[l], start[l + 1]);
    for (let i = 0; i < m; i++) {
      const q = which[i];
      const from = qo + q * queries.stride;
      gathered.set(queries.data.subarray(from, from + scanDim), i * scanDim);
      if (queryInv) gatheredInv[i] = queryInv[q];
      scanned[q] += size;
    }
    await scanList(rowBlock(gathered, m, scanDim, 0, queryInv ? gatheredInv : undefined), l, which, best);
  }
  return { best, scanned };
}
