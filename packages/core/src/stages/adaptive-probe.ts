import { TopK, type Backend, type Metric, type RowBlock } from '@adanns/compute';
import type { ListCodec, ScanResult } from '../codecs/codec.js';
import { scanRound } from '../index/filtered.js';
import type { InvertedLists } from '../index/inverted-lists.js';
import type { PatienceRule } from '../params.js';

/**
 * Adaptive probing, decided from the centroid scores alone (SPANN's
 * query-aware pruning): a query probes its lists in centroid order while a
 * centroid's score is within `margin` of its best centroid's, at most the
 * cap. A query whose best centroids stand out stops early; one near several
 * cluster boundaries (many centroids almost as close) probes more. The
 * margin is fitted per mean depth on the calibration queries: for each fixed
 * nprobe n, the margin under which they probe n lists on average
 * (planner/adaptive-grid.ts); the planner then picks, per recall target, the
 * cheapest calibrated point that reaches it. Scores are the metric's "larger is closer" ones, so
 * the margin is in cosine, inner-product or negated squared-L2 units.
 */

/**
 * How many of one query's ranked lists the rule probes: `scores` are its
 * centroid scores best first (NaN past the lists that exist), `cap` how many
 * it may probe. At least one list is probed when any exists.
 */
export function probeDepth(scores: Float32Array, offset: number, cap: number, margin: number): number {
  const best = scores[offset];
  if (Number.isNaN(best)) return 0;
  let depth = 1;
  while (depth < cap && best - scores[offset + depth] <= margin) depth++;
  return depth;
}

/**
 * Cuts rows x nprobe ranked lists (best first, with their centroid scores) in
 * place to what the rule probes: -1 after each query's last list, the form
 * the batched scans skip. Returns each query's depth.
 */
export function cutProbes(lists: Int32Array, scores: Float32Array, rows: number, nprobe: number, margin: number): Int32Array {
  const depths = new Int32Array(rows);
  for (let q = 0; q < rows; q++) {
    const depth = probeDepth(scores, q * nprobe, nprobe, margin);
    depths[q] = depth;
    lists.fill(-1, q * nprobe + depth, (q + 1) * nprobe);
  }
  return depths;
}

/**
 * The margin under which queries probe `meanDepth` lists on average with this
 * cap (rows x width ranked scores, width >= cap): the margins where some
 * query's depth changes are its gaps to its best centroid, and the mean depth
 * only grows with the margin, so a bisection over the sorted gaps finds the
 * smallest margin reaching the mean (the largest gap when none does).
 */
export function marginForMeanDepth(scores: Float32Array, rows: number, width: number, cap: number, meanDepth: number): number {
  const gaps: number[] = [];
  for (let q = 0; q < rows; q++) {
    const best = scores[q * width];
    for (let i = 1; i < cap; i++) {
      const s = scores[q * width + i];
      if (!Number.isNaN(s)) gaps.push(best - s);
    }
  }
  if (gaps.length === 0) return 0;
  gaps.sort((a, b) => a - b);
  const mean = (margin: number) => {
    let total = 0;
    for (let q = 0; q < rows; q++) total += probeDepth(scores, q * width, cap, margin);
    return total / rows;
  };
  let lo = 0;
  let hi = gaps.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (mean(gaps[mid]) >= meanDepth) hi = mid;
    else lo = mid + 1;
  }
  return gaps[lo];
}

/**
 * Whether a query stops after its `depth`-th list: `recent` holds the new
 * members each list brought (ring of rule.lists entries, list d at d % lists).
 */
export function patienceStops(recent: ArrayLike<number>, offset: number, depth: number, rule: PatienceRule): boolean {
  if (depth < rule.lists) return false;
  let brought = 0;
  for (let i = 0; i < rule.lists; i++) brought += recent[offset + i];
  return brought <= rule.newMax;
}

/**
 * The `top`-th best score of one heap row (-Infinity while the row holds at
 * most `top`: all of it is the top): a quickselect on a copy in `scratch`,
 * linear on average, no allocation.
 */
function topThreshold(scores: Float32Array, from: number, size: number, top: number, scratch: Float32Array): number {
  if (size <= top) return -Infinity;
  for (let i = 0; i < size; i++) scratch[i] = scores[from + i];
  // the element that sorts at position size - top (ascending)
  const want = size - top;
  let lo = 0;
  let hi = size - 1;
  while (lo < hi) {
    const pivot = scratch[(lo + hi) >> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (scratch[i] < pivot) i++;
      while (scratch[j] > pivot) j--;
      if (i <= j) {
        const t = scratch[i];
        scratch[i++] = scratch[j];
        scratch[j--] = t;
      }
    }
    if (want <= j) hi = j;
    else if (want >= i) lo = i;
    else break;
  }
  return scratch[want];
}

/** What probeWithPatience needs of the index. */
export interface PatienceContext {
  backend: Backend;
  codec: ListCodec;
  lists: InvertedLists;
  metric: Metric;
}

/**
 * Scans each query's ranked lists (rows x cap, best first, -1 past the lists
 * that exist) one list per round into heaps of `shortlist`, counting after
 * each list the new members of the top `rule.top`, until the rule stops it.
 * Later rounds scan only the queries still going (their heaps carried over),
 * each round in one codec call (index/filtered.ts scanRound). A member is new
 * when it lies in the list just scanned (each vector lies in one list, and
 * each list is probed once), so no copy of the heap before the round is kept;
 * the round's work arrays are allocated once per search.
 * Returns the heaps, the vectors each query scanned and its depth.
 */
export async function probeWithPatience(ctx: PatienceContext, space: RowBlock, ranked: Int32Array, cap: number, scanDim: number, shortlist: number, rule: PatienceRule, mask?: Uint32Array): Promise<ScanResult & { quantizerFlops: Float64Array; depths: Int32Array }> {
  const rows = space.rows;
  const best = new TopK(rows, shortlist);
  const scanned = new Float64Array(rows);
  const quantizerFlops = new Float64Array(rows);
  const depths = new Int32Array(rows);
  const recent = new Int32Array(rows * rule.lists);
  const scratch = new Float32Array(shortlist);
  const active = new Int32Array(rows);
  const probes = new Int32Array(rows);
  for (let q = 0; q < rows; q++) active[q] = q;
  let n = rows;
  while (n > 0) {
    for (let i = 0; i < n; i++) probes[i] = ranked[active[i] * cap + depths[active[i]]];
    await scanRound(ctx, space, best, active.subarray(0, n), probes.subarray(0, n), 1, scanDim, mask, scanned, quantizerFlops);
    let next = 0;
    for (let i = 0; i < n; i++) {
      const q = active[i];
      const list = probes[i];
      const depth = ++depths[q];
      const from = q * shortlist;
      const size = best.sizes[q];
      const threshold = topThreshold(best.scores, from, size, rule.top, scratch);
      let brought = 0;
      for (let j = 0; j < size; j++) if (best.scores[from + j] >= threshold && ctx.lists.listOf(best.ids[from + j]) === list) brought++;
      recent[q * rule.lists + (depth % rule.lists)] = brought;
      // (active is compacted in place: entry next <= i is already read)
      if (depth < cap && ranked[q * cap + depth] >= 0 && !patienceStops(recent, q * rule.lists, depth, rule)) active[next++] = q;
    }
    n = next;
  }
  return { best, scanned, quantizerFlops, depths };
}
