import { allowedCount, rowBlock, TopK, type Backend, type Metric, type RowBlock } from '@adanns/compute';
import type { ListCodec, ScanResult } from '../codecs/codec.js';
import type { Budget } from '../planner/plan.js';
import { judgeBudget, type BudgetVerdict } from '../planner/pricing.js';
import type { SearchParams } from '../params.js';
import type { CoarseQuantizer } from '../stages/coarse.js';
import type { RowSource } from '../stages/rerank.js';
import type { SharedScan } from '../stages/scan-reuse.js';
import { checkAllowedIds, countBits, type AllowedIds } from './filter.js';
import type { InvertedLists } from './inverted-lists.js';
import type { SlotStore } from './slots.js';

/**
 * Filtered search (docs/ARCHITECTURE.md, "Filtered search"): the ids a
 * search may return become a bitset over the index's slots once per call,
 * which every scan op takes as its mask, and a plan chosen by selectivity:
 *   exact  the matching vectors alone, gathered from the re-rank store (or
 *          the lists' decoded prefixes) and scanned exactly, when that costs
 *          fewer MFLOPs than the IVF plan;
 *   probe  IVF probing lists in centroid order until each query's top-k (or
 *          shortlist) holds enough matches: the plan's nprobe / selectivity
 *          lists first, then as many again per round while lists remain;
 *   scan   every list with the mask (an index without IVF).
 */

/** What search() takes besides the queries and params. */
export interface SearchOptions {
  /** Only these ids may be returned (filter.ts), given as they are or prepared once for several calls (AdannsIndex.prepareFilter). */
  filter?: AllowedIds | PreparedFilter;
  /**
   * With a filter: take this plan instead of the cheaper one in the cost
   * model (benchmarks and tests compare them); 'exact' needs stored vectors
   * or decodable lists, 'probe' an IVF stage.
   */
  filterPlan?: 'exact' | 'probe';
  /**
   * Calibration's scan sharing (stages/scan-reuse.ts): `onScan` is handed
   * this search's scan; `reuseScan`, such a scan of the same queries at the
   * same params but a shortlist at least this search's, stands in for the
   * probe and scan. Unfiltered searches only.
   */
  onScan?: (scan: SharedScan) => void;
  reuseScan?: SharedScan;
}

export type FilterPlanKind = 'exact' | 'probe' | 'scan';

/** How a filtered search ran, reported with its answer. */
export interface FilterReport {
  /** Live vectors the filter matches. */
  matches: number;
  /** Live vectors in the index. */
  live: number;
  plan: FilterPlanKind;
  /** The dimension an exact plan scored at (0 otherwise). */
  exactDim: number;
  /** Lists the probe plan's first round probes per query (nprobe / selectivity), 0 otherwise. */
  firstProbes: number;
  /** Lists its deepest query probed (probe plan), 0 otherwise. */
  maxListsProbed: number;
  /**
   * Modelled MFLOPs per query of the exact plan and of the IVF plan's mean
   * (its first round) and worst case (probing every list that holds a
   * match); Infinity: not available.
   */
  predicted: { exact: number; ivf: number; ivfMax: number };
  /** Whether the exact plan reads the vectors unaltered (float32 rows: a re-rank store on disk, f32 or a collection's; float32 lists), so its recall at D is 1. */
  exactLossless: boolean;
  /** Estimated recall@k of this plan: 1 for the exact scan at D from float32 rows, the filtered calibration's estimate for the probe plan (filtered-calibration.ts), else null. */
  estimatedRecall: number | null;
  /** Why this plan, and what its recall is worth. */
  note: string;
}

/** A filter as the scans take it: a bitset over slots, and how many live slots it allows. */
export interface SlotFilter {
  mask: Uint32Array;
  count: number;
  /** Lists holding at least one match (what a masked code scan builds tables for), counted once when the plan is priced. */
  listsHolding?: number;
  /** The matches' rows the exact plan gathered, kept for the next searches under this (prepared) filter (exactOverMatches). */
  gathered?: GatheredMatches;
}

/** Matching rows gathered once from a row source at its dim, by slot ascending. */
export interface GatheredMatches {
  dim: number;
  slots: Int32Array;
  rows: Float32Array;
  invNorms?: Float32Array;
}

/**
 * A filter evaluated against one index's slots (AdannsIndex.prepareFilter),
 * so a request searching in slices translates it once. It stays valid while
 * the index's slot map is unchanged (SlotStore.version); a search after an
 * add or remove derives the mask again from the ids it was made from.
 */
export class PreparedFilter {
  /** @internal: made by AdannsIndex.prepareFilter. */
  constructor(
    readonly allowed: AllowedIds,
    /** @internal */ readonly owner: object,
    /** @internal */ public version: number,
    /** @internal */ public slots: SlotFilter,
  ) {}
}

/** Lists holding at least one slot the mask allows. */
export function listsHolding(filter: SlotFilter, lists: InvertedLists): number {
  if (filter.listsHolding === undefined) {
    let n = 0;
    for (let l = 0; l < lists.count; l++) if (filter.count > 0 && allowedCount(filter.mask, lists.slots(l), lists.size(l)) > 0) n++;
    filter.listsHolding = n;
  }
  return filter.listsHolding;
}

/**
 * Turns a filter over ids into a mask over slots (removed ids match no
 * slot): by looking up each allowed id when they are few, else by testing
 * each slot's id, whichever touches less.
 */
export function slotFilter(filter: AllowedIds, slots: SlotStore): SlotFilter {
  checkAllowedIds(filter);
  const n = slots.slotCount;
  const bits = filter.bits;
  const words = (n + 31) >>> 5;
  if (slots.isIdentity) {
    // slot s holds id s and none is free: the bitset is the mask, less the ids past the slots
    const mask = new Uint32Array(Math.max(1, words));
    mask.set(bits.subarray(0, Math.min(words, bits.length)));
    if (n & 31 && words <= bits.length) mask[words - 1] &= (1 << (n & 31)) - 1;
    return { mask, count: countBits(mask) };
  }
  const mask = new Uint32Array(Math.max(1, words));
  let count = 0;
  if (filter.count * 4 < n) {
    for (let w = 0; w < bits.length; w++) {
      let word = bits[w];
      while (word !== 0) {
        const bit = 31 - Math.clz32(word & -word);
        word &= word - 1;
        const slot = slots.slotOf(w * 32 + bit);
        if (slot === undefined) continue;
        mask[slot >>> 5] |= 1 << (slot & 31);
        count++;
      }
    }
  } else {
    const length = bits.length;
    for (let s = 0; s < n; s++) {
      const id = slots.idOf(s);
      // free slots hold NaN, which no bit names
      if (!(id >= 0) || id >>> 5 >= length || ((bits[id >>> 5] >>> (id & 31)) & 1) === 0) continue;
      mask[s >>> 5] |= 1 << (s & 31);
      count++;
    }
  }
  return { mask, count };
}

/** The slots a mask allows, ascending. */
export function maskedSlots(filter: SlotFilter): Int32Array {
  const out = new Int32Array(filter.count);
  let n = 0;
  const mask = filter.mask;
  for (let w = 0; w < mask.length; w++) {
    let word = mask[w];
    while (word !== 0) {
      out[n++] = w * 32 + 31 - Math.clz32(word & -word);
      word &= word - 1;
    }
  }
  return out;
}

/** Rows gathered per exact-scan call: bounds the buffer whatever the matches. */
const GATHER = 4096;

/**
 * Most bytes of gathered rows a prepared filter keeps for its later searches
 * (beyond: gathered again by each, in parts). A prepared filter lives for one
 * request, so this bounds what each concurrent filtered request holds.
 */
export const KEPT_GATHER_BYTES = 64 * 2 ** 20;

/**
 * The exact top-k of each query among the matching slots, read from `source`
 * at its dim (queries: rows at least that wide, in the source's space).
 * `keep` (a prepared filter, searched again in later calls: a request's
 * slices, one query at a time): the rows are gathered once, whole, and kept
 * on the filter (up to KEPT_GATHER_BYTES) for the next calls, which only
 * scan them; the filter is derived anew, without them, when the slots change.
 */
export async function exactOverMatches(backend: Backend, queries: RowBlock, filter: SlotFilter, source: RowSource, metric: Metric, k: number, live?: (slot: number) => boolean, keep = false): Promise<TopK> {
  const best = new TopK(queries.rows, k);
  const dim = source.dim;
  if (keep && filter.gathered?.dim !== dim && filter.count * dim * 4 <= KEPT_GATHER_BYTES) {
    const slots = live ? maskedSlots(filter).filter(live) : maskedSlots(filter);
    const rows = new Float32Array(slots.length * dim);
    await source.read(slots, rows);
    // cosine norms the source keeps come with the rows (the scan then does not recompute them)
    const invNorms = metric === 'cosine' && source.readInvNorms ? new Float32Array(slots.length) : undefined;
    if (invNorms) source.readInvNorms!(slots, invNorms);
    filter.gathered = { dim, slots, rows, ...(invNorms ? { invNorms } : {}) };
  }
  const kept = keep && filter.gathered?.dim === dim ? filter.gathered : undefined;
  if (kept) {
    if (kept.slots.length > 0) await backend.scanTopK(queries, rowBlock(kept.rows, kept.slots.length, dim, 0, kept.invNorms), dim, metric, best, kept.slots);
    return best;
  }
  const slots = maskedSlots(filter);
  const buffer = new Float32Array(Math.min(GATHER, slots.length) * dim);
  // cosine norms the source keeps come with the rows (the scan then does not recompute them)
  const norms = metric === 'cosine' && source.readInvNorms ? new Float32Array(Math.min(GATHER, slots.length)) : undefined;
  for (let from = 0; from < slots.length; from += GATHER) {
    let part = slots.subarray(from, Math.min(slots.length, from + GATHER));
    // a slot removed while an earlier part was scanned (a backend that yields) is left out, not read
    if (live) part = part.filter(live);
    await source.read(part, buffer.subarray(0, part.length * dim));
    if (norms) source.readInvNorms!(part, norms.subarray(0, part.length));
    await backend.scanTopK(queries, rowBlock(buffer, part.length, dim, 0, norms?.subarray(0, part.length)), dim, metric, best, part);
  }
  return best;
}

/** What probeUntilEnough needs of the index. */
export interface ProbeContext {
  backend: Backend;
  coarse: CoarseQuantizer;
  codec: ListCodec;
  lists: InvertedLists;
  metric: Metric;
}

/** The first round's lists: the plan's nprobe scaled by 1 / selectivity (at least nprobe, at most every list). */
export function firstRoundProbes(nprobe: number, lists: number, matches: number, live: number): number {
  const selectivity = live > 0 ? matches / live : 0;
  return Math.min(lists, Math.max(nprobe, selectivity > 0 ? Math.ceil(nprobe / selectivity) : lists));
}

/**
 * IVF under a filter: every list ranked per query at coarseDim (one
 * centroid scan, as a probe), the first `first` lists scanned with the mask,
 * then further lists in order, as many again as probed so far each round,
 * for the queries whose top `scanK` still holds fewer than `target` matches
 * while lists remain. Queries of later rounds are scanned as a sub-batch
 * whose heaps continue theirs. Returns what a codec scan returns, summed over
 * the rounds, and the lists each query probed.
 */
export async function probeUntilEnough(
  ctx: ProbeContext,
  space: RowBlock,
  coarseDim: number,
  scanDim: number,
  filter: SlotFilter,
  first: number,
  scanK: number,
  target: number,
): Promise<ScanResult & { quantizerFlops: Float64Array; probed: Int32Array }> {
  const { coarse } = ctx;
  const rows = space.rows;
  const total = coarse.lists;
  const ranked = (await coarse.rank(space, coarseDim, total)).lists;
  const best = new TopK(rows, scanK);
  const scanned = new Float64Array(rows);
  const quantizerFlops = new Float64Array(rows);
  const done = new Int32Array(rows);
  let active = Int32Array.from({ length: rows }, (_, q) => q);
  let width = first;
  while (active.length > 0) {
    const n = active.length;
    const probes = new Int32Array(n * width).fill(-1);
    for (let i = 0; i < n; i++) {
      const q = active[i];
      const from = q * total + done[q];
      const to = Math.min(q * total + total, from + width);
      probes.set(ranked.subarray(from, to), i * width);
    }
    await scanRound(ctx, space, best, active, probes, width, scanDim, filter.mask, scanned, quantizerFlops);
    const next: number[] = [];
    for (let i = 0; i < n; i++) {
      const q = active[i];
      done[q] = Math.min(total, done[q] + width);
      if (best.sizes[q] < target && done[q] < total) next.push(q);
    }
    active = Int32Array.from(next);
    // doubling: each round probes as many lists as all before it
    width = 1;
    for (const q of active) width = Math.max(width, done[q]);
    width = Math.min(total, width);
  }
  return { best, scanned, quantizerFlops, probed: done };
}

/** What scanRound needs of the index. */
export interface RoundContext {
  backend: Backend;
  codec: ListCodec;
  lists: InvertedLists;
  metric: Metric;
}

/**
 * One round of a search that probes in rounds (probeUntilEnough,
 * stages/adaptive-probe.ts probeWithPatience): the queries `active` (rows of
 * `space`) scan their `probes` (active.length x width, -1 skipped) into their
 * heaps of `best`, which continue from the earlier rounds, in one codec call.
 * The whole batch scans in place; a sub-batch as copies of its query rows and
 * heaps, written back. Adds each query's scanned vectors and quantizer flops.
 */
export async function scanRound(ctx: RoundContext, space: RowBlock, best: TopK, active: Int32Array, probes: Int32Array, width: number, scanDim: number, mask: Uint32Array | undefined, scanned: Float64Array, quantizerFlops: Float64Array): Promise<void> {
  const whole = active.length === space.rows;
  const queries = whole ? space : gatherQueries(space, active);
  const into = whole ? best : heapsOf(best, active);
  const result = await ctx.codec.scan({ backend: ctx.backend, queries, probes, nprobe: width, lists: ctx.lists, scanDim, metric: ctx.metric, shortlist: best.k, mask, into });
  if (!whole) putHeaps(into, best, active);
  for (let i = 0; i < active.length; i++) {
    const q = active[i];
    scanned[q] += result.scanned[i];
    if (result.quantizerFlops) quantizerFlops[q] += result.quantizerFlops[i];
  }
}

/** Rows `which` of a query block, copied (with their norms). */
export function gatherQueries(space: RowBlock, which: Int32Array): RowBlock {
  const stride = space.stride;
  const o = space.offset ?? 0;
  const data = new Float32Array(which.length * stride);
  for (let i = 0; i < which.length; i++) data.set(space.data.subarray(o + which[i] * stride, o + (which[i] + 1) * stride), i * stride);
  const inv = space.invNorms && Float32Array.from(which, (q) => space.invNorms![q]);
  return rowBlock(data, which.length, stride, 0, inv);
}

/** A TopK of rows `which` of `best`, their heaps copied as they are. */
export function heapsOf(best: TopK, which: Int32Array): TopK {
  const k = best.k;
  const out = new TopK(which.length, k);
  for (let i = 0; i < which.length; i++) {
    const q = which[i];
    out.ids.set(best.ids.subarray(q * k, (q + 1) * k), i * k);
    out.scores.set(best.scores.subarray(q * k, (q + 1) * k), i * k);
    out.sizes[i] = best.sizes[q];
  }
  return out;
}

/** Writes a sub-batch's heaps back into rows `which` of `best`. */
export function putHeaps(from: TopK, best: TopK, which: Int32Array): void {
  const k = best.k;
  for (let i = 0; i < which.length; i++) {
    const q = which[i];
    best.ids.set(from.ids.subarray(i * k, (i + 1) * k), q * k);
    best.scores.set(from.scores.subarray(i * k, (i + 1) * k), q * k);
    best.sizes[q] = from.sizes[i];
  }
}

/** The plan a budget buys under a filter (AdannsIndex.planFiltered), priced for that filter. */
export interface FilteredPlan {
  params: SearchParams;
  /** The plan the search takes: the exact scan of the matches, the probe plan, or (no IVF) the masked scan of every list. */
  plan: FilterPlanKind;
  /** Live vectors the filter matches, and their share of the live vectors. */
  matches: number;
  selectivity: number;
  /** Estimated recall@k of this plan under this filter (1: the exact scan from float32 rows at D), null when not known. */
  expectedRecall: number | null;
  /** What a recall budget is judged on: the estimate's lower bound (filtered-calibration.ts), null when not known. */
  recallLowerBound: number | null;
  /** Predicted mean MFLOPs per query, and the largest query's (what an MFLOPs budget is planned on). */
  expectedMflops: number;
  budgetMflops: number;
  /** Predicted time of the search (ms, the whole batch, rescaled to this machine); null when nothing timed it. */
  expectedLatencyMs: number | null;
  /** Whether the prediction meets the budget. */
  budgetMet: boolean;
  /** How the plan was chosen and its recall estimated. */
  note: string;
}

/**
 * budgetMet of a filtered answer: an MFLOPs budget holds when every query's
 * modelled MFLOPs (counted on what it scanned) are within it, a latency
 * budget on the answer's measured time, a recall budget when the plan that
 * ran is the one planned and its recall lower bound under this filter
 * (planFiltered: 1 for the exact scan of the matches from float32 rows at
 * D, the filtered calibration's estimate for the probe plan) reaches it.
 */
export function judgeFilteredBudget(budget: Budget, measured: { k: number; maxMflops: number; tookMs: number }, plan: FilteredPlan, report: FilterReport): BudgetVerdict {
  if ('recall' in budget) {
    if (report.matches === 0) return { met: true, note: null };
    if (report.plan !== plan.plan) return { met: false, note: `the recall budget is not claimed: the search took the ${report.plan} plan, not the ${plan.plan} plan planned` };
    if (plan.recallLowerBound === null) return { met: false, note: 'the recall budget is not claimed: this plan\'s recall under this filter is not known' };
    const met = plan.recallLowerBound >= budget.recall;
    return { met, note: met ? null : `the recall lower bound ${plan.recallLowerBound.toFixed(4)} under this filter is below the budget of ${budget.recall}` };
  }
  return judgeBudget(budget, measured, { lowerBound: null, calibratedK: null });
}
