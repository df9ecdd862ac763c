import type { AdannsIndex, VectorReader } from '../index/adanns-index.js';
import type { SearchOptions } from '../index/filtered.js';
import { narrowScan, type SharedScan } from '../stages/scan-reuse.js';
import { formatPatience, servedK, usesShortlist, widenBy, type SearchParams } from '../params.js';
import { dimsLadder } from '../prefixes.js';
import { adaptiveGrid, rerankPatienceGrid } from './adaptive-grid.js';
import { funnelGrid } from './funnel-grid.js';
import { calibrateFiltered, dropOwnIds, meanAndStdErr, type FilteredCalibration } from './filtered-calibration.js';
import type { FrontierPoint } from './frontier.js';
import { probedMass, type ProbeCounts, type ProbeStatistics } from './pricing.js';
import { retimeCandidates } from './retime.js';

export interface CalibrateOptions {
  /**
   * Calibration queries (rows x dim): given by the user, or a build's
   * held-out rows (with `queryIds`); default: a seeded sample of the stored
   * vectors, each excluded from its own results.
   */
  queries?: Float32Array;
  queryRows?: number;
  /** The stored ids the given queries are (a build's held-out rows, indexed but never trained on): each is excluded from its own results and truth. */
  queryIds?: ArrayLike<number>;
  /** Stored vectors sampled when no queries are given (default 300). */
  sampleSize?: number;
  /** Calibrate at this k only (older callers); `ks` wins. */
  k?: number;
  /** The k values served, each calibrated (default 1, 10, 100); those the index is too small for are left out. */
  ks?: number[];
  /** Time bound (default 120 s): the grid runs cheapest first and stops when it is spent. */
  maxSeconds?: number;
  /** Queries timed one at a time per point for its latency (default 20). */
  latencyQueries?: number;
  seed?: number;
  /**
   * The stored vectors at the full dimension by slot, for an index that keeps
   * none (no rerank@D, no flat@D lists): build() passes its input here.
   */
  vectors?: VectorReader;
  onProgress?: (done: number, total: number) => void;
  /** Calibrate the probe plan under filters too (default true; filtered-calibration.ts). */
  filtered?: boolean;
  /** Its own time bound (default a quarter of maxSeconds, on top of it). */
  filteredSeconds?: number;
}

/** The filtered calibration's default time bound, as a share of the grid's. */
const FILTERED_SHARE = 0.25;

/** The k values calibrated when none are given. */
export const DEFAULT_CALIBRATION_KS: readonly number[] = [1, 10, 100];

/** Calibrated points at one k: recall@k of each params (re-ranking params all have shortlist >= k). */
export interface CalibrationLevel {
  k: number;
  points: FrontierPoint[];
}

/** What calibration measured, persisted with the index. */
export interface Calibration {
  /** The primary k (10 when calibrated): `points` are at it. Older calibrations have only this one. */
  k: number;
  queries: number;
  /** True when the queries are stored vectors (each excluded from its own results and truth). */
  selfExcluded: boolean;
  /**
   * Where the queries came from: `held-out` (drawn before training, left out
   * of every training sample, indexed as points), `given` (by the user),
   * `stored` (sampled from the index: in-sample). Absent in older calibrations.
   */
  source?: 'held-out' | 'given' | 'stored';
  /** The stored ids of held-out queries: a later re-calibration (no rebuild) reuses those still stored, still never trained on. */
  queryIds?: number[];
  /** The points at `k` (the level of `levels` at k). */
  points: FrontierPoint[];
  /** Every calibrated k with its points, ascending k (absent in older calibrations: `k` and `points` are the only level). */
  levels?: CalibrationLevel[];
  seconds: number;
  /** False when the time bound cut the grid short. */
  complete: boolean;
  /** Which lists the queries probed, and the list sizes then: prices the points on later list sizes (absent in older calibrations). */
  probeStats?: ProbeStatistics;
  /** The probe plan's recall under filters of a few selectivities (absent in older calibrations and without IVF): plans budgets under filters. */
  filtered?: FilteredCalibration;
}

/**
 * For each coarseDim and nprobe of the grid, how often the queries probed
 * each list: one full ranking of the lists per query and coarseDim (top-n is
 * a prefix of it, the order being total), counted at every nprobe.
 */
async function probeStatistics(index: AdannsIndex, queries: Float32Array, rows: number, grid: SearchParams[]): Promise<ProbeStatistics> {
  const listSizes = Array.from(index.listSizes());
  const probes: ProbeCounts[] = [];
  const lists = listSizes.length;
  for (const coarseDim of new Set(grid.filter((p) => p.nprobe > 0).map((p) => p.coarseDim))) {
    const ranking = await index.probeLists(queries, rows, coarseDim, lists);
    const nprobes = [...new Set(grid.filter((p) => p.coarseDim === coarseDim).map((p) => p.nprobe))].sort((a, b) => a - b);
    const counts = new Array<number>(lists).fill(0);
    let done = 0;
    for (const nprobe of nprobes) {
      for (let q = 0; q < rows; q++) {
        for (let i = done; i < nprobe; i++) {
          const list = ranking[q * lists + i];
          if (list >= 0) counts[list]++;
        }
      }
      done = nprobe;
      probes.push({ coarseDim, nprobe, counts: [...counts] });
    }
  }
  return { queries: rows, listSizes, probes };
}

function geometric(max: number): number[] {
  const out: number[] = [];
  for (let v = 1; v < max; v *= 2) out.push(v);
  out.push(max);
  return out;
}

/**
 * The parameter grid of an index: prefixes from its ladder, nprobe doubling,
 * shortlists in multiples of each k (1, 2, 4 and 10 k; the union over
 * `ks`). Without a re-rank stage the shortlist is the largest k (a scan's
 * top-k is a prefix of its top-kmax).
 */
export function calibrationGrid(index: AdannsIndex, ks: number | readonly number[]): SearchParams[] {
  const { spec } = index;
  const all = typeof ks === 'number' ? [ks] : [...ks];
  const kmax = Math.max(...all);
  const coarse = spec.coarse ? dimsLadder(spec.coarse.dim).slice(-3) : [0];
  const nprobes = spec.coarse ? geometric(spec.coarse.lists) : [0];
  const scans = spec.scan.codec === 'flat' ? dimsLadder(spec.scan.dim).slice(-3) : [spec.scan.dim];
  const rerank = spec.rerank?.dim;
  // `auto` asks for longer shortlists when its trial needed them for recall 0.99 (planner/auto.ts)
  // 20 k left out: with three ks the long shortlists cost most of the sweep (a k = 100 point at 2,000) and rarely reach the frontier
  const factors = [1, 2, 4, 10, ...(index.choice?.shortlistMultiples ?? [])];
  const multiples = all.flatMap((k) => factors.map((f) => f * k).filter((s) => s === k || s <= index.size));
  const shortlists = rerank === undefined ? [kmax] : [...new Set(multiples)].sort((a, b) => a - b);
  const grid: SearchParams[] = [];
  for (const coarseDim of coarse) {
    for (const nprobe of nprobes) {
      for (const scanDim of scans) {
        for (const shortlist of shortlists) {
          const p: SearchParams = { coarseDim, nprobe, scanDim, shortlist };
          if (rerank !== undefined) p.rerankDim = rerank;
          grid.push(p);
        }
      }
    }
  }
  return grid;
}

/** A recall gain below this from doubling nprobe, at every k, counts as none (under one query's hit in 300 at k = 10 and 100). */
const SATURATED_GAIN = 0.001;

/** The primary k of a calibration: the largest calibrated k up to 10 (the service's default), else the smallest. */
function primaryK(ks: number[]): number {
  return ks.filter((k) => k <= 10).at(-1) ?? ks[0];
}

/**
 * Grid points ordered for a time bound: each k's points cheapest first (a
 * point serves every calibrated k up to min(shortlist, largest k)), the
 * classes interleaved by their share done, so a cut grid keeps the cheap end
 * at every k rather than all of the small ones.
 */
function timeBoundOrder(grid: SearchParams[], searchK: (p: SearchParams) => number, depth: (p: SearchParams) => number = (p) => p.nprobe): SearchParams[] {
  const cost = (p: SearchParams) => p.coarseDim * p.nprobe + depth(p) * p.scanDim * 64 + p.shortlist * (p.rerankDim ?? 0);
  const classes = new Map<number, SearchParams[]>();
  for (const p of grid) classes.set(searchK(p), [...(classes.get(searchK(p)) ?? []), p]);
  const ranked: { p: SearchParams; share: number; cost: number }[] = [];
  for (const members of classes.values()) {
    members.sort((a, b) => cost(a) - cost(b));
    members.forEach((p, i) => ranked.push({ p, share: (i + 1) / members.length, cost: cost(p) }));
  }
  return ranked.sort((a, b) => a.share - b.share || a.cost - b.cost).map((r) => r.p);
}

/**
 * Sweeps the grid on calibration queries against exact ground truth at the
 * full dimension, recording recall at every calibrated k, modelled MFLOPs
 * and latency per point. One search per grid point serves every k up to its
 * shortlist: the engine's order is total, so the top k of a search at a
 * larger k with the same params is what a search at k returns.
 */
export async function calibrate(index: AdannsIndex, options: CalibrateOptions = {}): Promise<Calibration> {
  const started = performance.now();
  const dim = index.dim;
  let queries: Float32Array;
  let rows: number;
  let ownIds: ArrayLike<number> | undefined;
  let source: Calibration['source'];
  if (options.queries) {
    queries = options.queries;
    rows = options.queryRows ?? Math.floor(options.queries.length / dim);
    if (queries.length !== rows * dim) throw new Error(`calibration queries: ${queries.length} values are not ${options.queryRows === undefined ? 'whole' : rows} vectors of dimension ${dim}`);
    ownIds = options.queryIds;
    if (ownIds && ownIds.length !== rows) throw new Error(`calibration: ${ownIds.length} query ids for ${rows} queries`);
    source = ownIds ? 'held-out' : 'given';
  } else {
    const sample = await index.sampleStored(options.sampleSize ?? 300, options.seed ?? 7, options.vectors);
    queries = sample.vectors;
    rows = sample.ids.length;
    ownIds = sample.ids;
    source = 'stored';
  }
  if (rows < 2) throw new Error(`calibration needs at least 2 queries, got ${rows}`);
  // with queries that are stored vectors, ask for one more result and drop the query itself
  const extra = ownIds ? 1 : 0;
  const asked = options.ks ?? (options.k !== undefined ? [options.k] : [...DEFAULT_CALIBRATION_KS]);
  for (const k of asked) if (!Number.isInteger(k) || k < 1) throw new Error(`calibration k must be a positive integer, got ${k}`);
  const ks = [...new Set(asked)].sort((a, b) => a - b).filter((k) => k + extra <= index.size);
  if (ks.length === 0) throw new Error(`calibration at k = ${Math.min(...asked)} needs more than ${Math.min(...asked) + extra - 1} stored vectors`);
  const kmax = ks[ks.length - 1];
  const dropOwn = (ids: Float64Array, width: number, keep: number): Float64Array => dropOwnIds(ids, rows, width, keep, ownIds);
  const truth = dropOwn((await index.exactSearch(queries, rows, kmax + extra, options.vectors)).ids, kmax + extra, kmax);
  // the largest calibrated k a grid point serves: a re-rank returns at most its shortlist, a funnel its last keep
  const searchK = (p: SearchParams) => (usesShortlist(p) ? ks.filter((k) => k <= servedK(p)).at(-1)! : kmax);
  // adaptive probing points (planner/adaptive-grid.ts) join the grid, ordered by the lists they probe on average
  const fixedGrid = calibrationGrid(index, ks);
  const adaptive = await adaptiveGrid(index, queries, rows, fixedGrid);
  const grid = timeBoundOrder([...fixedGrid, ...adaptive.points], searchK, (p) => adaptive.meanDepth.get(p) ?? p.nprobe);
  const probeStats = await probeStatistics(index, queries, rows, fixedGrid);
  probeStats.probes.push(...adaptive.probes);
  const maxMs = (options.maxSeconds ?? 120) * 1000;
  // funnel points are derived from the measured grid (planner/funnel-grid.ts): a tenth of the time bound is kept for them
  // (and a twentieth for the re-rank patience variants, planner/adaptive-grid.ts rerankPatienceGrid)
  const gridMs = (index.funnelDims().length > 0 ? 0.85 : 0.95) * maxMs;
  const latencyQueries = Math.min(options.latencyQueries ?? 20, rows);
  // milliseconds the first latencyQueries queries take searched one at a time with params at k (a point's latency, times latencyQueries)
  const timeQueries = async (params: SearchParams, k: number): Promise<number> => {
    let ms = 0;
    for (let q = 0; q < latencyQueries; q++) {
      const t = performance.now();
      await index.search(queries.subarray(q * dim, (q + 1) * dim), 1, k, params);
      ms += performance.now() - t;
    }
    return ms;
  };
  const levels: CalibrationLevel[] = ks.map((k) => ({ k, points: [] }));
  const perQuery = new Float64Array(rows);
  // each query's true neighbours by rank (the first, for an id listed twice: -1 pads): a found id at i is a hit at k when i < k and its rank < k
  const rankOf = Array.from({ length: rows }, (_, q) => {
    const ranks = new Map<number, number>();
    for (let r = 0; r < kmax; r++) if (!ranks.has(truth[q * kmax + r])) ranks.set(truth[q * kmax + r], r);
    return ranks;
  });
  // Fixed points whose recall stopped rising with nprobe are skipped: for the same coarseDim, scanDim
  // and shortlist, if doubling nprobe gained nothing at any k, doubling it again only costs more (the
  // points at large nprobe are the sweep's most expensive; this keeps the time bound for the rest)
  const nprobeSteps = [...new Set(fixedGrid.map((p) => p.nprobe))].sort((a, b) => a - b);
  const recallsBy = new Map<string, number[] | 'skipped'>();
  const fixedKey = (p: SearchParams, nprobe: number) => `${p.coarseDim}/${p.scanDim}/${p.shortlist}/${nprobe}`;
  const saturated = (p: SearchParams): boolean => {
    if (p.probeMargin !== undefined || p.patience || p.funnel || p.rerankPatience) return false;
    const i = nprobeSteps.indexOf(p.nprobe);
    if (i < 2) return false;
    const before = recallsBy.get(fixedKey(p, nprobeSteps[i - 1]));
    const earlier = recallsBy.get(fixedKey(p, nprobeSteps[i - 2]));
    if (before === 'skipped') return true;
    if (!before || !earlier || earlier === 'skipped') return false;
    return before.every((r, j) => r - earlier[j] < SATURATED_GAIN);
  };
  // measures one point at every calibrated k it serves (`scan`: its scan shared with others, stages/scan-reuse.ts)
  const measured = new Map<FrontierPoint, number>();
  const measure = async (gridPoint: SearchParams, position: number, scan: SearchOptions = {}): Promise<void> => {
    const top = searchK(gridPoint);
    const recalls: number[] = [];
    // a query that is a stored vector finds itself too: one more result, and one more candidate to re-rank (at every funnel stage)
    const rescores = usesShortlist(gridPoint);
    const params = widenBy(gridPoint, extra);
    const result = await index.search(queries, rows, top + extra, params, scan);
    const found = dropOwn(result.ids, top + extra, top);
    const [mflops, mflopsStdErr] = meanAndStdErr(result.mflops);
    let mflopsMax = 0;
    for (const m of result.mflops) mflopsMax = Math.max(mflopsMax, m);
    const latency = await timeQueries(params, top + extra);
    for (const level of levels) {
      const k = level.k;
      if (k > top) continue;
      for (let q = 0; q < rows; q++) {
        let hits = 0;
        for (let i = 0; i < k; i++) if ((rankOf[q].get(found[q * top + i]) ?? k) < k) hits++;
        perQuery[q] = hits / k;
      }
      const [recall, recallStdErr] = meanAndStdErr(perQuery);
      recalls.push(recall);
      // the params as a search at k uses them (the self-excluding extra candidate is not the plan's; the MFLOPs keep it: a slight over-estimate)
      const recorded: SearchParams = { ...result.params, shortlist: rescores ? gridPoint.shortlist : k };
      if (gridPoint.funnel) recorded.funnel = gridPoint.funnel.map((s) => ({ ...s }));
      if (gridPoint.rerankPatience) recorded.rerankPatience = { ...gridPoint.rerankPatience };
      const point: FrontierPoint = { params: recorded, recall, recallStdErr, mflops, mflopsStdErr, mflopsMax, latencyMs: latency / latencyQueries };
      level.points.push(point);
      measured.set(point, position);
    }
    if (gridPoint.probeMargin === undefined && !gridPoint.patience && !gridPoint.funnel && !gridPoint.rerankPatience) recallsBy.set(fixedKey(gridPoint, gridPoint.nprobe), recalls);
  };
  // Points that differ only in their shortlist (or funnel) probe the same lists and score the same vectors:
  // one scan at the longest shortlist serves them all, each shorter one cut from it (stages/scan-reuse.ts).
  // A group is measured when its first point comes up in the time-bound order (the nprobe / 2 and / 4 points
  // the saturation rule reads come up before: the order is cheapest first); the levels keep that order.
  // (the queries' prefix, which the last two set, is part of it: the scan reads the same query rows)
  const scanKey = (p: SearchParams) => `${p.coarseDim}/${p.nprobe}/${p.probeMargin ?? ''}/${p.patience ? formatPatience(p.patience) : ''}/${p.scanDim}/${p.rerankDim ?? ''}/${p.funnel?.at(-1)?.dim ?? ''}`;
  const scanK = (p: SearchParams) => (usesShortlist(p) ? p.shortlist : searchK(p));
  const measureAll = async (points: SearchParams[], from: number, ms: number, progress?: (done: number, total: number) => void): Promise<boolean> => {
    const groups = new Map<string, SearchParams[]>();
    for (const p of points) groups.set(scanKey(p), [...(groups.get(scanKey(p)) ?? []), p]);
    const position = new Map(points.map((p, i) => [p, from + i]));
    let done = 0;
    for (const p of points) {
      const members = groups.get(scanKey(p));
      if (!members) continue;
      if (performance.now() - started > ms) return false;
      groups.delete(scanKey(p));
      const measuring = members.filter((m) => {
        if (!saturated(m)) return true;
        recallsBy.set(fixedKey(m, m.nprobe), 'skipped');
        return false;
      });
      // the longest scan first: searched in full, it hands its scan to the others
      measuring.sort((a, b) => scanK(b) - scanK(a));
      // (each shorter one from the last cut, which holds fewer candidates to read)
      let shared: SharedScan | undefined;
      for (const m of measuring) {
        if (shared) shared = narrowScan(shared, scanK(m) + extra, rows);
        await measure(m, position.get(m)!, shared ? { reuseScan: shared } : measuring.length > 1 ? { onScan: (scan) => (shared = scan) } : {});
      }
      done += members.length;
      progress?.(done, points.length);
    }
    return true;
  };
  let complete = await measureAll(grid, 0, gridMs, options.onProgress);
  // funnel points, from the cheapest measured points at each k and recall target, cheapest first
  const scannedBy = (p: SearchParams) => probedMass(probeStats, probeStats.listSizes, p.coarseDim, p.nprobe, p.probeMargin, p.patience, p.scanDim);
  const funnels = timeBoundOrder(funnelGrid(index, levels, scannedBy), searchK);
  if (!(await measureAll(funnels, grid.length, 0.95 * maxMs))) complete = false;
  // re-rank patience variants of the cheapest measured points at the targets (funnels included)
  const reranks = rerankPatienceGrid(index, levels);
  if (!(await measureAll(reranks, grid.length + funnels.length, maxMs))) complete = false;
  // the points a recall budget chooses between, timed again side by side (planner/retime.ts)
  await retimeCandidates(levels, latencyQueries, (point, k) => timeQueries(point.params, k));
  for (const level of levels) level.points.sort((a, b) => measured.get(a)! - measured.get(b)!);
  const k = primaryK(ks);
  const primary = levels.find((l) => l.k === k)!;
  // the probe plan under filters, on its own time bound (a share of the grid's) after the grid (filtered-calibration.ts)
  const filtered = options.filtered === false ? undefined : await calibrateFiltered(index, { queries, rows, ownIds, levels, primaryK: k, vectors: options.vectors, seed: options.seed ?? 7, maxMs: (options.filteredSeconds ?? FILTERED_SHARE * (options.maxSeconds ?? 120)) * 1000 });
  return { k, queries: rows, selfExcluded: ownIds !== undefined, source, ...(source === 'held-out' ? { queryIds: Array.from(ownIds!) } : {}), points: primary.points, levels, seconds: (performance.now() - started) / 1000, complete, probeStats, ...(filtered ? { filtered } : {}) };
}
