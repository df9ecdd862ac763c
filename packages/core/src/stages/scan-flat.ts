import { computeInvNorms, rowBlock, TopK, type Backend, type Metric, type RowBlock } from '@adanns/compute';
import type { InvertedLists } from '../index/inverted-lists.js';
import { groupQueriesByList } from './probe-groups.js';

export interface ScanResult {
  /** Per query, the best `shortlist` slots and their scan scores. */
  best: TopK;
  /** Per query, how many vectors were scored (for the cost model). */
  scanned: Float64Array;
}

/**
 * Stage 3 (flat codec): score the members of each probed list at prefix
 * `scanDim`. Work is grouped by list, so each list is streamed once for all
 * the queries that probe it, as one batched backend call.
 * `probes` is rows x nprobe list numbers (-1 = none); without IVF pass
 * nprobe = 1 and every query probing list 0.
 */
export async function scanFlatLists(
  backend: Backend,
  queries: RowBlock,
  probes: Int32Array,
  nprobe: number,
  lists: InvertedLists,
  scanDim: number,
  metric: Metric,
  shortlist: number,
): Promise<ScanResult> {
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
    const block = rowBlock(gathered, m, scanDim, 0, queryInv ? gatheredInv : undefined);
    const normDim = metric === 'cosine' && lists.hasNorms(scanDim) ? scanDim : undefined;
    await backend.scanTopK(block, lists.block(l, normDim), scanDim, metric, best, lists.listSlots(l), which);
  }
  return { best, scanned };
}
