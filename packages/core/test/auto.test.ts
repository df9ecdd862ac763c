import { describe, expect, it } from 'vitest';
import { ReferenceBackend, WasmSimdBackend, type Metric, type RowBlock } from '@adanns/compute';
import { generateSynthetic, memoryStream } from '@adanns/datasets';
import { AdannsIndex, type AutoCandidate, type AutoChoice, buildFromStream, calibrationGrid, cheapestFunnel, chooseAutoSpec, splitTrialRows, widensPast, exactNeighbours, isAutoSpec, loadIndex, parseSpec, recallAtK, saveIndex } from '../src/index.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// `index: "auto"` reads the spectrum and a small trial: a decaying
// (Matryoshka-like) spectrum gets a short scan prefix and a re-rank, a flat one
// scans at (or near) the full dimension, and the build keeps recall 0.99
// reachable on held-out queries.

const backend = new ReferenceBackend();
const dim = 32;
const n = 6000;
const sets = {
  decaying: generateSynthetic({ n, dim, decay: 1.2, clusters: 40, queries: 100, seed: 11 }),
  flat: generateSynthetic({ n, dim, decay: 0, clusters: 300, noise: 0.6, queries: 100, seed: 12 }),
};

describe('auto spec', () => {
  it('recognises "auto" and nothing else', () => {
    expect(isAutoSpec('auto')).toBe(true);
    expect(isAutoSpec(' Auto ')).toBe(true);
    expect(isAutoSpec('pca,ivf8@8,flat@16')).toBe(false);
    expect(() => parseSpec('auto', dim)).toThrow(/unknown token "auto"/);
  });

  it('chooses a short scan prefix with a re-rank on a decaying spectrum', async () => {
    const { base } = sets.decaying;
    const choice = await chooseAutoSpec(backend, base.data, n, dim, { metric: 'cosine', seed: 1 });
    const spec = parseSpec(choice.spec, dim);
    expect(spec.transform).toBe('pca');
    expect(spec.scan.dim).toBeLessThanOrEqual(dim / 2);
    expect(spec.rerank?.dim).toBe(dim);
    expect(choice.spectrum.find((s) => s.dim === 8)!.share).toBeGreaterThan(0.5);
    expect(choice.reason).toMatch(/decaying/);
  });

  it('keeps a chosen re-rank\'s vectors where asked, and prices resident float32 rows (their cosine norms kept) at one multiply-add a value', async () => {
    const { base } = sets.decaying;
    const disk = await chooseAutoSpec(backend, base.data, n, dim, { metric: 'cosine', seed: 1 });
    const f32 = await chooseAutoSpec(backend, base.data, n, dim, { metric: 'cosine', seed: 1, rerankStorage: 'f32' });
    expect(parseSpec(disk.spec, dim).rerank?.storage).toBeUndefined();
    expect(parseSpec(f32.spec, dim).rerank).toEqual({ dim, storage: 'f32' });
    // the same trial: every candidate that re-ranks is cheaper in memory by its shortlist x D (cosine norms kept), the others unchanged
    expect(f32.candidates.length).toBe(disk.candidates.length);
    f32.candidates.forEach((c, i) => {
      const d = disk.candidates[i];
      expect([c.coarseDim, c.scanDim, c.funnelScanDim]).toEqual([d.coarseDim, d.scanDim, d.funnelScanDim]);
      if (d.mflops[0.95] === null) return;
      if (c.scanDim < dim) expect(c.mflops[0.95]!).toBeLessThan(d.mflops[0.95]!);
      else expect(c.mflops[0.95]).toBe(d.mflops[0.95]);
    });
  });

  it('scans at (or near) the full dimension on a flat spectrum', async () => {
    const { base } = sets.flat;
    const choice = await chooseAutoSpec(backend, base.data, n, dim, { metric: 'cosine', seed: 1 });
    const spec = parseSpec(choice.spec, dim);
    expect(spec.scan.dim).toBeGreaterThanOrEqual(dim / 2);
    expect(choice.spectrum.find((s) => s.dim === 8)!.share).toBeLessThan(0.4);
    expect(choice.reason).toMatch(/flat spectrum/);
  });

  it('prices funnel plans (a scan at a shorter prefix, a stage at d_s from the lists)', async () => {
    // 64-d: prefixes 16 and 32 below a d_s of 32 or 64 to scan at
    const wide = 64;
    const { base } = generateSynthetic({ n, dim: wide, decay: 1.2, clusters: 40, queries: 1, seed: 13 });
    const choice = await chooseAutoSpec(backend, base.data, n, wide, { metric: 'cosine', seed: 1 });
    const funnels = choice.candidates.filter((c) => c.funnelScanDim !== undefined);
    expect(funnels.length).toBeGreaterThan(0);
    for (const c of funnels) {
      expect(c.funnelScanDim!).toBeLessThan(c.scanDim);
      expect(c.scanDim).toBeLessThan(wide);
    }
    expect(funnels.some((c) => c.mflops[0.95] !== null)).toBe(true);
  });

  describe('the funnel search (cheapestFunnel) against every (shortlist, keep) pair', () => {
    /**
     * The cheapest (keep K, shortlist S) with k <= K <= S <= ceil(vectors) whose funnel finds `need` neighbours: a
     * neighbour of rank r is found when S >= r + 1 at the scan prefix (or S scans everything) and K >= r + 1 at d_s.
     */
    function bruteForce(keepRanks: number[], scanRanks: number[], need: number, k: number, vectors: number, price: (keep: number, shortlist: number) => number) {
      const all = Math.ceil(vectors);
      let best: { mflops: number; keep: number; shortlist: number } | null = null;
      for (let keep = k; keep <= all; keep++) {
        for (let shortlist = keep; shortlist <= all; shortlist++) {
          const found = keepRanks.filter((r, j) => keep >= r + 1 && (shortlist >= scanRanks[j] + 1 || shortlist === all)).length;
          if (found < need) continue;
          const mflops = price(keep, shortlist);
          if (!best || mflops < best.mflops) best = { mflops, keep, shortlist };
        }
      }
      return best;
    }

    it('a hand-made table: the pair a price makes cheapest', () => {
      // (rank at d_s, rank at p) of seven neighbours; one not probed; ranks are estimates, so fractional
      const keepRanks = [0, 1, 1.5, 4, Infinity, 9, 15];
      const scanRanks = [5, 0, 12, 2, 1, 3, 19.5];
      const search = { keepRanks, scanRanks, need: 3, k: 2, vectors: 20 };
      // the three best at d_s (K = 3) need S = 13; adding the fourth (K = 5) lets S fall to 6
      const keepCheap = cheapestFunnel({ ...search, price: (keep, shortlist) => 10 * keep + shortlist });
      expect(keepCheap).toEqual({ mflops: 43, keep: 3, shortlist: 13 });
      const shortCheap = cheapestFunnel({ ...search, price: (keep, shortlist) => keep + 10 * shortlist });
      expect(shortCheap).toEqual({ mflops: 65, keep: 5, shortlist: 6 });
      for (const price of [(a: number, b: number) => 10 * a + b, (a: number, b: number) => a + 10 * b]) expect(cheapestFunnel({ ...search, price })).toEqual(bruteForce(keepRanks, scanRanks, 3, 2, 20, price));
      // all seven: the last has rank 19.5 at p, past the 20 vectors scanned, so only a shortlist of everything finds it
      expect(cheapestFunnel({ ...search, need: 6, price: (keep, shortlist) => keep + shortlist })).toEqual({ mflops: 36, keep: 16, shortlist: 20 });
      expect(cheapestFunnel({ ...search, need: 7, price: (keep, shortlist) => keep + shortlist })).toBeNull();
    });

    it('random tables: the same cost as the cheapest of all pairs, at a pair that finds enough', () => {
      let s = 7;
      const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
      for (let trial = 0; trial < 300; trial++) {
        const count = 1 + Math.floor(next() * 14);
        const vectors = 3 + next() * 30;
        // integer ranks (ties) in some tables, fractional in others; about one in six not probed
        const whole = trial % 2 === 0;
        const rank = () => (whole ? Math.floor(next() * vectors) : next() * vectors * 1.1);
        const keepRanks = Array.from({ length: count }, () => (next() < 0.15 ? Infinity : rank()));
        const scanRanks = Array.from({ length: count }, rank);
        const k = 1 + Math.floor(next() * 4);
        const need = 1 + Math.floor(next() * count);
        const [a, b, c] = [next() + 0.1, next() + 0.1, next() * 0.05];
        const price = (keep: number, shortlist: number) => a * keep + b * shortlist + c * keep * shortlist;
        const want = bruteForce(keepRanks, scanRanks, need, k, vectors, price);
        const got = cheapestFunnel({ keepRanks, scanRanks, need, k, vectors, price });
        if (!want) {
          expect(got).toBeNull();
          continue;
        }
        expect(got).not.toBeNull();
        expect(got!.mflops).toBeCloseTo(want.mflops, 12);
        expect(got!.mflops).toBe(price(got!.keep, got!.shortlist));
        expect(got!.keep).toBeGreaterThanOrEqual(k);
        expect(got!.shortlist).toBeGreaterThanOrEqual(got!.keep);
        const all = Math.ceil(vectors);
        expect(got!.shortlist).toBeLessThanOrEqual(all);
        expect(keepRanks.filter((r, j) => got!.keep >= r + 1 && (got!.shortlist >= scanRanks[j] + 1 || got!.shortlist === all)).length).toBeGreaterThanOrEqual(need);
      }
    });
  });

  it('clusters at a prefix wider than 64 on a high-D set when the scan it saves outweighs the wider centroids', async () => {
    // a 320-d set like the 512-d stand-in (decay 0.5, noise 1: clusters overlap at short prefixes), on the SIMD
    // backend (the trial's k-means at 256 dimensions is slow on the reference one)
    const wide = 320;
    const rows = 12_000;
    const { base } = generateSynthetic({ n: rows, dim: wide, clusters: 200, noise: 1, queries: 1, seed: 15 });
    const simd = await WasmSimdBackend.create({ threads: 1 });
    try {
      const atSize = (count: number) => chooseAutoSpec(simd, base.data, rows, wide, { metric: 'cosine', seed: 1, rerankStorage: 'f32', count });
      const bestAt = (choice: AutoChoice, pred: (dc: number) => boolean) => Math.min(...choice.candidates.filter((c) => pred(c.coarseDim) && c.mflops[0.95] !== null).map((c) => c.mflops[0.95]!));
      // priced at 2 million vectors the scan dominates: the wider d_c probes a smaller share of the data and wins
      const large = await atSize(2_000_000);
      expect(new Set(large.candidates.map((c) => c.coarseDim))).toEqual(new Set([16, 32, 64, 128, 256]));
      expect(large.chosen!.coarseDim).toBeGreaterThan(64);
      expect(parseSpec(large.spec, wide).coarse!.dim).toBe(large.chosen!.coarseDim);
      expect(large.reason).toMatch(new RegExp(`clustering at d_c = ${large.chosen!.coarseDim}\\b.*the best clustering at d_c <= 64`));
      expect(bestAt(large, (dc) => dc <= 64)).toBeGreaterThan(large.chosen!.mflops[0.95]!);
      // at its own 12,000 vectors the centroids' cost (lists x d_c) outweighs the scan saved: a short d_c wins,
      // and 256 is not trialled once 128 did not pay
      const small = await atSize(rows);
      expect(small.chosen!.coarseDim).toBeLessThanOrEqual(64);
      expect(bestAt(small, (dc) => dc > 64)).toBeGreaterThan(small.chosen!.mflops[0.95]!);
      expect(small.candidates.some((c) => c.coarseDim === 256)).toBe(false);
    } finally {
      await simd.dispose();
    }
  }, 120_000);

  it('widens past a d_c whose best candidate is the cheapest or within 5% of it (a near tie is no verdict), not past a dearer one', () => {
    const candidate = (coarseDim: number, at95: number | null, at99: number | null = 2 * (at95 ?? 1)): AutoCandidate => ({ coarseDim, scanDim: coarseDim, mflops: { 0.9: null, 0.95: at95, 0.99: at99 }, shortlist99: 40 });
    const tie = [candidate(16, 0.8), candidate(32, 0.589), candidate(64, 0.593), candidate(64, 0.7)];
    expect(widensPast(tie, 64)).toBe(true);
    expect(widensPast(tie, 32)).toBe(true);
    expect(widensPast(tie, 16)).toBe(false);
    // 6% dearer than the cheapest: no wider d_c
    expect(widensPast([candidate(32, 0.5), candidate(64, 0.53)], 64)).toBe(false);
    // only candidates that reach 0.99 count, for the cheapest and for the d_c before
    expect(widensPast([candidate(32, 0.5, null), candidate(64, 0.6)], 64)).toBe(true);
    expect(widensPast([candidate(32, 0.5), candidate(64, 0.45, null)], 64)).toBe(false);
    expect(widensPast([], 64)).toBe(false);
  });

  it('starts a wider d_c\'s k-means from the means, at that prefix, of the clusters the narrower d_c made, for two iterations', async () => {
    // the 320-d set above priced at 2 million vectors, where 128 and 256 are trialled; assigns and centroid sums recorded
    const wide = 320;
    const rows = 12_000;
    const { base } = generateSynthetic({ n: rows, dim: wide, clusters: 200, noise: 1, queries: 1, seed: 15 });
    const assigns: { dim: number; centroids: Float32Array }[] = [];
    const sums: { dim: number; sums: Float32Array; counts: Int32Array }[] = [];
    const simd = await WasmSimdBackend.create({ threads: 1 });
    const recording = Object.assign(Object.create(simd) as WasmSimdBackend, {
      assign: (vectors: RowBlock, centroids: RowBlock, d: number, metric: Metric, labels: Int32Array, scores: Float32Array) => {
        const at = centroids.offset ?? 0;
        assigns.push({ dim: d, centroids: centroids.data.slice(at, at + centroids.rows * centroids.stride) });
        return simd.assign(vectors, centroids, d, metric, labels, scores);
      },
      centroidSums: async (vectors: RowBlock, d: number, labels: Int32Array, k: number, out: Float32Array, counts: Int32Array) => {
        await simd.centroidSums(vectors, d, labels, k, out, counts);
        sums.push({ dim: d, sums: out.slice(), counts: counts.slice() });
      },
    });
    try {
      const choice = await chooseAutoSpec(recording, base.data, rows, wide, { metric: 'cosine', seed: 1, rerankStorage: 'f32', count: 2_000_000 });
      expect(new Set(choice.candidates.map((c) => c.coarseDim))).toEqual(new Set([16, 32, 64, 128, 256]));
      for (const [narrow, dc] of [[64, 128], [128, 256]]) {
        // the narrower d_c's final centroids assign the sample at its prefix; the first sums at dc are the start's
        const at = assigns.findIndex((a) => a.dim === dc);
        expect(assigns[at - 1].dim).toBe(narrow);
        const first = sums.find((x) => x.dim === dc)!;
        const start = assigns[at].centroids;
        const lists = first.counts.length;
        for (let c = 0; c < lists; c += 7) {
          expect(first.counts[c]).toBeGreaterThan(0);
          const mean = Array.from(first.sums.subarray(c * dc, (c + 1) * dc), (v) => v / first.counts[c]);
          const norm = Math.hypot(...mean);
          for (let j = 0; j < dc; j += 13) expect(start[c * dc + j]).toBeCloseTo(mean[j] / norm, 5);
        }
        // two Lloyd iterations, then the trial's own assigns of its sample and of the neighbours (and at 128 the
        // assign that starts 256); a cold start would run six
        expect(assigns.filter((a) => a.dim === dc).length).toBeLessThanOrEqual(2 + 2 + (dc === 128 ? 1 : 0));
      }
    } finally {
      await simd.dispose();
    }
  }, 120_000);

  it('trains k-means at the widest always-tried d_c first and starts a narrower d_c from its centroids\' prefixes, for two iterations', async () => {
    // 32-d: d_c 16 and 32 (the anchor, D); every assign call recorded in order
    const calls: { dim: number; rows: number; centroids: Float32Array }[] = [];
    class Recording extends ReferenceBackend {
      override assign(vectors: RowBlock, centroids: RowBlock, d: number, metric: Metric, labels: Int32Array, scores: Float32Array): Promise<void> {
        const at = centroids.offset ?? 0;
        calls.push({ dim: d, rows: vectors.rows, centroids: centroids.data.slice(at, at + centroids.rows * centroids.stride) });
        return super.assign(vectors, centroids, d, metric, labels, scores);
      }
    }
    const { base } = sets.decaying;
    await chooseAutoSpec(new Recording(), base.data, n, dim, { metric: 'cosine', seed: 1 });
    const at = (d: number) => calls.filter((c) => c.dim === d);
    // the anchor's k-means (up to 6 iterations on the k-means sample) runs before anything at 16; then 16's
    // k-means (2 iterations) and the trial's own two assigns per d_c (sample and neighbours)
    expect(calls[0].dim).toBe(dim);
    expect(at(16).length).toBe(2 + 2);
    expect(at(dim).length).toBeLessThanOrEqual(6 + 2);
    // 16's first iteration starts from the anchor's final centroids (those the trial assigns with) cut to 16, re-normalised
    const anchor = at(dim).at(-1)!.centroids;
    const start = at(16)[0].centroids;
    const lists = start.length / 16;
    expect(anchor.length).toBe(lists * dim);
    for (let c = 0; c < lists; c++) {
      const prefix = anchor.subarray(c * dim, c * dim + 16);
      const norm = Math.hypot(...prefix);
      for (let j = 0; j < 16; j++) expect(start[c * 16 + j]).toBeCloseTo(prefix[j] / norm, 5);
    }
  });

  it('draws the trial\'s queries and sample uniformly from its picked rows, not their first ones (rows may be ordered by source or time)', () => {
    const picked = Int32Array.from({ length: 10000 }, (_, i) => 3 * i);
    const { queries, training } = splitTrialRows(picked, 200, 2000, 5);
    expect(queries.length).toBe(200);
    expect(training.length).toBe(9800);
    // a partition of the picked rows
    expect(new Set([...queries, ...training]).size).toBe(10000);
    expect(new Set([...queries, ...training, ...picked]).size).toBe(10000);
    const increasing = (a: Int32Array) => a.every((v, i) => i === 0 || a[i - 1] < v);
    expect(increasing(queries)).toBe(true);
    expect(increasing(training.subarray(0, 2000))).toBe(true);
    expect(increasing(training.subarray(2000))).toBe(true);
    // spread over the whole range: each tenth of it holds about a tenth of the queries and of the sample
    for (const [part, size] of [[queries, 200], [training.subarray(0, 2000), 2000]] as const) {
      for (let tenth = 0; tenth < 10; tenth++) {
        const inTenth = part.filter((r) => r >= tenth * 3000 && r < (tenth + 1) * 3000).length;
        expect(inTenth).toBeGreaterThan(size / 20);
        expect(inTenth).toBeLessThan(size / 5);
      }
    }
    // reproducible per seed
    expect(Array.from(splitTrialRows(picked, 200, 2000, 5).queries)).toEqual(Array.from(queries));
  });

  it('an exact scan for a small collection', async () => {
    const { base } = sets.flat;
    const choice = await chooseAutoSpec(backend, base.data, 500, dim, { metric: 'l2' });
    expect(choice.spec).toBe('flat');
    expect(choice.reason).toMatch(/exact scan/);
  });

  it('a streaming build chooses as the in-memory one does (the trial queries\' neighbours found over the whole source)', async () => {
    const { base } = sets.decaying;
    const inMemory = await chooseAutoSpec(backend, base.data, n, dim, { metric: 'l2', seed: 4 });
    const streamed = await buildFromStream(backend, 'auto', memoryStream({ name: 'decaying', data: base.data, rows: n, dim }), { metric: 'l2', seed: 4, chunkRows: 1000 });
    expect(streamed.choice?.reason).toMatch(/exact neighbours among all 6000 vectors/);
    expect(parseSpec(inMemory.spec, dim).scan.dim).toBeLessThanOrEqual(dim / 2);
    expect(streamed.spec.scan.dim).toBeLessThanOrEqual(dim / 2);
    expect(streamed.size).toBe(n);
  });

  for (const [name, set] of Object.entries(sets)) {
    it(`${name}: the built index reaches recall@10 0.99 on held-out queries at a point of its calibration grid, and keeps its reason when saved`, async () => {
      const { base, queries } = set;
      const index = await AdannsIndex.build(backend, 'auto', base.data, n, dim, { metric: 'cosine', seed: 2 });
      expect(index.choice?.reason).toBeTruthy();
      const truth = await exactNeighbours(backend, base.data, n, queries.data, queries.rows, dim, 'cosine', 10);
      // the calibration grid's most thorough points (every list, each shortlist): what calibration would measure there
      const grid = calibrationGrid(index, 10);
      const most = Math.max(...grid.map((p) => p.nprobe));
      let best = 0;
      for (const p of grid.filter((g) => g.nprobe === most && g.scanDim === index.spec.scan.dim && g.coarseDim === index.spec.coarse!.dim)) {
        const r = await index.search(queries.data, queries.rows, 10, p);
        best = Math.max(best, recallAtK(r.ids, 10, truth.ids, 10, queries.rows, 10));
      }
      expect(best).toBeGreaterThanOrEqual(0.99);
      const dir = mkdtempSync(join(tmpdir(), 'adanns-auto-'));
      try {
        saveIndex(index, dir);
        expect(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).spec).not.toBe('auto');
        expect(loadIndex(backend, dir).choice).toEqual(index.choice);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
