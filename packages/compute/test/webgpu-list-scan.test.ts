import { afterAll, describe, expect, it } from 'vitest';
import { METRICS, ReferenceBackend, rowBlock, TopK, WebGpuBackend, type ArrayArena, type ListSet } from '../src/index.js';
import { randomLists, randomProbes } from './blocked-lists.js';
import { expectSameTopK } from './compare.js';
import { randomMatrix } from './naive.js';

// The WebGPU backend's fused list scan (kernels/wgsl/list-scan.wgsl + the
// parallel top-k) against the reference's per-list composition: float32,
// float16 and sq8 lists, every metric, lists resident on the device or not,
// norms kept or computed, -1 probes and empty lists, a list longer than a
// top-k tile, k from 1 past the probed members, and batches split by a small
// binding limit. Runs on llvmpipe without a GPU; REQUIRE_WEBGPU=1 fails without an adapter.

const reference = new ReferenceBackend();
let gpu: WebGpuBackend | undefined;
let small: WebGpuBackend | undefined;
try {
  gpu = await WebGpuBackend.create();
  // bindings of 32 KiB: batches split into blocks of queries, and the query probing the 700-member list (33 KiB) runs per list, in chunks
  small = await WebGpuBackend.create({ maxBindingBytes: 32 * 1024 });
} catch (e) {
  if (process.env.REQUIRE_WEBGPU === '1') throw e;
  console.warn(`WebGPU list-scan tests skipped: ${(e as Error).message}`);
}
afterAll(async () => {
  await gpu?.dispose();
  await small?.dispose();
});

const stride = 12;
const dim = 9;
const sizes = [0, 1, 5, 37, 3, 700, 0, 9, 130, 2];
const count = sizes.length;

/** Lists of one encoding, in `arena` (resident) or plain arrays; norms kept at `dim` when asked. */
function makeLists(arena: ArrayArena | undefined, encoding: ListSet['encoding'], seed: number, keepNorms: boolean): ListSet {
  return randomLists(arena, { encoding, seed, stride, sizes, ...(keepNorms ? { keptDim: dim } : {}) });
}

/** rows x nprobe distinct lists per query, with -1 entries; query 0 probes the 700-member list. */
const makeProbes = (rows: number, nprobe: number, seed: number) => randomProbes(rows, nprobe, seed, count, 5);

describe.skipIf(!gpu)('WebGPU fused list scan equals the reference', () => {
  const g = gpu!;
  const s = small!;

  for (const encoding of ['f32', 'f16', 'sq8'] as const) {
    it(`${encoding}: every metric, resident and plain lists, kept and computed norms, batches of 1, 7 and 40, k from 1 past the probed members`, async () => {
      for (const [resident, keepNorms] of [[true, true], [false, false], [true, false]] as const) {
        const lists = makeLists(resident ? g.arena : undefined, encoding, 3, keepNorms);
        // batch sizes with the first combination, the others at one size (llvmpipe is slow)
        for (const rows of resident && keepNorms ? [1, 7, 40] : [7]) {
          const nprobe = 4;
          const probes = makeProbes(rows, nprobe, rows);
          const queries = rowBlock(randomMatrix(rows, stride, 100 + rows), rows, stride);
          for (const metric of METRICS) {
            for (const k of [1, 10, 900]) {
              const want = new TopK(rows, k);
              const got = new TopK(rows, k);
              // earlier entries in the heaps are merged with the scan
              for (let r = 0; r < rows; r++) for (const [id, score] of [[-5, 0.01], [-6, -0.02]]) {
                want.push(r, id, score);
                got.push(r, id, score);
              }
              await reference.scanListsTopK(queries, lists, probes, nprobe, dim, metric, want);
              await g.scanListsTopK(queries, lists, probes, nprobe, dim, metric, got);
              expectSameTopK(got, want, 1e-4);
            }
          }
        }
      }
    });
  }

  it('PQ: with and without rotation and residuals, inner product and l2, batches of 1, 7 and 40, k from 1 past the probed members', async () => {
    const pqDim = 10, m = 4;
    const bounds = Int32Array.from([0, 3, 5, 8, 10]);
    const codebooks = randomMatrix(256, pqDim, 200);
    const rotation = randomMatrix(pqDim, pqDim, 201);
    const refs = randomMatrix(count, pqDim, 202);
    const rotatedRefs = randomMatrix(count, pqDim, 203);
    const lists = randomLists(g.arena, { encoding: 'pq', seed: 300, stride: m, sizes });
    for (const [rotated, residual] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const pq = { dim: pqDim, m, codebooks, bounds, ...(rotated ? { rotation } : {}), ...(residual ? { refs } : {}), ...(rotated && residual ? { rotatedRefs } : {}) };
      for (const rows of rotated && residual ? [1, 7, 40] : [7]) {
        const nprobe = 3;
        const probes = makeProbes(rows, nprobe, 400 + rows);
        const queries = rowBlock(randomMatrix(rows, stride, 500 + rows), rows, stride);
        for (const metric of ['ip', 'l2'] as const) {
          for (const k of [1, 10, 900]) {
            const want = new TopK(rows, k);
            const got = new TopK(rows, k);
            await reference.pqScanListsTopK(queries, pq, lists, probes, nprobe, metric, want);
            await g.pqScanListsTopK(queries, pq, lists, probes, nprobe, metric, got);
            expectSameTopK(got, want, 1e-4);
          }
        }
      }
    }
    for (let l = 0; l < count; l++) {
      g.arena.release(lists.codes(l));
      g.arena.release(lists.ids(l));
    }
  });

  it('splits a batch into blocks of queries when a binding is small, and scans a list larger than a binding per list', async () => {
    const lists = makeLists(s.arena, 'f32', 8, false);
    const rows = 30, nprobe = 5;
    const probes = makeProbes(rows, nprobe, 77);
    const queries = rowBlock(randomMatrix(rows, stride, 78), rows, stride);
    for (const k of [3, 40]) {
      const want = new TopK(rows, k);
      const got = new TopK(rows, k);
      await reference.scanListsTopK(queries, lists, probes, nprobe, dim, 'l2', want);
      await s.scanListsTopK(queries, lists, probes, nprobe, dim, 'l2', got);
      expectSameTopK(got, want, 1e-4);
    }
  });

  it('a batch of 1000 queries in one pass', async () => {
    const lists = makeLists(g.arena, 'f16', 21, false);
    const rows = 1000, nprobe = 3;
    const probes = makeProbes(rows, nprobe, 22);
    const queries = rowBlock(randomMatrix(rows, stride, 23), rows, stride);
    const want = new TopK(rows, 10);
    const got = new TopK(rows, 10);
    await reference.scanListsTopK(queries, lists, probes, nprobe, dim, 'cosine', want);
    await g.scanListsTopK(queries, lists, probes, nprobe, dim, 'cosine', got);
    expectSameTopK(got, want, 1e-4);
  });

  it('repeated batches create no device buffers (packed lists, directory, tables and heaps reuse theirs)', async () => {
    const lists = makeLists(g.arena, 'sq8', 11, true);
    const rows = 7, nprobe = 4;
    const probes = makeProbes(rows, nprobe, 12);
    const queries = rowBlock(randomMatrix(rows, stride, 13), rows, stride);
    const run = () => g.scanListsTopK(queries, lists, probes, nprobe, dim, 'cosine', new TopK(rows, 10));
    await run();
    const warm = g.resources;
    for (let i = 0; i < 50; i++) await run();
    expect(g.resources).toEqual(warm);
  });

  it('rejects what the reference rejects', async () => {
    const lists = makeLists(undefined, 'f32', 1, false);
    const q = rowBlock(randomMatrix(1, stride, 1), 1, stride);
    await expect(g.scanListsTopK(q, lists, Int32Array.of(count), 1, dim, 'ip', new TopK(1, 1))).rejects.toThrow(/is not a list/);
    await expect(g.scanListsTopK(q, lists, Int32Array.of(0), 1, stride + 1, 'ip', new TopK(1, 1))).rejects.toThrow(/exceeds row length/);
  });
});
