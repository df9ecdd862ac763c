import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WasmSimdBackend } from '@adanns/compute';
import { generateSynthetic } from '@adanns/datasets';
import { AdannsIndex, judgeBudget, pricePoint, probedMass, recallAtK, type FrontierPoint, type ProbeStatistics } from '../src/index.js';

describe('judging an answer against its budget', () => {
  const measured = { k: 10, maxMflops: 0.31, tookMs: 4 };
  const calibrated = { lowerBound: 0.91, calibratedK: 10 };

  it('meets an MFLOPs budget only when every query is within it', () => {
    expect(judgeBudget({ mflops: 0.3 }, measured, calibrated)).toEqual({ met: false, note: 'a query spent 0.3100 MFLOPs, over the budget of 0.3' });
    expect(judgeBudget({ mflops: 0.31 }, measured, calibrated)).toEqual({ met: true, note: null });
  });

  it('meets a latency budget only when the measured time is within it', () => {
    expect(judgeBudget({ latencyMs: 3.5 }, measured, calibrated).met).toBe(false);
    expect(judgeBudget({ latencyMs: 3.5 }, measured, calibrated).note).toMatch(/took 4.000 ms, over the budget of 3.5 ms/);
    expect(judgeBudget({ latencyMs: 4 }, measured, calibrated).met).toBe(true);
  });

  it('meets a recall budget on the calibrated lower bound at this k only', () => {
    expect(judgeBudget({ recall: 0.9 }, measured, calibrated)).toEqual({ met: true, note: null });
    expect(judgeBudget({ recall: 0.92 }, measured, calibrated)).toMatchObject({ met: false, note: expect.stringMatching(/lower bound 0.9100 is below the budget of 0.92/) });
    expect(judgeBudget({ recall: 0.5 }, { ...measured, k: 50 }, calibrated)).toMatchObject({ met: false, note: expect.stringMatching(/calibrated at k = 10, not at k = 50/) });
    expect(judgeBudget({ recall: 0.5 }, measured, { lowerBound: null, calibratedK: null }).met).toBe(false);
    // an exact search: recall 1 at any k
    expect(judgeBudget({ recall: 0.99 }, { ...measured, k: 50 }, { lowerBound: 1, calibratedK: null }).met).toBe(true);
  });
});

describe('pricing calibrated points on the current lists', () => {
  const stats: ProbeStatistics = {
    queries: 4,
    listSizes: [10, 20, 30],
    probes: [
      { coarseDim: 8, nprobe: 1, counts: [2, 1, 1] },
      { coarseDim: 8, nprobe: 2, counts: [3, 3, 2] },
    ],
  };
  const point: FrontierPoint = { params: { coarseDim: 8, nprobe: 1, scanDim: 16, shortlist: 20, rerankDim: 64 }, recall: 0.9, recallStdErr: 0.01, mflops: 0.01, mflopsStdErr: 0.0001, mflopsMax: 0.012, latencyMs: 1 };

  it('weights each list by how often the calibration queries probed it', () => {
    expect(probedMass(stats, stats.listSizes, 8, 1)).toBe((2 * 10 + 20 + 30) / 4);
    expect(probedMass(stats, [20, 40, 60], 8, 2)).toBe((3 * 20 + 3 * 40 + 2 * 60) / 4);
    expect(probedMass(stats, stats.listSizes, 8, 4)).toBeUndefined(); // not calibrated
    expect(probedMass(stats, stats.listSizes, 0, 0)).toBe(60); // no IVF: every vector
  });

  it('moves the mean by the change in probed mass and scales spread and latency with it', () => {
    expect(pricePoint(point, stats, stats.listSizes, 16, 20)).toEqual({ mflops: 0.01, mflopsMax: 0.012, latencyMs: 1 });
    const doubled = pricePoint(point, stats, [20, 40, 60], 16, 20);
    const extra = (17.5 * 16) / 1e6; // the probed mass went from 17.5 to 35 vectors of 16 multiply-adds
    expect(doubled.mflops).toBeCloseTo(0.01 + extra, 12);
    expect(doubled.mflopsMax).toBeCloseTo(0.01 + extra + 0.002 * 2, 12);
    expect(doubled.latencyMs).toBeCloseTo((0.01 + extra) / 0.01, 12);
    // a shortlist raised to k re-ranks more
    expect(pricePoint(point, stats, stats.listSizes, 16, 30).mflops).toBeCloseTo(0.01 + (10 * 64) / 1e6, 12);
    // a calibration without probe statistics keeps its figures (mean + 2 standard errors as the largest query)
    expect(pricePoint({ ...point, mflopsMax: undefined }, undefined, [20, 40, 60], 16, 20)).toEqual({ mflops: 0.01, mflopsMax: 0.0102, latencyMs: 1 });
  });
});

describe('budgets on an index that grew after calibration', () => {
  const dim = 32;
  const { base, queries } = generateSynthetic({ n: 6000, dim, clusters: 40, queries: 200, noise: 1, seed: 5 });
  let backend: WasmSimdBackend;
  let index: AdannsIndex;
  let calibratedMflops: number;
  beforeAll(async () => {
    backend = await WasmSimdBackend.create({ threads: 1 });
  });
  afterAll(async () => {
    index?.release();
    await backend.dispose();
  });

  it('prices plans on the lists as they are now', async () => {
    const half = 3000 * dim;
    index = await AdannsIndex.build(backend, 'ivf32@16,flat@32', base.data.subarray(0, half), 3000, dim, { metric: 'cosine', calibrate: { sampleSize: 200, maxSeconds: 20 } });
    expect(index.calibration!.probeStats!.probes.length).toBeGreaterThan(0);
    calibratedMflops = index.plan({ recall: 0.9 }, 10).expectedMflops;
    await index.add(Float64Array.from({ length: 3000 }, (_, i) => 3000 + i), base.data.subarray(half), 3000);
    const plan = index.plan({ recall: 0.9 }, 10);
    const r = await index.search(queries.data, queries.rows, 10, plan.params);
    const measured = r.mflops.reduce((a, b) => a + b, 0) / queries.rows;
    // the lists doubled: the scan (most of the cost) doubled, and the prediction follows within 15%
    expect(plan.expectedMflops).toBeGreaterThan(1.5 * calibratedMflops);
    expect(Math.abs(plan.expectedMflops - measured) / measured).toBeLessThan(0.15);
    expect(index.predictMflops(plan.params)).toBeCloseTo(plan.expectedMflops, 12);
  }, 60_000);

  it('never reports an MFLOPs or latency budget met when an answer exceeded it', async () => {
    const front = index.frontier();
    const budgets = [front[0].mflops / 2, ...front.map((p) => p.mflops), ...front.map((p) => p.mflops * 1.7)];
    let met = 0;
    let missed = 0;
    for (const mflops of budgets) {
      for (const rows of [1, 20]) {
        const r = await index.searchWithBudget(queries.data.subarray(0, rows * dim), rows, 10, { mflops });
        expect(r.budgetMet, `mflops ${mflops}, ${rows} queries`).toBe(Math.max(...r.mflops) <= mflops);
        if (r.budgetMet) met++;
        else {
          missed++;
          expect(r.budgetNote).toMatch(/over the budget/);
        }
      }
    }
    // the sweep crosses the boundary both ways
    expect(met).toBeGreaterThan(0);
    expect(missed).toBeGreaterThan(0);
    for (const latencyMs of [1e-4, 0.05, 1000]) {
      const r = await index.searchWithBudget(queries.data.subarray(0, 5 * dim), 5, 10, { latencyMs });
      expect(r.budgetMet, `latency ${latencyMs}`).toBe(r.tookMs <= latencyMs);
    }
    expect((await index.searchWithBudget(queries.data.subarray(0, dim), 1, 10, { latencyMs: 1e-4 })).budgetMet).toBe(false);
  });

  it('claims a recall budget only at the calibrated k, and then holds it', async () => {
    const truth = (await index.exactSearch(queries.data, queries.rows, 10)).ids;
    const r = await index.searchWithBudget(queries.data, queries.rows, 10, { recall: 0.8 });
    expect(r.budgetMet).toBe(true);
    expect(recallAtK(r.ids, 10, truth, 10, queries.rows, 10)).toBeGreaterThanOrEqual(0.78);
    const other = await index.searchWithBudget(queries.data, queries.rows, 20, { recall: 0.8 });
    expect(other.budgetMet).toBe(false);
    // k = 20 lies between the calibrated 10 and 100: planned on the lower of their recalls, less a margin, and not claimed
    expect(other.budgetNote).toMatch(/recall at k = 20 is not calibrated \(calibrated k: 1, 10, 100\): planned on the lower of the recalls at k = 10 and 100 less 0.02/);
    expect(other.plan.recallFrom).toEqual([10, 100]);
  });
});
