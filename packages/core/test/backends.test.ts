import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend, WasmSimdBackend } from '@adanns/compute';
import { AdannsIndex, loadIndex, saveIndex, type SearchResult } from '../src/index.js';
import { randomMatrix } from '../../compute/test/naive.js';

// One index, two backends: built on the reference backend, saved, and loaded
// on both, so differences can only come from the kernels.

const reference = new ReferenceBackend();
let simd: WasmSimdBackend;
const dir = mkdtempSync(join(tmpdir(), 'adanns-backends-'));
const dim = 24;
const base = randomMatrix(1500, dim, 81);
const queries = randomMatrix(30, dim, 82);

beforeAll(async () => {
  // every call split across two threads, however small
  simd = await WasmSimdBackend.create({ threads: 2, parallelMinWork: 1 });
});
afterAll(async () => {
  await simd.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function expectSameResults(actual: SearchResult, expected: SearchResult): void {
  expect(Array.from(actual.counts)).toEqual(Array.from(expected.counts));
  expect(Array.from(actual.mflops)).toEqual(Array.from(expected.mflops));
  let differentIds = 0;
  for (let i = 0; i < expected.ids.length; i++) {
    const want = expected.scores[i];
    if (Number.isNaN(want)) continue;
    expect(Math.abs(actual.scores[i] - want)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(want)));
    if (actual.ids[i] !== expected.ids[i]) differentIds++;
  }
  // shortlists cut at float32 ties may differ in a rare id, never wholesale
  expect(differentIds).toBeLessThanOrEqual(expected.ids.length / 100);
}

describe('searches agree between the reference and WebAssembly SIMD backends', () => {
  for (const [spec, metric, params] of [
    ['ivf16@24,flat@24', 'l2', { nprobe: 4 }],
    ['pca,ivf16@8,flat@16,rerank@24', 'cosine', { nprobe: 5, coarseDim: 8, scanDim: 8, shortlist: 40 }],
    ['ivf8@16,opq8@16,rerank@24', 'ip', { nprobe: 3, shortlist: 30 }],
    ['pca,ivf8@8,pq4@16', 'l2', { nprobe: 8 }],
    ['flat', 'cosine', {}],
  ] as const) {
    it(`${spec} (${metric}), then after adds and removes`, async () => {
      const built = await AdannsIndex.build(reference, spec, base.subarray(0, 1200 * dim), 1200, dim, { metric, seed: 3 });
      const out = join(dir, spec.replace(/[^a-z0-9]/g, '_'));
      saveIndex(built, out);
      const a = loadIndex(reference, out);
      const b = loadIndex(simd, out);
      expectSameResults(await b.search(queries, 30, 10, params), await a.search(queries, 30, 10, params));
      // appends grow arena arrays on the SIMD side; removals move list members
      const ids = Array.from({ length: 300 }, (_, i) => 1200 + i);
      for (const index of [a, b]) {
        await index.add(ids, base.subarray(1200 * dim), 300);
        index.remove([0, 5, 1250, 77]);
      }
      expectSameResults(await b.search(queries, 30, 10, params), await a.search(queries, 30, 10, params));
      const exactA = await a.exactSearch(queries, 30, 5);
      const exactB = await b.exactSearch(queries, 30, 5);
      expect(Array.from(exactB.ids)).toEqual(Array.from(exactA.ids));
      b.release();
    });
  }
});
