import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WasmSimdBackend } from '@adanns/compute';
import { generateSynthetic, memoryStream } from '@adanns/datasets';
import { AdannsIndex, buildFromStream, calibrate, heldOutRows, loadIndex, planBudget, recallAtK, recallCandidates, saveIndex, type Calibration } from '../src/index.js';

// Held-out, k-aware calibration (docs/ARCHITECTURE.md, "Calibration and planning"): the
// calibration queries never train a stage, recall is calibrated at every k served, and the
// planner's promises hold on queries nobody calibrated on.

const dim = 32;
const { base, queries } = generateSynthetic({ n: 6000, dim, clusters: 50, queries: 400, noise: 0.8, seed: 17 });
const spec = 'pca,ivf48@16,flat@16,rerank@32:f32';
const seed = 3;
let backend: WasmSimdBackend;
let index: AdannsIndex;
const dirs: string[] = [];
const samples = new Map<string, Int32Array>();

beforeAll(async () => {
  backend = await WasmSimdBackend.create({ threads: 1 });
});
afterAll(async () => {
  index?.release();
  await backend.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Fraction of targets whose achieved recall@k on the unseen queries reaches target - 0.01 (targets the plan meets). */
async function sweep(k: number, truth: Float64Array, truthK: number, targets: number[]): Promise<{ ok: number; planned: number; misses: string[] }> {
  let ok = 0;
  let planned = 0;
  const misses: string[] = [];
  for (const target of targets) {
    const plan = index.plan({ recall: target }, k);
    // a target beyond the calibrated best is answered with the best point and budgetMet false: not a promise
    if (!plan.budgetMet) continue;
    planned++;
    const r = await index.search(queries.data, queries.rows, k, plan.params);
    const achieved = recallAtK(r.ids, k, truth, truthK, queries.rows, k);
    if (achieved >= target - 0.01) ok++;
    else misses.push(`target ${target}: achieved ${achieved.toFixed(4)} (expected ${plan.expectedRecall.toFixed(4)})`);
  }
  return { ok, planned, misses };
}

const targets = Array.from({ length: 25 }, (_, i) => Number((0.5 + i * 0.02).toFixed(2)));

describe('held-out, k-aware calibration', () => {
  it('draws its queries before training, keeps them out of every training sample, and still indexes them', async () => {
    index = await AdannsIndex.build(backend, spec, base.data, base.rows, dim, {
      metric: 'cosine',
      seed,
      pcaSampleSize: 5000,
      onSample: (stage, rows) => samples.set(stage, rows),
      calibrate: { sampleSize: 300, maxSeconds: 120 },
    });
    const c = index.calibration!;
    const held = heldOutRows(base.rows, seed + 303, 300, 48);
    expect(held.length).toBe(300);
    expect(c).toMatchObject({ source: 'held-out', selfExcluded: true, queries: 300, complete: true, k: 10 });
    expect(c.levels!.map((l) => l.k)).toEqual([1, 10, 100]);
    expect(samples.has('pca') && samples.has('kmeans')).toBe(true);
    const heldSet = new Set(held);
    for (const [stage, rows] of samples) expect(rows.some((r) => heldSet.has(r)), `${stage} sample`).toBe(false);
    // the PCA sample would have drawn some of them had they not been held out (5000 of 6000 rows)
    expect(samples.get('pca')!.length).toBe(5000);
    expect(index.size).toBe(base.rows);
    for (const r of held) expect(index.has(r)).toBe(true);
    // re-ranking params at k serve only shortlists of at least k
    for (const level of c.levels!) for (const p of level.points) expect(p.params.shortlist).toBeGreaterThanOrEqual(level.k);
  }, 200_000);

  it('keeps the held-out rows out of a streaming build\'s training sample too', async () => {
    const seen = new Map<string, Int32Array>();
    const streamed = await buildFromStream(backend, spec, memoryStream(base), {
      metric: 'cosine',
      seed,
      trainRows: 4000,
      onSample: (stage, rows) => seen.set(stage, rows),
      calibrate: { sampleSize: 100, ks: [10], maxSeconds: 20 },
    });
    const held = new Set(heldOutRows(base.rows, seed + 303, 100, 48));
    expect(held.size).toBe(100);
    expect(streamed.calibration).toMatchObject({ source: 'held-out', queries: 100 });
    expect(seen.size).toBeGreaterThanOrEqual(2);
    for (const [stage, rows] of seen) expect(rows.some((r) => held.has(r)), `${stage} sample`).toBe(false);
    streamed.release();
  }, 120_000);

  it('meets recall targets on unseen queries at k = 1, 10 and 100 (achieved >= target - 0.01 for 95% of targets)', async () => {
    const truth = (await index.exactSearch(queries.data, queries.rows, 100)).ids;
    for (const k of [1, 10, 100]) {
      const { ok, planned, misses } = await sweep(k, truth, 100, targets);
      expect(planned, `k = ${k}: targets the calibration can meet`).toBeGreaterThanOrEqual(15);
      expect(ok / planned, `k = ${k}: ${misses.join('; ')}`).toBeGreaterThanOrEqual(0.95);
    }
  }, 120_000);

  it('plans a k it did not calibrate from the ks around it, says so, and still holds on unseen queries', async () => {
    const truth = (await index.exactSearch(queries.data, queries.rows, 100)).ids;
    const r = await index.searchWithBudget(queries.data, queries.rows, 50, { recall: 0.9 });
    expect(r.budgetMet).toBe(false);
    expect(r.budgetNote).toMatch(/recall at k = 50 is not calibrated \(calibrated k: 1, 10, 100\): planned on the lower of the recalls at k = 10 and 100 less 0.02 \(estimated lower bound 0\.9\d+\), so the budget is not claimed/);
    expect(r.plan).toMatchObject({ calibratedK: null, recallFrom: [10, 100] });
    expect(r.params.shortlist).toBeGreaterThanOrEqual(100);
    // an MFLOPs budget at such a k says how its recall was estimated too
    const m = await index.searchWithBudget(queries.data, queries.rows, 5, { mflops: 10 });
    expect(m.budgetNote).toMatch(/recall at k = 5 is not calibrated/);
    for (const k of [5, 50]) {
      const { ok, planned, misses } = await sweep(k, truth, 100, targets);
      expect(planned).toBeGreaterThan(0);
      expect(ok / planned, `k = ${k}: ${misses.join('; ')}`).toBeGreaterThanOrEqual(0.95);
    }
  }, 120_000);

  it('saves every level, and still loads a single-k calibration saved before levels', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'adanns-calibration-'));
    dirs.push(dir);
    saveIndex(index, dir);
    const loaded = loadIndex(backend, dir);
    expect(loaded.calibration!.levels!.map((l) => l.k)).toEqual([1, 10, 100]);
    expect(loaded.plan({ recall: 0.9 }, 100)).toEqual(index.plan({ recall: 0.9 }, 100));
    loaded.release();
    // an older file: k and points only
    const saved = JSON.parse(readFileSync(join(dir, 'calibration.json'), 'utf8')) as Calibration;
    const older = { k: saved.k, queries: saved.queries, selfExcluded: true, points: saved.points, seconds: saved.seconds, complete: saved.complete };
    writeFileSync(join(dir, 'calibration.json'), JSON.stringify(older));
    const old = loadIndex(backend, dir);
    expect(old.plan({ recall: 0.9 }, 10)).toMatchObject({ calibratedK: 10, recallNote: null });
    expect(old.plan({ recall: 0.9 }, 20).recallNote).toMatch(/recall at k = 20 is not calibrated \(calibrated k: 10\): planned on the recall at k = 10 less 0.02/);
    old.release();
    writeFileSync(join(dir, 'calibration.json'), JSON.stringify({ ...saved, levels: [{ k: 0, points: [] }] }));
    expect(() => loadIndex(backend, dir)).toThrow(/malformed calibration levels/);
  });

  it('calibrates on queries given by the user, at the ks asked', async () => {
    const given = queries.data.subarray(0, 50 * dim);
    const c = await index.calibrate({ queries: given, ks: [5, 20], maxSeconds: 20 });
    expect(c).toMatchObject({ source: 'given', selfExcluded: false, queries: 50, k: 5 });
    expect(c.levels!.map((l) => l.k)).toEqual([5, 20]);
    expect(() => index.plan({ recall: 0.5 }, 5)).not.toThrow();
    await expect(index.calibrate({ queries: given.subarray(0, dim + 3), ks: [5] })).rejects.toThrow(/35 values are not whole vectors of dimension 32/);
    await expect(index.calibrate({ queries: given, ks: [0] })).rejects.toThrow(/k must be a positive integer, got 0/);
  });
});

describe('held-out calibration on small data', () => {
  // PQ trains 256 centroids per sub-quantiser: holding out a tenth of 280 rows would leave 252
  it('holds out only what leaves the codec its minimum training rows, else calibrates on stored vectors', async () => {
    const small = generateSynthetic({ n: 280, dim: 16, clusters: 8, queries: 1, noise: 0.5, seed: 5 }).base;
    const pq = await AdannsIndex.build(backend, 'ivf4@16,pq4@16', small.data, small.rows, 16, { metric: 'l2', seed, calibrate: { maxSeconds: 30 } });
    expect(pq.calibration).toMatchObject({ source: 'held-out', queries: 280 - 256 });
    pq.release();
    // 257 rows leave room for one held-out row, too few to calibrate on: stored vectors instead
    const tight = await AdannsIndex.build(backend, 'ivf4@16,pq4@16', small.data.subarray(0, 257 * 16), 257, 16, { metric: 'l2', seed, calibrate: { maxSeconds: 30 } });
    expect(tight.calibration).toMatchObject({ source: 'stored' });
    tight.release();
  });

  it('times the points a recall budget chooses between again at the end, side by side, so a stall during the sweep does not decide', async () => {
    const small = await AdannsIndex.build(backend, 'ivf16@16,flat@32', base.data.subarray(0, 2000 * dim), 2000, dim, { metric: 'cosine', seed });
    const stallMs = 3;
    // the sweep times a point at its search k plus one (the query, a stored vector, finds itself); the re-timing at the
    // level's k: every sweep timing stalls, as on a host busy elsewhere, the re-timing runs on a quiet one
    const ks = [10];
    const retimed = new Map<string, number>();
    const stalling = Object.assign(Object.create(small) as AdannsIndex, {
      search: (...args: Parameters<AdannsIndex['search']>) => {
        if (args[1] === 1) {
          if (ks.includes(args[2])) retimed.set(JSON.stringify(args[3]), (retimed.get(JSON.stringify(args[3])) ?? 0) + 1);
          else {
            const until = performance.now() + stallMs;
            while (performance.now() < until);
          }
        }
        return small.search(...args);
      },
    });
    try {
      const c = await calibrate(stalling, { sampleSize: 60, ks, latencyQueries: 4, maxSeconds: 5, filtered: false });
      // three passes over every candidate, four queries each; the candidates are those the sweep's latencies made
      expect(retimed.size).toBeGreaterThan(1);
      for (const calls of retimed.values()) expect(calls).toBe(3 * 4);
      for (const p of c.points) {
        if (retimed.has(JSON.stringify(p.params))) expect(p.latencyMs, JSON.stringify(p.params)).toBeLessThan(stallMs / 2);
        else expect(p.latencyMs, JSON.stringify(p.params)).toBeGreaterThanOrEqual(stallMs);
      }
      expect(recallCandidates(c.points).length).toBeGreaterThan(1);
      for (const target of [0.6, 0.8, 0.9]) {
        const plan = planBudget(c.points, { recall: target });
        if (plan.budgetMet) expect(plan.expectedLatencyMs, `recall ${target}`).toBeLessThan(stallMs / 2);
      }
    } finally {
      small.release();
    }
  });
});
