import { describe, expect, it } from 'vitest';
import { METRICS, ReferenceBackend, type Metric } from '@adanns/compute';
import { generateSynthetic } from '@adanns/datasets';
import { AdannsIndex, allowedIdsOf, codecNames, parseSpec, type SearchParams } from '../src/index.js';
import { CountingBackend } from './counting-backend.js';

// The cost model counts what runs (docs/ARCHITECTURE.md, "Cost model"): for
// every index shape, the multiply-adds the backend's ops execute (plus the host
// work a search reports through Backend.tally) equal the MFLOPs the search
// reports, query by query. A search's batch may share work between its queries
// (a decoded block serves every query of the call), never add to it.

const dim = 32;
const n = 1200;
const { base, queries } = generateSynthetic({ n, dim, clusters: 12, queries: 12, decay: 0.5, seed: 5 });
const k = 5;

interface Shape {
  spec: string;
  /** Params to search with besides the defaults. */
  params: Partial<SearchParams>[];
  residual?: boolean;
}

const shapes: Shape[] = [
  { spec: 'flat', params: [{}, { scanDim: 16 }, { scanDim: 13 }] },
  { spec: 'ivf8@16,flat@32', params: [{ nprobe: 1 }, { nprobe: 3, coarseDim: 8, scanDim: 16 }, { nprobe: 2, scanDim: 20 }] },
  { spec: 'pca,ivf8@16,flat@16,rerank@32', params: [{ nprobe: 2, shortlist: 20 }, { nprobe: 8, shortlist: 40, scanDim: 8 }] },
  { spec: 'f16@32', params: [{}, { scanDim: 16 }] },
  { spec: 'ivf8@16,f16@32', params: [{ nprobe: 2 }, { nprobe: 3, scanDim: 12 }] },
  { spec: 'ivf8@16,sq8@32', params: [{ nprobe: 2 }, { nprobe: 4, scanDim: 16 }] },
  { spec: 'pq8@32', params: [{}] },
  { spec: 'opq8@32', params: [{}] },
  { spec: 'ivf8@16,pq8@32', params: [{ nprobe: 1 }, { nprobe: 4 }] },
  { spec: 'ivf8@16,pq8@32', residual: false, params: [{ nprobe: 3 }] },
  { spec: 'ivf8@16,opq8@32', params: [{ nprobe: 1 }, { nprobe: 4 }] },
  { spec: 'ivf8@16,opq8@32', residual: false, params: [{ nprobe: 3 }] },
  // adaptive probing: each query probes the lists within a centroid-score margin of its best, at most nprobe
  { spec: 'ivf8@16,flat@32', params: [{ nprobe: 8, probeMargin: 0.05 }, { nprobe: 6, probeMargin: 0.5 }] },
  { spec: 'pca,ivf8@16,pq8@16,rerank@32', params: [{ nprobe: 8, probeMargin: 0.1, shortlist: 30 }] },
  // an adaptive point with a funnel (calibration derives funnel variants of its cheapest points, adaptive ones too)
  { spec: 'pca,ivf8@16,flat@16,rerank@32', params: [{ nprobe: 8, probeMargin: 0.2, scanDim: 8, shortlist: 30, funnel: [{ dim: 16, keep: 12 }] }] },
  // patience termination: lists scanned one round at a time, each query stopping when its top settles (PQ tables per round too)
  { spec: 'ivf8@16,flat@32', params: [{ nprobe: 8, patience: { top: 5, newMax: 1, lists: 2 } }] },
  { spec: 'pca,ivf8@16,pq8@16,rerank@32', params: [{ nprobe: 8, shortlist: 30, patience: { top: 20, newMax: 2, lists: 1 } }] },
  { spec: 'pca,ivf8@16,flat@16,rerank@32', params: [{ nprobe: 8, scanDim: 8, shortlist: 30, patience: { top: 30, newMax: 3, lists: 2 }, funnel: [{ dim: 16, keep: 12 }] }] },
  // re-rank patience: the final re-rank in chunks until the exact top k settles (resident f32 in place, disk store gathered, after patience and a funnel)
  { spec: 'ivf8@16,flat@16,rerank@32:f32', params: [{ nprobe: 3, shortlist: 30, rerankPatience: { first: 5, step: 3, newMax: 0 } }] },
  { spec: 'pca,ivf8@16,pq8@16,rerank@32', params: [{ nprobe: 2, shortlist: 30, rerankPatience: { first: 8, step: 4, newMax: 1 } }] },
  { spec: 'pca,ivf8@16,flat@16,rerank@32', params: [{ nprobe: 8, scanDim: 8, shortlist: 30, patience: { top: 30, newMax: 3, lists: 2 }, funnel: [{ dim: 16, keep: 20 }], rerankPatience: { first: 5, step: 5, newMax: 0 } }] },
  // re-rank from the lists' shortlist against stored vectors: on disk, resident float32 (rescored in place), resident float16
  { spec: 'ivf8@16,pq8@32,rerank@32', params: [{ nprobe: 2, shortlist: 30 }] },
  { spec: 'ivf8@16,flat@16,rerank@32', params: [{ nprobe: 2, shortlist: 25 }, { nprobe: 2, shortlist: 25, rerankDim: 24 }] },
  { spec: 'ivf8@16,flat@16,rerank@32:f32', params: [{ nprobe: 2, shortlist: 25 }, { nprobe: 3, shortlist: 25, rerankDim: 20 }] },
  { spec: 'ivf8@16,sq8@16,rerank@32:f16', params: [{ nprobe: 2, shortlist: 25 }] },
  { spec: 'pca,ivf8@16,opq8@16,rerank@24:f32', params: [{ nprobe: 2, shortlist: 25 }] },
  { spec: 'pca,ivf8@16,flat@16,rerank@32:f32', params: [{ nprobe: 2, shortlist: 25 }] },
  // 4-bit fast scan (re-rank required): byte tables quantised on the host, l2 residual tables per probed list
  { spec: 'pq8x4@32,rerank@32', params: [{ shortlist: 20 }] },
  { spec: 'ivf8@16,pq9x4@32,rerank@32:f32', params: [{ nprobe: 1, shortlist: 20 }, { nprobe: 4, shortlist: 30 }] },
  { spec: 'ivf8@16,pq8x4@32,rerank@32', residual: false, params: [{ nprobe: 3, shortlist: 20 }] },
  { spec: 'pca,ivf8@16,opq8x4@16,rerank@24:f32', params: [{ nprobe: 2, shortlist: 25 }] },
  // funnels (re-rank stages between scan and final re-rank): from float32 lists, from f16 lists (decoded on the host),
  // from sq8 lists answering without a re-rank, from a store in the index space (resident f32, f16, disk), lists then store
  { spec: 'ivf8@16,flat@24,rerank@32', params: [{ nprobe: 2, scanDim: 8, shortlist: 40, funnel: [{ dim: 16, keep: 20 }] }, { nprobe: 3, scanDim: 8, shortlist: 40, funnel: [{ dim: 12, keep: 20 }, { dim: 24, keep: 8 }] }] },
  { spec: 'pca,ivf8@16,f16@32,rerank@32', params: [{ nprobe: 2, scanDim: 8, shortlist: 30, funnel: [{ dim: 16, keep: 15 }] }] },
  { spec: 'ivf8@16,sq8@32', params: [{ nprobe: 3, scanDim: 8, shortlist: 30, funnel: [{ dim: 16, keep: 10 }, { dim: 32, keep: 5 }] }] },
  { spec: 'pca,ivf8@16,pq8@16,rerank@24:f32', params: [{ nprobe: 2, shortlist: 30, funnel: [{ dim: 16, keep: 12 }] }] },
  { spec: 'pca,ivf8@16,flat@8,rerank@24', params: [{ nprobe: 2, shortlist: 30, funnel: [{ dim: 16, keep: 10 }] }] },
  { spec: 'pca,ivf8@16,flat@16,rerank@24:f16', params: [{ nprobe: 2, scanDim: 8, shortlist: 30, funnel: [{ dim: 16, keep: 20 }, { dim: 20, keep: 10 }] }] },
];

async function build(backend: CountingBackend, shape: Shape, metric: Metric): Promise<AdannsIndex> {
  const index = await AdannsIndex.build(backend, shape.spec, base.data, n, dim, { metric, seed: 3, residual: shape.residual, opqIterations: 2, kmeansIterations: 4 });
  backend.reset();
  return index;
}

const flopsOf = (mflops: Float64Array) => mflops.reduce((a, m) => a + m * 1e6, 0);

describe('filtered searches: cost model = multiply-adds executed (counting backend)', () => {
  /** Ids of about `share` of the vectors, spread over the lists. */
  const idsAt = (share: number) => Array.from({ length: n }, (_, i) => i).filter((i) => (i * 7919 + 13) % Math.round(1 / share) === 0);
  const cases: [string, Metric, Partial<SearchParams>, ('exact' | 'probe' | undefined)[]][] = [
    // a filter with a funnel: stages read from float32 lists, from f16 lists (decoded on the host, PCA space), from a store
    ['ivf8@16,flat@24,rerank@32', 'l2', { nprobe: 2, scanDim: 8, shortlist: 40, funnel: [{ dim: 12, keep: 24 }, { dim: 24, keep: 12 }] }, [undefined, 'probe', 'exact']],
    ['pca,ivf8@16,f16@32,rerank@32', 'cosine', { nprobe: 2, scanDim: 8, shortlist: 30, funnel: [{ dim: 16, keep: 15 }] }, [undefined, 'probe', 'exact']],
    ['pca,ivf8@16,pq8@16,rerank@24:f32', 'l2', { nprobe: 2, shortlist: 30, funnel: [{ dim: 16, keep: 12 }] }, ['probe']],
    ['ivf8@16,sq8@32', 'ip', { nprobe: 3, scanDim: 8, shortlist: 30, funnel: [{ dim: 16, keep: 10 }, { dim: 32, keep: 5 }] }, ['probe', 'exact']],
    // cosine exact plans from raw full-dimension stores (disk, resident f32: norms of the gathered rows computed) and from f32 lists
    ['ivf8@16,flat@16,rerank@32', 'cosine', { nprobe: 2, shortlist: 25 }, ['exact']],
    ['pca,ivf8@16,flat@16,rerank@32:f32', 'cosine', { nprobe: 2, shortlist: 25 }, ['exact']],
    ['ivf8@16,flat@32', 'cosine', { nprobe: 2 }, ['exact']],
  ];
  for (const [spec, metric, params, plans] of cases) {
    it(`${spec}, ${metric}: ${plans.map((p) => p ?? 'planned').join(', ')} at 50%, 10%, 1%`, async () => {
      const backend = new CountingBackend();
      const index = await build(backend, { spec, params: [] }, metric);
      for (const share of [0.5, 0.1, 0.01]) {
        const filter = index.prepareFilter(allowedIdsOf(idsAt(share)));
        for (const plan of plans) {
          for (let q = 0; q < 3; q++) {
            const r = await index.search(queries.data.subarray(q * dim, (q + 1) * dim), 1, k, params, { filter, filterPlan: plan });
            const ops = [...backend.byOp].map(([op, f]) => `${op} ${f}`).join(', ');
            expect(backend.reset(), `${share}, plan ${r.filter!.plan}, query ${q}: ${ops}`).toBeCloseTo(flopsOf(r.mflops), 3);
            if (r.filter!.plan === 'exact') expect(r.mflops[0]).toBeCloseTo(r.filter!.predicted.exact, 9);
          }
        }
      }
    });
  }
});

describe('cost model = multiply-adds executed (counting backend)', () => {
  for (const shape of shapes) {
    for (const metric of METRICS) {
      it(`${shape.spec}${shape.residual === false ? ' (no residuals)' : ''}, ${metric}`, async () => {
        const backend = new CountingBackend();
        const index = await build(backend, shape, metric);
        for (const given of shape.params) {
          // one query at a time: the cost model is the work of a query searched alone
          for (let q = 0; q < 4; q++) {
            const r = await index.search(queries.data.subarray(q * dim, (q + 1) * dim), 1, k, given);
            const ops = [...backend.byOp].map(([op, f]) => `${op} ${f}`).join(', ');
            expect(backend.reset(), `query ${q}, params ${JSON.stringify(r.params)}: ${ops}`).toBeCloseTo(flopsOf(r.mflops), 3);
          }
          // a batch shares work between its queries, never adds any
          const rows = queries.rows;
          const r = await index.search(queries.data, rows, k, given);
          expect(backend.reset()).toBeLessThanOrEqual(flopsOf(r.mflops) + 1e-3);
        }
      });
    }
  }

  for (const spec of ['ivf8@16,flat@32', 'ivf8@16,sq8@32', 'ivf8@16,pq8@32', 'ivf8@16,opq8@32', 'ivf8@16,opq8x4@32,rerank@32']) {
    for (const metric of ['l2', 'ip'] as const) {
      it(`${spec}, ${metric}: a probed list left empty by removals costs nothing`, async () => {
        const backend = new CountingBackend();
        const index = await build(backend, { spec, params: [] }, metric);
        const lists = await index.probeLists(base.data, n, 16, 1);
        const ids = Array.from({ length: n }, (_, i) => i).filter((i) => lists[i] === lists[0]);
        expect(index.remove(ids)).toBe(ids.length);
        expect(Array.from(index.listSizes())).toContain(0);
        backend.reset();
        for (let q = 0; q < 3; q++) {
          const r = await index.search(queries.data.subarray(q * dim, (q + 1) * dim), 1, k, { nprobe: 8, shortlist: 20 });
          expect(backend.reset(), `query ${q}`).toBeCloseTo(flopsOf(r.mflops), 3);
        }
      });
    }
  }

  it('covers every registered list codec (a new codec adds its shapes above)', () => {
    const covered = new Set(shapes.map((s) => parseSpec(s.spec, dim).scan.codec));
    const registered = codecNames();
    expect(registered.filter((name) => !covered.has(name))).toEqual([]);
  });

  it('a float32 scan batch executes exactly the sum of its queries\' MFLOPs (nothing to share)', async () => {
    const backend = new CountingBackend();
    const index = await build(backend, { spec: 'pca,ivf8@16,flat@16,rerank@32:f32', params: [] }, 'cosine');
    const r = await index.search(queries.data, queries.rows, k, { nprobe: 3, shortlist: 20 });
    expect(backend.reset()).toBeCloseTo(flopsOf(r.mflops), 3);
  });

  it('the counter refuses an op it does not know, so a new op cannot go uncounted', () => {
    class WithNewOp extends ReferenceBackend {
      async fusedScan(): Promise<void> {}
    }
    const counting = new CountingBackend(new WithNewOp());
    expect(() => (counting as unknown as WithNewOp).fusedScan()).toThrow(/not counted/);
  });
});
