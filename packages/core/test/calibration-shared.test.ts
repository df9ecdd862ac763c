import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng, TopK, WasmSimdBackend, type Metric } from '@adanns/compute';
import { generateSynthetic } from '@adanns/datasets';
import { AdannsIndex, recallAtK, type CalibrationLevel, type SearchOptions } from '../src/index.js';
import { calibrateFiltered, meanAndStdErr } from '../src/planner/filtered-calibration.js';
import { cutScan, shareScan } from '../src/stages/scan-reuse.js';

// Calibration shares its scans (planner/calibrate.ts, stages/scan-reuse.ts): points that differ
// only in their shortlist are measured from one scan at the longest, and a filtered point at
// several k from one search at the largest. The numbers it stores must be those of a search of
// each point alone, as the calibration measured them before it shared anything.

const dim = 32;
const { base, queries } = generateSynthetic({ n: 1500, dim, clusters: 30, queries: 40, noise: 0.8, seed: 23 });
let backend: WasmSimdBackend;

beforeAll(async () => {
  backend = await WasmSimdBackend.create({ threads: 1 });
});
afterAll(async () => {
  await backend.dispose();
});

describe('cutScan', () => {
  it('keeps what a scan at the shorter shortlist keeps, ties at the cut included', () => {
    const rng = createRng(5);
    for (let trial = 0; trial < 50; trial++) {
      const rows = 3;
      const longer = 5 + rng.int(60);
      const shorter = 1 + rng.int(longer);
      const full = new TopK(rows, longer);
      const direct = new TopK(rows, shorter);
      for (let q = 0; q < rows; q++) {
        // few distinct scores: many ties, some rows holding fewer candidates than either shortlist
        const candidates = rng.int(2 * longer);
        for (let i = 0; i < candidates; i++) {
          const slot = rng.int(10_000);
          const score = rng.int(6) / 4 - 0.5;
          full.push(q, slot, score);
          direct.push(q, slot, score);
        }
      }
      const cut = cutScan(shareScan({ best: full, scanned: new Float64Array(rows) }), shorter, rows).best.sort();
      direct.sort();
      expect(Array.from(cut.sizes)).toEqual(Array.from(direct.sizes));
      expect(Array.from(cut.ids)).toEqual(Array.from(direct.ids));
      expect(Array.from(cut.scores)).toEqual(Array.from(direct.scores));
    }
  });

  it('cuts a row holding NaN scores (no order) to its length, without hanging', () => {
    const full = new TopK(1, 6);
    [0.5, NaN, 0.25, NaN, 1, 0.75].forEach((score, i) => full.push(0, i, score));
    const cut = cutScan(shareScan({ best: full, scanned: new Float64Array(1) }), 3, 1).best;
    expect(cut.sizes[0]).toBe(3);
  });

  it('refuses a scan that cannot serve the search', () => {
    const shared = shareScan({ best: new TopK(2, 10), scanned: new Float64Array(2) });
    expect(() => cutScan(shared, 11, 2)).toThrow(/shortlist 10 cannot serve shortlist 11/);
    expect(() => cutScan(shared, 5, 3)).toThrow(/2 queries cannot serve a search of 3/);
  });
});

const SHAPES: [string, Metric][] = [
  ['pca,ivf16@16,flat@16,rerank@32:f32', 'cosine'],
  ['ivf16@32,pq8@32,rerank@32', 'l2'],
  ['ivf16@32,flat@32', 'ip'],
];

describe('calibration with shared scans', () => {
  for (const [spec, metric] of SHAPES) {
    it(`stores, for ${spec} (${metric}), what a search of each point alone gives`, async () => {
      const index = await AdannsIndex.build(backend, spec, base.data, base.rows, dim, { metric, seed: 4, pqTrainSize: 1500 });
      let reused = 0;
      const search = index.search.bind(index);
      index.search = (q, rows, k, params, options?: SearchOptions) => {
        if (options?.reuseScan) reused++;
        return search(q, rows, k, params, options);
      };
      const c = await index.calibrate({ queries: queries.data, queryRows: queries.rows, ks: [1, 10], filtered: false, latencyQueries: 1 });
      index.search = search;
      expect(c.complete).toBe(true);
      // (without a re-rank, the funnel points share theirs)
      expect(reused).toBeGreaterThan(0);
      const truth = (await index.exactSearch(queries.data, queries.rows, 10)).ids;
      for (const level of c.levels!) {
        for (const point of level.points) {
          const r = await index.search(queries.data, queries.rows, level.k, point.params);
          const at = `k = ${level.k}, ${JSON.stringify(point.params)}`;
          expect(recallAtK(r.ids, level.k, truth, 10, queries.rows, level.k), at).toBeCloseTo(point.recall, 12);
          expect(meanAndStdErr(r.mflops)[0], at).toBeCloseTo(point.mflops, 12);
        }
      }
      index.release();
    }, 120_000);
  }

  it('measures a filtered point once for several k and reads off what a search at each k gives', async () => {
    const index = await AdannsIndex.build(backend, 'ivf16@16,flat@16,rerank@32:f32', base.data, base.rows, dim, { metric: 'l2', seed: 4 });
    const c = await index.calibrate({ queries: queries.data, queryRows: queries.rows, ks: [1, 10], filtered: false, latencyQueries: 1 });
    const levels = c.levels!;
    const input = (of: CalibrationLevel[]) => ({ queries: queries.data, rows: queries.rows, levels: of, primaryK: 10, seed: 3, maxMs: 600_000 });
    // the filters are drawn the same for either (the selectivities kept depend on the largest k only past 39 matches)
    const together = (await calibrateFiltered(index, input(levels)))!;
    expect(together.complete).toBe(true);
    const strip = (p: { latencyMs: number }) => ({ ...p, latencyMs: 0 });
    let shared = 0;
    for (const level of levels) {
      const alone = (await calibrateFiltered(index, input([level])))!;
      const mine = together.points.filter((p) => p.k === level.k);
      expect(mine.length).toBeGreaterThan(0);
      expect(mine.map(strip)).toEqual(alone.points.map(strip));
      shared += mine.filter((p) => together.points.some((o) => o.k !== p.k && JSON.stringify(o.params) === JSON.stringify(p.params))).length;
    }
    // some points are on both frontiers: those were measured once
    expect(shared).toBeGreaterThan(0);
    index.release();
  }, 120_000);
});
