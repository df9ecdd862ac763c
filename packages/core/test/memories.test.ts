import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WasmSimdBackend, type Metric } from '@adanns/compute';
import { AdannsIndex, loadIndex, saveIndex, type SearchParams, type SearchResult } from '../src/index.js';
import { randomMatrix } from '../../compute/test/naive.js';
import { AGREEMENT_CASES } from './same-results.js';

// An index whose arrays lie in several WebAssembly memories (the per-memory
// cap forced tiny, so a small index spans them, as a large one spans 4 GiB
// memories) answers exactly as the same index in one memory: same ids, same
// scores to the bit, after adds and removes too, on two threads.

let one: WasmSimdBackend;
const dir = mkdtempSync(join(tmpdir(), 'adanns-memories-'));
const dim = 24;
const built = 4000, added = 1000;
const base = randomMatrix(built + added, dim, 81);
const queries = randomMatrix(30, dim, 82);
/** Memories of 512 KiB, half of it for arrays: room for a call's copies (scratch of up to 128 KiB a thread at small prefixes). */
const MEMORY_BYTES = 512 * 1024;

beforeAll(async () => {
  one = await WasmSimdBackend.create({ threads: 1, maxMemoryBytes: 2 ** 32 }); // one memory, whatever ADANNS_WASM_MEMORY_BYTES says
});
afterAll(async () => {
  await one.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function expectIdentical(actual: SearchResult, expected: SearchResult): void {
  expect(Array.from(actual.counts)).toEqual(Array.from(expected.counts));
  expect(Array.from(actual.ids)).toEqual(Array.from(expected.ids));
  expect(Array.from(actual.scores)).toEqual(Array.from(expected.scores));
}

async function expectSameAcrossMemories(spec: string, metric: Metric, params: Partial<SearchParams>): Promise<void> {
  const index = await AdannsIndex.build(one, spec, base.subarray(0, built * dim), built, dim, { metric, seed: 3 });
  const out = join(dir, spec.replace(/[^a-z0-9]/g, '_'));
  saveIndex(index, out);
  index.release();
  // every call split across two threads, however small, so workers run on every memory
  const many = await WasmSimdBackend.create({ threads: 2, parallelMinWork: 1, maxMemoryBytes: MEMORY_BYTES });
  try {
    const before = one.arena.inUse;
    const a = loadIndex(one, out);
    // a pad leaves the first memory room for about half of the index, so that even a small one spans two
    const loadedBytes = one.arena.inUse - before;
    const pad = many.arena.uint8(Math.max(64, many.arena.maxArrayBytes - Math.floor(loadedBytes / 2)));
    const b = loadIndex(many, out);
    expect(many.arena.memories.filter((m) => m.inUse > 0).length, 'memories holding the index').toBeGreaterThanOrEqual(2);
    expectIdentical(await b.search(queries, 30, 10, params), await a.search(queries, 30, 10, params));
    const ids = Array.from({ length: added }, (_, i) => built + i);
    for (const index of [a, b]) {
      await index.add(ids, base.subarray(built * dim), added);
      index.remove([0, 5, built + 50, 77]);
    }
    expectIdentical(await b.search(queries, 30, 10, params), await a.search(queries, 30, 10, params));
    if (a.fullVectors()) {
      // exact search reads the full vectors (lists or re-rank store) across memories too
      const exactA = await a.exactSearch(queries, 30, 5);
      const exactB = await b.exactSearch(queries, 30, 5);
      expect(Array.from(exactB.ids)).toEqual(Array.from(exactA.ids));
      expect(Array.from(exactB.scores)).toEqual(Array.from(exactA.scores));
    }
    a.release();
    b.release();
    many.arena.release(pad);
  } finally {
    await many.dispose();
  }
}

describe('an index over several WebAssembly memories searches exactly as over one', () => {
  // not the exact 'flat' case: its one list is one array, which must fit in one memory
  // (packages/compute/test/wasm-memories.test.ts splits a list's rows, ids and norms across memories)
  for (const [spec, metric, params] of AGREEMENT_CASES.filter(([spec]) => spec !== 'flat')) {
    it(`${spec} (${metric}), then after adds and removes`, () => expectSameAcrossMemories(spec, metric, params));
  }
});
