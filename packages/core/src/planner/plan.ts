import type { SearchParams } from '../params.js';
import type { FrontierPoint } from './frontier.js';

export type Budget = { mflops: number } | { latencyMs: number } | { recall: number };

export interface Plan {
  params: SearchParams;
  /** Calibrated mean recall@k of the chosen point. */
  expectedRecall: number;
  /** Calibrated mean modelled MFLOPs of the chosen point. */
  expectedMflops: number;
  budgetMet: boolean;
}

/** Standard errors kept between the calibrated mean and the budget, so the plan holds on other queries too. */
const CONFIDENCE = 2;

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
 *  - {mflops}: the highest recall whose cost (mean + 2 standard errors) fits;
 *  - {recall}: the cheapest point whose recall (mean - 2 standard errors) reaches it;
 *  - {latencyMs}: the highest recall whose latency, rescaled by `latencyScale`, fits.
 * When nothing meets the budget, the cheapest point (mflops, latency) or the
 * most accurate one (recall) is returned with budgetMet false, or, with
 * `strict`, the request is refused.
 */
export function planBudget(points: FrontierPoint[], budget: Budget, options: { strict?: boolean; latencyScale?: number } = {}): Plan {
  if (points.length === 0) throw new Error('this index has no calibration: build it with calibration or run calibrate first');
  const plan = (p: FrontierPoint, budgetMet: boolean): Plan => ({ params: { ...p.params }, expectedRecall: p.recall, expectedMflops: p.mflops, budgetMet });
  const refuse = (what: string) => {
    throw new Error(`budget ${formatBudget(budget)} cannot be met: ${what} (strict)`);
  };
  const byRecall = (a: FrontierPoint, b: FrontierPoint) => b.recall - a.recall || a.mflops - b.mflops;
  if ('recall' in budget) {
    const ok = points.filter((p) => p.recall - CONFIDENCE * p.recallStdErr >= budget.recall).sort((a, b) => a.mflops - b.mflops || b.recall - a.recall);
    if (ok.length > 0) return plan(ok[0], true);
    const best = [...points].sort(byRecall)[0];
    if (options.strict) refuse(`the best calibrated recall is ${best.recall.toFixed(4)}`);
    return plan(best, false);
  }
  const scale = options.latencyScale ?? 1;
  const cost = 'mflops' in budget ? (p: FrontierPoint) => p.mflops + CONFIDENCE * p.mflopsStdErr : (p: FrontierPoint) => p.latencyMs * scale;
  const limit = 'mflops' in budget ? budget.mflops : budget.latencyMs;
  const ok = points.filter((p) => cost(p) <= limit).sort(byRecall);
  if (ok.length > 0) return plan(ok[0], true);
  const cheapest = [...points].sort((a, b) => cost(a) - cost(b))[0];
  if (options.strict) refuse(`the cheapest calibrated point costs ${cost(cheapest).toFixed(4)}`);
  return plan(cheapest, false);
}
