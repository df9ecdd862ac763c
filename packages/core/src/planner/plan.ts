import type { SearchParams } from '../params.js';
import type { FrontierPoint } from './frontier.js';

export type Budget = { mflops: number } | { latencyMs: number } | { recall: number };

export interface Plan {
  params: SearchParams;
  /** Calibrated mean recall@k of the chosen point (at the calibration's k). */
  expectedRecall: number;
  /** Calibrated recall less two standard errors: what a recall budget is judged on. */
  recallLowerBound: number;
  /** Predicted mean modelled MFLOPs per query of the chosen point (priced on the lists as they are now when the index plans). */
  expectedMflops: number;
  /** Predicted time of the search (ms; the whole batch when the index plans), rescaled to this machine. */
  expectedLatencyMs: number;
  /** Whether the prediction meets the budget; the answer's own budgetMet is judged on what it measured (judgeBudget). */
  budgetMet: boolean;
  /** The k the recall is calibrated at: the search's k, or null when it was estimated from other ks (set by AdannsIndex.plan; levels.ts). */
  calibratedK?: number | null;
  /** The calibrated ks the recall comes from (the search's k when calibrated). */
  recallFrom?: number[];
  /** How recall at an uncalibrated k was estimated (null or absent when calibrated). */
  recallNote?: string | null;
}

/**
 * A point's predicted cost: `budgetMflops` is compared with an MFLOPs budget,
 * `mflops` is the predicted mean, `latencyMs` the latency before rescaling.
 */
export type PointCost = (p: FrontierPoint) => { budgetMflops: number; mflops: number; latencyMs: number };

/** Standard errors kept between the calibrated mean and the budget, so the plan holds on other queries too. */
const CONFIDENCE = 2;

/** A point's calibrated recall less CONFIDENCE standard errors: what a recall budget is judged on. */
export function recallLowerBound(p: FrontierPoint): number {
  return p.recall - CONFIDENCE * p.recallStdErr;
}

/**
 * Calibrated latencies within this factor of the fastest count as a tie
 * (each the mean of a few timed queries, 20 by default; a recall budget's
 * candidates the median of three such passes, retime.ts): among them a
 * recall budget takes the fewest MFLOPs.
 */
const LATENCY_TIE = 1.1;

export function parseBudget(text: string): Budget {
  const m = /^\s*(mflops|latencyMs|latency|recall)\s*=\s*([0-9.eE+-]+)\s*$/.exec(text);
  if (!m) throw new Error(`budget "${text}" is not mflops=X, latencyMs=X or recall=X`);
  const value = Number(m[2]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`budget ${m[1]} must be a positive number, got "${m[2]}"`);
  if (m[1] === 'recall') {
    if (value > 1) throw new Error(`budget recall must be at most 1, got ${value}`);
    return { recall: value };
  }
  return m[1] === 'mflops' ? { mflops: value } : { latencyMs: value };
}

export function formatBudget(b: Budget): string {
  return 'mflops' in b ? `mflops=${b.mflops}` : 'recall' in b ? `recall=${b.recall}` : `latencyMs=${b.latencyMs}`;
}

/**
 * Picks the configuration for a budget from calibrated points:
 *  - {mflops}: the highest recall whose per-query cost fits (`price`; by
 *    default the mean + 2 standard errors; an index prices its points on the
 *    current list sizes, at their largest query);
 *  - {recall}: among the points whose recall (mean - 2 standard errors)
 *    reaches it, the fastest (`price`'s calibrated latency; within
 *    LATENCY_TIE of it, the fewest MFLOPs). The fewest MFLOPs alone picked
 *    patience and funnel plans whose overheads the cost model does not
 *    count, 1.16x to 1.43x slower at 0.8 to 0.95 on Fashion-MNIST (the
 *    candidates' latencies re-timed by calibration, retime.ts). Without
 *    latencies (every point's must be a positive number) the fewest MFLOPs;
 *  - {latencyMs}: the highest recall whose latency (`price`), rescaled by `latencyScale`, fits.
 * When nothing meets the budget, the cheapest point (mflops, latency) or the
 * most accurate one (recall) is returned with budgetMet false, or, with
 * `strict`, the request is refused.
 */
export function planBudget(points: FrontierPoint[], budget: Budget, options: { strict?: boolean; latencyScale?: number; price?: PointCost } = {}): Plan {
  if (points.length === 0) throw new Error('this index has no calibration: build it with calibration or run calibrate first');
  const scale = options.latencyScale ?? 1;
  const price: PointCost = options.price ?? ((p) => ({ budgetMflops: p.mflops + CONFIDENCE * p.mflopsStdErr, mflops: p.mflops, latencyMs: p.latencyMs }));
  const plan = (p: FrontierPoint, budgetMet: boolean): Plan => ({
    params: { ...p.params },
    expectedRecall: p.recall,
    recallLowerBound: recallLowerBound(p),
    expectedMflops: price(p).mflops,
    expectedLatencyMs: price(p).latencyMs * scale,
    budgetMet,
  });
  const refuse = (what: string) => {
    throw new Error(`budget ${formatBudget(budget)} cannot be met: ${what} (strict)`);
  };
  const byRecall = (a: FrontierPoint, b: FrontierPoint) => b.recall - a.recall || a.mflops - b.mflops;
  if ('recall' in budget) {
    const ok = points.filter((p) => recallLowerBound(p) >= budget.recall);
    if (ok.length > 0) return plan(fastest(ok, price), true);
    const best = [...points].sort(byRecall)[0];
    if (options.strict) refuse(`the best calibrated recall is ${best.recall.toFixed(4)}`);
    return plan(best, false);
  }
  const cost = 'mflops' in budget ? (p: FrontierPoint) => price(p).budgetMflops : (p: FrontierPoint) => price(p).latencyMs * scale;
  const limit = 'mflops' in budget ? budget.mflops : budget.latencyMs;
  const ok = points.filter((p) => cost(p) <= limit).sort(byRecall);
  if (ok.length > 0) return plan(ok[0], true);
  const cheapest = [...points].sort((a, b) => cost(a) - cost(b))[0];
  if (options.strict) refuse(`the cheapest calibrated point costs ${cost(cheapest).toFixed(4)}`);
  return plan(cheapest, false);
}

/** The fastest of points by `price`'s latency, the fewest MFLOPs among those within LATENCY_TIE of it (all of them without latencies). */
function fastest(points: FrontierPoint[], price: PointCost): FrontierPoint {
  const latency = points.map((p) => price(p).latencyMs);
  const timed = latency.every((l) => Number.isFinite(l) && l > 0);
  const quickest = timed ? Math.min(...latency) : Infinity;
  const close = points.filter((_, i) => !timed || latency[i] <= LATENCY_TIE * quickest);
  return close.sort((a, b) => price(a).mflops - price(b).mflops || b.recall - a.recall)[0];
}
