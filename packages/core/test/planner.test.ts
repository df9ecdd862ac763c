import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '@adanns/compute';
import { generateSynthetic } from '@adanns/datasets';
import { AdannsIndex, loadIndex, paretoFrontier, parseBudget, planBudget, recallAtK, recallCandidates, saveIndex, type FrontierPoint } from '../src/index.js';

const backend = new ReferenceBackend();
const point = (nprobe: number, recall: number, mflops: number, latencyMs = mflops * 10): FrontierPoint => ({
  params: { coarseDim: 16, nprobe, scanDim: 32, shortlist: 10 },
  recall,
  recallStdErr: 0.005,
  mflops,
  mflopsStdErr: 0.001,
  latencyMs,
});
const points = [point(1, 0.5, 0.1), point(2, 0.7, 0.2), point(3, 0.65, 0.25), point(4, 0.85, 0.4), point(8, 0.95, 0.8), point(16, 0.97, 1.6)];

describe('frontier and planner', () => {
  it('keeps a frontier whose recall rises with cost', () => {
    const front = paretoFrontier(points, (p) => p.mflops);
    expect(front.map((p) => p.params.nprobe)).toEqual([1, 2, 4, 8, 16]);
    for (let i = 1; i < front.length; i++) {
      expect(front[i].mflops).toBeGreaterThan(front[i - 1].mflops);
      expect(front[i].recall).toBeGreaterThan(front[i - 1].recall);
    }
  });

  it('picks the best recall within an MFLOP budget, keeping two standard errors of cost in hand', () => {
    expect(planBudget(points, { mflops: 0.5 })).toMatchObject({ params: { nprobe: 4 }, expectedRecall: 0.85, budgetMet: true });
    // 0.8 + 2 x 0.001 does not fit in 0.801
    expect(planBudget(points, { mflops: 0.801 }).params.nprobe).toBe(4);
    expect(planBudget(points, { mflops: 0.802 }).params.nprobe).toBe(8);
  });

  it('picks the fastest point whose recall, less two standard errors, reaches a target', () => {
    expect(planBudget(points, { recall: 0.8 })).toMatchObject({ params: { nprobe: 4 }, budgetMet: true });
    expect(planBudget(points, { recall: 0.94 }).params.nprobe).toBe(8);
    expect(planBudget(points, { recall: 0.945 }).params.nprobe).toBe(16); // 0.95 - 0.01 falls short
    // fewer MFLOPs but slower (a patience or funnel plan's overheads): the faster point that reaches the target wins
    const slowCheap = { ...point(32, 0.96, 0.5, 9), params: { ...point(32, 0, 0).params, probeMargin: 0.1 } };
    expect(planBudget([...points, slowCheap], { recall: 0.94 }).params.nprobe).toBe(8);
    // within 10% of the fastest latency is a tie: the fewer MFLOPs wins
    const nearlyAsFast = point(32, 0.96, 0.5, 8.5);
    expect(planBudget([...points, nearlyAsFast], { recall: 0.94 }).params.nprobe).toBe(32);
    expect(planBudget([...points, point(32, 0.96, 0.5, 8.9)], { recall: 0.94 }).params.nprobe).toBe(8);
    // with the index's pricing (latency on the lists as they are now) rather than the calibrated figures
    expect(planBudget([...points, slowCheap], { recall: 0.94 }, { price: (p) => ({ budgetMflops: p.mflops, mflops: p.mflops, latencyMs: p.params.nprobe === 8 ? 20 : p.latencyMs }) }).params.nprobe).toBe(32);
    // a calibration without latencies (0 or missing): the fewest MFLOPs
    expect(planBudget([...points, { ...slowCheap, latencyMs: 0 }], { recall: 0.94 }).params.nprobe).toBe(32);
  });

  it('re-times, for each recall target, the two fastest points reaching it and the one of fewest MFLOPs', () => {
    // latency rises with nprobe except for the slow cheap point at 32
    const slowCheap = point(32, 0.96, 0.5, 9);
    const all = [...points, slowCheap];
    const picked = recallCandidates(all).map((p) => p.params.nprobe).sort((a, b) => a - b);
    // targets from 0.5: nprobe 1 (lower bound 0.49) never reaches one; 2 and 3 are the fastest up to 0.64, then 2 and 4,
    // 4 and 8, 8 and 32 (32 also the cheapest there), 32 and 16 at 0.95, 16 alone at 0.96
    expect(picked).toEqual([2, 3, 4, 8, 16, 32]);
    // without the slow cheap point, 32 is not picked and nothing else changes
    expect(recallCandidates(points).map((p) => p.params.nprobe).sort((a, b) => a - b)).toEqual([2, 3, 4, 8, 16]);
    expect(recallCandidates([point(1, 0.4, 0.1)])).toEqual([]);
    expect(recallCandidates([point(1, 0.6, 0.1), point(2, 0.6, 0.2), point(3, 0.6, 0.3)]).map((p) => p.params.nprobe)).toEqual([1, 2]);
  });

  it('plans latency with the probe\'s scale', () => {
    expect(planBudget(points, { latencyMs: 4.5 }).params.nprobe).toBe(4);
    expect(planBudget(points, { latencyMs: 4.5 }, { latencyScale: 0.5 }).params.nprobe).toBe(8);
  });

  it('falls back to the cheapest (or best) point when nothing meets the budget, or refuses when strict', () => {
    expect(planBudget(points, { mflops: 0.01 })).toMatchObject({ params: { nprobe: 1 }, budgetMet: false });
    expect(planBudget(points, { recall: 0.999 })).toMatchObject({ params: { nprobe: 16 }, budgetMet: false });
    expect(() => planBudget(points, { mflops: 0.01 }, { strict: true })).toThrow(/budget mflops=0.01 cannot be met: the cheapest calibrated point costs 0.1020/);
    expect(() => planBudget(points, { recall: 0.999 }, { strict: true })).toThrow(/the best calibrated recall is 0.9700/);
    expect(() => planBudget([], { recall: 0.9 })).toThrow(/no calibration/);
  });

  it('parses budgets and names bad ones', () => {
    expect(parseBudget('mflops=0.5')).toEqual({ mflops: 0.5 });
    expect(parseBudget('recall=0.9')).toEqual({ recall: 0.9 });
    expect(parseBudget('latencyMs=2')).toEqual({ latencyMs: 2 });
    expect(() => parseBudget('recall=1.5')).toThrow(/at most 1/);
    expect(() => parseBudget('mflops=-1')).toThrow(/must be a positive number/);
    expect(() => parseBudget('flops=3')).toThrow(/is not mflops=X/);
  });
});

describe('calibrated index', () => {
  const { base, queries } = generateSynthetic({ n: 8000, dim: 64, clusters: 60, queries: 300, noise: 1, seed: 21 });
  const dir = mkdtempSync(join(tmpdir(), 'adanns-planner-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let index: AdannsIndex;
  let truth: Float64Array;

  it('calibrates at build time on held-out samples of its own vectors', async () => {
    index = await AdannsIndex.build(backend, 'ivf64@16,flat@32,rerank@64', base.data, base.rows, base.dim, { metric: 'cosine', calibrate: { sampleSize: 400, ks: [10] } });
    const c = index.calibration!;
    expect(c.selfExcluded).toBe(true);
    expect(c.complete).toBe(true);
    expect(c.points.length).toBeGreaterThan(50);
    truth = (await index.exactSearch(queries.data, queries.rows, 10)).ids;
  }, 300_000);

  it('meets recall targets on queries that were not used for calibration (the planner bar)', async () => {
    for (const target of [0.8, 0.9, 0.95]) {
      const r = await index.searchWithBudget(queries.data, queries.rows, 10, { recall: target });
      const achieved = recallAtK(r.ids, 10, truth, 10, queries.rows, 10);
      expect(r.budgetMet, `recall ${target}`).toBe(true);
      expect(achieved, `recall ${target}`).toBeGreaterThanOrEqual(target - 0.02);
      expect(r.expectedRecall).toBeGreaterThanOrEqual(target);
    }
  });

  it('keeps MFLOP budgets per query and comes within 0.02 of the best frontier point under them', async () => {
    for (const mflops of [0.02, 0.05, 0.1]) {
      const r = await index.searchWithBudget(queries.data, queries.rows, 10, { mflops });
      // an MFLOPs budget holds per query: met exactly when no query spent more
      const most = Math.max(...r.mflops);
      expect(r.budgetMet, `mflops ${mflops}: ${r.budgetNote}`).toBe(most <= mflops);
      // planned on the largest calibration query: queries calibration never saw fit too, nearly all
      expect(r.mflops.filter((m) => m <= mflops).length / queries.rows, `mflops ${mflops}`).toBeGreaterThanOrEqual(0.98);
      const achieved = recallAtK(r.ids, 10, truth, 10, queries.rows, 10);
      // the best point the planner could know to fit: its largest calibration query within the budget (a point whose
      // largest query does not fit may still fit these 300 queries by luck, which the planner cannot see)
      let best = 0;
      for (const p of index.frontier().filter((f) => (f.mflopsMax ?? f.mflops + 2 * f.mflopsStdErr) <= mflops)) {
        const alt = await index.search(queries.data, queries.rows, 10, p.params);
        if (Math.max(...alt.mflops) <= mflops) best = Math.max(best, recallAtK(alt.ids, 10, truth, 10, queries.rows, 10));
      }
      expect(achieved, `mflops ${mflops}`).toBeGreaterThanOrEqual(best - 0.02);
    }
  });

  it('reports expected recall for calibrated params, and refuses strict budgets it cannot meet', async () => {
    const plan = index.plan({ recall: 0.9 }, 10);
    const r = await index.search(queries.data.subarray(0, 5 * 64), 5, 10, plan.params);
    expect(r.expectedRecall).toBe(plan.expectedRecall);
    expect(r.budgetMet).toBeNull();
    expect(r.tookMs).toBeGreaterThan(0);
    await expect(index.searchWithBudget(queries.data.subarray(0, 5 * 64), 5, 10, { mflops: 1e-6 }, { strict: true })).rejects.toThrow(/cannot be met/);
    const loose = await index.searchWithBudget(queries.data.subarray(0, 5 * 64), 5, 10, { mflops: 1e-6 });
    expect(loose.budgetMet).toBe(false);
  });

  it('persists the calibration with the index and probes latency on load', async () => {
    saveIndex(index, join(dir, 'idx'));
    const loaded = loadIndex(backend, join(dir, 'idx'));
    expect(loaded.calibration).toEqual(index.calibration);
    expect(loaded.plan({ recall: 0.9 }, 10)).toEqual(index.plan({ recall: 0.9 }, 10));
    const scale = await loaded.probeLatency();
    expect(scale).toBeGreaterThan(0);
    writeFileSync(join(dir, 'idx', 'calibration.json'), '{"k": 10, "points": [{"recall": "high"}]}');
    expect(() => loadIndex(backend, join(dir, 'idx'))).toThrow(/calibration.json: malformed calibration/);
  });

  it('an index without calibration says so', async () => {
    const bare = await AdannsIndex.build(backend, 'ivf8@16,flat@32', base.data.subarray(0, 1000 * 64), 1000, 64, { metric: 'cosine' });
    expect(() => bare.plan({ recall: 0.9 }, 10)).toThrow(/no calibration/);
  });
});
