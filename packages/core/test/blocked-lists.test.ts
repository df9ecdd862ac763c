import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend, WasmSimdBackend, type Metric } from '@adanns/compute';
import { AdannsIndex, loadIndex, readArrayFile, saveIndex, type SearchResult } from '../src/index.js';
import { randomMatrix } from '../../compute/test/naive.js';
import { expectSameResults } from './same-results.js';

// Float lists (flat, f16, sq8) lie in prefix blocks (codecs/float-codec.ts,
// FLOAT_BLOCKS): searches at prefixes on and off the 16-value group
// boundaries agree with the reference backend, before and after removals
// (members moved inside blocks), with list sizes that are not multiples of
// the block; saved files keep codeBytes per member one after another, and a
// blocked index loads to identical answers.

const dim = 40; // groups of 16, 16 and 8
const rows = 700;
const base = randomMatrix(rows, dim, 31);
const queries = randomMatrix(9, dim, 32);
const dir = mkdtempSync(join(tmpdir(), 'adanns-blocked-'));
const reference = new ReferenceBackend();
let one: WasmSimdBackend;

beforeAll(async () => {
  one = await WasmSimdBackend.create({ threads: 1 });
});
afterAll(async () => {
  await one.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const same = (a: SearchResult, b: SearchResult) => {
  expect(Array.from(a.ids)).toEqual(Array.from(b.ids));
  expect(Array.from(a.scores)).toEqual(Array.from(b.scores));
};

describe('indexes over prefix-blocked float lists', () => {
  const cases: [string, Metric][] = [
    ['ivf6@8,flat@40', 'cosine'],
    ['ivf6@8,f16@40', 'l2'],
    ['ivf6@8,sq8@40', 'ip'],
    ['flat@40', 'l2'],
  ];
  for (const [spec, metric] of cases) {
    it(`${spec} (${metric}): every prefix agrees with the reference, before and after removals, and saved indexes load identical`, async () => {
      const built = await AdannsIndex.build(reference, spec, base, rows, dim, { metric, seed: 5, calibrate: false });
      const out = join(dir, spec.replace(/[^a-z0-9]/g, '_'));
      saveIndex(built, out);
      const a = loadIndex(reference, out);
      const b = loadIndex(one, out);
      const searchAll = async (index: AdannsIndex) => {
        const results: SearchResult[] = [];
        // (no cosine at prefix 1: every member scores +-1 there, ties the backends cut at float rounding)
        for (const scanDim of metric === 'cosine' ? [3, 8, 16, 17, 32, 35, 40] : [1, 8, 16, 17, 32, 35, 40]) results.push(await index.search(queries, 9, 10, { ...(built.spec.coarse ? { nprobe: 3 } : {}), scanDim, shortlist: 10 }));
        return results;
      };
      const check = async () => {
        const [want, got] = [await searchAll(a), await searchAll(b)];
        got.forEach((g, i) => expectSameResults(g, want[i]));
        return got;
      };
      await check();
      for (const index of [a, b]) index.remove([0, 3, 4, 99, 500, 501, 502, 699]);
      const before = await check();
      // saved after removals: list-codes.bin holds each member's codes one after another (flat: its float32 values)
      const again = join(out, 'again');
      saveIndex(b, again);
      if (spec.includes('flat')) {
        const slots = readArrayFile(join(again, 'list-slots.bin'), 'i32', [rows - 8]).array;
        const codes = readArrayFile(join(again, 'list-codes.bin'), 'u8', [rows - 8, dim * 4]).array;
        const values = new Float32Array(codes.buffer, codes.byteOffset, (rows - 8) * dim);
        const ids = b.idsOf(slots);
        for (let i = 0; i < slots.length; i++) expect(Array.from(values.subarray(i * dim, (i + 1) * dim))).toEqual(Array.from(base.subarray(ids[i] * dim, (ids[i] + 1) * dim)));
      }
      const loaded = loadIndex(one, again);
      const after = await searchAll(loaded);
      after.forEach((r, i) => same(r, before[i]));
    });
  }
});
