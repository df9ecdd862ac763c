import type { CalibrationLevel } from './calibrate.js';
import type { FrontierPoint } from './frontier.js';
import { recallLowerBound } from './plan.js';

/**
 * Re-timing the points a recall budget chooses between (docs/ARCHITECTURE.md,
 * "Calibration and planning"). The sweep times each point once, on a few
 * queries, minutes apart from the others: on a shared host two calibrations
 * put a point's latency a median 1.2x apart (p90 1.8-2x), enough for a recall
 * budget (the fastest point reaching it, plan.ts) to pick a plan that runs
 * slower than the one it passed over. The candidates are timed again at the
 * end, side by side, pass after pass, so the host's state is the same for all.
 */

/** Recall targets whose candidates are re-timed: 0.50 to 0.99 by 0.01. */
const TARGETS = Array.from({ length: 50 }, (_, i) => 0.5 + i / 100);

/** The fastest points (by the sweep's latency) kept per target, besides the fewest MFLOPs. */
const FASTEST_PER_TARGET = 2;

/** Passes over the candidates; each point's latency is its median pass. */
const RETIME_PASSES = 3;

/**
 * For each recall target, the points whose lower bound reaches it that a
 * recall budget could pick: the FASTEST_PER_TARGET fastest by their latency
 * and the one of fewest MFLOPs (which wins a tie). Each point once.
 */
export function recallCandidates(points: readonly FrontierPoint[]): FrontierPoint[] {
  const out = new Set<FrontierPoint>();
  // sorted once: each target's points reaching it keep this order (the sort is stable)
  const byLatency = [...points].sort((a, b) => a.latencyMs - b.latencyMs);
  for (const target of TARGETS) {
    const reaching = byLatency.filter((p) => recallLowerBound(p) >= target);
    if (reaching.length === 0) break;
    for (const p of reaching.slice(0, FASTEST_PER_TARGET)) out.add(p);
    out.add(reaching.reduce((best, p) => (p.mflops < best.mflops ? p : best)));
  }
  return [...out];
}

/**
 * Times every level's recall candidates again (`time`: milliseconds for
 * `queries` single-query searches of the point at the level's k), all of
 * them once per pass, and sets each one's latencyMs to its median pass per
 * query. Returns how many points it timed.
 */
export async function retimeCandidates(levels: readonly CalibrationLevel[], queries: number, time: (point: FrontierPoint, k: number) => Promise<number>): Promise<number> {
  const jobs = levels.flatMap((level) => recallCandidates(level.points).map((point) => ({ point, k: level.k, passes: [] as number[] })));
  for (let pass = 0; pass < RETIME_PASSES; pass++) {
    for (const job of jobs) job.passes.push(await time(job.point, job.k));
  }
  for (const job of jobs) {
    job.passes.sort((a, b) => a - b);
    job.point.latencyMs = job.passes[job.passes.length >> 1] / queries;
  }
  return jobs.length;
}
