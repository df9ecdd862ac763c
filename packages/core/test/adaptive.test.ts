import { describe, expect, it } from 'vitest';
import { ReferenceBackend } from '@adanns/compute';
import { generateSynthetic } from '@adanns/datasets';
import { AdannsIndex, formatParams, parseParams, type FrontierPoint, type SearchParams } from '../src/index.js';
import { cutProbes, marginForMeanDepth, probeDepth } from '../src/stages/adaptive-probe.js';

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
    await expect(flat.search(q.subarray(0, dim), 1, 3, { probeMargin: 0.1 })).rejects.toThrow(/no IVF stage: coarseDim, nprobe and probeMargin do not apply/);
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
});
