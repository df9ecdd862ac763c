import { describe, expect, it } from 'vitest';
import {
  composedPqScanListsTopK,
  computeInvNorms,
  METRICS,
  ReferenceBackend,
  rowBlock,
  TopK,
  WasmSimdBackend,
  type ArrayArena,
  type ListSet,
  type Metric,
  type PqQuantizer,
} from '../src/index.js';
import type { ListDirectories } from '../src/cpu/list-rescore.js';
import { expectIdentical, expectSameTopK } from './compare.js';
import { cpuBackends, randomLists, randomProbes, SPREAD_FILLER } from './blocked-lists.js';
import { randomMatrix } from './naive.js';

// The fused list scans (scanListsTopK, pqScanListsTopK) of the CPU backend
// against the reference's composition of per-list ops: every list encoding
// and metric, PQ with and without rotation and residuals, batches of 1, 7
// and 1000 queries, k from 1 past the probed members, probes with -1
// entries and empty lists, on one thread, split over two, and with the
// lists spread over several WebAssembly memories.

const stride = 20;
const dim = 13;
const sizes = [0, 1, 5, 37, 3, 64, 0, 9, 130, 2, 17, 71];
const count = sizes.length;

/** Random lists of one encoding in an arena (PQ: codes of `m` bytes); cosine norms kept for the full prefix only, other prefixes computed by the kernels. */
function makeLists(arena: ArrayArena, encoding: ListSet['encoding'], seed: number, m = 8, filler = 0): ListSet {
  return randomLists(arena, { encoding, seed, stride: encoding === 'pq' ? m : stride, sizes, keptDim: dim, filler });
}

const makeProbes = (rows: number, nprobe: number, seed: number) => randomProbes(rows, nprobe, seed, count);

/** A PQ quantiser of `m` sub-spaces over dim values, with a rotation and residual references as asked. */
function makePq(m: number, rotation: boolean, refs: boolean): PqQuantizer {
  const bounds = new Int32Array(m + 1);
  for (let s = 0; s < m; s++) bounds[s + 1] = bounds[s] + Math.floor(dim / m) + (s < dim % m ? 1 : 0);
  const r = rotation ? randomMatrix(dim, dim, 77) : undefined;
  const refValues = refs ? randomMatrix(count, dim, 78) : undefined;
  let rotatedRefs: Float32Array | undefined;
  if (r && refValues) {
    rotatedRefs = new Float32Array(count * dim);
    for (let l = 0; l < count; l++) {
      for (let i = 0; i < dim; i++) {
        let s = 0;
        for (let j = 0; j < dim; j++) s += r[i * dim + j] * refValues[l * dim + j];
        rotatedRefs[l * dim + i] = s;
      }
    }
  }
  return { dim, m, codebooks: randomMatrix(256, dim, 79), bounds, ...(r ? { rotation: r } : {}), ...(refValues ? { refs: refValues } : {}), ...(rotatedRefs ? { rotatedRefs } : {}) };
}

const reference = new ReferenceBackend();
const cpu = cpuBackends();

const total = sizes.reduce((a, b) => a + b, 0);

describe('fused float list scans agree with the reference composition', () => {
  for (const encoding of ['f32', 'f16', 'sq8'] as const) {
    for (const metric of METRICS) {
      it(`${encoding} lists, ${metric}`, async () => {
        const backends: [string, WasmSimdBackend][] = [['one thread', cpu.one], ['two threads', cpu.split], ['several memories', cpu.spread]];
        for (const [name, backend] of backends) {
          const lists = makeLists(backend.arena, encoding, 5, 8, backend === cpu.spread ? SPREAD_FILLER : 0);
          if (name === 'several memories') expect(backend.arena.memories.length).toBeGreaterThan(1);
          for (const rows of [1, 7, 1000]) {
            const queries = rowBlock(randomMatrix(rows, stride + 3, rows + 11), rows, stride + 3);
            const probes = makeProbes(rows, 6, rows);
            for (const k of rows === 1000 ? [10] : [1, 10, total + 5]) {
              for (const d of rows === 1000 ? [dim] : [dim, 4, 1]) {
                const want = new TopK(rows, k);
                const got = new TopK(rows, k);
                await reference.scanListsTopK(queries, lists, probes, 6, d, metric, want);
                await backend.scanListsTopK(queries, lists, probes, 6, d, metric, got);
                expectSameTopK(got, want);
              }
            }
          }
        }
      });
    }
  }

  it('a query alone on lists with a source (their directory kept) equals the planned call bit for bit', async () => {
    const mask = new Uint32Array(Math.ceil((total * count) / 32)).fill(0x77777777);
    for (const [name, backend] of [['one thread', cpu.one], ['two threads', cpu.split], ['several memories', cpu.spread]] as const) {
      for (const encoding of ['f32', 'f16', 'sq8'] as const) {
        const lists = makeLists(backend.arena, encoding, 5, 8, name === 'several memories' ? SPREAD_FILLER : 0);
        const kept = { ...lists, source: { version: 0 } };
        for (const metric of METRICS) {
          for (let seed = 0; seed < 6; seed++) {
            const queries = rowBlock(randomMatrix(1, stride + 3, seed + 40), 1, stride + 3);
            // seeds 4 and 5: a list probed twice (scanned twice, as the planned call gathers the query twice)
            const probes = makeProbes(1, 6, seed);
            if (seed >= 4) probes[5] = probes[0];
            for (const k of [1, 10, total + 5]) {
              for (const d of [dim, 4]) {
                for (const m of seed % 2 ? [mask] : [undefined]) {
                  const want = new TopK(1, k);
                  const got = new TopK(1, k);
                  await backend.scanListsTopK(queries, lists, probes, 6, d, metric, want, m);
                  await backend.scanListsTopK(queries, kept, probes, 6, d, metric, got, m);
                  expectIdentical(got, want);
                }
              }
            }
          }
        }
      }
    }
  });

  it('a query alone on a kept directory still refuses bad probes, and lists short of their members get no directory', async () => {
    const queries = rowBlock(randomMatrix(1, stride, 5), 1, stride);
    const lists = { ...makeLists(cpu.one.arena, 'f32', 6), source: { version: 0 } };
    // a directory is kept once calls have planned as many entries as there are lists; then the scans read it
    for (let i = 0; i < count; i++) await cpu.one.scanListsTopK(queries, lists, makeProbes(1, 1, i), 1, dim, 'l2', new TopK(1, 3));
    // the backend's directories (private): a short list's is built (counted) and not kept
    const directories = (cpu.one as unknown as { directories: ListDirectories }).directories;
    const builds = directories.builds;
    await expect(cpu.one.scanListsTopK(queries, lists, Int32Array.of(1, count), 2, dim, 'l2', new TopK(1, 3))).rejects.toThrow(new RegExp(`probe ${count} of query 0 is not a list`));
    // list 8 keeps one member's codes too few: the scans go planned and name it, whichever list is probed first
    const short = { ...lists, source: { version: 0 }, codes: (l: number) => (l === 8 ? lists.codes(l).subarray(0, (sizes[8] - 1) * stride * 4) : lists.codes(l)) };
    for (let i = 0; i < count; i++) await cpu.one.scanListsTopK(queries, short, Int32Array.of(3), 1, dim, 'l2', new TopK(1, 3));
    await expect(cpu.one.scanListsTopK(queries, short, Int32Array.of(3, 8), 2, dim, 'l2', new TopK(1, 3))).rejects.toThrow(/list scan: list 8 holds 10320 bytes for 130 members of 80/);
    expect(directories.builds).toBe(builds + 1);
  });

  it('merges into heaps already holding results, as the per-list calls do', async () => {
    const lists = makeLists(cpu.one.arena, 'f32', 9);
    const queries = rowBlock(randomMatrix(7, stride, 3), 7, stride);
    const want = new TopK(7, 12);
    const got = new TopK(7, 12);
    for (const part of [makeProbes(7, 3, 1), makeProbes(7, 3, 2)]) {
      await reference.scanListsTopK(queries, lists, part, 3, dim, 'l2', want);
      await cpu.one.scanListsTopK(queries, lists, part, 3, dim, 'l2', got);
    }
    expectSameTopK(got, want);
  });

  it('equals brute force over the members of the probed lists', async () => {
    const lists = makeLists(cpu.one.arena, 'f32', 21);
    const queries = rowBlock(randomMatrix(7, stride, 8), 7, stride);
    const probes = makeProbes(7, 5, 4);
    const got = new TopK(7, 20);
    await cpu.one.scanListsTopK(queries, lists, probes, 5, dim, 'ip', got);
    got.sort();
    for (let q = 0; q < 7; q++) {
      const all: [number, number][] = [];
      for (let p = 0; p < 5; p++) {
        const l = probes[q * 5 + p];
        if (l < 0) continue;
        const values = new Float32Array(lists.codes(l).buffer, lists.codes(l).byteOffset, sizes[l] * stride);
        for (let j = 0; j < sizes[l]; j++) {
          let s = 0;
          for (let i = 0; i < dim; i++) s += queries.data[q * stride + i] * values[j * stride + i];
          all.push([s, lists.ids(l)[j]]);
        }
      }
      all.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      expect(got.sizes[q]).toBe(Math.min(20, all.length));
      for (let i = 0; i < got.sizes[q]; i++) expect(got.scores[q * 20 + i]).toBeCloseTo(all[i][0], 4);
    }
  });

  it('refuses probes that name no list, and PQ codes', async () => {
    const lists = makeLists(cpu.one.arena, 'f32', 1);
    const queries = rowBlock(randomMatrix(1, stride, 1), 1, stride);
    await expect(cpu.one.scanListsTopK(queries, lists, Int32Array.of(count), 1, dim, 'ip', new TopK(1, 3))).rejects.toThrow(new RegExp(`probe ${count} of query 0 is not a list`));
    await expect(reference.scanListsTopK(queries, lists, Int32Array.of(-2), 1, dim, 'ip', new TopK(1, 3))).rejects.toThrow(/probe -2/);
    await expect(cpu.one.scanListsTopK(queries, lists, Int32Array.of(0), 1, stride + 1, 'ip', new TopK(1, 3))).rejects.toThrow(new RegExp(`prefix length ${stride + 1} exceeds`));
    const pq = makeLists(cpu.one.arena, 'pq', 1);
    await expect(cpu.one.scanListsTopK(queries, pq, Int32Array.of(0), 1, dim, 'ip', new TopK(1, 3))).rejects.toThrow(/pqScanListsTopK/);
  });
});

describe('fused PQ list scans agree with the reference composition', () => {
  const shapes: [string, boolean, boolean][] = [
    ['pq', false, false],
    ['pq with residuals', false, true],
    ['opq', true, false],
    ['opq with residuals', true, true],
  ];
  for (const [name, rotation, refs] of shapes) {
    for (const metric of ['ip', 'l2'] as Metric[]) {
      it(`${name}, ${metric}`, async () => {
        const m = 5;
        const pq = makePq(m, rotation, refs);
        for (const backend of [cpu.one, cpu.split, cpu.spread]) {
          const lists = makeLists(backend.arena, 'pq', 40, m, backend === cpu.spread ? SPREAD_FILLER : 0);
          for (const rows of [1, 7, 1000]) {
            const queries = rowBlock(randomMatrix(rows, dim + 2, rows + 3), rows, dim + 2);
            const probes = makeProbes(rows, 5, rows + 1);
            for (const k of rows === 1000 ? [10] : [1, 10, total + 5]) {
              const want = new TopK(rows, k);
              const got = new TopK(rows, k);
              await reference.pqScanListsTopK(queries, pq, lists, probes, 5, metric, want);
              await backend.pqScanListsTopK(queries, pq, lists, probes, 5, metric, got);
              expectSameTopK(got, want, 1e-4);
            }
          }
        }
      });
    }
  }

  // the fused kernel computes rotation, tables and ADC as the backend's per-list ops do, and takes
  // the ip residual biases from the host (float64, pqListBiases) as the composition does: bit for bit
  for (const [name, rotation, refs] of shapes) {
    for (const metric of ['ip', 'l2'] as Metric[]) {
      it(`${name}, ${metric}: equals the composition of the same backend's per-list ops exactly`, async () => {
        const m = 5;
        const pq = makePq(m, rotation, refs);
        for (const backend of [cpu.one, cpu.split]) {
          const lists = makeLists(backend.arena, 'pq', 40, m);
          for (const rows of [1, 7, 200]) {
            const queries = rowBlock(randomMatrix(rows, dim + 2, rows + 5), rows, dim + 2);
            const probes = makeProbes(rows, 5, rows + 2);
            const want = new TopK(rows, 10);
            const got = new TopK(rows, 10);
            await composedPqScanListsTopK(backend, queries, pq, lists, probes, 5, metric, want);
            await backend.pqScanListsTopK(queries, pq, lists, probes, 5, metric, got);
            expectSameTopK(got, want, 0);
          }
        }
      });
    }
  }

  it('refuses cosine and mismatched shapes', async () => {
    const pq = makePq(5, false, true);
    const lists = makeLists(cpu.one.arena, 'pq', 1, 5);
    const queries = rowBlock(randomMatrix(1, dim, 1), 1, dim);
    await expect(cpu.one.pqScanListsTopK(queries, pq, lists, Int32Array.of(0), 1, 'cosine', new TopK(1, 3))).rejects.toThrow(/normalise cosine/);
    await expect(reference.pqScanListsTopK(queries, { ...pq, m: 4 }, lists, Int32Array.of(0), 1, 'l2', new TopK(1, 3))).rejects.toThrow(/code bytes per member, M = 4/);
    const opq = makePq(5, true, true);
    await expect(cpu.one.pqScanListsTopK(queries, { ...opq, rotatedRefs: undefined }, lists, Int32Array.of(0), 1, 'l2', new TopK(1, 3))).rejects.toThrow(/rotated references/);
  });
});

describe('rescoreTopK of rows that come without their norms', () => {
  it('computes cosine norms as the reference does, so gathered rows score as the same rows with their norms', async () => {
    for (const rows of [1, 7, 8, 9, 70]) {
      const base = rowBlock(randomMatrix(rows, 37, rows), rows, 37);
      const queries = rowBlock(randomMatrix(3, 37, 2), 3, 37);
      const candidates = new TopK(3, rows);
      for (let q = 0; q < 3; q++) {
        candidates.sizes[q] = rows;
        for (let i = 0; i < rows; i++) candidates.ids[q * rows + i] = i;
      }
      for (const dim of [37, 12]) {
        const bare = new TopK(3, 5);
        const normed = new TopK(3, 5);
        await cpu.one.rescoreTopK(queries, base, dim, 'cosine', candidates, bare);
        await cpu.one.rescoreTopK(queries, { ...base, invNorms: computeInvNorms(base, dim) }, dim, 'cosine', candidates, normed);
        expect(Array.from(bare.sort().ids)).toEqual(Array.from(normed.sort().ids));
        expect(Array.from(bare.scores)).toEqual(Array.from(normed.scores));
      }
    }
  });
});
