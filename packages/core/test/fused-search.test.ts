import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend, WasmSimdBackend, type Metric } from '@adanns/compute';
import { AdannsIndex, loadIndex, saveIndex, type SearchParams } from '../src/index.js';
import { randomMatrix } from '../../compute/test/naive.js';
import { expectSameResults } from './same-results.js';

// Whole searches through the CPU backend's fused stages (one scanListsTopK or
// pqScanListsTopK call per batch, one rescore per gathered slice) against the
// reference backend's composition of per-list ops, for every index shape:
// exact, IVF over float32 / float16 / sq8 lists, PQ and OPQ with and without
// IVF and residuals, each metric, re-ranked from disk and from memory; batches
// of 1, 7 and (where cheap) 1000 queries; k up to the shortlist.

const dim = 24;
const rows = 1200;
const base = randomMatrix(rows, dim, 91);
const queries = randomMatrix(1000, dim, 92);
const dir = mkdtempSync(join(tmpdir(), 'adanns-fused-'));
const reference = new ReferenceBackend();
let one: WasmSimdBackend;
let split: WasmSimdBackend;

beforeAll(async () => {
  one = await WasmSimdBackend.create({ threads: 1 });
  // every call split over two threads, however small
  split = await WasmSimdBackend.create({ threads: 2, parallelMinWork: 1 });
});
afterAll(async () => {
  await one.dispose();
  await split.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const SHAPES: [string, Metric, Partial<SearchParams>, { residual?: boolean; batch: number }][] = [
  ['flat', 'ip', {}, { batch: 1000 }],
  ['ivf12@8,flat@24', 'cosine', { nprobe: 4, scanDim: 12 }, { batch: 1000 }],
  ['ivf12@8,f16@24,rerank@24', 'l2', { nprobe: 5, shortlist: 30 }, { batch: 1000 }],
  ['pca,ivf12@8,sq8@16,rerank@24:f32', 'cosine', { nprobe: 3, scanDim: 8, shortlist: 25 }, { batch: 1000 }],
  ['pq6@24', 'l2', {}, { batch: 7 }],
  ['opq6@24,rerank@24', 'ip', { shortlist: 20 }, { batch: 7 }],
  ['ivf8@8,pq6@16', 'l2', { nprobe: 3 }, { batch: 7 }],
  ['ivf8@8,pq6@16', 'ip', { nprobe: 3 }, { residual: false, batch: 7 }],
  ['ivf8@8,opq6@16,rerank@24', 'l2', { nprobe: 4, shortlist: 30 }, { batch: 7 }],
  ['ivf8@8,opq6@16', 'cosine', { nprobe: 4 }, { batch: 7 }],
  ['ivf8@8,opq6@16', 'l2', { nprobe: 2 }, { residual: false, batch: 7 }],
];

describe('fused CPU searches agree with the reference for every index shape', () => {
  for (const [spec, metric, params, { residual, batch }] of SHAPES) {
    it(`${spec} (${metric}${residual === false ? ', no residuals' : ''})`, async () => {
      const built = await AdannsIndex.build(reference, spec, base, rows, dim, { metric, seed: 7, pqTrainSize: 600, opqIterations: 1, ...(residual === undefined ? {} : { residual }) });
      const out = join(dir, `${spec.replace(/[^a-z0-9]/g, '_')}-${metric}-${residual ?? true}`);
      saveIndex(built, out);
      built.release();
      const want = loadIndex(reference, out);
      for (const backend of [one, split]) {
        const got = loadIndex(backend, out);
        for (const n of [1, 7, batch].filter((n, i, all) => all.indexOf(n) === i)) {
          const shortlist = params.shortlist;
          // k up to the shortlist when re-ranking
          for (const k of shortlist ? [1, shortlist] : [1, 10]) {
            const p = shortlist && k > shortlist ? { ...params, shortlist: k } : params;
            const q = queries.subarray(0, n * dim);
            expectSameResults(await got.search(q, n, k, p), await want.search(q, n, k, p));
          }
        }
        got.release();
      }
      want.release();
    });
  }

  it('re-ranking from disk answers bit for bit as from resident rows on the CPU backend', async () => {
    for (const metric of ['cosine', 'l2'] as const) {
      const disk = await AdannsIndex.build(one, 'ivf12@8,flat@8,rerank@24', base, rows, dim, { metric, seed: 4 });
      const resident = await AdannsIndex.build(one, 'ivf12@8,flat@8,rerank@24:f32', base, rows, dim, { metric, seed: 4 });
      for (const n of [1, 7, 1000]) {
        const a = await disk.search(queries.subarray(0, n * dim), n, 10, { nprobe: 3, shortlist: 40 });
        const b = await resident.search(queries.subarray(0, n * dim), n, 10, { nprobe: 3, shortlist: 40 });
        expect(Array.from(a.ids)).toEqual(Array.from(b.ids));
        expect(Array.from(a.scores)).toEqual(Array.from(b.scores));
      }
      disk.release();
      resident.release();
    }
  });

  it('a single query answers as it does within a batch (the fused scan does not depend on the batch)', async () => {
    const index = await AdannsIndex.build(one, 'ivf12@8,flat@16,rerank@24', base, rows, dim, { metric: 'l2', seed: 2 });
    const params = { nprobe: 4, shortlist: 30 };
    const batch = await index.search(queries.subarray(0, 7 * dim), 7, 10, params);
    for (let q = 0; q < 7; q++) {
      const alone = await index.search(queries.subarray(q * dim, (q + 1) * dim), 1, 10, params);
      expect(Array.from(alone.ids)).toEqual(Array.from(batch.ids.subarray(q * 10, (q + 1) * 10)));
      expect(Array.from(alone.scores)).toEqual(Array.from(batch.scores.subarray(q * 10, (q + 1) * 10)));
    }
    index.release();
  });
});
