import type { Budget } from './plan.js';
import type { FrontierPoint } from './frontier.js';
import { formatPatience, type PatienceRule } from '../params.js';

/**
 * How often each list was probed by the calibration queries at one
 * (coarseDim, nprobe): counts[l] = queries whose `nprobe` best lists at
 * `coarseDim` include list l. Centroids never move after training, so these
 * stay true while the lists grow and shrink.
 */
export interface ProbeCounts {
  coarseDim: number;
  nprobe: number;
  /** Adaptive probing: the margin the queries probed under, `nprobe` being the cap (absent: every query probed `nprobe` lists). */
  probeMargin?: number;
  /** Patience termination: the rule the queries probed under, `nprobe` being the cap, and the scanDim it watched the scan at (depths depend on it). */
  patience?: PatienceRule;
  scanDim?: number;
  counts: number[];
}

/** What calibration recorded to price its points again on the lists as they are later. */
export interface ProbeStatistics {
  /** Calibration queries the counts are over. */
  queries: number;
  /** Every list's size when calibration ran (one list without IVF). */
  listSizes: number[];
  probes: ProbeCounts[];
}

/** A calibrated point priced on the index as it is now (docs/ARCHITECTURE.md, "Calibration and planning"). */
export interface PointPrice {
  /** Predicted mean modelled MFLOPs per query. */
  mflops: number;
  /** Predicted largest MFLOPs of one query (what an MFLOPs budget, which holds per query, is planned on). */
  mflopsMax: number;
  /** Predicted single-query latency on the calibrating machine (ms). */
  latencyMs: number;
}

/**
 * Vectors one calibration query scans on average at (coarseDim, nprobe, and
 * the probe margin of an adaptive plan) when the lists have these sizes: sum
 * over lists of (times probed) x (size) / queries; without IVF every vector.
 * Undefined when calibration kept no counts for it.
 */
export function probedMass(stats: ProbeStatistics, sizes: ArrayLike<number>, coarseDim: number, nprobe: number, probeMargin?: number, patience?: PatienceRule, scanDim?: number): number | undefined {
  if (nprobe === 0) {
    let total = 0;
    for (let l = 0; l < sizes.length; l++) total += sizes[l];
    return total;
  }
  const rule = patience && formatPatience(patience);
  const entry = stats.probes.find((p) => p.coarseDim === coarseDim && p.nprobe === nprobe && p.probeMargin === probeMargin && (p.patience && formatPatience(p.patience)) === rule && (!rule || p.scanDim === scanDim));
  if (!entry || entry.counts.length !== sizes.length) return undefined;
  let mass = 0;
  for (let l = 0; l < sizes.length; l++) mass += entry.counts[l] * sizes[l];
  return mass / stats.queries;
}

/**
 * Prices a calibrated point on the current list sizes. The cost model is
 * linear in the vectors scanned, so the calibrated mean moves by the change in
 * probed mass times the scan cost per vector (`perVector`: scanDim x flops per
 * value for float codecs, code bytes for PQ), plus the re-rank of a shortlist
 * raised to k; the spread above the mean (calibrated largest query less the
 * mean) and the latency scale with the probed mass. `rescoreExtraFlops`, when
 * given, is that raise's multiply-adds as the index counts them (a funnel's
 * keeps are raised too), in place of the shortlist's. Without probe statistics
 * (a calibration saved before they were kept) the calibrated figures stand,
 * with the mean plus two standard errors as the largest query.
 */
export function pricePoint(point: FrontierPoint, stats: ProbeStatistics | undefined, sizes: ArrayLike<number>, perVector: number, shortlist: number, mass?: (coarseDim: number, nprobe: number, sizes: ArrayLike<number>, probeMargin?: number, patience?: PatienceRule, scanDim?: number) => number | undefined, rerankPerValue = 1, rescoreExtraFlops?: number): PointPrice {
  const calibratedMax = point.mflopsMax ?? point.mflops + 2 * point.mflopsStdErr;
  const rerankDim = point.params.rerankDim;
  // rerankPerValue: 2 when a cosine re-rank computes the gathered rows' norms (cost.ts)
  const rerank = rescoreExtraFlops !== undefined ? rescoreExtraFlops / 1e6 : rerankDim !== undefined ? ((shortlist - point.params.shortlist) * rerankDim * rerankPerValue) / 1e6 : 0;
  const massOf = mass ?? ((c: number, n: number, s: ArrayLike<number>, m?: number, r?: PatienceRule, d?: number) => (stats ? probedMass(stats, s, c, n, m, r, d) : undefined));
  const { coarseDim, nprobe, probeMargin, patience, scanDim } = point.params;
  const then = stats ? massOf(coarseDim, nprobe, stats.listSizes, probeMargin, patience, scanDim) : undefined;
  const now = stats ? massOf(coarseDim, nprobe, sizes, probeMargin, patience, scanDim) : undefined;
  if (then === undefined || now === undefined) return { mflops: point.mflops + rerank, mflopsMax: calibratedMax + rerank, latencyMs: point.latencyMs };
  const mflops = point.mflops + ((now - then) * perVector) / 1e6 + rerank;
  const ratio = then > 0 ? now / then : 1;
  return {
    mflops,
    mflopsMax: mflops + Math.max(0, calibratedMax - point.mflops) * ratio,
    latencyMs: point.mflops > 0 ? (point.latencyMs * mflops) / point.mflops : point.latencyMs,
  };
}

/** Whether an answer met its budget, and if not why (null when it did). */
export interface BudgetVerdict {
  met: boolean;
  note: string | null;
}

/**
 * Judges one answer against its budget on what it measured: an MFLOPs budget
 * holds per query (every query's modelled MFLOPs, counted on the lists it
 * probed, within it), a latency budget on the answer's measured time, a recall
 * budget when the calibrated lower bound (mean less two standard errors) at
 * this very k reaches it; calibrated at another k, recall at this one is not
 * known and the budget is not claimed.
 */
export function judgeBudget(budget: Budget, measured: { k: number; maxMflops: number; tookMs: number }, recall: { lowerBound: number | null; calibratedK: number | null; estimate?: string | null }): BudgetVerdict {
  // a plan at an uncalibrated k says how its recall was estimated, whatever the budget
  const withEstimate = (verdict: BudgetVerdict): BudgetVerdict => (recall.estimate ? { met: verdict.met, note: verdict.note ? `${verdict.note}; ${recall.estimate}` : recall.estimate } : verdict);
  if ('mflops' in budget) {
    const met = measured.maxMflops <= budget.mflops;
    return withEstimate({ met, note: met ? null : `a query spent ${measured.maxMflops.toPrecision(4)} MFLOPs, over the budget of ${budget.mflops}` });
  }
  if ('latencyMs' in budget) {
    const met = measured.tookMs <= budget.latencyMs;
    return withEstimate({ met, note: met ? null : `the search took ${measured.tookMs.toFixed(3)} ms, over the budget of ${budget.latencyMs} ms` });
  }
  if (recall.lowerBound === null) return { met: false, note: 'the index has no calibration: its recall is not known' };
  if (recall.estimate) return { met: false, note: `${recall.estimate} (estimated lower bound ${recall.lowerBound.toFixed(4)}), so the budget is not claimed` };
  if (recall.calibratedK !== null && recall.calibratedK !== measured.k) {
    return { met: false, note: `the index is calibrated at k = ${recall.calibratedK}, not at k = ${measured.k}: recall at this k is not known` };
  }
  const met = recall.lowerBound >= budget.recall;
  return { met, note: met ? null : `the calibrated recall lower bound ${recall.lowerBound.toFixed(4)} is below the budget of ${budget.recall}` };
}
