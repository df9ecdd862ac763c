import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend, WasmSimdBackend, type Metric } from '@adanns/compute';
import { AdannsIndex, type SearchResult } from '../src/index.js';
import { randomMatrix } from '../../compute/test/naive.js';
import { expectSameResults } from './same-results.js';

// The re-rank of a batch from resident float32 rows goes list by list on the
// CPU backend (rerankStored passes the lists as row groups; rescoreTopK's
// 'auto' takes them for batches whose shortlists are many beside the rows).
// Whole searches must answer bit for bit (ids, scores, order) as the
// per-query re-rank does (rescoreOrder 'queries'), on one thread and two, for
// batches of 1, 7 and 1000, each metric, re-ranked from f32 (grouped), f16
// and disk (gathered) storage over flat, f16 and sq8 lists; and agree with the
// reference backend.

const dim = 24;
const rows = 1500;
const base = randomMatrix(rows, dim, 61);
const queries = randomMatrix(1000, dim, 62);
const reference = new ReferenceBackend();
let perQuery: WasmSimdBackend;
let auto: WasmSimdBackend;
let split: WasmSimdBackend;

beforeAll(async () => {
  perQuery = await WasmSimdBackend.create({ threads: 1, rescoreOrder: 'queries' });
  auto = await WasmSimdBackend.create({ threads: 1 });
  split = await WasmSimdBackend.create({ threads: 2, parallelMinWork: 1, rescoreOrder: 'groups' });
});
afterAll(async () => {
  await Promise.all([perQuery, auto, split].map((b) => b?.dispose()));
});

function expectIdenticalResults(got: SearchResult, want: SearchResult): void {
  expect(Array.from(got.counts)).toEqual(Array.from(want.counts));
  expect(Array.from(got.ids)).toEqual(Array.from(want.ids));
  expect(Array.from(got.scores)).toEqual(Array.from(want.scores));
}

const SHAPES: [string, Metric][] = [
  ['ivf16@8,flat@16,rerank@24:f32', 'cosine'],
  ['pca,ivf16@8,f16@16,rerank@24:f32', 'l2'],
  ['ivf16@8,sq8@16,rerank@24:f32', 'ip'],
  ['ivf16@8,sq8@16,rerank@24:f16', 'cosine'],
  ['ivf16@8,flat@16,rerank@24', 'l2'],
];

describe('a batch re-ranked list by list answers as each query alone', () => {
  for (const [spec, metric] of SHAPES) {
    it(`${spec} (${metric})`, async () => {
      const indexes = await Promise.all([perQuery, auto, split, reference].map((backend) => AdannsIndex.build(backend, spec, base, rows, dim, { metric, seed: 5 })));
      const [want, ...others] = indexes;
      try {
        for (const n of [1, 7, 1000]) {
          for (const [k, params] of [[10, { nprobe: 5, scanDim: 8, shortlist: 60 }], [40, { nprobe: 3, scanDim: 16, shortlist: 40 }]] as const) {
            const q = queries.subarray(0, n * dim);
            const expected = await want.search(q, n, k, params);
            expectIdenticalResults(await others[0].search(q, n, k, params), expected);
            expectIdenticalResults(await others[1].search(q, n, k, params), expected);
            expectSameResults(await others[2].search(q, n, k, params), expected);
          }
        }
      } finally {
        for (const index of indexes) index.release();
      }
    });
  }
});
