import { createRng, type Rng } from '@adanns/compute';
import type { AdannsIndex, VectorReader } from '../index/adanns-index.js';
import { allowedIdsOf } from '../index/filter.js';
import type { PreparedFilter } from '../index/filtered.js';
import { usesShortlist, widenBy, type SearchParams } from '../params.js';
import type { Calibration, CalibrationLevel } from './calibrate.js';
import { paretoFrontier, type FrontierPoint } from './frontier.js';
import { calibrationLevels, paramsKey } from './levels.js';

/**
 * Filtered calibration (docs/ARCHITECTURE.md, "Budgets under filters"): the
 * recall of the probe plan (IVF probing lists in order until enough matches
 * are seen, filtered.ts) measured per calibrated frontier point under
 * filters of a few selectivities, so that a recall budget can be planned for
 * a filtered search rather than claimed only for an exact scan.
 *
 * Its recall depends on how the matches lie relative to the lists, which a
 * filter's selectivity alone does not say. Two shapes bound the usual cases:
 *   random  ids drawn uniformly (a filter unrelated to the geometry: a tenant,
 *           a date), the matches spread over every list;
 *   region  whole IVF lists, those nearest a random calibration query's
 *           vector (another group's), until the share is reached: a filter
 *           aligned with the geometry, as a class label on clustered data is,
 *           and at its hardest: a query outside the region has its whole
 *           neighbourhood outside the filter, its matches in lists far down
 *           its ranking. (Whole lists drawn at random were tried first: a
 *           query's neighbourhood spans several lists, so it kept part of it,
 *           and a class filter on 50,000 synthetic points then missed the
 *           estimate by 0.1.)
 * A plan's recall at a selectivity is the lower of the two, and between two
 * calibrated selectivities the lower of their recalls (the unfiltered point
 * above the largest), less FILTERED_RECALL_MARGIN; below the smallest it is
 * not estimated (the exact scan of so few matches is the plan that knows its
 * recall). A filter correlated with the queries themselves in other ways
 * (e.g. excluding each query's own neighbourhood by design) is not covered.
 */

/** Selectivities the probe plan is calibrated at, descending (each kept when it matches at least MIN_MATCHES vectors). */
export const FILTER_SELECTIVITIES: readonly number[] = [0.5, 0.2, 0.05, 0.01];

export type FilterShape = 'random' | 'region';
export const FILTER_SHAPES: readonly FilterShape[] = ['random', 'region'];

/** Filters per selectivity and shape: the queries are split among them (each its own draw). */
const FILTERS_PER_SHAPE = 3;

/** Fewest matches of a calibration filter: a selectivity matching fewer is not calibrated. */
const MIN_MATCHES = 40;

/** Recall kept in hand between the calibrated lower bounds around a filter's selectivity and what is planned on. */
export const FILTERED_RECALL_MARGIN = 0.01;

/** Single queries timed per point, selectivity and shape for its latency. */
const LATENCY_QUERIES = 4;

/** One frontier point measured under filters of one selectivity and shape (the probe plan forced). */
export interface FilteredPoint {
  k: number;
  /** The params as the unfiltered level records them (paramsKey pairs them). */
  params: SearchParams;
  selectivity: number;
  shape: FilterShape;
  recall: number;
  recallStdErr: number;
  mflops: number;
  mflopsMax: number;
  /** Mean single-query latency (ms) on the calibrating machine. */
  latencyMs: number;
}

/** The exact scan of the matches timed under one selectivity and shape (latency budgets price it). */
export interface ExactTiming {
  selectivity: number;
  shape: FilterShape;
  matches: number;
  latencyMs: number;
}

/** What filtered calibration measured, persisted with the calibration. */
export interface FilteredCalibration {
  /** Selectivities measured (descending); a point counts at one only when every shape was measured there. */
  selectivities: number[];
  shapes: FilterShape[];
  points: FilteredPoint[];
  exact: ExactTiming[];
  seconds: number;
  /** False when the time bound cut it short (points past the cut are missing: plans fall back to the exact scan). */
  complete: boolean;
}

export interface FilteredCalibrationInput {
  queries: Float32Array;
  rows: number;
  /** The stored ids the queries are (each excluded from its own results and truth). */
  ownIds?: ArrayLike<number>;
  levels: CalibrationLevel[];
  /** The primary k, measured first. */
  primaryK: number;
  vectors?: VectorReader;
  seed: number;
  maxMs: number;
}

/** Mean and standard error of the mean. */
export function meanAndStdErr(values: ArrayLike<number>): [number, number] {
  const n = values.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i];
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i] - mean) ** 2;
  return [mean, n > 1 ? Math.sqrt(ss / (n - 1) / n) : 0];
}

/** Each query's result ids less its own id (a query that is a stored vector), `keep` per query; -1 pads. */
export function dropOwnIds(ids: Float64Array, rows: number, width: number, keep: number, ownIds: ArrayLike<number> | undefined): Float64Array {
  if (!ownIds) return ids;
  const out = new Float64Array(rows * keep).fill(-1);
  for (let q = 0; q < rows; q++) {
    let w = 0;
    for (let i = 0; i < width && w < keep; i++) if (ids[q * width + i] !== ownIds[q]) out[q * keep + w++] = ids[q * width + i];
  }
  return out;
}

/** recall@k of one query: hits of its first k found among its first k true (truth rows `truthWidth` wide). */
function queryRecall(found: Float64Array, foundWidth: number, truth: Float64Array, truthWidth: number, q: number, k: number): number {
  const want = new Set<number>();
  for (let i = 0; i < k; i++) want.add(truth[q * truthWidth + i]);
  let hits = 0;
  for (let i = 0; i < k; i++) if (want.has(found[q * foundWidth + i])) hits++;
  return hits / k;
}

/** One calibration filter: its prepared form, the queries it serves and their exact filtered truth. */
interface CalibrationFilter {
  selectivity: number;
  shape: FilterShape;
  matches: number;
  prepared: PreparedFilter;
  /** Query rows it serves, their vectors and own ids. */
  which: number[];
  queries: Float32Array;
  own?: number[];
  /** Exact filtered neighbours, less each query's own id, `truthWidth` per query. */
  truth: Float64Array;
  truthWidth: number;
}

/**
 * Ids of a filter of `shape` matching round(share x the live ids) (`byList`:
 * the live ids by list; `all`: all of them; `region`: the lists in the order
 * a region grows, nearest its seed first).
 */
function drawFilter(shape: FilterShape, share: number, byList: Float64Array[], all: Float64Array, region: Int32Array, rng: Rng): number[] {
  const want = Math.round(share * all.length);
  if (shape === 'random') {
    // the first `want` places of a Fisher-Yates shuffle: a uniform draw without replacement
    const pool = Array.from(all);
    for (let i = 0; i < want; i++) {
      const j = i + rng.int(pool.length - i);
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    return pool.slice(0, want);
  }
  const out: number[] = [];
  for (const l of region) {
    if (out.length >= want) break;
    for (const id of byList[l]) if (out.length < want) out.push(id);
  }
  return out;
}

/**
 * Measures the frontier points of each calibrated level (the primary k
 * first, each level cheapest first) under random and region filters
 * at FILTER_SELECTIVITIES, with the probe plan forced: recall@k against the
 * exact filtered neighbours at the full dimension, modelled MFLOPs, and the
 * latency of a few single queries; and times the exact scan of the matches.
 * Undefined for an index without IVF (no probe plan) or whose ids are too
 * sparse for a bitset filter.
 */
export async function calibrateFiltered(index: AdannsIndex, input: FilteredCalibrationInput): Promise<FilteredCalibration | undefined> {
  const started = performance.now();
  const lists = index.spec.coarse?.lists;
  if (!lists) return undefined;
  const byList = Array.from({ length: lists }, (_, l) => index.listIds(l));
  const all = Float64Array.from(byList.flatMap((ids) => Array.from(ids)));
  const total = all.length;
  if (total === 0) return undefined;
  let maxId = 0;
  for (const id of all) maxId = Math.max(maxId, id);
  // filters are bitsets over ids: ids far sparser than the vectors would make them large
  if (maxId > 64 * total + 4096) return undefined;
  const { queries, rows, ownIds, levels } = input;
  const dim = index.dim;
  const coarseDim = index.spec.coarse!.dim;
  const extra = ownIds ? 1 : 0;
  const kmax = Math.max(...levels.map((l) => l.k));
  const selectivities = FILTER_SELECTIVITIES.filter((s) => Math.round(s * total) >= Math.max(MIN_MATCHES, kmax + extra + 1));
  const rng = createRng(input.seed + 919);
  const groups = Math.min(FILTERS_PER_SHAPE, rows);
  const filters: CalibrationFilter[] = [];
  const canExact = (() => {
    try {
      index.priceFilter(1, undefined, allowedIdsOf([byList.find((l) => l.length > 0)![0]]), 'exact');
      return true;
    } catch {
      return false;
    }
  })();
  const exact: ExactTiming[] = [];
  let complete = true;
  // the exact filtered truth of each filter first (half the time bound at most: a selectivity not reached is left out)
  for (const [i, selectivity] of [...selectivities].entries()) {
    if (performance.now() - started > input.maxMs / 2) {
      complete = false;
      selectivities.splice(i);
      break;
    }
    for (const shape of FILTER_SHAPES) {
      for (let g = 0; g < groups; g++) {
        // a region grows from another group's query (each group's queries fall inside or outside it as they happen to)
        const others = Array.from({ length: rows }, (_, q) => q).filter((q) => q % groups !== g || groups === 1);
        const seed = others[rng.int(others.length)];
        const region = shape === 'region' ? await index.probeLists(queries.subarray(seed * dim, (seed + 1) * dim), 1, coarseDim, lists) : new Int32Array(0);
        const ids = drawFilter(shape, selectivity, byList, all, region, rng);
        const prepared = index.prepareFilter(allowedIdsOf(ids));
        const which = Array.from({ length: rows }, (_, q) => q).filter((q) => q % groups === g);
        const qs = new Float32Array(which.length * dim);
        which.forEach((q, i) => qs.set(queries.subarray(q * dim, (q + 1) * dim), i * dim));
        const own = ownIds ? which.map((q) => ownIds[q]) : undefined;
        const width = Math.min(kmax + extra, ids.length);
        const truthWidth = width - extra;
        const found = (await index.exactSearch(qs, which.length, width, input.vectors, prepared)).ids;
        filters.push({ selectivity, shape, matches: ids.length, prepared, which, queries: qs, own, truth: dropOwnIds(found, which.length, width, truthWidth, own), truthWidth });
        if (g === 0 && canExact) {
          const n = Math.min(LATENCY_QUERIES, which.length);
          const t = performance.now();
          for (let q = 0; q < n; q++) await index.search(qs.subarray(q * dim, (q + 1) * dim), 1, Math.min(kmax, ids.length), undefined, { filter: prepared, filterPlan: 'exact' });
          exact.push({ selectivity, shape, matches: ids.length, latencyMs: (performance.now() - t) / Math.max(1, n) });
        }
      }
    }
  }
  const points: FilteredPoint[] = [];
  const ordered = [...levels].sort((a, b) => (a.k === input.primaryK ? -1 : b.k === input.primaryK ? 1 : a.k - b.k));
  const fronts = ordered.map((level) => ({ k: level.k, front: coverageOrder(paretoFrontier(level.points, (p) => p.mflops)) }));
  // A re-ranking (or funnel) point's answer at k is the first k of its answer at a larger k: the probe plan
  // probes until its shortlist holds enough matches, whatever k. Such a point is measured once, at the largest
  // k whose frontier holds it, and read off at the others (its MFLOPs and latency are the same work).
  const sharedKs = new Map<string, number[]>();
  for (const { k, front } of fronts) {
    for (const p of front) if (usesShortlist(p.params)) sharedKs.set(paramsKey(p.params), [...(sharedKs.get(paramsKey(p.params)) ?? []), k]);
  }
  const measuredAt = new Map<string, FilteredPoint | null>();
  measuring: for (const { k, front } of fronts) {
    for (const point of front) {
      const measured: FilteredPoint[] = [];
      const key = paramsKey(point.params);
      for (const selectivity of selectivities) {
        for (const shape of FILTER_SHAPES) {
          const at = (atK: number) => `${atK}|${key}|${selectivity}|${shape}`;
          if (!measuredAt.has(at(k))) {
            if (performance.now() - started > input.maxMs) {
              complete = false;
              break measuring;
            }
            const ks = sharedKs.get(key) ?? [k];
            const byK = await measureFiltered(index, input, point.params, ks, filters.filter((f) => f.selectivity === selectivity && f.shape === shape));
            for (const atK of ks) measuredAt.set(at(atK), byK.get(atK) ?? null);
          }
          const result = measuredAt.get(at(k));
          if (result) measured.push(result);
        }
      }
      points.push(...measured);
    }
  }
  return { selectivities, shapes: [...FILTER_SHAPES], points, exact, seconds: (performance.now() - started) / 1000, complete };
}

/**
 * One frontier point under the filters of one selectivity and shape, with
 * the probe plan forced, at each of `ks` (a re-ranking point's calibrated
 * ks, else its own): searched once per filter at the largest k the filter's
 * truth serves, recall@k read off for each smaller one.
 */
async function measureFiltered(index: AdannsIndex, input: FilteredCalibrationInput, at: SearchParams, ks: number[], filters: CalibrationFilter[]): Promise<Map<number, FilteredPoint>> {
  const dim = index.dim;
  const extra = input.ownIds ? 1 : 0;
  const recalls = new Map<number, number[]>(ks.map((k) => [k, []]));
  const mflops = new Map<number, number[]>(ks.map((k) => [k, []]));
  const latency = new Map<number, { ms: number; timed: number }>(ks.map((k) => [k, { ms: 0, timed: 0 }]));
  // a query that is a stored vector finds itself too: one more result, and one more candidate to rescore
  const params = widenBy(at, extra);
  for (const f of filters) {
    const served = ks.filter((k) => k <= f.truthWidth);
    if (served.length === 0) continue;
    const top = Math.max(...served);
    const asked = top + extra;
    const n = f.which.length;
    const result = await index.search(f.queries, n, asked, params, { filter: f.prepared, filterPlan: 'probe' });
    const found = dropOwnIds(result.ids, n, asked, top, f.own);
    for (const k of served) {
      for (let q = 0; q < n; q++) {
        recalls.get(k)!.push(queryRecall(found, top, f.truth, f.truthWidth, q, k));
        mflops.get(k)!.push(result.mflops[q]);
      }
    }
    const m = Math.min(LATENCY_QUERIES - latency.get(top)!.timed, n);
    const t = performance.now();
    for (let q = 0; q < m; q++) await index.search(f.queries.subarray(q * dim, (q + 1) * dim), 1, asked, params, { filter: f.prepared, filterPlan: 'probe' });
    const ms = performance.now() - t;
    for (const k of served) {
      latency.get(k)!.ms += ms;
      latency.get(k)!.timed += m;
    }
  }
  const out = new Map<number, FilteredPoint>();
  const [selectivity, shape] = [filters[0]?.selectivity, filters[0]?.shape];
  for (const k of ks) {
    const r = recalls.get(k)!;
    if (r.length === 0) continue;
    const [recall, recallStdErr] = meanAndStdErr(r);
    const [mean] = meanAndStdErr(mflops.get(k)!);
    const { ms, timed } = latency.get(k)!;
    out.set(k, { k, params: { ...at }, selectivity, shape, recall, recallStdErr, mflops: mean, mflopsMax: Math.max(...mflops.get(k)!), latencyMs: ms / Math.max(1, timed) });
  }
  return out;
}

/** Unfiltered recalls whose cheapest frontier point is measured under filters first (coverageOrder). */
const COVERAGE_TARGETS = [0.8, 0.9, 0.95, 0.98, 0.99, 0.995];

/**
 * Frontier points in the order they are measured under filters: first, for
 * each of COVERAGE_TARGETS, the cheapest point whose unfiltered recall
 * reaches it (the likeliest to serve that target under a filter: the cheaper
 * ones fall short of it unfiltered, and a broad filter lowers recall),
 * cheapest first; then the rest, cheapest first. A time bound that
 * cuts the measurement short then leaves a candidate for each usual target
 * rather than only the cheap end of the frontier.
 */
function coverageOrder(front: FrontierPoint[]): FrontierPoint[] {
  const first = new Set<FrontierPoint>();
  for (const target of COVERAGE_TARGETS) {
    const point = front.find((p) => p.recall >= target);
    if (point) first.add(point);
  }
  return [...first, ...front.filter((p) => !first.has(p))];
}

/** What the filtered calibration predicts of the probe plan at some params under a filter of some selectivity. */
export interface FilteredEstimate {
  /** The lowest calibrated mean recall around the selectivity (both shapes). */
  expected: number;
  /** The lowest calibrated mean less two standard errors around it, less FILTERED_RECALL_MARGIN: what a recall budget is judged on. */
  lowerBound: number;
  /** The largest query's MFLOPs and the single-query latency measured around it (the larger of the two selectivities). */
  mflopsMax: number;
  latencyMs: number;
  /** The calibrated selectivities it comes from (1: the unfiltered point). */
  from: number[];
}

/**
 * The probe plan's recall at `params` (as calibrated at k) under a filter
 * matching `selectivity` of the live vectors, from the two calibrated
 * selectivities around it (above the largest: it and the unfiltered point),
 * the lower at each of both shapes. Undefined when k or the params were not
 * calibrated under filters, or the selectivity is below the smallest one
 * calibrated.
 */
export function filteredEstimate(calibration: Calibration, k: number, params: SearchParams, selectivity: number): FilteredEstimate | undefined {
  const f = calibration.filtered;
  if (!f || f.selectivities.length === 0) return undefined;
  const key = paramsKey(params);
  const sorted = [...f.selectivities].sort((a, b) => a - b);
  if (selectivity < sorted[0]) return undefined;
  const below = sorted.filter((s) => s <= selectivity).at(-1)!;
  const above = sorted.find((s) => s >= selectivity);
  const from = above === undefined ? [below, 1] : [...new Set([below, above])];
  const picked: Array<Pick<FilteredPoint, 'recall' | 'recallStdErr' | 'mflopsMax' | 'latencyMs'>> = [];
  for (const s of from) {
    if (s === 1) {
      const level = calibrationLevels(calibration).find((l) => l.k === k);
      const point: FrontierPoint | undefined = level?.points.find((p) => paramsKey(p.params) === key);
      if (!point) return undefined;
      picked.push({ recall: point.recall, recallStdErr: point.recallStdErr, mflopsMax: point.mflopsMax ?? point.mflops + 2 * point.mflopsStdErr, latencyMs: point.latencyMs });
      continue;
    }
    for (const shape of f.shapes) {
      const point = f.points.find((p) => p.k === k && p.selectivity === s && p.shape === shape && paramsKey(p.params) === key);
      if (!point) return undefined;
      picked.push(point);
    }
  }
  return {
    expected: Math.min(...picked.map((p) => p.recall)),
    lowerBound: Math.max(0, Math.min(...picked.map((p) => p.recall - 2 * p.recallStdErr)) - FILTERED_RECALL_MARGIN),
    mflopsMax: Math.max(...picked.map((p) => p.mflopsMax)),
    latencyMs: Math.max(...picked.map((p) => p.latencyMs)),
    from,
  };
}

/**
 * The exact scan of `matches` matches' single-query latency on the
 * calibrating machine: the slowest timing at or above that many matches
 * (the scan's time grows with them), else the largest timed scaled up
 * linearly; undefined when none was timed.
 */
export function exactLatency(calibration: Calibration, matches: number): number | undefined {
  const timings = calibration.filtered?.exact ?? [];
  if (timings.length === 0) return undefined;
  const atOrAbove = timings.filter((t) => t.matches >= matches);
  if (atOrAbove.length > 0) {
    const least = Math.min(...atOrAbove.map((t) => t.matches));
    return Math.max(...atOrAbove.filter((t) => t.matches === least).map((t) => t.latencyMs));
  }
  const largest = timings.reduce((a, b) => (b.matches > a.matches || (b.matches === a.matches && b.latencyMs > a.latencyMs) ? b : a));
  return (largest.latencyMs * matches) / largest.matches;
}
