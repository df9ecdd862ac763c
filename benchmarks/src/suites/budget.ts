import { calibrationLevels, DEFAULT_CALIBRATION_KS, dimsLadder, formatBudget, type Budget } from '@adanns/core';
import { listCount, type BenchContext } from '../context.js';
import { buildTimed, measureIndex } from './adanns.js';

/**
 * Compute-aware search: one AdANNS-IVF index, calibrated on a held-out sample
 * of the base (the evaluated queries are never seen), then searched at each
 * budget; each row puts the requested budget beside what was achieved.
 */
export async function budgetSuite(ctx: BenchContext): Promise<void> {
  const { base } = ctx.data;
  const D = base.dim;
  const ladder = dimsLadder(D);
  const dc = ladder.filter((d) => d < D && d <= 32).at(-1) ?? D;
  const ds = ladder.filter((d) => d < D && d <= 128).at(-1) ?? D;
  const spec = `${ctx.transform === 'pca' ? 'pca,' : ''}ivf${listCount(base.rows)}@${dc},flat@${ds}${ds < D ? `,rerank@${D}` : ''}`;
  // calibrated as collections are, at 1, 10 and 100 (and the run's k), on base vectors drawn before
  // training and left out of every training sample
  const ks = [...new Set([...DEFAULT_CALIBRATION_KS, ctx.k])];
  const { index, seconds } = await buildTimed(ctx, spec, { calibrate: { ks, onProgress: (d, t) => ctx.progress('calibrate', d, t) } });
  const cal = index.calibration!;
  const levels = calibrationLevels(cal).map((l) => `${l.points.length} at k = ${l.k}`).join(', ');
  ctx.log(`budget: calibrated on ${cal.queries} ${cal.source} base vectors (never trained on), ${levels}, in ${cal.seconds.toFixed(1)} s${cal.complete ? '' : ' (cut short by the time bound)'}`);
  const { queries } = ctx.data;
  for (const budget of ctx.budgets) {
    // budgetMet is the service's verdict on an answer to all the queries (each query's MFLOPs within
    // the budget, the batch's time within a latency budget, the calibrated bound for recall), not
    // the planner's prediction
    const answer = await index.searchWithBudget(queries.data, queries.rows, ctx.k, budget);
    await measureIndex(ctx, 'budget', index, answer.plan.params, seconds, `requested ${formatBudget(budget)}`, {
      budget,
      budgetMet: answer.budgetMet ?? false,
      expectedRecall: answer.expectedRecall,
    });
  }
  ctx.afterTiming(() => index.release());
}

export const DEFAULT_BUDGETS: Budget[] = [{ recall: 0.8 }, { recall: 0.9 }, { recall: 0.95 }, { mflops: 0.5 }];
