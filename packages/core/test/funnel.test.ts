import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS, ReferenceBackend, WasmSimdBackend, type Backend, type Metric } from '@adanns/compute';
import { generateSynthetic } from '@adanns/datasets';
import { AdannsIndex, formatParams, loadIndex, parseParams, readCalibration, saveIndex, type FrontierPoint, type SearchParams } from '../src/index.js';

// Funnel plans (docs/ARCHITECTURE.md, "Index stages and contracts"): re-rank stages between the scan and the
// final re-rank, each rescoring the candidates left at a larger prefix.

const reference = new ReferenceBackend();
let simd: WasmSimdBackend;
beforeAll(async () => {
  simd = await WasmSimdBackend.create({ threads: 2, parallelMinWork: 1 });
});
afterAll(async () => {
  await simd.dispose();
});

const dim = 32;
const n = 1500;
const { base, queries } = generateSynthetic({ n, dim, clusters: 12, queries: 20, decay: 0.5, seed: 11 });
const Q = queries.rows;

/** The engine's score of row r of `data` against query q at prefix d, in float64 (cosine of re-normalised prefixes, ip, negated squared l2). */
function score(metric: Metric, q: Float32Array, qo: number, data: Float32Array, r: number, d: number): number {
  let dot = 0;
  let qq = 0;
  let xx = 0;
  let l2 = 0;
  for (let i = 0; i < d; i++) {
    const a = q[qo + i];
    const b = data[r * dim + i];
    dot += a * b;
    qq += a * a;
    xx += b * b;
    l2 += (a - b) * (a - b);
  }
  return metric === 'cosine' ? dot / Math.sqrt(qq * xx) : metric === 'ip' ? dot : -l2;
}

/** Best `keep` of `rows` at prefix d, by score then lower row. */
function best(metric: Metric, q: number, rows: number[], d: number, keep: number): number[] {
  const scored = rows.map((r) => ({ r, s: score(metric, queries.data, q * dim, base.data, r, d) }));
  scored.sort((a, b) => b.s - a.s || a.r - b.r);
  return scored.slice(0, keep).map((x) => x.r);
}

/** The funnel computed directly on the data: a scan of every vector at scanDim, each stage, then the final re-rank. */
function referenceFunnel(metric: Metric, q: number, p: SearchParams, k: number): number[] {
  let rows = best(metric, q, Array.from({ length: n }, (_, i) => i), p.scanDim, p.shortlist);
  for (const stage of p.funnel ?? []) rows = best(metric, q, rows, stage.dim, stage.keep);
  return p.rerankDim === undefined ? rows.slice(0, k) : best(metric, q, rows, p.rerankDim, k);
}

describe('funnel search', () => {
  for (const metric of METRICS) {
    for (const [name, backend] of [['reference', () => reference], ['cpu', () => simd]] as const) {
      it(`equals the funnel computed on the data (lists then store, then the re-rank; ${metric}, ${name})`, async () => {
        // no PCA: the lists hold prefixes up to 16, the store (resident f32) the vectors at 32, whose prefixes are meaningful
        const index = await AdannsIndex.build(backend() as Backend, 'ivf8@16,flat@16,rerank@32:f32', base.data, n, dim, { metric, seed: 3 });
        expect(index.funnelSource(12)).toBe('lists');
        expect(index.funnelSource(16)).toBe('lists');
        expect(index.funnelSource(24)).toBe('store');
        const k = 5;
        // every list probed: the scan's shortlist is the exact top at scanDim
        const p: SearchParams = { coarseDim: 16, nprobe: 8, scanDim: 8, shortlist: 60, funnel: [{ dim: 16, keep: 30 }, { dim: 24, keep: 12 }], rerankDim: 32 };
        const r = await index.search(queries.data, Q, k, p);
        expect(r.params).toEqual(p);
        for (let q = 0; q < Q; q++) expect(Array.from(r.ids.subarray(q * k, (q + 1) * k)), `query ${q}`).toEqual(referenceFunnel(metric, q, p, k));
        // the answer's scores are the final re-rank's: the score at the full dimension
        for (let q = 0; q < Q; q++) expect(r.scores[q * k]).toBeCloseTo(score(metric, queries.data, q * dim, base.data, r.ids[q * k], dim), 4);
      });
    }

    it(`without a re-rank stage the last funnel stage answers (${metric})`, async () => {
      const index = await AdannsIndex.build(reference, 'ivf8@16,flat@32', base.data, n, dim, { metric, seed: 3 });
      const k = 4;
      const p: SearchParams = { coarseDim: 16, nprobe: 8, scanDim: 8, shortlist: 40, funnel: [{ dim: 16, keep: 20 }, { dim: 32, keep: 6 }] };
      const r = await index.search(queries.data, Q, k, p);
      for (let q = 0; q < Q; q++) expect(Array.from(r.ids.subarray(q * k, (q + 1) * k))).toEqual(referenceFunnel(metric, q, p, k));
    });
  }

  for (const spec of ['pca,ivf8@16,flat@16,rerank@32', 'pca,ivf8@16,pq8@16,rerank@24:f32', 'pca,ivf8@16,sq8@16,rerank@24:f16']) {
    it(`a funnel keeping every candidate changes nothing (${spec}: PCA space, lists or store)`, async () => {
      const index = await AdannsIndex.build(simd, spec, base.data, n, dim, { metric: 'cosine', seed: 3 });
      const plain: Partial<SearchParams> = { nprobe: 3, shortlist: 30, ...(spec.includes('flat') ? { scanDim: 8 } : {}) };
      const dims = index.funnelDims().filter((d) => d < index.spec.rerank!.dim && (!spec.includes('flat') || d > 8));
      expect(dims.length).toBeGreaterThan(0);
      const funneled = await index.search(queries.data, Q, 5, { ...plain, funnel: dims.map((d) => ({ dim: d, keep: 30 })) });
      const without = await index.search(queries.data, Q, 5, plain);
      expect(Array.from(funneled.ids)).toEqual(Array.from(without.ids));
      expect(Array.from(funneled.scores)).toEqual(Array.from(without.scores));
      // and costs more: the stages are counted
      expect(funneled.mflops[0]).toBeGreaterThan(without.mflops[0]);
    });
  }
});

describe('funnel params', () => {
  let index: AdannsIndex;
  let pcaIndex: AdannsIndex;
  beforeAll(async () => {
    index = await AdannsIndex.build(reference, 'ivf8@16,flat@16,rerank@32:f32', base.data, n, dim, { metric: 'l2', seed: 3 });
    pcaIndex = await AdannsIndex.build(reference, 'pca,ivf8@16,flat@16,rerank@32', base.data, n, dim, { metric: 'l2', seed: 3 });
  });
  const p = (funnel: unknown, extra: Partial<SearchParams> = {}) => ({ scanDim: 8, shortlist: 40, funnel, ...extra }) as Partial<SearchParams>;

  it('rejects malformed and unservable funnels, naming the stage and value', () => {
    const k = 5;
    expect(() => index.resolveParams(k, p({ dim: 16 }))).toThrow(/funnel must be an array/);
    expect(() => index.resolveParams(k, p([{ dim: 16, keep: 2.5 }]))).toThrow(/funnel stage 0 must be \{dim, keep\} with positive integers, got \{"dim":16,"keep":2.5\}/);
    expect(() => index.resolveParams(k, p([{ dim: 16, keep: 20 }, { dim: 16, keep: 10 }]))).toThrow(/funnel stage 1: dim 16 must exceed the previous stage's dim 16/);
    expect(() => index.resolveParams(k, p([{ dim: 12, keep: 20 }, { dim: 16, keep: 30 }]))).toThrow(/funnel stage 1: keep 30 must not exceed the previous stage's keep 20/);
    expect(() => index.resolveParams(k, p([{ dim: 16, keep: 50 }]))).toThrow(/funnel stage 0 \(keep 50 at dim 16\): keep must not exceed the shortlist 40/);
    expect(() => index.resolveParams(k, p([{ dim: 16, keep: 4 }]))).toThrow(/funnel stage 0 \(keep 4 at dim 16\): keep must be at least k = 5/);
    expect(() => index.resolveParams(k, p([{ dim: 32, keep: 10 }]))).toThrow(/dim must be below rerankDim 32/);
    expect(() => index.resolveParams(k, p([{ dim: 8, keep: 10 }]))).toThrow(/funnel stage 0 \(keep 10 at dim 8\): dim must exceed scanDim 8/);
    // PCA with raw full-dimension re-rank vectors: only the lists' prefixes (up to d_s = 16) can feed a stage
    expect(() => pcaIndex.resolveParams(k, p([{ dim: 24, keep: 10 }]))).toThrow(/cannot read vectors at dim 24: its lists hold prefixes up to d_s = 16, and its re-rank store holds raw 32-d vectors, whose prefixes are not the PCA space's/);
    expect(pcaIndex.resolveParams(k, p([{ dim: 16, keep: 10 }])).funnel).toEqual([{ dim: 16, keep: 10 }]);
    expect(pcaIndex.funnelDims()).toEqual([8, 16]);
  });

  it('a code scan without prefixes or a store cannot funnel', async () => {
    const pq = await AdannsIndex.build(reference, 'ivf8@16,pq8@32', base.data, n, dim, { metric: 'l2', seed: 3, kmeansIterations: 4 });
    expect(pq.funnelDims()).toEqual([]);
    expect(() => pq.resolveParams(5, { shortlist: 20, funnel: [{ dim: 16, keep: 10 }] })).toThrow(/its pq lists hold codes, not prefixes, and it has no re-rank store/);
  });

  it('an empty funnel is none; the stages given are copied', () => {
    expect(index.resolveParams(5, p([])).funnel).toBeUndefined();
    const stages = [{ dim: 16, keep: 10, extra: 1 }];
    const resolved = index.resolveParams(5, p(stages));
    expect(resolved.funnel).toEqual([{ dim: 16, keep: 10 }]);
    stages[0].keep = 99;
    expect(resolved.funnel![0].keep).toBe(10);
  });

  it('parses and formats the CLI form', () => {
    const params: SearchParams = { coarseDim: 16, nprobe: 4, scanDim: 8, shortlist: 400, rerankDim: 32, funnel: [{ dim: 16, keep: 100 }, { dim: 24, keep: 30 }] };
    expect(formatParams(params)).toBe('coarseDim=16,nprobe=4,scanDim=8,shortlist=400,rerankDim=32,funnel=100@16/30@24');
    expect(parseParams(formatParams(params))).toEqual(params);
    expect(() => parseParams('funnel=16:100')).toThrow(/funnel stage "16:100" is not keep@dim/);
    expect(() => parseParams('funnel=100@16/100@16')).toThrow(/dim 16 must exceed the previous stage's dim 16/);
  });
});

describe('funnel plans', () => {
  const point = (params: SearchParams, recall: number, mflops: number): FrontierPoint => ({ params, recall, recallStdErr: 0.001, mflops, mflopsStdErr: 0.001, mflopsMax: mflops * 1.5, latencyMs: mflops });
  const plain: SearchParams = { coarseDim: 16, nprobe: 4, scanDim: 16, shortlist: 40, rerankDim: 32 };
  const funnel: SearchParams = { coarseDim: 16, nprobe: 4, scanDim: 8, shortlist: 80, rerankDim: 32, funnel: [{ dim: 16, keep: 20 }] };

  it('the planner picks a funnel point when it reaches the target for less, and raises its keeps to k', async () => {
    const index = await AdannsIndex.build(reference, 'ivf8@16,flat@16,rerank@32:f32', base.data, n, dim, { metric: 'cosine', seed: 3 });
    const calibrate = (points: FrontierPoint[]) => {
      index.calibration = { k: 10, queries: 10, selfExcluded: false, points, seconds: 0, complete: true };
    };
    calibrate([point(plain, 0.95, 0.05), point(funnel, 0.95, 0.04)]);
    expect(index.plan({ recall: 0.9 }, 10).params).toEqual(funnel);
    expect(index.plan({ mflops: 0.07 }, 10).params).toEqual(funnel);
    // dearer for the same recall: not picked
    calibrate([point(plain, 0.95, 0.05), point(funnel, 0.95, 0.06)]);
    expect(index.plan({ recall: 0.9 }, 10).params).toEqual(plain);
    // at a k above its keep (an estimate from the calibrated k), the keeps rise to k and the price with them
    calibrate([point(funnel, 0.95, 0.04)]);
    const at30 = index.plan({ recall: 0.5 }, 30);
    expect(at30.params.funnel).toEqual([{ dim: 16, keep: 30 }]);
    // 10 more candidates re-ranked at 32 (resident float32 rows rescored in place: their cosine norms are kept)
    expect(at30.expectedMflops).toBeCloseTo(0.04 + (10 * 32) / 1e6, 9);
    const r = await index.search(queries.data.subarray(0, 2 * dim), 2, 30, at30.params);
    expect(r.counts[0]).toBe(30);
  });

  it('calibration adds funnel points the index can run, prices them as it measures them, and saves them', async () => {
    // float32 lists at 32 scanned at 8..32, an expensive final re-rank at D = 64: funnels from the lists can pay
    const wide = generateSynthetic({ n: 2000, dim: 64, clusters: 16, queries: 1, decay: 0.3, seed: 4 });
    const index = await AdannsIndex.build(simd, 'pca,ivf16@16,flat@32,rerank@64:f32', wide.base.data, 2000, 64, { metric: 'cosine', seed: 5, calibrate: { ks: [1, 10], latencyQueries: 1, maxSeconds: 60 } });
    const cal = index.calibration!;
    expect(cal.complete).toBe(true);
    const funnels = cal.levels!.flatMap((l) => l.points.map((p) => ({ k: l.k, p }))).filter(({ p }) => p.params.funnel);
    expect(funnels.length).toBeGreaterThan(0);
    for (const { k, p } of funnels) {
      expect(() => index.resolveParams(k, p.params)).not.toThrow();
      // at the lists' sizes of calibration, the prediction is the measurement
      expect(index.predictMflops(p.params)).toBeCloseTo(p.mflops, 9);
      expect(p.params.funnel!.at(-1)!.keep).toBeGreaterThanOrEqual(k);
    }
    // calibration.json keeps them: the loaded index plans the same funnels
    const dir = mkdtempSync(join(tmpdir(), 'adanns-funnel-'));
    try {
      saveIndex(index, dir);
      const saved = JSON.parse(readFileSync(join(dir, 'calibration.json'), 'utf8')) as typeof cal;
      expect(saved.levels!.flatMap((l) => l.points).filter((p) => p.params.funnel).length).toBe(funnels.length);
      const loaded = loadIndex(simd, dir);
      expect(loaded.calibration).toEqual(JSON.parse(JSON.stringify(cal)));
      for (const target of [0.8, 0.9, 0.95, 0.99]) expect(loaded.plan({ recall: target }, 10)).toEqual(index.plan({ recall: target }, 10));
      const best = funnels.sort((a, b) => a.p.mflops - b.p.mflops)[0];
      const r = await loaded.search(wide.base.data.subarray(0, 64 * 3), 3, best.k, best.p.params);
      expect(r.params.funnel).toEqual(best.p.params.funnel);
      loaded.release();
      // a malformed funnel in the file is refused on load, not proposed to searches that would refuse it
      const point = saved.levels!.flatMap((l) => l.points).find((p) => p.params.funnel)!;
      const wellFormed = point.params.funnel;
      point.params.funnel = [{ dim: 16, keep: 10 }, { dim: 8, keep: 5 }];
      writeFileSync(join(dir, 'calibration.json'), JSON.stringify(saved));
      expect(() => readCalibration(join(dir, 'calibration.json'))).toThrow(/malformed calibration/);
      // and so are malformed patience rules (the file is read back well formed in between, so each one is what fails)
      point.params.funnel = wellFormed;
      writeFileSync(join(dir, 'calibration.json'), JSON.stringify(saved));
      expect(() => readCalibration(join(dir, 'calibration.json'))).not.toThrow();
      for (const bad of [{ rerankPatience: { first: 0, step: 5, newMax: 0 } }, { patience: { top: 40, newMax: -1, lists: 2 } }]) {
        writeFileSync(join(dir, 'calibration.json'), JSON.stringify({ ...saved, levels: saved.levels!.map((l) => ({ ...l, points: l.points.map((p) => (p === point ? { ...p, params: { ...p.params, ...bad } } : p)) })) }));
        expect(() => readCalibration(join(dir, 'calibration.json')), JSON.stringify(bad)).toThrow(/malformed calibration/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('funnel points without a re-rank stage', () => {
  it('come from float32 lists scanned at a smaller prefix, the last stage answering with k', async () => {
    const index = await AdannsIndex.build(reference, 'ivf8@16,flat@32', base.data, n, dim, { metric: 'l2', seed: 3, calibrate: { ks: [5], latencyQueries: 1, maxSeconds: 60 } });
    const points = index.calibration!.points;
    const funnels = points.filter((p) => p.params.funnel);
    expect(funnels.length).toBeGreaterThan(0);
    for (const p of funnels) {
      expect(p.params.rerankDim).toBeUndefined();
      expect(p.params.funnel!.at(-1)!.keep).toBe(5);
      expect(p.params.shortlist).toBeGreaterThan(5);
      expect(index.predictMflops(p.params)).toBeCloseTo(p.mflops, 9);
      const r = await index.search(queries.data, Q, 5, p.params);
      expect(r.params.funnel).toEqual(p.params.funnel);
    }
  });
});
