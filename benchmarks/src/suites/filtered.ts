import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ReferenceBackend, rowBlock, TopK, type Backend, type Metric } from '@adanns/compute';
import { allowedIdsOf, dimsLadder, exactNeighbours, formatBudget, formatSpec, isAllowed, recallAtK, type Budget, type SearchParams } from '@adanns/core';
import { readIvecs, writeIvecs, type VectorSet } from '@adanns/datasets';
import { groundTruthKey } from '../bench-data.js';
import { backendThreads, listCount, type BenchContext } from '../context.js';
import { meanAveragePrecisionAtK, top1Accuracy } from '../quality.js';
import type { ResultRow, UntimedRow } from '../row.js';
import { peakRssBytes, WARM_UP_QUERIES, type RowTiming } from '../timing.js';
import { buildTimed } from './adanns.js';
import { buildHnswlib, HNSWLIB_VERSION } from './hnswlib.js';

/**
 * Filtered search (issue 18): filters on the base vectors' labels (a class as
 * payload) at about 50%, 10%, 1% and 0.1% selectivity, each searched by
 * AdANNS-IVF (a few params, and what a recall budget picks under the filter),
 * by hnswlib-node with a filter callback on its labels (ef swept), and by the
 * exact scan of the matching vectors alone (the reference cost), all against
 * the exact filtered ground truth.
 */

/** The selectivities the suite aims at. */
export const FILTER_TARGETS = [0.5, 0.1, 0.01, 0.001];
/** The recall budgets searched under each filter (searchWithBudget plans them for the filter): predicted against achieved recall. */
export const FILTER_BUDGETS: Budget[] = [{ recall: 0.9 }, { recall: 0.95 }, { recall: 0.99 }];
const EF_SWEEP = [10, 20, 40, 80, 160, 320];
/**
 * hnswlib-node calls the filter (a JS function) through N-API for every
 * candidate it visits, and at low selectivity it visits much of the graph:
 * per filter, the ef sweep stops (larger ef only costs more) once its rows
 * would have taken this long, their timed passes counted; the summary says
 * where it stopped.
 */
export const HNSW_SWEEP_SECONDS = 150;

/** One filter: what it says, the selectivity it aims at and the base row ids it matches (ascending). */
export interface LabelFilter {
  label: string;
  target: number;
  ids: Int32Array;
}

/**
 * A filter over class labels near each target share of the base: a class
 * equal to c when one class is within a factor 1.5 of the target; else, when
 * the target is above every class's share, a class `any` of the first classes
 * whose joint share is nearest the target; else the largest class with a row
 * id range (`class = c and id < N`, N chosen so exactly round(target x n) rows match).
 */
export function labelFilters(labels: Int32Array, targets = FILTER_TARGETS): LabelFilter[] {
  const n = labels.length;
  const members = new Map<number, number[]>();
  labels.forEach((c, i) => {
    if (!members.has(c)) members.set(c, []);
    members.get(c)!.push(i);
  });
  const classes = [...members.keys()].sort((a, b) => a - b);
  const share = (c: number) => members.get(c)!.length / n;
  const where = (test: (i: number) => boolean) => Int32Array.from(labels.keys()).filter(test);
  const largest = classes.reduce((a, b) => (share(b) > share(a) ? b : a));
  return targets.map((target) => {
    const near = classes.filter((c) => share(c) <= 1.5 * target && share(c) >= target / 1.5).sort((a, b) => Math.abs(share(a) - target) - Math.abs(share(b) - target))[0];
    if (near !== undefined) return { label: `class = ${near}`, target, ids: Int32Array.from(members.get(near)!) };
    if (target > share(largest)) {
      // the prefix of the classes (in label order) whose joint share is nearest the target
      let best = 1;
      let sum = 0;
      let bestGap = Infinity;
      classes.forEach((c, i) => {
        sum += share(c);
        if (Math.abs(sum - target) < bestGap) [best, bestGap] = [i + 1, Math.abs(sum - target)];
      });
      const any = new Set(classes.slice(0, best));
      return { label: `class any [${[...any].join(', ')}]`, target, ids: where((i) => any.has(labels[i])) };
    }
    const rows = members.get(largest)!;
    const m = Math.max(1, Math.round(target * n));
    const below = rows[m - 1] + 1;
    return { label: `class = ${largest} and id < ${below}`, target, ids: Int32Array.from(rows.slice(0, m)) };
  });
}

/**
 * Exact top-k among the matching rows at the full dimension, by the reference
 * backend (as the unfiltered truth), as base row ids; rows past the matches
 * are -1. Cached in `dir` under a hash of the data, metric, k and the ids.
 */
export async function filteredTruth(base: VectorSet, queries: VectorSet, metric: Metric, k: number, ids: Int32Array, dir: string): Promise<Int32Array> {
  const key = createHash('sha256').update(groundTruthKey(base, queries, metric, k)).update(new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength)).digest('hex').slice(0, 16);
  mkdirSync(dir, { recursive: true });
  const cache = join(dir, `gt-filtered-${key}.ivecs`);
  if (existsSync(cache)) return readIvecs(cache).ids;
  const truth = new Int32Array(queries.rows * k).fill(-1);
  const kk = Math.min(k, ids.length);
  if (kk > 0) {
    const { ids: found } = await exactNeighbours(new ReferenceBackend(), gather(base, ids), ids.length, queries.data, queries.rows, base.dim, metric, kk);
    for (let q = 0; q < queries.rows; q++) for (let i = 0; i < kk; i++) truth[q * k + i] = ids[found[q * kk + i]];
  }
  writeIvecs(cache, truth, queries.rows, k);
  return truth;
}

function gather(base: VectorSet, ids: Int32Array): Float32Array {
  const out = new Float32Array(ids.length * base.dim);
  ids.forEach((id, i) => out.set(base.data.subarray(id * base.dim, (id + 1) * base.dim), i * base.dim));
  return out;
}

/** Unit rows (cosine as inner product, as the flat index stores them). */
function normalized(data: Float32Array, dim: number): Float32Array {
  const out = data.slice();
  for (let r = 0; r < out.length; r += dim) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += out[r + j] * out[r + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < dim; j++) out[r + j] *= inv;
  }
  return out;
}

interface Measured {
  ids: ArrayLike<number>;
  /** Hits each query got. */
  counts: ArrayLike<number>;
  mflops: number | null;
}

export async function filteredSuite(ctx: BenchContext): Promise<void> {
  const { base, queries, baseLabels, metric } = ctx.data;
  if (baseLabels === undefined) {
    const why = 'the filtered suite needs base labels (the class is the payload filtered on): Fashion-MNIST and the synthetic sets carry them, other sets take --labels-base';
    // among other suites (--suite all) an unlabelled set skips it, as the other suites skip what a set cannot run
    if (ctx.suites.length > 1) return ctx.log(`filtered: skipped: ${why}`);
    throw new Error(why);
  }
  const k = ctx.k;
  const D = base.dim;
  const filters = labelFilters(baseLabels);

  // the AdANNS-IVF index of the budget suite (largest ladder prefixes <= 32 and <= 128, re-rank at D from
  // float32 rows in memory), calibrated at k so that a recall budget can be planned under the filter
  const ladder = dimsLadder(D);
  const dc = ladder.filter((d) => d < D && d <= 32).at(-1) ?? D;
  const ds = ladder.filter((d) => d < D && d <= 128).at(-1) ?? D;
  const lists = listCount(base.rows);
  const spec = `${ctx.transform === 'pca' ? 'pca,' : ''}ivf${lists}@${dc},flat@${ds}${ds < D ? `,rerank@${D}:f32` : ''}`;
  const { index, seconds } = await buildTimed(ctx, spec, { calibrate: { ks: [k], onProgress: (d, t) => ctx.progress('calibrate', d, t) } });
  ctx.describe('adanns-ivf', { threads: backendThreads(ctx.backend) });
  ctx.describe('adanns-budget', { threads: backendThreads(ctx.backend) });
  ctx.describe('exact-matches', { threads: backendThreads(ctx.backend) });
  const hnsw = await buildHnswlib(ctx);

  const stopped: string[] = [];
  const paramSets: Array<Partial<SearchParams>> = [{}, ...[2, 8, 32].filter((p) => p <= lists).map((nprobe) => ({ nprobe, shortlist: 4 * k }))];
  for (const filter of filters) {
    const matches = filter.ids.length;
    const selectivity = matches / base.rows;
    const allowed = allowedIdsOf(filter.ids);
    // the slot mask once per filter, as the service does once per request (not again in every timed search)
    const prepared = index.prepareFilter(allowed);
    ctx.log(`filter ${filter.label}: ${matches} of ${base.rows} rows (${(100 * selectivity).toPrecision(3)}%, aimed at ${100 * filter.target}%)`);
    const truth = await filteredTruth(base, queries, metric, k, filter.ids, ctx.out);
    const row = (system: string, rowSpec: string, params: Record<string, unknown>, m: Measured, timing: RowTiming, buildSeconds: number, indexBytes: number, extra: Partial<UntimedRow> = {}) =>
      ctx.timed(
        {
          system,
          spec: rowSpec,
          params,
          k,
          ...quality(ctx, m, truth, matches),
          mflops: m.mflops,
          buildSeconds,
          indexBytes,
          rssBytes: peakRssBytes(),
          selectivity,
          filter: filter.label,
          matches,
          ...extra,
        },
        timing,
      );

    for (const params of paramSets) {
      const options = { filter: prepared };
      const r = await index.search(queries.data, queries.rows, k, params, options);
      const timing = time(ctx, (q, rows) => index.search(queries.data.subarray(q * D, (q + rows) * D), rows, k, params, options));
      const shown = { ...Object.fromEntries(Object.entries(r.params).filter(([, v]) => v !== 0)), plan: r.filter!.plan };
      row('adanns-ivf', formatSpec(index.spec), Object.keys(params).length === 0 ? { default: true, ...shown } : shown, adannsMeasured(r), timing, seconds, index.sizes().resident, { note: r.filter!.note });
    }
    for (const budget of FILTER_BUDGETS) {
      const r = await index.searchWithBudget(queries.data, queries.rows, k, budget, { filter: prepared });
      const params = r.plan.params;
      // timed as planned: the same params and the same plan (exact scan of the matches or probing)
      const planned = r.filterPlan!.plan === 'scan' ? {} : { filterPlan: r.filterPlan!.plan };
      const timing = time(ctx, (q, rows) => index.search(queries.data.subarray(q * D, (q + rows) * D), rows, k, params, { filter: prepared, ...planned }));
      const shown = { budget: formatBudget(budget), ...Object.fromEntries(Object.entries(params).filter(([, v]) => v !== 0)), plan: r.filter!.plan };
      row('adanns-budget', formatSpec(index.spec), shown, adannsMeasured(r), timing, seconds, index.sizes().resident, {
        note: r.budgetNote ?? r.filter!.note,
        budget,
        budgetMet: r.budgetMet ?? false,
        expectedRecall: r.expectedRecall,
      });
    }
    await exactMatches(ctx, filter.ids, (m, timing) => row('exact-matches', 'flat over the matching rows (gathered before the clock)', {}, m, timing, 0, matches * D * 4));

    const allowedLabel = (label: number) => isAllowed(allowed, label);
    const singles = Math.min(ctx.latencyQueries, queries.rows);
    // the rows are timed later (round-robin with the run's other rows): the bound counts each row's untimed
    // search of all the queries, scaled by the queries its warm-ups and timed passes will add
    const rowShare = (queries.rows + ctx.passes * (singles + Math.min(singles, WARM_UP_QUERIES))) / queries.rows;
    let spentMs = 0;
    const efs = EF_SWEEP.filter((e) => e >= k);
    for (const [i, ef] of efs.entries()) {
      if (spentMs > HNSW_SWEEP_SECONDS * 1000) {
        ctx.log(`hnswlib: ef ${efs.slice(i).join(', ')} not measured under ${filter.label}: the sweep's ${HNSW_SWEEP_SECONDS} s bound is spent`);
        stopped.push(`${filter.label}: ef ${efs.slice(i).join(', ')} not measured (the sweep's ${HNSW_SWEEP_SECONDS} s bound was spent)`);
        break;
      }
      const started = performance.now();
      hnsw.index.setEf(ef);
      const search = (q: number) => hnsw.index.searchKnn(hnsw.queryRows[q], k, allowedLabel).neighbors;
      const ids = new Float64Array(queries.rows * k).fill(-1);
      const counts = new Int32Array(queries.rows);
      for (let q = 0; q < queries.rows; q++) {
        const found = search(q);
        counts[q] = found.length;
        found.forEach((id, i) => (ids[q * k + i] = id));
      }
      spentMs += (performance.now() - started) * rowShare;
      // one index for every ef: other rows run between this row's passes, so each pass sets its ef (cheap);
      // no batch API: the batched figure would be the same one-at-a-time loop, so it is not timed twice
      const timing = { before: () => hnsw.index.setEf(ef), singles, single: search };
      row('hnswlib', hnsw.spec, { ef }, { ids, counts, mflops: null }, timing, hnsw.buildSeconds, hnsw.indexBytes, { note: 'searchKnn(query, k, filter callback on labels)' });
    }
  }
  ctx.afterTiming(() => index.release());
  if (stopped.length) ctx.describe('hnswlib', { threads: 1, version: HNSWLIB_VERSION, note: stopped.join('; ') });
}

function adannsMeasured(r: { ids: ArrayLike<number>; counts: ArrayLike<number>; mflops: Float64Array }): Measured {
  return { ids: r.ids, counts: r.counts, mflops: r.mflops.reduce((a, b) => a + b, 0) / r.mflops.length };
}

/**
 * The reference cost: the matching rows gathered (and, under cosine,
 * normalised) before the clock, then scanned exactly, one query at a time,
 * by the backend under test; charged matches x D multiply-adds as the flat
 * index is.
 */
async function exactMatches(ctx: BenchContext, ids: Int32Array, add: (m: Measured, timing: RowTiming) => void): Promise<void> {
  const { base, queries, metric } = ctx.data;
  const D = base.dim;
  const cosine = metric === 'cosine';
  const rows = cosine ? normalized(gather(base, ids), D) : gather(base, ids);
  const q = cosine ? normalized(queries.data.subarray(0, queries.rows * D), D) : queries.data;
  const scanMetric: Metric = cosine ? 'ip' : metric;
  const scan = async (backend: Backend, from: number, count: number) => {
    const best = new TopK(count, Math.min(ctx.k, Math.max(1, ids.length)));
    if (ids.length > 0) await backend.scanTopK(rowBlock(q.subarray(from * D, (from + count) * D), count, D), rowBlock(rows, ids.length, D), D, scanMetric, best, ids);
    best.sort();
    return best;
  };
  const best = await scan(ctx.backend, 0, queries.rows);
  const found = new Float64Array(queries.rows * ctx.k).fill(-1);
  for (let i = 0; i < queries.rows; i++) for (let j = 0; j < best.sizes[i]; j++) found[i * ctx.k + j] = best.ids[i * best.k + j];
  add({ ids: found, counts: best.sizes, mflops: (ids.length * D) / 1e6 }, time(ctx, (from, count) => scan(ctx.backend, from, count)));
}

/** recall@k against the filtered truth (recall@matches when fewer than k match), label quality and the fewest hits any query got. */
function quality(ctx: BenchContext, m: Measured, truth: Int32Array, matches: number): Pick<ResultRow, 'recall' | 'top1' | 'map' | 'hits'> {
  const { queries, baseLabels, queryLabels } = ctx.data;
  const k = ctx.k;
  const kk = Math.min(k, matches);
  const labelled = baseLabels !== undefined && queryLabels !== undefined;
  let hits = Infinity;
  for (let q = 0; q < queries.rows; q++) hits = Math.min(hits, m.counts[q]);
  return {
    recall: kk === 0 ? 1 : recallAtK(m.ids, k, truth, k, queries.rows, kk),
    top1: labelled ? top1Accuracy(m.ids, k, baseLabels, queryLabels) : null,
    map: labelled ? meanAveragePrecisionAtK(m.ids, k, baseLabels, queryLabels) : null,
    hits: queries.rows === 0 ? 0 : hits,
  };
}

/**
 * How one configuration is timed: queries one at a time over
 * --latency-queries queries (QPS, p50, p99), and one call over those queries
 * (batched QPS); the harness takes the passes (timing.ts timeRoundRobin).
 */
function time(ctx: BenchContext, search: (from: number, rows: number) => Promise<unknown> | unknown): RowTiming {
  const count = Math.min(ctx.latencyQueries, ctx.data.queries.rows);
  return { singles: count, single: (q) => search(q, 1), batch: { queries: count, run: () => search(0, count) } };
}
