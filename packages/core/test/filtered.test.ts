import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend, WasmSimdBackend, WebGpuBackend, type Backend, type Metric, type TopK } from '@adanns/compute';
import { generateSynthetic } from '@adanns/datasets';
import { AdannsIndex, allowedIdsOf, isAllowed, judgeFilteredBudget, type AllowedIds, type SearchParams } from '../src/index.js';
import { CountingBackend } from './counting-backend.js';

// Filtered search (docs/ARCHITECTURE.md, "Filtered search"): with params that
// make a search exhaustive, a filtered search returns exactly the exact top k
// of the matching live vectors (brute force here), whichever plan runs
// (exact scan of the matches, or IVF probing with the mask), on every index
// shape and backend; with few probes it still returns k hits whenever k match.

const dim = 32;
const n = 1200;
const { base, queries } = generateSynthetic({ n, dim, clusters: 12, queries: 7, decay: 0.5, seed: 9 });
const k = 10;
/** Ids removed after the build: never returned, whatever the filter says. */
const removed = Array.from({ length: 40 }, (_, i) => 7 + i * 29);
const removedSet = new Set(removed);

/** Ids allowed by a filter of about `share` of the ids (every id for 1), seeded by share. */
function idsAt(share: number): number[] {
  if (share >= 1) return Array.from({ length: n }, (_, i) => i);
  const step = Math.round(1 / share);
  return Array.from({ length: n }, (_, i) => i).filter((i) => (i * 7919 + 13) % step === 0);
}

const FILTERS: [string, number[]][] = [
  ['100%', idsAt(1)],
  ['50%', idsAt(0.5)],
  ['10%', idsAt(0.1)],
  ['1%', idsAt(0.01)],
  // fewer matches than k, one of them removed
  ['4 ids', [3, 500, removed[3], 1100]],
  ['none', []],
];

function score(q: number, i: number, metric: Metric): number {
  let dot = 0, qq = 0, xx = 0, d2 = 0;
  for (let j = 0; j < dim; j++) {
    const a = queries.data[q * dim + j], b = base.data[i * dim + j];
    dot += a * b;
    qq += a * a;
    xx += b * b;
    d2 += (a - b) * (a - b);
  }
  return metric === 'l2' ? -d2 : metric === 'ip' ? dot : dot / Math.sqrt(qq * xx);
}

/** Exact filtered neighbours: the allowed live vectors by score (then lower id), at most k. */
function truth(q: number, allowed: number[], metric: Metric): { id: number; score: number }[] {
  return allowed.filter((i) => !removedSet.has(i)).map((i) => ({ id: i, score: score(q, i, metric) })).sort((a, b) => b.score - a.score || a.id - b.id).slice(0, k);
}

/** Same answer up to float rounding: scores rank by rank, and the ids except where scores tie within it. */
function expectSame(got: { ids: Float64Array; scores: Float32Array; counts: Int32Array }, row: number, want: { id: number; score: number }[], what: string): void {
  expect(got.counts[row], `${what}: hits`).toBe(want.length);
  const tol = (s: number) => 2e-4 * (1 + Math.abs(s));
  for (let i = 0; i < want.length; i++) {
    const s = got.scores[row * k + i];
    expect(Math.abs(s - want[i].score), `${what}: score at rank ${i}`).toBeLessThanOrEqual(tol(want[i].score));
    const id = got.ids[row * k + i];
    if (id !== want[i].id) {
      // a tie within rounding may swap neighbours: the id must be one of the equally scored wanted ones
      const tied = want.filter((w) => Math.abs(w.score - want[i].score) <= tol(want[i].score)).map((w) => w.id);
      expect(tied, `${what}: id at rank ${i}`).toContain(id);
    }
  }
  for (let i = want.length; i < k; i++) expect(got.ids[row * k + i]).toBe(-1);
}

interface Shape {
  spec: string;
  /** Params that make the unfiltered search exhaustive (and exact at D where the index can be). */
  params: Partial<SearchParams>;
  /** The plans to run (forced), besides the one the cost model picks. */
  plans: ('exact' | 'probe')[];
}

const everything = { nprobe: 8, shortlist: n };
const SHAPES: Shape[] = [
  { spec: 'flat', params: {}, plans: ['exact'] },
  { spec: 'ivf8@16,flat@32', params: { nprobe: 8 }, plans: ['exact', 'probe'] },
  { spec: 'pca,ivf8@16,flat@32', params: { nprobe: 8 }, plans: ['exact', 'probe'] },
  { spec: 'ivf8@16,f16@32,rerank@32', params: everything, plans: ['exact', 'probe'] },
  { spec: 'ivf8@16,sq8@32,rerank@32:f32', params: everything, plans: ['probe'] },
  { spec: 'ivf8@16,pq8@32,rerank@32', params: everything, plans: ['exact', 'probe'] },
  { spec: 'pca,ivf8@16,opq8@32,rerank@32:f32', params: everything, plans: ['probe'] },
  { spec: 'ivf8@16,pq8x4@32,rerank@32', params: everything, plans: ['exact', 'probe'] },
  { spec: 'pq8x4@32,rerank@32', params: { shortlist: n }, plans: [] },
];

const METRIC_SETS: Record<string, Metric[]> = { flat: ['l2', 'ip', 'cosine'], 'ivf8@16,flat@32': ['l2', 'ip', 'cosine'], 'pca,ivf8@16,flat@32': ['l2', 'cosine'] };

let simd: WasmSimdBackend;
// WebGPU where an adapter exists (llvmpipe with EGL_PLATFORM=surfaceless); REQUIRE_WEBGPU=1 fails without one
let gpu: WebGpuBackend | undefined;
try {
  gpu = await WebGpuBackend.create();
} catch (e) {
  if (process.env.REQUIRE_WEBGPU === '1') throw e;
}
beforeAll(async () => {
  simd = await WasmSimdBackend.create({ threads: 2, parallelMinWork: 1 });
});
afterAll(async () => {
  await simd.dispose();
  await gpu?.dispose();
});

async function built(backend: Backend, spec: string, metric: Metric): Promise<AdannsIndex> {
  const index = await AdannsIndex.build(backend, spec, base.data, n, dim, { metric, seed: 3, opqIterations: 2, kmeansIterations: 4 });
  index.remove(removed);
  return index;
}

describe('filtered search = exact filtered neighbours', () => {
  for (const shape of SHAPES) {
    for (const metric of METRIC_SETS[shape.spec] ?? (['l2', 'cosine'] as Metric[])) {
      for (const backendName of ['reference', 'cpu'] as const) {
        it(`${shape.spec} (${metric}, ${backendName})`, async () => {
          const backend = backendName === 'reference' ? new ReferenceBackend() : simd;
          const index = await built(backend, shape.spec, metric);
          for (const [label, ids] of FILTERS) {
            const filter = allowedIdsOf(ids);
            for (const plan of [undefined, ...shape.plans]) {
              for (const rows of [1, 7]) {
                const r = await index.search(queries.data.subarray(0, rows * dim), rows, k, shape.params, { filter, filterPlan: plan });
                for (let q = 0; q < rows; q++) expectSame(r, q, truth(q, ids, metric), `${label}, plan ${plan ?? r.filter!.plan}, query ${q} of ${rows}`);
                expect(r.filter!.matches).toBe(ids.filter((i) => !removedSet.has(i)).length);
                if (plan && r.filter!.matches > 0) expect(r.filter!.plan).toBe(plan);
              }
            }
          }
        });
      }
    }
  }
});

describe.skipIf(!gpu)('filtered search = exact filtered neighbours on WebGPU', () => {
  for (const shape of SHAPES.filter((s) => ['ivf8@16,flat@32', 'ivf8@16,f16@32,rerank@32', 'ivf8@16,pq8@32,rerank@32', 'ivf8@16,pq8x4@32,rerank@32'].includes(s.spec))) {
    it(`${shape.spec} (l2)`, async () => {
      const index = await built(gpu!, shape.spec, 'l2');
      for (const [label, ids] of FILTERS) {
        for (const plan of [undefined, ...shape.plans]) {
          const r = await index.search(queries.data, queries.rows, k, shape.params, { filter: allowedIdsOf(ids), filterPlan: plan });
          for (let q = 0; q < queries.rows; q++) expectSame(r, q, truth(q, ids, 'l2'), `${label}, plan ${plan ?? r.filter!.plan}, query ${q}`);
        }
      }
    });
  }
});

describe('filtered search returns k hits whenever k match', () => {
  for (const spec of ['ivf8@16,flat@32', 'ivf8@16,sq8@32', 'ivf8@16,pq8@32', 'ivf8@16,pq8x4@32,rerank@32']) {
    it(`${spec}: one probe at 1% selectivity probes on until the top k holds matches`, async () => {
      const index = await built(simd, spec, 'l2');
      const ids = idsAt(0.01);
      const live = ids.filter((i) => !removedSet.has(i));
      const r = await index.search(queries.data, queries.rows, k, { nprobe: 1, shortlist: 20 }, { filter: allowedIdsOf(ids), filterPlan: 'probe' });
      expect(r.filter!.plan).toBe('probe');
      for (let q = 0; q < queries.rows; q++) {
        expect(r.counts[q]).toBe(Math.min(k, live.length));
        for (let i = 0; i < r.counts[q]; i++) expect(live).toContain(r.ids[q * k + i]);
      }
      expect(r.filter!.maxListsProbed).toBeGreaterThan(1);
    });
  }

  it('a PQ index without stored vectors cannot scan matches exactly (clear error), and plans the probe by itself', async () => {
    const index = await built(new ReferenceBackend(), 'ivf8@16,pq8@32', 'ip');
    const filter = allowedIdsOf(idsAt(0.1));
    await expect(index.search(queries.data.subarray(0, dim), 1, k, {}, { filter, filterPlan: 'exact' })).rejects.toThrow(/keeps no vectors/);
    const r = await index.search(queries.data.subarray(0, dim), 1, k, {}, { filter });
    expect(r.filter!.plan).toBe('probe');
    expect(r.expectedRecall).toBeNull();
    expect(r.filter!.note).toMatch(/not calibrated/);
  });

  it('an index whose slots are its ids uses the bitset as the mask: ids past the index match nothing', async () => {
    const index = await AdannsIndex.build(simd, 'ivf8@16,flat@32', base.data, n, dim, { metric: 'ip', seed: 3, kmeansIterations: 4 });
    const ids = [...idsAt(0.1), n, n + 1, n + 40, 5000];
    for (const plan of ['exact', 'probe'] as const) {
      const r = await index.search(queries.data, queries.rows, k, { nprobe: 8 }, { filter: allowedIdsOf(ids), filterPlan: plan });
      expect(r.filter!.matches).toBe(ids.length - 4);
      for (let q = 0; q < queries.rows; q++) {
        const want = idsAt(0.1).map((i) => ({ id: i, score: score(q, i, 'ip') })).sort((a, b) => b.score - a.score || a.id - b.id).slice(0, k);
        expectSame(r, q, want, `plan ${plan}, query ${q}`);
      }
    }
    // once an id is removed the slots no longer are the ids: the general translation takes over
    index.remove([idsAt(0.1)[0]]);
    const r = await index.search(queries.data.subarray(0, dim), 1, k, { nprobe: 8 }, { filter: allowedIdsOf(ids) });
    expect(r.filter!.matches).toBe(ids.length - 5);
  });

  it('refuses a malformed filter with a clear error', async () => {
    const index = await built(new ReferenceBackend(), 'ivf8@16,flat@32', 'l2');
    const q = queries.data.subarray(0, dim);
    await expect(index.search(q, 1, k, {}, { filter: { bits: new Uint32Array([3]), count: 1 } })).rejects.toThrow(/count is 1 but .* has 2 set bits/);
    await expect(index.search(q, 1, k, {}, { filter: { bits: [1, 2], count: 2 } as unknown as AllowedIds })).rejects.toThrow(/must be a Uint32Array/);
  });
});

describe('AllowedIds helpers', () => {
  it('allowedIdsOf sizes the bitset by the largest id, up to 2^32 - 1 (no 32-bit wrap)', () => {
    const a = allowedIdsOf([31, 5, 5]);
    expect(a.bits.length).toBe(1);
    expect(a.count).toBe(2);
    expect(allowedIdsOf([32]).bits.length).toBe(2);
    expect(allowedIdsOf([]).bits.length).toBe(0);
    // (max + 32) >>> 5 wrapped to 0 words here, dropping every id
    const edge = allowedIdsOf([2 ** 32 - 1, 5]);
    expect(edge.bits.length).toBe(2 ** 27);
    expect(edge.count).toBe(2);
    expect(isAllowed(edge, 5)).toBe(true);
    expect(isAllowed(edge, 2 ** 32 - 1)).toBe(true);
    expect(isAllowed(edge, 2 ** 32 - 2)).toBe(false);
    expect(() => allowedIdsOf([2 ** 32])).toThrow(/not an integer in \[0, 4294967295\]/);
  });

  it('isAllowed is the scans\' mask test: ids past the bitset (2^32 + i too) and non-ids are not allowed', () => {
    const a = allowedIdsOf([0, 5, 63]);
    for (const id of [0, 5, 63]) expect(isAllowed(a, id)).toBe(true);
    for (const id of [1, 64, 2 ** 32, 2 ** 32 + 5, -1, NaN]) expect(isAllowed(a, id), String(id)).toBe(false);
  });
});

describe('filtered plans by selectivity', () => {
  it('scans the matches exactly when that is cheaper than probing, and probes IVF otherwise', async () => {
    const index = await built(new ReferenceBackend(), 'ivf8@16,flat@16,rerank@32', 'l2');
    const q = queries.data.subarray(0, dim);
    const few = await index.search(q, 1, k, { nprobe: 1, shortlist: 20 }, { filter: allowedIdsOf(idsAt(0.01)) });
    expect(few.filter!.plan).toBe('exact');
    expect(few.expectedRecall).toBe(1);
    expect(few.mflops[0]).toBeCloseTo(few.filter!.predicted.exact, 9);
    expect(few.filter!.predicted.exact).toBeLessThan(few.filter!.predicted.ivf);
    const many = await index.search(q, 1, k, { nprobe: 1, shortlist: 20 }, { filter: allowedIdsOf(idsAt(0.5)) });
    expect(many.filter!.plan).toBe('probe');
    expect(many.filter!.firstProbes).toBe(2);
    expect(many.filter!.predicted.ivf).toBeLessThan(many.filter!.predicted.exact);
  });
});

describe('budgets under filters', () => {
  it('plans a recall budget for the filter: the exact scan of the matches or a probe plan the filtered calibration vouches for', async () => {
    const index = await built(new ReferenceBackend(), 'ivf8@16,flat@16,rerank@32', 'l2');
    await index.calibrate({ ks: [10], sampleSize: 60, latencyQueries: 1, maxSeconds: 30 });
    const filtered = index.calibration!.filtered!;
    // 1160 live vectors: 50%, 20% and 5% match at least 40 (1% does not, and is left out)
    expect(filtered.selectivities).toEqual([0.5, 0.2, 0.05]);
    expect(new Set(filtered.points.map((p) => p.shape))).toEqual(new Set(['random', 'region']));
    const q = queries.data.subarray(0, 2 * dim);
    // 1%: below every calibrated selectivity, so only the exact scan (recall 1 from float32 rows at D) is vouched for
    const exact = await index.searchWithBudget(q, 2, k, { recall: 0.9 }, { filter: allowedIdsOf(idsAt(0.01)) });
    expect(exact.filter!.plan).toBe('exact');
    expect(exact.budgetMet).toBe(true);
    expect(exact.expectedRecall).toBe(1);
    // 50%: the cheapest plan whose estimated lower bound reaches the target, and no more than the exact scan costs
    const planned = index.planFiltered({ recall: 0.8 }, k, allowedIdsOf(idsAt(0.5)));
    expect(planned.budgetMet).toBe(true);
    expect(planned.recallLowerBound!).toBeGreaterThanOrEqual(0.8);
    const exactCost = index.priceFilter(k, undefined, allowedIdsOf(idsAt(0.5)), 'exact').mflops;
    expect(planned.expectedMflops).toBeLessThanOrEqual(exactCost);
    const probed = await index.searchWithBudget(q, 2, k, { recall: 0.8 }, { filter: allowedIdsOf(idsAt(0.5)) });
    expect(probed.filter!.plan).toBe(planned.plan);
    expect(probed.budgetMet).toBe(true);
    expect(probed.expectedRecall).toBe(planned.expectedRecall);
    expect(Array.from(probed.counts)).toEqual([k, k]);
    if (planned.plan === 'probe') expect(probed.budgetNote).toMatch(/estimated from the filtered calibration at 50% \(random and region/);
    // strict: refused when no plan is known to reach the target (here no plan could claim more than 1)
    const lossy = await built(new ReferenceBackend(), 'ivf8@16,f16@16,rerank@32:f16', 'l2');
    await lossy.calibrate({ ks: [10], sampleSize: 60, latencyQueries: 1, maxSeconds: 30, filtered: false });
    expect(() => lossy.planFiltered({ recall: 0.9 }, k, allowedIdsOf(idsAt(0.5)), { strict: true })).toThrow(/cannot be met under this filter: no plan's recall lower bound/);
    const unknown = await lossy.searchWithBudget(q, 2, k, { recall: 0.9 }, { filter: allowedIdsOf(idsAt(0.5)) });
    expect(unknown.budgetMet).toBe(false);
    expect(unknown.expectedRecall).toBeNull();
    // why: the unfiltered plan (the fastest calibrated point, so it varies with timing) decides whether the filter's own
    // choice is probing (whose recall the missing filtered calibration would vouch for) or the exact scan of the
    // lossy rows (whose recall is not known); either way no recall is claimed
    expect(unknown.budgetNote).toMatch(unknown.filter!.plan === 'exact' ? /exact scan of the matches: its recall is not known \(lossy rows\)/ : /the calibration has no filtered part/);
    // an MFLOPs budget is judged on the MFLOPs the filtered search reports
    const most = Math.max(...probed.mflops);
    const tight = await index.searchWithBudget(q, 2, k, { mflops: most / 100 }, { filter: allowedIdsOf(idsAt(0.5)) });
    expect(tight.budgetMet).toBe(Math.max(...tight.mflops) <= most / 100);
    // the note starts with the share and the plan (a collection prefixes the count: "filter matches N points: ")
    expect(tight.budgetNote).toMatch(/^50\.0% of 1160 vectors: /);
    expect(tight.budgetNote).not.toMatch(/filter matches/);
  });

  it('claims no recall for an exact scan at D from lossy (float16) rows, and says why', async () => {
    const index = await built(new ReferenceBackend(), 'ivf8@16,f16@16,rerank@32:f16', 'l2');
    const r = await index.search(queries.data.subarray(0, dim), 1, k, { nprobe: 1, shortlist: 20 }, { filter: allowedIdsOf(idsAt(0.01)), filterPlan: 'exact' });
    expect(r.filter!.exactDim).toBe(dim);
    expect(r.filter!.exactLossless).toBe(false);
    expect(r.expectedRecall).toBeNull();
    expect(r.filter!.note).toMatch(/f16 rows \(lossy\), recall not calibrated/);
    await index.calibrate({ ks: [10], sampleSize: 40, latencyQueries: 1, maxSeconds: 20, filtered: false });
    const plan = index.planFiltered({ recall: 0.9 }, k, allowedIdsOf(idsAt(0.01)));
    expect(plan.recallLowerBound).toBeNull();
    const verdict = judgeFilteredBudget({ recall: 0.9 }, { k, maxMflops: 0, tookMs: 0 }, plan, r.filter!);
    expect(verdict.met).toBe(false);
    expect(verdict.note).toMatch(/not known/);
    // the same plan from float32 rows on disk is exact
    const f32 = await built(new ReferenceBackend(), 'ivf8@16,f16@16,rerank@32', 'l2');
    const exact = await f32.search(queries.data.subarray(0, dim), 1, k, { nprobe: 1, shortlist: 20 }, { filter: allowedIdsOf(idsAt(0.01)), filterPlan: 'exact' });
    expect(exact.expectedRecall).toBe(1);
    await f32.calibrate({ ks: [10], sampleSize: 40, latencyQueries: 1, maxSeconds: 20, filtered: false });
    const f32Plan = f32.planFiltered({ recall: 0.9 }, k, allowedIdsOf(idsAt(0.01)));
    expect(f32Plan.plan).toBe('exact');
    expect(judgeFilteredBudget({ recall: 0.9 }, { k, maxMflops: 0, tookMs: 0 }, f32Plan, exact.filter!).met).toBe(true);
  });
});

describe('exact scan of the matches under cosine', () => {
  it('reads the norms a resident float32 store keeps: one multiply-add per value, as the exact scan of the matches costs', async () => {
    const ids = idsAt(0.01);
    const q = queries.data.subarray(0, dim);
    const resident = await built(simd, 'ivf8@16,flat@16,rerank@32:f32', 'cosine');
    const r = await resident.search(q, 1, k, { nprobe: 1, shortlist: 20 }, { filter: allowedIdsOf(ids), filterPlan: 'exact' });
    expect(r.mflops[0]).toBeCloseTo((ids.length * dim) / 1e6, 12);
    // rows on disk keep no norms: they are computed per search (two per value)
    const disk = await built(new ReferenceBackend(), 'ivf8@16,flat@16,rerank@32', 'cosine');
    const d = await disk.search(q, 1, k, { nprobe: 1, shortlist: 20 }, { filter: allowedIdsOf(ids), filterPlan: 'exact' });
    expect(d.mflops[0]).toBeCloseTo((2 * ids.length * dim) / 1e6, 12);
    // same neighbours and scores either way
    expect(Array.from(r.ids)).toEqual(Array.from(d.ids));
    for (let i = 0; i < k; i++) expect(r.scores[i]).toBeCloseTo(d.scores[i], 5);
  });
});

describe('filtered plan prices = what runs (planFilter, priceFilter)', () => {
  /** The list each vector is in (its nearest centroid at d_c = 16). */
  async function listOf(index: AdannsIndex): Promise<Int32Array> {
    return index.probeLists(base.data, n, 16, 1);
  }

  it('prices funnel stages at their keeps, and code tables only for the lists holding a match', async () => {
    const cases: [string, Metric, Partial<SearchParams>][] = [
      ['ivf8@16,flat@24,rerank@32', 'l2', { nprobe: 8, scanDim: 8, shortlist: 40, funnel: [{ dim: 16, keep: 20 }] }],
      ['ivf8@16,flat@24', 'l2', { nprobe: 8, scanDim: 8, shortlist: 40, funnel: [{ dim: 12, keep: 24 }, { dim: 24, keep: 12 }] }],
      ['pca,ivf8@16,pq8@16,rerank@24:f32', 'l2', { nprobe: 8, shortlist: 30, funnel: [{ dim: 16, keep: 12 }] }],
      ['ivf8@16,pq8@32', 'l2', { nprobe: 8 }],
    ];
    for (const [spec, metric, params] of cases) {
      const backend = new CountingBackend();
      const index = await built(backend, spec, metric);
      const lists = await listOf(index);
      // matches in two lists only (a filter correlated with the clusters), and a spread one
      const clustered = Array.from({ length: n }, (_, i) => i).filter((i) => lists[i] === lists[0] || lists[i] === lists[1]);
      for (const ids of [clustered, idsAt(0.1)]) {
        const filter = allowedIdsOf(ids);
        backend.reset();
        // nprobe = every list: the first round is the whole probe, so the mean prediction is what runs
        const r = await index.search(queries.data.subarray(0, dim), 1, k, params, { filter, filterPlan: 'probe' });
        expect(r.filter!.plan).toBe('probe');
        expect(backend.reset(), `${spec}: executed`).toBeCloseTo(r.mflops[0] * 1e6, 3);
        expect(r.filter!.predicted.ivf * 1e6, `${spec}: predicted ${ids === clustered ? 'clustered' : 'spread'}`).toBeCloseTo(r.mflops[0] * 1e6, 3);
        const price = index.priceFilter(k, params, filter, 'probe');
        expect(price.plan).toBe('probe');
        expect(price.mflops).toBeCloseTo(r.mflops[0], 9);
        expect(price.mflopsMax).toBeCloseTo(r.mflops[0], 9);
      }
    }
  });

  it('priceFilter: the exact plan at its prediction, the probe plan bounded by its worst case', async () => {
    for (const spec of ['ivf8@16,flat@16,rerank@32', 'ivf8@16,pq8@32', 'ivf8@16,pq8x4@32,rerank@32']) {
      const index = await built(new ReferenceBackend(), spec, 'l2');
      const params = { nprobe: 1, shortlist: 20 };
      for (const share of [0.5, 0.1, 0.01]) {
        const filter = index.prepareFilter(allowedIdsOf(idsAt(share)));
        const price = index.priceFilter(k, params, filter);
        const r = await index.search(queries.data, queries.rows, k, params, { filter });
        expect(price.plan).toBe(r.filter!.plan);
        const most = Math.max(...r.mflops);
        if (price.plan === 'exact') {
          expect(price.mflops).toBeCloseTo(most, 9);
          expect(price.mflopsMax).toBe(price.mflops);
        } else {
          expect(price.mflops).toBeCloseTo(r.filter!.predicted.ivf, 9);
          expect(most, `${spec} at ${share}`).toBeLessThanOrEqual(price.mflopsMax + 1e-9);
          expect(price.mflopsMax).toBeGreaterThanOrEqual(price.mflops);
        }
      }
      // forced plans, and a filter matching nothing costs nothing
      expect(index.priceFilter(k, params, allowedIdsOf(idsAt(0.1)), 'probe').plan).toBe('probe');
      expect(index.priceFilter(k, params, allowedIdsOf([]))).toEqual({ plan: 'exact', mflops: 0, mflopsMax: 0 });
      expect(() => index.priceFilter(k, { nprobe: 99 }, allowedIdsOf([1]))).toThrow(/nprobe/);
    }
  });
});

describe('prepared filters', () => {
  it('answer as the ids do, are evaluated once, and follow removals and adds', async () => {
    const index = await built(new ReferenceBackend(), 'ivf8@16,flat@32', 'l2');
    const ids = idsAt(0.1);
    const prepared = index.prepareFilter(allowedIdsOf(ids));
    const mask = (prepared as unknown as { slots: unknown }).slots;
    for (const plan of ['exact', 'probe'] as const) {
      const a = await index.search(queries.data, queries.rows, k, { nprobe: 2 }, { filter: prepared, filterPlan: plan });
      const b = await index.search(queries.data, queries.rows, k, { nprobe: 2 }, { filter: allowedIdsOf(ids), filterPlan: plan });
      expect(Array.from(a.ids)).toEqual(Array.from(b.ids));
      expect(Array.from(a.mflops)).toEqual(Array.from(b.mflops));
    }
    // not re-derived while the slots are unchanged
    expect((prepared as unknown as { slots: unknown }).slots).toBe(mask);
    const live = ids.filter((i) => !removedSet.has(i));
    const gone = live.slice(0, 5);
    index.remove(gone);
    const after = await index.search(queries.data, queries.rows, k, { nprobe: 8 }, { filter: prepared, filterPlan: 'exact' });
    expect(after.filter!.matches).toBe(live.length - 5);
    for (let q = 0; q < queries.rows; q++) expectSame(after, q, truth(q, ids.filter((i) => !gone.includes(i)), 'l2').filter((t) => !gone.includes(t.id)), `after removal, query ${q}`);
    // an id added back under the filter is found again
    await index.add([gone[0]], base.data.slice(gone[0] * dim, (gone[0] + 1) * dim), 1);
    expect((await index.search(queries.data.subarray(0, dim), 1, k, {}, { filter: prepared })).filter!.matches).toBe(live.length - 4);
    const other = await built(new ReferenceBackend(), 'ivf8@16,flat@32', 'l2');
    await expect(other.search(queries.data.subarray(0, dim), 1, k, {}, { filter: prepared })).rejects.toThrow(/another index/);
    expect(() => index.prepareFilter({ bits: new Uint32Array([3]), count: 1 })).toThrow(/count is 1/);
  });
});

describe('the exact plan under a prepared filter', () => {
  it('gathers the matches once: later searches under it read no rows and answer as one batch does, until the slots change', async () => {
    for (const spec of ['pca,ivf8@16,flat@16,rerank@32', 'ivf8@16,flat@32']) {
      const index = await built(simd, spec, 'cosine');
      // every row read: the re-rank store's, or the lists' (InvertedLists.locate, one per row)
      let reads = 0;
      const holder = spec.includes('rerank') ? (index as unknown as { rerankStore: { read(s: ArrayLike<number>, o: Float32Array): unknown } }).rerankStore : undefined;
      if (holder) {
        const read = holder.read.bind(holder);
        holder.read = (slots, out) => ((reads += slots.length), read(slots, out));
      } else {
        const lists = (index as unknown as { lists: { locate(slot: number): unknown } }).lists;
        const locate = lists.locate.bind(lists);
        lists.locate = (slot) => (reads++, locate(slot));
      }
      const ids = idsAt(0.5);
      const live = ids.filter((i) => !removedSet.has(i));
      const batch = await index.search(queries.data, queries.rows, k, {}, { filter: allowedIdsOf(ids), filterPlan: 'exact' });
      expect(reads, spec).toBe(live.length);
      const prepared = index.prepareFilter(allowedIdsOf(ids));
      reads = 0;
      for (let pass = 0; pass < 2; pass++) {
        for (let q = 0; q < queries.rows; q++) {
          const one = await index.search(queries.data.subarray(q * dim, (q + 1) * dim), 1, k, {}, { filter: prepared, filterPlan: 'exact' });
          expect(Array.from(one.ids), `${spec}, query ${q}`).toEqual(Array.from(batch.ids.subarray(q * k, (q + 1) * k)));
          expect(Array.from(one.scores), `${spec}, query ${q}`).toEqual(Array.from(batch.scores.subarray(q * k, (q + 1) * k)));
          expect(one.mflops[0]).toBe(batch.mflops[q]);
        }
      }
      expect(reads, `${spec}: one gather for ${2 * queries.rows} searches`).toBe(live.length);
      // a removal re-derives the filter and gathers again, without the removed vector
      const top = batch.ids[0];
      index.remove([top]);
      const after = await index.search(queries.data.subarray(0, dim), 1, k, {}, { filter: prepared, filterPlan: 'exact' });
      expect(reads).toBe(2 * live.length - 1);
      expect(Array.from(after.ids)).not.toContain(top);
      expect(Array.from(after.ids)).toEqual([...Array.from(batch.ids.subarray(1, k)), after.ids[k - 1]]);
      index.release();
    }
  });
});

describe('a removal between the stages of a search (a backend that yields)', () => {
  /** A reference backend that runs `hook` once, right after its next list scan: as if a remove ran while WebGPU was awaited. */
  class RemovingBackend extends ReferenceBackend {
    hook?: (best: TopK) => void;
    override async scanListsTopK(...args: Parameters<ReferenceBackend['scanListsTopK']>): Promise<void> {
      await super.scanListsTopK(...args);
      const hook = this.hook;
      this.hook = undefined;
      hook?.(args[6]);
    }
  }
  const cases: [string, Partial<SearchParams>, ('exact' | 'probe' | undefined)[]][] = [
    // funnel from the lists (listRows), then a gathered re-rank from disk
    ['ivf8@16,flat@24,rerank@32', { nprobe: 2, scanDim: 8, shortlist: 40, funnel: [{ dim: 16, keep: 20 }] }, [undefined, 'probe']],
    // the last funnel stage from f16 lists answers
    ['ivf8@16,f16@32', { nprobe: 2, scanDim: 8, shortlist: 40, funnel: [{ dim: 16, keep: 20 }] }, [undefined]],
    ['ivf8@16,flat@16,rerank@32:f32', { nprobe: 2, shortlist: 40 }, [undefined]],
  ];
  for (const [spec, params, plans] of cases) {
    it(`${spec}: candidates removed after the scan are dropped, not errors`, async () => {
      const backend = new RemovingBackend();
      const index = await AdannsIndex.build(backend, spec, base.data, n, dim, { metric: 'l2', seed: 3, kmeansIterations: 4 });
      for (const plan of plans) {
        const filter = plan ? { filter: allowedIdsOf(idsAt(0.5)), filterPlan: plan } : {};
        let gone: number[] = [];
        backend.hook = (best) => {
          // the scan's best candidates of query 0 (slots), removed by id before the funnel and re-rank read them
          const order = Array.from({ length: best.sizes[0] }, (_, i) => i).sort((a, b) => best.scores[b] - best.scores[a]);
          const slots = order.slice(0, 6).map((i) => best.ids[i]);
          gone = Array.from(index.idsOf(slots));
          expect(index.remove(gone)).toBe(gone.length);
        };
        const r = await index.search(queries.data.subarray(0, dim), 1, k, params, filter);
        expect(gone.length).toBeGreaterThan(0);
        expect(r.counts[0]).toBe(k);
        for (let i = 0; i < k; i++) {
          expect(gone).not.toContain(r.ids[i]);
          expect(Number.isInteger(r.ids[i]) && r.ids[i] >= 0).toBe(true);
        }
      }
    });
  }
});

describe('filtered search cost = multiply-adds executed (counting backend)', () => {
  const flopsOf = (mflops: Float64Array) => mflops.reduce((a, m) => a + m * 1e6, 0);
  const cases: [string, Metric, Partial<SearchParams>][] = [
    ['ivf8@16,flat@32', 'cosine', { nprobe: 1 }],
    ['pca,ivf8@16,flat@16,rerank@32', 'l2', { nprobe: 2, shortlist: 20 }],
    ['ivf8@16,sq8@32', 'ip', { nprobe: 2 }],
    ['ivf8@16,pq8@32', 'l2', { nprobe: 1 }],
    ['ivf8@16,opq8@32', 'ip', { nprobe: 2 }],
    ['pca,ivf8@16,opq8x4@16,rerank@24:f32', 'cosine', { nprobe: 2, shortlist: 25 }],
    ['ivf8@16,pq9x4@32,rerank@32', 'l2', { nprobe: 1, shortlist: 20 }],
    ['f16@32', 'cosine', {}],
    // no IVF and no vectors to read: every list scanned with the mask
    ['pq8@32', 'ip', {}],
  ];
  for (const [spec, metric, params] of cases) {
    it(`${spec} (${metric}): every plan at 50%, 10% and 1%`, async () => {
      const backend = new CountingBackend();
      const index = await built(backend, spec, metric);
      backend.reset();
      for (const share of [0.5, 0.1, 0.01]) {
        const filter = allowedIdsOf(idsAt(share));
        for (const plan of [undefined, 'exact', 'probe'] as const) {
          if (plan === 'exact' && /pq8@|opq8@/.test(spec) && !spec.includes('rerank')) continue;
          if (plan === 'probe' && !spec.includes('ivf')) continue;
          for (let q = 0; q < 3; q++) {
            const r = await index.search(queries.data.subarray(q * dim, (q + 1) * dim), 1, k, params, { filter, filterPlan: plan });
            const ops = [...backend.byOp].map(([op, f]) => `${op} ${f}`).join(', ');
            expect(backend.reset(), `${share}, plan ${r.filter!.plan}, query ${q}: ${ops}`).toBeCloseTo(flopsOf(r.mflops), 3);
          }
        }
      }
    });
  }
});
