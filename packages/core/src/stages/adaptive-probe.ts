import { TopK, type Backend, type Metric, type RowBlock } from '@adanns/compute';
import type { ListCodec, ScanResult } from '../codecs/codec.js';
import { gatherQueries, heapsOf, putHeaps } from '../index/filtered.js';
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

/** The `top`-th best score of one heap row (-Infinity while the row holds at most `top`: all of it is the top). */
function topThreshold(scores: Float32Array, from: number, size: number, top: number, scratch: Float32Array): number {
  if (size <= top) return -Infinity;
  const s = scratch.subarray(0, size);
  s.set(scores.subarray(from, from + size));
  s.sort();
  return s[size - top];
}

/** Whether a sorted array holds a value (binary search). */
function sortedHas(sorted: Int32Array, value: number): boolean {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length && sorted[lo] === value;
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
 * Later rounds scan only the queries still going (their heaps carried over).
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
  let active = Int32Array.from({ length: rows }, (_, q) => q);
  while (active.length > 0) {
    const n = active.length;
    const whole = n === rows;
    const probes = new Int32Array(n);
    // each query's heap before the round, sorted: a member after the round that is not in it is new
    const before = new Int32Array(n * shortlist);
    const beforeSizes = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const q = active[i];
      probes[i] = ranked[q * cap + depths[q]];
      before.set(best.ids.subarray(q * shortlist, q * shortlist + best.sizes[q]), i * shortlist);
      beforeSizes[i] = best.sizes[q];
      before.subarray(i * shortlist, i * shortlist + beforeSizes[i]).sort();
    }
    const queries = whole ? space : gatherQueries(space, active);
    const into = whole ? best : heapsOf(best, active);
    const result = await ctx.codec.scan({ backend: ctx.backend, queries, probes, nprobe: 1, lists: ctx.lists, scanDim, metric: ctx.metric, shortlist, mask, into });
    if (!whole) putHeaps(into, best, active);
    const next: number[] = [];
    for (let i = 0; i < n; i++) {
      const q = active[i];
      scanned[q] += result.scanned[i];
      if (result.quantizerFlops) quantizerFlops[q] += result.quantizerFlops[i];
      const depth = ++depths[q];
      const from = q * shortlist;
      const size = best.sizes[q];
      const held = before.subarray(i * shortlist, i * shortlist + beforeSizes[i]);
      const threshold = topThreshold(best.scores, from, size, rule.top, scratch);
      let brought = 0;
      for (let j = 0; j < size; j++) if (best.scores[from + j] >= threshold && !sortedHas(held, best.ids[from + j])) brought++;
      recent[q * rule.lists + (depth % rule.lists)] = brought;
      if (depth < cap && ranked[q * cap + depth] >= 0 && !patienceStops(recent, q * rule.lists, depth, rule)) next.push(q);
    }
    active = Int32Array.from(next);
  }
  return { best, scanned, quantizerFlops, depths };
}
