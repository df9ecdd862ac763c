import { describe, expect, it } from 'vitest';
import { ReferenceBackend, rowBlock, TopK } from '@adanns/compute';
import { generateSynthetic } from '@adanns/datasets';
import { AdannsIndex, CoarseQuantizer, formatParams, formatPatience, parseParams, patienceError, recallAtK, rerankPatienceError, type FrontierPoint, type PatienceRule, type RerankPatience, type SearchParams } from '../src/index.js';
import { cutProbes, marginForMeanDepth, patienceStops, probeDepth } from '../src/stages/adaptive-probe.js';
import { adaptiveGrid, rerankPatienceGrid } from '../src/planner/adaptive-grid.js';
import { rerankWithPatience } from '../src/stages/adaptive-rerank.js';

const backend = new ReferenceBackend();
const dim = 24;
const { base, queries } = generateSynthetic({ n: 1500, dim, clusters: 12, queries: 40, seed: 3 });
const Q = queries.rows;
const q = queries.data;
const LISTS = 16;

async function ivf(metric: 'cosine' | 'l2' | 'ip' = 'l2'): Promise<AdannsIndex> {
  return AdannsIndex.build(backend, `ivf${LISTS}@${dim},flat@${dim}`, base.data, base.rows, dim, { metric, seed: 2 });
}

describe('adaptive probe rule', () => {
  it('ranks the lists best first with their centroid scores, padded with -1 and NaN past the lists that exist', async () => {
    // 3 centroids, nprobe 5: every query ranks all 3, then two pads
    const centroids = Float32Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0.6, 0.8, 0, 0]);
    const coarse = CoarseQuantizer.of(backend, centroids, 3, 4, 'ip');
    const { lists, scores } = await coarse.rank(rowBlock(Float32Array.from([1, 0.5, 0, 0, 0, 2, 0, 0]), 2, 4), 4, 5);
    expect(Array.from(lists)).toEqual([0, 2, 1, -1, -1, 1, 2, 0, -1, -1]);
    expect(Array.from(scores)).toEqual([1, Math.fround(1), 0.5, NaN, NaN, 2, Math.fround(1.6), 0, NaN, NaN]);
  });

  it('probes while a centroid is within the margin of the best, at least one list and at most the cap', () => {
    const scores = Float32Array.from([1, 0.75, 0.625, 0.25, NaN]);
    expect(probeDepth(scores, 0, 5, 0)).toBe(1);
    expect(probeDepth(scores, 0, 5, 0.25)).toBe(2);
    expect(probeDepth(scores, 0, 5, 0.375)).toBe(3);
    expect(probeDepth(scores, 0, 2, 0.375)).toBe(2);
    // past the lists that exist (NaN) nothing is probed, whatever the margin
    expect(probeDepth(scores, 0, 5, 10)).toBe(4);
    expect(probeDepth(Float32Array.from([NaN]), 0, 1, 1)).toBe(0);
  });

  it('probes the cap when all centroids are tied', () => {
    const lists = Int32Array.from([3, 1, 2, 0, 7, 6, 5, 4]);
    const scores = new Float32Array(8).fill(0.25);
    expect(Array.from(cutProbes(lists, scores, 2, 4, 0))).toEqual([4, 4]);
    expect(Array.from(lists)).toEqual([3, 1, 2, 0, 7, 6, 5, 4]);
  });

  it('fits the margin whose mean depth reaches a target', () => {
    // query 0's gaps: 0.1, 0.2, 0.3; query 1's: 0.05, 0.4, 0.5
    const scores = Float32Array.from([1, 0.9, 0.8, 0.7, 1, 0.95, 0.6, 0.5]);
    const margin = marginForMeanDepth(scores, 2, 4, 4, 2.5);
    const mean = (m: number) => (probeDepth(scores, 0, 4, m) + probeDepth(scores, 4, 4, m)) / 2;
    expect(mean(margin)).toBeGreaterThanOrEqual(2.5);
    expect(mean(margin - 1e-6)).toBeLessThan(2.5);
  });
});

describe('adaptive probing in search', () => {
  it('probes a prefix of the fixed-order lists, within the cap, and reports the MFLOPs of the lists it scanned', async () => {
    const index = await ivf('l2');
    const cap = 8;
    const ranked = await index.rankLists(q, Q, dim, LISTS);
    // a margin that sends queries to different depths
    const margin = marginForMeanDepth(ranked.scores, Q, LISTS, cap, 3);
    const adaptive = await index.search(q, Q, 5, { nprobe: cap, probeMargin: margin });
    expect(adaptive.params).toMatchObject({ nprobe: cap, probeMargin: margin });
    const fixed = await index.probeLists(q, Q, dim, cap);
    const sizes = index.listSizes();
    const depths = new Set<number>();
    for (let r = 0; r < Q; r++) {
      const depth = probeDepth(ranked.scores, r * LISTS, cap, margin);
      depths.add(depth);
      expect(depth).toBeGreaterThanOrEqual(1);
      expect(depth).toBeLessThanOrEqual(cap);
      // the same query searched with exactly its first `depth` lists gives the same answer and the same cost
      const one = await index.search(q.subarray(r * dim, (r + 1) * dim), 1, 5, { nprobe: depth });
      expect(Array.from(adaptive.ids.subarray(r * 5, r * 5 + 5))).toEqual(Array.from(one.ids));
      expect(adaptive.mflops[r]).toBeCloseTo(one.mflops[0], 12);
      // cost of the lists it probed: l2 flat scan at d = dim, one multiply-add per value, plus the centroids
      let scanned = 0;
      for (let i = 0; i < depth; i++) scanned += sizes[fixed[r * cap + i]];
      expect(adaptive.mflops[r]).toBeCloseTo((LISTS * dim + scanned * dim) / 1e6, 12);
    }
    expect(depths.size).toBeGreaterThan(1);
  });

  it('a query whose centroids all tie probes the cap', async () => {
    const index = await ivf('ip');
    const zero = new Float32Array(dim);
    const r = await index.search(zero, 1, 3, { nprobe: 5, probeMargin: 0 });
    const fixed = await index.search(zero, 1, 3, { nprobe: 5 });
    expect(r.mflops[0]).toBe(fixed.mflops[0]);
    expect(r.mflops[0]).toBeGreaterThan((await index.search(zero, 1, 3, { nprobe: 4 })).mflops[0]);
  });

  it('refuses unusable margins with a message naming the value', async () => {
    const index = await ivf('l2');
    await expect(index.search(q.subarray(0, dim), 1, 3, { probeMargin: -0.5 })).rejects.toThrow(/probeMargin must be a finite number >= 0, got -0.5/);
    await expect(index.search(q.subarray(0, dim), 1, 3, { probeMargin: Number.NaN })).rejects.toThrow(/got NaN/);
    const flat = await AdannsIndex.build(backend, 'flat', base.data.subarray(0, 200 * dim), 200, dim, { metric: 'l2' });
    await expect(flat.search(q.subarray(0, dim), 1, 3, { probeMargin: 0.1 })).rejects.toThrow(/no IVF stage: coarseDim, nprobe, probeMargin and patience do not apply/);
  });

  it('round-trips through the params text form (CLI --params)', () => {
    const p: SearchParams = { coarseDim: 16, nprobe: 32, scanDim: 64, shortlist: 100, rerankDim: 784, probeMargin: 0.012345678901234 };
    expect(parseParams(formatParams(p))).toEqual(p);
    expect(parseParams('nprobe=8,probeMargin=0')).toEqual({ nprobe: 8, probeMargin: 0 });
    expect(() => parseParams('probeMargin=-1')).toThrow(/probeMargin must be a finite number >= 0, got "-1"/);
    expect(() => parseParams('probeMargin=abc')).toThrow(/got "abc"/);
    expect(() => parseParams('probeMargin=')).toThrow(/got ""/);
  });
});

describe('adaptive plans', () => {
  it('calibration measures adaptive points with their probe statistics', async () => {
    const index = await ivf('l2');
    const cal = await index.calibrate({ ks: [5], sampleSize: 60, latencyQueries: 1, maxSeconds: 60 });
    const adaptive = cal.points.filter((p) => p.params.probeMargin !== undefined);
    expect(adaptive.length).toBeGreaterThan(0);
    for (const point of adaptive) {
      const stats = cal.probeStats!.probes.find((s) => s.nprobe === point.params.nprobe && s.probeMargin === point.params.probeMargin);
      expect(stats).toBeDefined();
      // priced on the lists as they were at calibration, the prediction is the measurement
      expect(index.predictMflops(point.params)).toBeCloseTo(point.mflops, 9);
    }
  });

  it('fits adaptive points at each fixed nprobe n and halfway to 2n (mean depth n x sqrt 2), each capped at 4x its depth', async () => {
    const index = await ivf('l2');
    const grid: SearchParams[] = [2, 4].map((nprobe) => ({ coarseDim: dim, nprobe, scanDim: dim, shortlist: 5 }));
    const { points, meanDepth } = await adaptiveGrid(index, q, Q, grid);
    const depths = points.map((p) => meanDepth.get(p)!).sort((a, b) => a - b);
    // the smallest margin reaching each depth: the mean lands at or just above it (one query's extra list is 1/40)
    const targets = [2, 2 * Math.SQRT2, 4, 4 * Math.SQRT2];
    expect(depths).toHaveLength(targets.length);
    depths.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(targets[i]);
      expect(d).toBeLessThan(targets[i] + 0.5);
    });
    expect(points.map((p) => p.nprobe).sort((a, b) => a - b)).toEqual([8, 12, 16, LISTS]);
  });

  it('the planner picks an adaptive point when it reaches the target for less', async () => {
    const index = await ivf('l2');
    const sizes = Array.from(index.listSizes());
    const point = (params: SearchParams, recall: number, mflops: number): FrontierPoint => ({ params, recall, recallStdErr: 0.001, mflops, mflopsStdErr: 0.001, mflopsMax: mflops * 2, latencyMs: mflops });
    const fixed = { coarseDim: dim, nprobe: 4, scanDim: dim, shortlist: 5 };
    const adaptive = { ...fixed, nprobe: 8, probeMargin: 0.5 };
    const counts = (n: number) => sizes.map((_, l) => (l < n ? 10 : 0));
    const probeStats = {
      queries: 10,
      listSizes: sizes,
      probes: [
        { coarseDim: dim, nprobe: 4, counts: counts(4) },
        { coarseDim: dim, nprobe: 8, probeMargin: 0.5, counts: counts(3) },
      ],
    };
    const calibrate = (points: FrontierPoint[]) => {
      index.calibration = { k: 5, queries: 10, selfExcluded: false, points, seconds: 0, complete: true, probeStats };
    };
    calibrate([point(fixed, 0.9, 0.3), point(adaptive, 0.92, 0.2)]);
    expect(index.plan({ recall: 0.9 }, 5).params).toEqual(adaptive);
    // dearer than the fixed point for the same recall: not picked
    calibrate([point(fixed, 0.9, 0.3), point(adaptive, 0.9, 0.35)]);
    expect(index.plan({ recall: 0.85 }, 5).params).toEqual(fixed);
  });

  it('the planner picks a patience point when it reaches the target for less, priced on its own probe statistics', async () => {
    const index = await ivf('l2');
    const sizes = Array.from(index.listSizes());
    const point = (params: SearchParams, recall: number, mflops: number): FrontierPoint => ({ params, recall, recallStdErr: 0.001, mflops, mflopsStdErr: 0.001, mflopsMax: mflops * 2, latencyMs: mflops });
    const fixed = { coarseDim: dim, nprobe: 4, scanDim: dim, shortlist: 5 };
    const patient: SearchParams = { ...fixed, nprobe: 8, patience: { top: 5, newMax: 0, lists: 1 } };
    const counts = (n: number) => sizes.map((_, l) => (l < n ? 10 : 0));
    const probeStats = {
      queries: 10,
      listSizes: sizes,
      probes: [
        { coarseDim: dim, nprobe: 4, counts: counts(4) },
        { coarseDim: dim, nprobe: 8, patience: { top: 5, newMax: 0, lists: 1 }, scanDim: dim, counts: counts(2) },
      ],
    };
    const calibrate = (points: FrontierPoint[]) => {
      index.calibration = { k: 5, queries: 10, selfExcluded: false, points, seconds: 0, complete: true, probeStats };
    };
    calibrate([point(fixed, 0.9, 0.3), point(patient, 0.92, 0.2)]);
    expect(index.plan({ recall: 0.9 }, 5).params).toEqual(patient);
    expect(index.predictMflops(patient)).toBeCloseTo(0.2, 12);
    calibrate([point(fixed, 0.9, 0.3), point(patient, 0.9, 0.35)]);
    expect(index.plan({ recall: 0.85 }, 5).params).toEqual(fixed);
  });
});

describe('patience termination', () => {
  const rule = (top: number, newMax: number, lists: number): PatienceRule => ({ top, newMax, lists });

  it('stops once the window brought at most newMax new members, never before the window is full', () => {
    // ring of 2 (list d at d % 2): lists 1 and 2 brought 3 and 1
    const recent = Int32Array.from([1, 3]);
    expect(patienceStops(recent, 0, 1, rule(10, 4, 2))).toBe(false);
    expect(patienceStops(recent, 0, 2, rule(10, 4, 2))).toBe(true);
    expect(patienceStops(recent, 0, 2, rule(10, 3, 2))).toBe(false);
    expect(patienceStops(Int32Array.from([0]), 0, 1, rule(10, 0, 1))).toBe(true);
  });

  it('round-trips through the params text form and refuses malformed rules naming the value', () => {
    const p: SearchParams = { coarseDim: 16, nprobe: 32, scanDim: 32, shortlist: 100, rerankDim: 784, patience: rule(40, 1, 2) };
    expect(formatParams(p)).toContain('patience=40/1/2');
    expect(parseParams(formatParams(p))).toEqual(p);
    expect(() => parseParams('patience=40/1')).toThrow(/patience must be top\/newMax\/lists .* got "40\/1"/);
    expect(() => parseParams('patience=0/1/2')).toThrow(/got "0\/1\/2"/);
    expect(patienceError({ top: 4, newMax: -1, lists: 1 })).toMatch(/newMax >= 0/);
  });

  it('refuses a watched top beyond the scan heap, with a probe margin, or without IVF', async () => {
    const index = await ivf('l2');
    await expect(index.search(q.subarray(0, dim), 1, 5, { nprobe: 8, patience: rule(6, 0, 1) })).rejects.toThrow(/patience 6\/0\/1: top 6 must not exceed the scan's k = 5/);
    await expect(index.search(q.subarray(0, dim), 1, 5, { nprobe: 8, probeMargin: 0.1, patience: rule(5, 0, 1) })).rejects.toThrow(/one probe rule at a time/);
    await expect(index.search(q.subarray(0, dim), 1, 5, { nprobe: 8, patience: rule(5, 0, 9) })).rejects.toThrow(/window of 9 lists must not exceed nprobe 8/);
    await expect(index.search(q.subarray(0, dim), 1, 5, { nprobe: 8, patience: rule(5, 0, 2_000_000_000) })).rejects.toThrow(/must not exceed nprobe 8/);
    await expect(index.search(q.subarray(0, dim), 1, 5, { nprobe: 8, patience: { top: 5, newMax: 0.5, lists: 1 } as PatienceRule })).rejects.toThrow(/patience must be \{top, newMax, lists\}/);
    const flat = await AdannsIndex.build(backend, 'flat', base.data.subarray(0, 200 * dim), 200, dim, { metric: 'l2' });
    await expect(flat.search(q.subarray(0, dim), 1, 3, { patience: rule(3, 0, 1) })).rejects.toThrow(/no IVF stage/);
  });

  for (const r of [rule(10, 0, 1), rule(10, 2, 2), rule(5, 1, 3), rule(5, 10, 2)]) {
    it(`stops where a list-by-list replay of the rule does, with the answer and MFLOPs of that many lists (${r.top}/${r.newMax}/${r.lists})`, async () => {
      const index = await ivf('l2');
      const k = 10;
      const cap = 12;
      const got = await index.search(q, Q, k, { nprobe: cap, patience: r });
      const tops: Set<number>[] = [];
      const fixed: Awaited<ReturnType<AdannsIndex['search']>>[] = [];
      // without a re-rank the scan heap is the answer: the top `top` after d lists is the first `top` of a fixed search at nprobe d
      for (let d = 1; d <= cap; d++) fixed.push(await index.search(q, Q, k, { nprobe: d }));
      const depths = new Set<number>();
      for (let row = 0; row < Q; row++) {
        let depth = 0;
        let before = new Set<number>();
        const brought: number[] = [];
        while (depth < cap) {
          const now = new Set(Array.from(fixed[depth].ids.subarray(row * k, row * k + r.top)));
          brought.push([...now].filter((id) => !before.has(id)).length);
          before = now;
          depth++;
          if (depth >= r.lists && brought.slice(-r.lists).reduce((a, b) => a + b, 0) <= r.newMax) break;
        }
        depths.add(depth);
        expect(got.listsProbed![row]).toBe(depth);
        expect(Array.from(got.ids.subarray(row * k, row * k + k))).toEqual(Array.from(fixed[depth - 1].ids.subarray(row * k, row * k + k)));
        expect(got.mflops[row]).toBeCloseTo(fixed[depth - 1].mflops[row], 12);
      }
      // a rule that always stops at its window: every query probes exactly `lists`
      if (r.newMax >= r.top * r.lists) expect([...depths]).toEqual([r.lists]);
      else expect(depths.size).toBeGreaterThan(1);
    });
  }

  it('fits patience points deterministically, one per rule and shortlist that holds its top, with the depths the searches probed', async () => {
    const index = await AdannsIndex.build(backend, `ivf${LISTS}@${dim},flat@12,rerank@${dim}`, base.data, base.rows, dim, { metric: 'l2', seed: 2 });
    const grid: SearchParams[] = [];
    for (const nprobe of [2, 4]) for (const shortlist of [20, 40, 100]) grid.push({ coarseDim: dim, nprobe, scanDim: 12, shortlist, rerankDim: dim });
    const a = await adaptiveGrid(index, q, Q, grid);
    const b = await adaptiveGrid(index, q, Q, grid);
    expect(JSON.stringify(b.points)).toEqual(JSON.stringify(a.points));
    expect(JSON.stringify(b.probes)).toEqual(JSON.stringify(a.probes));
    const patient = a.points.filter((p) => p.patience);
    expect(patient.length).toBeGreaterThan(0);
    for (const p of patient) {
      expect(p.shortlist).toBeGreaterThanOrEqual(p.patience!.top);
      const stats = a.probes.find((s) => s.patience && formatPatience(s.patience) === formatPatience(p.patience!) && s.scanDim === p.scanDim)!;
      // the counts are the lists the rule's searches probed: their total is the queries' depths
      const r = await index.search(q, Q, 10, p);
      const depths = r.listsProbed!.reduce((x, y) => x + y, 0);
      expect(stats.counts.reduce((x, y) => x + y, 0)).toBe(depths);
      expect(a.meanDepth.get(p)).toBeCloseTo(depths / Q, 12);
    }
  });

  it('calibration measures patience points with per-scanDim probe statistics, and their recall and MFLOPs hold on unseen queries', async () => {
    const data = generateSynthetic({ n: 3000, dim, clusters: 12, queries: 400, seed: 5 });
    const index = await AdannsIndex.build(backend, `ivf${LISTS}@${dim},flat@12,rerank@${dim}`, data.base.data, data.base.rows, dim, { metric: 'l2', seed: 2 });
    const calQ = data.queries.data.subarray(0, 200 * dim);
    const unseen = data.queries.data.subarray(200 * dim);
    const k = 10;
    const cal = await index.calibrate({ queries: calQ, queryRows: 200, ks: [k], latencyQueries: 1, maxSeconds: 120, filtered: false });
    const patient = cal.points.filter((p) => p.params.patience !== undefined);
    expect(patient.length).toBeGreaterThan(0);
    const truth = await index.exactSearch(unseen, 200, k);
    for (const point of patient) {
      const stats = cal.probeStats!.probes.find((s) => s.patience && formatPatience(s.patience) === formatPatience(point.params.patience!) && s.scanDim === point.params.scanDim);
      expect(stats).toBeDefined();
      expect(index.predictMflops(point.params)).toBeCloseTo(point.mflops, 9);
      // unseen queries: recall within 4 standard errors (and 0.03) of the calibrated one, mean MFLOPs within 10%
      const r = await index.search(unseen, 200, k, point.params);
      const recall = recallAtK(r.ids, k, truth.ids, k, 200, k);
      expect(recall).toBeGreaterThanOrEqual(point.recall - Math.max(0.03, 4 * point.recallStdErr));
      const mflops = r.mflops.reduce((a, b) => a + b, 0) / 200;
      expect(Math.abs(mflops - point.mflops) / point.mflops).toBeLessThan(0.1);
    }
  });
});

describe('re-rank patience', () => {
  const reranking = () => AdannsIndex.build(backend, `ivf${LISTS}@${dim},flat@12,rerank@${dim}`, base.data, base.rows, dim, { metric: 'l2', seed: 2 });

  it('round-trips through the params text form and refuses malformed rules or params without a re-rank, naming the value', async () => {
    const p: SearchParams = { coarseDim: 16, nprobe: 8, scanDim: 32, shortlist: 100, rerankDim: 784, rerankPatience: { first: 20, step: 10, newMax: 0 } };
    expect(formatParams(p)).toContain('rerankPatience=20/10/0');
    expect(parseParams(formatParams(p))).toEqual(p);
    expect(() => parseParams('rerankPatience=20/10')).toThrow(/rerankPatience must be first\/step\/newMax .* got "20\/10"/);
    expect(() => parseParams('rerankPatience=20/0/0')).toThrow(/got "20\/0\/0"/);
    expect(rerankPatienceError({ first: 5, step: 2, newMax: -1 })).toMatch(/0 <= newMax/);
    const plain = await ivf('l2');
    await expect(plain.search(q.subarray(0, dim), 1, 5, { nprobe: 4, rerankPatience: { first: 5, step: 5, newMax: 0 } })).rejects.toThrow(/rerankPatience 5\/5\/0: .* no rerankDim/);
    const index = await reranking();
    await expect(index.search(q.subarray(0, dim), 1, 5, { nprobe: 4, rerankPatience: { first: 5, step: 0.5, newMax: 0 } as RerankPatience })).rejects.toThrow(/rerankPatience must be \{first, step, newMax\}/);
    await expect(index.search(q.subarray(0, dim), 1, 5, { nprobe: 4, rerankPatience: { first: 4, step: 2, newMax: 0 } })).rejects.toThrow(/rerankPatience 4\/2\/0: first 4 must be at least k = 5/);
    // the depth does not depend on k: a search at k answers what one at a smaller k does (calibration measures once)
    const p10 = { nprobe: 4, shortlist: 30, rerankPatience: { first: 10, step: 4, newMax: 0 } };
    const [at10, at3] = [await index.search(q, Q, 10, p10), await index.search(q, Q, 3, p10)];
    for (let row = 0; row < Q; row++) expect(Array.from(at3.ids.subarray(row * 3, row * 3 + 3))).toEqual(Array.from(at10.ids.subarray(row * 10, row * 10 + 3)));
    expect(Array.from(at3.mflops)).toEqual(Array.from(at10.mflops));
    // a `first` far beyond the shortlist re-ranks everything, as first = shortlist does, and sizes no heap by `first`
    // (a request's first, up to 1e6, once sized rows x first heaps per round: gigabytes for a batch)
    const keeps: number[] = [];
    const candidates = new TopK(2, 30);
    for (let row = 0; row < 2; row++) for (let i = 0; i < 30; i++) candidates.push(row, row * 100 + i, 1 - i / 100);
    const { reranked } = await rerankWithPatience(rowBlock(q, 2, dim), candidates, { first: 1e6, step: 5, newMax: 0 }, async (_queries, chunk, keep) => {
      keeps.push(keep);
      const out = new TopK(chunk.rows, keep);
      for (let row = 0; row < chunk.rows; row++) for (let i = 0; i < chunk.sizes[row]; i++) out.push(row, chunk.ids[row * chunk.k + i], -i);
      return out;
    });
    expect(Array.from(reranked)).toEqual([30, 30]);
    expect(Math.max(...keeps)).toBeLessThanOrEqual(30);
    const [huge, whole] = [await index.search(q, Q, 10, { ...p10, rerankPatience: { first: 1e6, step: 4, newMax: 0 } }), await index.search(q, Q, 10, { ...p10, rerankPatience: { first: 30, step: 4, newMax: 0 } })];
    expect(Array.from(huge.ids)).toEqual(Array.from(whole.ids));
    expect(Array.from(huge.mflops)).toEqual(Array.from(whole.mflops));
  });

  for (const [rule, extra] of [
    [{ first: 10, step: 5, newMax: 0 }, {}],
    [{ first: 12, step: 3, newMax: 1 }, {}],
    [{ first: 10, step: 4, newMax: 0 }, { patience: { top: 10, newMax: 1, lists: 2 } }],
  ] as [RerankPatience, Partial<SearchParams>][]) {
    it(`re-ranks as many scan candidates as a chunk-by-chunk replay of the rule, with that shortlist's answer and MFLOPs (${rule.first}/${rule.step}/${rule.newMax}${extra.patience ? ', after patience' : ''})`, async () => {
      const index = await reranking();
      const k = 10;
      const shortlist = 40;
      const common = { nprobe: 6, scanDim: 12, ...extra };
      const got = await index.search(q, Q, k, { ...common, shortlist, rerankPatience: rule });
      // the scan's top s is the first s of its top 40 (the order is total): a fixed search at shortlist s re-ranks the first s candidates
      const at = new Map<number, Awaited<ReturnType<AdannsIndex['search']>>>();
      // the rule watches the exact top `first`: a fixed search at k = first gives it (its first k are the answer at k)
      const w = rule.first;
      const fixed = async (s: number) => at.get(s) ?? at.set(s, await index.search(q, Q, w, { ...common, shortlist: s })).get(s)!;
      const depths = new Set<number>();
      for (let row = 0; row < Q; row++) {
        let s = w;
        let before = new Set<number>();
        for (;;) {
          const now = new Set(Array.from((await fixed(s)).ids.subarray(row * w, row * w + w)));
          const brought = [...now].filter((id) => !before.has(id)).length;
          if (s >= shortlist || brought <= rule.newMax) break;
          before = now;
          s = Math.min(shortlist, s + rule.step);
        }
        depths.add(s);
        const f = await fixed(s);
        expect(Array.from(got.ids.subarray(row * k, row * k + k))).toEqual(Array.from(f.ids.subarray(row * w, row * w + k)));
        expect(Array.from(got.scores.subarray(row * k, row * k + k))).toEqual(Array.from(f.scores.subarray(row * w, row * w + k)));
        expect(got.mflops[row]).toBeCloseTo(f.mflops[row], 12);
      }
      // queries stop at different depths: the rule adapts
      expect(depths.size).toBeGreaterThan(1);
    });
  }

  it('calibration measures re-rank patience variants of its cheapest points; their recall and MFLOPs hold on unseen queries, and the planner picks one when it is cheaper', async () => {
    const data = generateSynthetic({ n: 3000, dim, clusters: 12, queries: 400, seed: 5 });
    const index = await AdannsIndex.build(backend, `ivf${LISTS}@${dim},flat@12,rerank@${dim}`, data.base.data, data.base.rows, dim, { metric: 'l2', seed: 2 });
    const calQ = data.queries.data.subarray(0, 200 * dim);
    const unseen = data.queries.data.subarray(200 * dim);
    const k = 10;
    const cal = await index.calibrate({ queries: calQ, queryRows: 200, ks: [k], latencyQueries: 1, maxSeconds: 120, filtered: false });
    const paced = cal.points.filter((p) => p.params.rerankPatience !== undefined);
    expect(paced.length).toBeGreaterThan(0);
    // derived deterministically from the measured points
    expect(rerankPatienceGrid(index, cal.levels!).map((p) => formatParams(p))).toEqual(expect.arrayContaining(paced.map((p) => formatParams(p.params))));
    const truth = await index.exactSearch(unseen, 200, k);
    for (const point of paced) {
      expect(index.predictMflops(point.params)).toBeCloseTo(point.mflops, 9);
      const r = await index.search(unseen, 200, k, point.params);
      const recall = recallAtK(r.ids, k, truth.ids, k, 200, k);
      expect(recall).toBeGreaterThanOrEqual(point.recall - Math.max(0.03, 4 * point.recallStdErr));
      const mflops = r.mflops.reduce((a, b) => a + b, 0) / 200;
      expect(Math.abs(mflops - point.mflops) / point.mflops).toBeLessThan(0.1);
      // a paced point re-ranks fewer candidates than its base: cheaper
      const { rerankPatience: _, ...baseParams } = point.params;
      const baseMflops = (await index.search(unseen, 200, k, baseParams)).mflops.reduce((a, b) => a + b, 0) / 200;
      expect(mflops).toBeLessThan(baseMflops);
    }
    // the planner: a paced point that reaches the target for less than every other point is the plan
    const cheapest = paced[0];
    const others = cal.points.filter((p) => p !== cheapest);
    const points = [...others.map((p) => ({ ...p, recall: Math.min(p.recall, 0.8) })), { ...cheapest, recall: 0.95, recallStdErr: 0.001 }];
    index.calibration = { ...cal, points, levels: [{ k, points }] };
    expect(index.plan({ recall: 0.9 }, k).params).toEqual(cheapest.params);
    // planned at a k above the calibrated one, `first` is raised to k: the plan prices those extra candidates, so its
    // MFLOPs are not below what the searches count (they once stayed at the calibrated k's figure, about 9% under)
    for (const point of paced) {
      index.calibration = { ...cal, points: [point], levels: [{ k, points: [point] }] };
      const plan = index.plan({ recall: 0.1 }, 3 * k);
      expect(plan.params.rerankPatience!.first).toBe(3 * k);
      const measured = (await index.search(unseen, 200, 3 * k, plan.params)).mflops.reduce((a, b) => a + b, 0) / 200;
      expect(plan.expectedMflops!, formatParams(plan.params)).toBeGreaterThanOrEqual(measured);
    }
  });
});
