import { dimsLadder, formatBudget, recallAtK, type Budget } from '@adanns/core';
import { listCount, type BenchContext } from '../context.js';
import { meanAveragePrecisionAtK, top1Accuracy } from '../quality.js';
import { latencies, medianMs, peakRssBytes, percentile } from '../timing.js';
import { buildTimed } from './adanns.js';

/**
 * Compute-aware search: one AdANNS-IVF index, calibrated on a held-out sample
 * of the base (the evaluated queries are never seen), then searched at each
 * budget; each row puts the requested budget beside what was achieved.
 */
export async function budgetSuite(ctx: BenchContext): Promise<void> {
  const { base, queries, truth, baseLabels, queryLabels } = ctx.data;
  const D = base.dim;
  const ladder = dimsLadder(D);
  const dc = ladder.filter((d) => d < D && d <= 32).at(-1) ?? D;
  const ds = ladder.filter((d) => d < D && d <= 128).at(-1) ?? D;
  const spec = `${ctx.transform === 'pca' ? 'pca,' : ''}ivf${listCount(base.rows)}@${dc},flat@${ds}${ds < D ? `,rerank@${D}` : ''}`;
  const { index, seconds } = await buildTimed(ctx, spec, { calibrate: { k: ctx.k, onProgress: (d, t) => ctx.progress('calibrate', d, t) } });
  const cal = index.calibration!;
  ctx.log(`budget: calibrated on ${cal.queries} held-out base vectors, ${cal.points.length} points in ${cal.seconds.toFixed(1)} s`);
  const k = ctx.k;
  const q = queries.rows;
  const dim = queries.dim;
  for (const budget of ctx.budgets) {
    const result = await index.searchWithBudget(queries.data, q, k, budget);
    const params = result.params;
    const batchMs = await medianMs(() => index.search(queries.data, q, k, params), ctx.repeats);
    const lat = await latencies(Math.min(ctx.latencyQueries, q), (i) => index.search(queries.data.subarray(i * dim, (i + 1) * dim), 1, k, params));
    const labelled = baseLabels !== undefined && queryLabels !== undefined;
    ctx.add({
      system: 'budget',
      spec,
      params: Object.fromEntries(Object.entries(params).filter(([, v]) => v !== 0)),
      budget,
      budgetMet: result.budgetMet ?? false,
      expectedRecall: result.expectedRecall,
      k,
      recall: recallAtK(result.ids, k, truth.ids, truth.k, q, k),
      top1: labelled ? top1Accuracy(result.ids, k, baseLabels, queryLabels) : null,
      map: labelled ? meanAveragePrecisionAtK(result.ids, k, baseLabels, queryLabels) : null,
      mflops: result.mflops.reduce((a, b) => a + b, 0) / q,
      qps: 1000 / (lat.reduce((a, b) => a + b, 0) / lat.length),
      batchQps: (q * 1000) / batchMs,
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      buildSeconds: seconds,
      indexBytes: index.bytes,
      rssBytes: peakRssBytes(),
      note: `requested ${formatBudget(budget)}`,
    });
  }
}

export const DEFAULT_BUDGETS: Budget[] = [{ recall: 0.8 }, { recall: 0.9 }, { recall: 0.95 }, { mflops: 0.5 }];
