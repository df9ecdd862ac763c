import { describe, expect, it } from 'vitest';
import {
  codedRows,
  composedRescoreListsTopK,
  decodeRows,
  METRICS,
  ReferenceBackend,
  rowBlock,
  TopK,
  type BlockLayout,
  type ListCandidates,
  type ListSet,
  type Metric,
} from '../src/index.js';
import type { ListDirectories } from '../src/cpu/list-rescore.js';
import { expectIdentical, expectSameTopK } from './compare.js';
import { cpuBackends, keptDim, makeLists, sizes, SPREAD_FILLER, stride } from './blocked-lists.js';
import { naiveScore, randomMatrix } from './naive.js';

// rescoreListsTopK (a funnel stage or re-rank reading its candidates where
// they lie in the lists): the CPU kernel scores each member bit for bit as
// the contract's composition does on the same backend (gather, decode,
// rescoreTopK), for float32, float16 and sq8 lists, blocked or one member
// after another, with cosine norms kept (at keptDim) or computed, on one
// thread, two, and with the lists spread over several memories; the reference composition agrees with a
// naive float64 oracle on the decoded members.

const reference = new ReferenceBackend();
const cpu = cpuBackends();

const layouts: BlockLayout[] = [
  { blockRows: 32, groupWidth: 16 },
  { blockRows: 4, groupWidth: 32 },
];
// on and off group boundaries; 17 is where norms are kept; 40 reaches the stride's narrow last group (8 wide)
const dims = [1, 3, 16, 17, 32, 35, 40];

/** Per query up to `most` distinct members of random non-empty lists (query 2 of every 5 has none). */
function makeCandidates(rows: number, most: number, seed: number): ListCandidates {
  const lists = new Int32Array(rows * most);
  const positions = new Int32Array(rows * most);
  const counts = new Int32Array(rows);
  let s = seed >>> 0;
  const next = (n: number) => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s % n);
  const nonEmpty = sizes.map((n, l) => (n > 0 ? l : -1)).filter((l) => l >= 0);
  for (let q = 0; q < rows; q++) {
    const want = q % 5 === 2 ? 0 : 1 + next(most);
    const seen = new Set<string>();
    for (let tries = 0; counts[q] < want && tries < 10 * most; tries++) {
      const l = nonEmpty[next(nonEmpty.length)];
      const pos = next(sizes[l]);
      if (seen.has(`${l}/${pos}`)) continue;
      seen.add(`${l}/${pos}`);
      lists[q * most + counts[q]] = l;
      positions[q * most + counts[q]++] = pos;
    }
  }
  return { k: most, sizes: counts, lists, positions };
}

/** The naive oracle: every candidate's decoded prefix scored in float64, best k by the engine's order (score, then lower id). */
function naiveRescore(queries: Float32Array, rows: number, lists: ListSet, candidates: ListCandidates, dim: number, metric: Metric, k: number): TopK {
  const out = new TopK(rows, k);
  const decoded = new Float32Array(dim);
  for (let q = 0; q < rows; q++) {
    for (let i = 0; i < candidates.sizes[q]; i++) {
      const l = candidates.lists[q * candidates.k + i], pos = candidates.positions[q * candidates.k + i];
      if (lists.encoding === 'f32') decoded.set(new Float32Array(lists.codes(l).buffer, lists.codes(l).byteOffset + pos * stride * 4, dim));
      else decodeRows(codedRows(lists.encoding as 'f16' | 'sq8', lists.codes(l), sizes[l], stride, lists.params), pos, pos + 1, dim, decoded);
      out.push(q, lists.ids(l)[pos], naiveScore(queries, q * stride, decoded, 0, dim, metric));
    }
  }
  return out;
}

describe('rescoreListsTopK: candidates scored where they lie in the lists', () => {
  for (const encoding of ['f32', 'f16', 'sq8'] as const) {
    for (const metric of METRICS as readonly Metric[]) {
      it(`${encoding} lists, ${metric}: the kernel equals the composition bit for bit, blocked or not; the reference agrees with the oracle`, async () => {
        for (const layout of layouts) {
          for (const backend of [cpu.one, cpu.split, cpu.spread]) {
            const { rows, blocked } = makeLists(backend.arena, encoding, layout, 5, backend === cpu.spread ? SPREAD_FILLER : 0);
            if (backend === cpu.spread) expect(backend.arena.memories.length).toBeGreaterThan(1);
            // with a source: the directory of every list kept between calls (lists spread over memories: planned per call)
            const kept = { ...blocked, source: { version: 0 } };
            for (const queryCount of [1, 7, 300]) {
              const data = randomMatrix(queryCount, stride, queryCount + 11);
              const queries = rowBlock(data, queryCount, stride);
              const candidates = makeCandidates(queryCount, queryCount === 1 ? 60 : 23, queryCount * 7 + 1);
              for (const d of queryCount === 300 ? [keptDim, 40] : dims) {
                for (const k of queryCount === 1 ? [1, 10, 80] : [10]) {
                  const got = new TopK(queryCount, k);
                  const gotRows = new TopK(queryCount, k);
                  const composed = new TopK(queryCount, k);
                  await backend.rescoreListsTopK(queries, blocked, candidates, d, metric, got);
                  await backend.rescoreListsTopK(queries, rows, candidates, d, metric, gotRows);
                  await composedRescoreListsTopK(backend, queries, blocked, candidates, d, metric, composed);
                  expectIdentical(got, gotRows);
                  expectIdentical(got, composed);
                  const fromKept = new TopK(queryCount, k);
                  await backend.rescoreListsTopK(queries, kept, candidates, d, metric, fromKept);
                  expectIdentical(fromKept, composed);
                  if (backend === cpu.one && queryCount < 300) {
                    const want = new TopK(queryCount, k);
                    await reference.rescoreListsTopK(queries, blocked, candidates, d, metric, want);
                    expectSameTopK(got, want);
                    expectSameTopK(want, naiveRescore(data, queryCount, rows, candidates, d, metric, k));
                  }
                }
              }
            }
          }
        }
      });
    }
  }

  it('merges into heaps that already hold results (a second call adds to the first)', async () => {
    const { blocked } = makeLists(cpu.one.arena, 'f32', layouts[0], 9);
    const queries = rowBlock(randomMatrix(3, stride, 4), 3, stride);
    const all = makeCandidates(3, 30, 17);
    const half = (from: number, to: number): ListCandidates => {
      const sizes = all.sizes.map((n) => Math.max(0, Math.min(n, to) - from));
      const shift = (a: Int32Array) => a.map((_, j) => a[Math.floor(j / all.k) * all.k + Math.min(all.k - 1, (j % all.k) + from)]);
      return { k: all.k, sizes, lists: shift(all.lists), positions: shift(all.positions) };
    };
    const whole = new TopK(3, 8);
    const parts = new TopK(3, 8);
    await cpu.one.rescoreListsTopK(queries, blocked, all, 20, 'l2', whole);
    await cpu.one.rescoreListsTopK(queries, blocked, half(0, 12), 20, 'l2', parts);
    await cpu.one.rescoreListsTopK(queries, blocked, half(12, 30), 20, 'l2', parts);
    expectIdentical(parts, whole);
  });

  it('keeps a directory of the lists while their version holds, and follows any change', async () => {
    for (const backend of [cpu.one, cpu.split]) {
      const { blocked } = makeLists(backend.arena, 'f32', layouts[0], 31);
      const other = makeLists(backend.arena, 'f32', layouts[0], 32).blocked;
      // lists whose arrays and sizes can change under one source, as an index's do
      const codes = Array.from({ length: sizes.length }, (_, l) => blocked.codes(l));
      const ids = Array.from({ length: sizes.length }, (_, l) => blocked.ids(l));
      const counts = [...sizes];
      counts[3] = 0; // empty at first, grown below
      const source = { version: 0 };
      const live: ListSet = { ...blocked, source, size: (l) => counts[l], codes: (l) => codes[l], ids: (l) => ids[l], invNorms: (l, d) => (codes[l] === blocked.codes(l) ? blocked.invNorms!(l, d) : other.invNorms!(l, d)) };
      const queries = rowBlock(randomMatrix(5, stride, 6), 5, stride);
      const candidates = makeCandidates(5, 20, 3);
      candidates.lists.forEach((l, i) => l === 3 && ((candidates.lists[i] = 7), (candidates.positions[i] = i % sizes[7])));
      const expectPlanned = async (metric: Metric, d: number) => {
        const got = new TopK(5, 6);
        const want = new TopK(5, 6);
        await backend.rescoreListsTopK(queries, live, candidates, d, metric, got);
        // the same lists without a source: planned per call
        await backend.rescoreListsTopK(queries, { ...live, source: undefined }, candidates, d, metric, want);
        expectIdentical(got, want);
        return got;
      };
      const before = await expectPlanned('cosine', keptDim);
      await expectPlanned('l2', 20);
      // every list's members replaced by other values (new arrays, norms kept at keptDim): the next call must read them
      for (let l = 0; l < sizes.length; l++) {
        codes[l] = other.codes(l);
        ids[l] = other.ids(l).map((id) => id + 1000);
      }
      source.version++;
      const after = await expectPlanned('cosine', keptDim);
      expect(Array.from(after.ids)).not.toEqual(Array.from(before.ids));
      expect(Math.min(...after.ids.subarray(0, after.sizes[0]))).toBeGreaterThanOrEqual(1000);
      await expectPlanned('l2', 20);
      // a list grows from empty: the candidates may now name its members
      counts[3] = sizes[3];
      source.version++;
      candidates.lists[0] = 3;
      candidates.positions[0] = sizes[3] - 1;
      await expectPlanned('ip', 17);
    }
  });

  it('under steady ingest plans each call (no directory of every list rebuilt per call), and builds it once the lists hold', async () => {
    for (const backend of [cpu.one, cpu.split]) {
      const { blocked } = makeLists(backend.arena, 'f32', layouts[0], 41);
      // lists at a quarter of their members, appended to in place (as an index's grow) between searches
      const counts = sizes.map((n) => n >> 2);
      const source = { version: 0 };
      const live: ListSet = { ...blocked, source, size: (l) => counts[l] };
      // the backend's directories (private): their build count is what churn must not drive
      const directories = (backend as unknown as { directories: ListDirectories }).directories;
      const query = rowBlock(randomMatrix(1, stride, 8), 1, stride);
      const probes = Int32Array.of(10, 13, 7, 3);
      // a search: a single-query scan of 4 lists and a rescore of 2 candidates, one the newest member of list 10
      const search = async (metric: Metric) => {
        const candidates: ListCandidates = { k: 2, sizes: Int32Array.of(2), lists: Int32Array.of(10, 7), positions: Int32Array.of(counts[10] - 1, 0) };
        const got = [new TopK(1, 5), new TopK(1, 2)];
        const want = [new TopK(1, 5), new TopK(1, 2)];
        for (const [set, [scanned, rescored]] of [[live, got], [{ ...live, source: undefined }, want]] as const) {
          await backend.scanListsTopK(query, set, probes, probes.length, keptDim, metric, scanned);
          await backend.rescoreListsTopK(query, set, candidates, keptDim, metric, rescored);
        }
        expectIdentical(got[0], want[0]);
        expectIdentical(got[1], want[1]);
        return got;
      };
      for (const metric of ['cosine', 'l2'] as const) {
        const builds = directories.builds;
        for (let step = 0; step < 40; step++) {
          const l = step % 2 ? 10 : 13;
          counts[l]++;
          source.version++;
          const [scanned, rescored] = await search(metric);
          // the appended members are read: list 10's newest is always a candidate of the rescore
          expect(Array.from(rescored.ids.subarray(0, rescored.sizes[0]))).toContain(blocked.ids(10)[counts[10] - 1]);
          expect(scanned.sizes[0]).toBe(5);
        }
        expect(directories.builds).toBe(builds);
        // the lists hold: once calls at this version planned as many entries as there are lists (14; 6 a search), one build
        for (let i = 0; i < 5; i++) await search(metric);
        expect(directories.builds).toBe(builds + 1);
      }
    }
  });

  it('refuses candidates that are not members, PQ lists and prefixes past the stride', async () => {
    const { blocked } = makeLists(cpu.one.arena, 'f32', layouts[0], 2);
    const queries = rowBlock(randomMatrix(1, stride, 1), 1, stride);
    const at = (l: number, pos: number): ListCandidates => ({ k: 1, sizes: Int32Array.of(1), lists: Int32Array.of(l), positions: Int32Array.of(pos) });
    for (const backend of [cpu.one, reference]) {
      // list 2 has 5 members, list 0 none, there are 14 lists
      await expect(backend.rescoreListsTopK(queries, blocked, at(2, 5), 8, 'ip', new TopK(1, 1))).rejects.toThrow(/position 5 of list 2, which has 5 members/);
      await expect(backend.rescoreListsTopK(queries, blocked, at(0, 0), 8, 'ip', new TopK(1, 1))).rejects.toThrow(/position 0 of list 0, which has 0 members/);
      await expect(backend.rescoreListsTopK(queries, blocked, at(14, 0), 8, 'ip', new TopK(1, 1))).rejects.toThrow(/names list 14, not one of 0\.\.13/);
      await expect(backend.rescoreListsTopK(queries, blocked, at(2, 0), 41, 'ip', new TopK(1, 1))).rejects.toThrow(/prefix length 41 exceeds/);
      await expect(backend.rescoreListsTopK(queries, { ...blocked, encoding: 'pq', layout: undefined }, at(2, 0), 8, 'ip', new TopK(1, 1))).rejects.toThrow(/PQ codes hold no prefixes/);
    }
  });
});
