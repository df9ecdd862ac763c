import { describe, expect, it } from 'vitest';
import { blockedBytes, rowBlock, TopK, writeBlockedRow, type ArrayArena, type BlockLayout, type ListSet, type Metric, type RowBlock, type WasmSimdBackend } from '../src/index.js';
import { expectIdentical } from './compare.js';
import { cpuBackends, randomLists, randomProbes } from './blocked-lists.js';
import { randomMatrix } from './naive.js';

// The candidate buffers of the CPU list scans (kernels/cpu/simd.ts, bufferPush,
// bufferCut, selectBest): each heap row's candidates are appended to a buffer
// that is cut to its best k whenever it fills, and closed back into the heap.
// What a row keeps must be what a heap push per candidate keeps (TopK), bit for
// bit, ties broken on the lower id. The scores come from the same kernel run
// with k past every member (nothing dropped), and their best k are taken by
// TopK pushes, so only the selection is under test: buffers that fill many
// times (k = 1 over thousands of members), scores rising along the scan (every
// candidate appended), ties across most members (the cut falls back to the
// exact selection), all-zero scores of both signs, infinite scores, k past the
// probed members, heaps already holding results, masks, every path that feeds
// the buffers (the four-query tile, one query, row-major, f16, sq8), split over
// two threads by queries and by lists.

const cpu = cpuBackends();
const layout: BlockLayout = { blockRows: 32, groupWidth: 16 };
const stride = 20;
const sizes = [300, 0, 257, 64, 5, 129, 1000, 33, 31, 500];
const count = sizes.length;
const total = sizes.reduce((a, b) => a + b, 0);
const nprobe = 6;

type Values = 'random' | 'rising' | 'ties' | 'infinite';

/** Member j of list l: random values; value 0 = j, the rest 0 (ip on e0: rising along each list, tied across lists); one of three vectors; random with every 7th member huge (l2 and ip overflow to infinities). */
function memberValues(kind: Values, l: number, size: number): Float32Array {
  if (kind === 'rising') {
    const v = new Float32Array(size * stride);
    for (let j = 0; j < size; j++) v[j * stride] = j;
    return v;
  }
  if (kind === 'ties') {
    const three = randomMatrix(3, stride, 99);
    const v = new Float32Array(size * stride);
    for (let j = 0; j < size; j++) v.set(three.subarray(((j + l) % 3) * stride, ((j + l) % 3 + 1) * stride), j * stride);
    return v;
  }
  const v = randomMatrix(size, stride, 7 + 31 * l);
  if (kind === 'infinite') for (let j = 0; j < size; j += 7) v.fill(3e38, j * stride, (j + 1) * stride);
  return v;
}

/** Float32 lists of `kind` values in the arena, blocked or one member after another; ids interleave between lists (ties across lists break on id). */
function floatLists(arena: ArrayArena, kind: Values, blocked: boolean): ListSet {
  const codes: Uint8Array[] = [];
  const ids: Int32Array[] = [];
  sizes.forEach((size, l) => {
    const bytes = new Uint8Array(memberValues(kind, l, size).buffer);
    const held = arena.uint8(blocked ? blockedBytes(layout, stride, 4, size) : bytes.length);
    if (blocked) for (let r = 0; r < size; r++) writeBlockedRow(held, layout, stride, 4, r, bytes, r * stride * 4);
    else held.set(bytes);
    codes.push(held);
    const id = arena.int32(size);
    id.set(Int32Array.from({ length: size }, (_, j) => j * count + l));
    ids.push(id);
  });
  return { encoding: 'f32', count, stride, ...(blocked ? { layout } : {}), size: (l) => sizes[l], codes: (l) => codes[l], ids: (l) => ids[l] };
}

function queriesOf(kind: Values | 'zero', rows: number, seed: number): RowBlock {
  const q = kind === 'zero' ? new Float32Array(rows * stride) : randomMatrix(rows, stride, seed);
  if (kind === 'rising') {
    q.fill(0);
    for (let r = 0; r < rows; r++) q[r * stride] = 1;
  }
  return rowBlock(q, rows, stride);
}

/** The best k of each row of `all` (every candidate the scans scored) by TopK pushes. */
function bestOf(all: TopK, k: number): TopK {
  const best = new TopK(all.rows, k);
  for (let r = 0; r < all.rows; r++) for (let i = 0; i < all.sizes[r]; i++) best.push(r, all.ids[r * all.k + i], all.scores[r * all.k + i]);
  return best;
}

/** Scans each probe set into a TopK of k (the kept candidates) and into one holding every candidate; the first must be the best k of the second. */
async function expectBestOfAll(backend: WasmSimdBackend, queries: RowBlock, lists: ListSet, probeSets: Int32Array[], dim: number, metric: Metric, ks: number[], mask?: Uint32Array): Promise<void> {
  const all = new TopK(queries.rows, total * probeSets.length + 1);
  for (const probes of probeSets) await backend.scanListsTopK(queries, lists, probes, nprobe, dim, metric, all, mask);
  for (let r = 0; r < queries.rows; r++) expect(all.sizes[r]).toBeLessThan(all.k); // nothing dropped
  for (const k of ks) {
    const got = new TopK(queries.rows, k);
    for (const probes of probeSets) await backend.scanListsTopK(queries, lists, probes, nprobe, dim, metric, got, mask);
    expectIdentical(got, bestOf(all, k));
  }
}

const ks = [1, 2, 5, 10, 31, 32, 33, 100, total + 3];

describe('the list scans keep the best k of their candidates exactly', () => {
  for (const kind of ['random', 'rising', 'ties', 'infinite'] as const) {
    for (const metric of (kind === 'rising' ? ['ip'] : kind === 'infinite' ? ['ip', 'l2'] : ['cosine', 'ip', 'l2']) as Metric[]) {
      it(`${kind} scores, ${metric}`, async () => {
        for (const blocked of [true, false]) {
          const lists = floatLists(cpu.one.arena, kind, blocked);
          for (const rows of [1, 7, 1000]) {
            const queries = queriesOf(kind, rows, rows + 3);
            const probes = randomProbes(rows, nprobe, rows + 5, count, 6);
            for (const backend of rows === 7 ? [cpu.one, cpu.split] : [cpu.one]) {
              // prefixes on and off the 4-value steps
              for (const d of rows === 1000 ? [stride] : [stride, 5]) await expectBestOfAll(backend, queries, lists, [probes], d, metric, rows === 1000 ? [1, 10, 100] : ks);
            }
          }
        }
      });
    }
  }

  it('all-zero scores of both signs: ties on every member, broken by id', async () => {
    const lists = floatLists(cpu.one.arena, 'random', true);
    for (const rows of [1, 7]) {
      const queries = queriesOf('zero', rows, 1);
      const probes = randomProbes(rows, nprobe, rows, count, 6);
      await expectBestOfAll(cpu.one, queries, lists, [probes], stride, 'ip', ks);
      const got = new TopK(rows, 3);
      await cpu.one.scanListsTopK(queries, lists, probes, nprobe, stride, 'ip', got);
      got.sort();
      // every score is zero: the lowest ids probed win
      const probed = [...new Set(Array.from(probes.subarray(0, nprobe)).filter((l) => l >= 0))].flatMap((l) => Array.from(lists.ids(l)));
      expect(Array.from(got.ids.subarray(0, 3))).toEqual(probed.sort((a, b) => a - b).slice(0, 3));
    }
  });

  it('f16 and sq8 lists, masks, and heaps already holding results', async () => {
    for (const encoding of ['f16', 'sq8'] as const) {
      const lists = randomLists(cpu.one.arena, { encoding, seed: 3, stride, sizes, layout });
      for (const rows of [1, 7]) {
        const queries = queriesOf('random', rows, 11);
        await expectBestOfAll(cpu.one, queries, lists, [randomProbes(rows, nprobe, 2, count, 6)], 13, 'l2', ks);
      }
    }
    const lists = floatLists(cpu.one.arena, 'random', true);
    const mask = new Uint32Array(Math.ceil((1000 * count) / 32)).fill(0x6db6db6d);
    for (const backend of [cpu.one, cpu.split]) {
      for (const rows of [1, 7, 40]) {
        const queries = queriesOf('random', rows, rows);
        const first = randomProbes(rows, nprobe, 8, count, 6);
        const then = randomProbes(rows, nprobe, 9, count);
        await expectBestOfAll(backend, queries, lists, [first, then], stride, 'cosine', [1, 10, 100, 2 * total]);
        await expectBestOfAll(backend, queries, lists, [first], stride, 'l2', [1, 10, 100], mask);
      }
    }
  });
});
