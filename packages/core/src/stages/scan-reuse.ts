import { TopK } from '@adanns/compute';
import type { ScanResult } from '../codecs/codec.js';

/**
 * Scan sharing (calibration, planner/calibrate.ts): searches that differ only
 * in their shortlist probe the same lists and score the same vectors, and a
 * scan's order is total (score, then slot: TopK), so the top s of a scan is
 * the top s of its top S >= s. One scan at the longest shortlist then serves
 * each shorter one cut from it; the stages after the scan run as they would
 * (they read the candidates, whatever their order in a row).
 */
export interface SharedScan {
  /** The scan's result (a copy: the search that made it goes on with its own). */
  scan: ScanResult;
  /** Each query's scores, ascending (rows x the scan's shortlist; a row's first `sizes[q]` hold them). */
  ascending: Float32Array;
}

/** A scan's result kept for searches at shorter shortlists. */
export function shareScan(scan: ScanResult): SharedScan {
  const { best } = scan;
  const copy = new TopK(best.rows, best.k);
  copy.ids.set(best.ids);
  copy.scores.set(best.scores);
  copy.sizes.set(best.sizes);
  // the typed arrays' own sort (no comparator) is what makes this cheaper than sorting the heaps
  const ascending = best.scores.slice();
  for (let q = 0; q < best.rows; q++) ascending.subarray(q * best.k, q * best.k + best.sizes[q]).sort();
  return { scan: { best: copy, scanned: scan.scanned, ...(scan.quantizerFlops ? { quantizerFlops: scan.quantizerFlops } : {}) }, ascending };
}

/**
 * The scan at a shorter shortlist, cut from a shared one: each query's best
 * `shortlist` candidates in TopK's order (those above the shortlist-th best
 * score, then the lowest slots among those tied with it), shared in turn
 * (searches at shortlists shorter still cut from it: less to read). The
 * vectors scanned and the quantizer work are the longer scan's: the same
 * lists were probed.
 */
export function narrowScan(shared: SharedScan, shortlist: number, rows: number): SharedScan {
  const from = shared.scan.best;
  if (from.rows !== rows) throw new Error(`reuseScan: a scan of ${from.rows} queries cannot serve a search of ${rows}`);
  if (shortlist > from.k) throw new Error(`reuseScan: a scan at shortlist ${from.k} cannot serve shortlist ${shortlist}`);
  const best = new TopK(rows, shortlist);
  const ascending = new Float32Array(rows * shortlist);
  const ties: number[] = [];
  for (let q = 0; q < rows; q++) {
    const size = from.sizes[q];
    const n = Math.min(shortlist, size);
    const src = q * from.k;
    const dst = q * shortlist;
    best.sizes[q] = n;
    // the row's best n scores are the last n of its ascending ones
    ascending.set(shared.ascending.subarray(src + size - n, src + size), dst);
    if (n === size) {
      best.ids.set(from.ids.subarray(src, src + n), dst);
      best.scores.set(from.scores.subarray(src, src + n), dst);
      continue;
    }
    const cut = shared.ascending[src + size - n];
    let w = 0;
    ties.length = 0;
    for (let i = 0; i < size; i++) {
      const score = from.scores[src + i];
      if (score > cut) {
        best.ids[dst + w] = from.ids[src + i];
        best.scores[dst + w++] = score;
      } else if (score === cut) ties.push(from.ids[src + i]);
    }
    if (w + ties.length < n) {
      // NaN scores (which no comparison orders): the row pushed through a heap as the scan's own would be
      const row = new TopK(1, n);
      for (let i = 0; i < size; i++) row.push(0, from.ids[src + i], from.scores[src + i]);
      best.ids.set(row.ids, dst);
      best.scores.set(row.scores, dst);
      continue;
    }
    // ties at the cut: the lowest slots win (TopK's order)
    if (w + ties.length > n) ties.sort((a, b) => a - b);
    for (let i = 0; w < n; i++) {
      best.ids[dst + w] = ties[i];
      best.scores[dst + w++] = cut;
    }
  }
  return { scan: { best, scanned: shared.scan.scanned, ...(shared.scan.quantizerFlops ? { quantizerFlops: shared.scan.quantizerFlops } : {}) }, ascending };
}

/** What a search at `shortlist` takes from a shared scan (search's `reuseScan`): narrowScan's cut, a copy the search's stages may consume. */
export function cutScan(shared: SharedScan, shortlist: number, rows: number): ScanResult {
  return narrowScan(shared, shortlist, rows).scan;
}
