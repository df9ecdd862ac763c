import { describe, expect, it } from 'vitest';
import { METRICS, ReferenceBackend, rowBlock, TopK, type BlockLayout, type Metric } from '../src/index.js';
import { expectIdentical, expectSameTopK } from './compare.js';
import { cpuBackends, makeLists, makeProbes, randomLists, randomProbes, sizes, stride } from './blocked-lists.js';
import { randomMatrix } from './naive.js';

// The batched tile of the CPU list scan over float32 blocked lists
// (kernels/cpu/simd.ts, scan4Blocked): four gathered queries against pairs of
// a block's rows, the sums reduced four at a time in SIMD lanes and merged
// straight into the heaps. It must keep every score and every heap decision
// of the per-score path: blocked results are bit-identical to the same lists
// one member after another, and to each query scanned alone (which runs
// another kernel); query counts that leave 1 to 3 queries past the last tile,
// lists of odd sizes and sizes past a block, prefixes below 4, off the 4- and
// 16-value steps and inside the narrow last group, k past the probed members,
// heaps that already hold results, filters, and scans that start past a
// list's first chunk, inside a block.

const reference = new ReferenceBackend();
const cpu = cpuBackends();

const layouts: BlockLayout[] = [
  { blockRows: 32, groupWidth: 16 },
  { blockRows: 4, groupWidth: 32 },
];
// stride 40: groups of 16, 16 and a narrower 8 (32 wide: 32 and 8)
const dims = [1, 3, 4, 8, 16, 17, 32, 35, 36, 40];
const total = sizes.reduce((a, b) => a + b, 0);
const nprobe = 6;

/** Row q of `best` as a TopK of one row. */
function rowOf(best: TopK, q: number): TopK {
  const one = new TopK(1, best.k);
  for (let i = 0; i < best.sizes[q]; i++) one.push(0, best.ids[q * best.k + i], best.scores[q * best.k + i]);
  return one;
}

describe('the batched tile of blocked float32 list scans', () => {
  for (const metric of METRICS as readonly Metric[]) {
    it(`${metric}: bit-identical to row-major lists and to each query alone`, async () => {
      for (const layout of layouts) {
        for (const backend of [cpu.one, cpu.split]) {
          const { rows, blocked } = makeLists(backend.arena, 'f32', layout, 11);
          for (const queryCount of [4, 6, 67]) {
            const queries = rowBlock(randomMatrix(queryCount, stride, queryCount + 40), queryCount, stride);
            const probes = makeProbes(queryCount, nprobe, queryCount + 1);
            for (const d of queryCount === 67 ? [17, 36, 40] : dims) {
              for (const k of [1, 10, total + 2]) {
                const plain = new TopK(queryCount, k);
                const got = new TopK(queryCount, k);
                await backend.scanListsTopK(queries, rows, probes, nprobe, d, metric, plain);
                await backend.scanListsTopK(queries, blocked, probes, nprobe, d, metric, got);
                expectIdentical(got, plain);
                if (queryCount !== 6 || backend !== cpu.one) continue;
                for (let q = 0; q < queryCount; q++) {
                  const alone = new TopK(1, k);
                  await backend.scanListsTopK(rowBlock(queries.data.subarray(q * stride, (q + 1) * stride), 1, stride), blocked, probes.subarray(q * nprobe, (q + 1) * nprobe), nprobe, d, metric, alone);
                  expectIdentical(rowOf(got, q), alone);
                }
                const want = new TopK(queryCount, k);
                await reference.scanListsTopK(queries, blocked, probes, nprobe, d, metric, want);
                expectSameTopK(got, want);
              }
            }
          }
        }
      }
    });
  }

  it('merges into heaps that already hold results, and keeps filters working', async () => {
    const { one } = cpu;
    const queryCount = 9;
    const queries = rowBlock(randomMatrix(queryCount, stride, 5), queryCount, stride);
    const first = makeProbes(queryCount, 3, 17);
    const then = makeProbes(queryCount, nprobe, 18);
    // every id, about half of them, none
    const masks = [0xffffffff, 0x5a5a5a5a, 0].map((word) => new Uint32Array(Math.ceil((total * 16) / 32)).fill(word));
    for (const layout of layouts) {
      const { rows, blocked } = makeLists(one.arena, 'f32', layout, 12);
      for (const metric of METRICS as readonly Metric[]) {
        for (const d of [8, 35, 40]) {
          const plain = new TopK(queryCount, 7);
          const got = new TopK(queryCount, 7);
          for (const [lists, best] of [[rows, plain], [blocked, got]] as const) {
            await one.scanListsTopK(queries, lists, first, 3, d, metric, best);
            await one.scanListsTopK(queries, lists, then, nprobe, d, metric, best);
          }
          expectIdentical(got, plain);
          for (const mask of masks) {
            const maskedRows = new TopK(queryCount, 12);
            const masked = new TopK(queryCount, 12);
            await one.scanListsTopK(queries, rows, then, nprobe, d, metric, maskedRows, mask);
            await one.scanListsTopK(queries, blocked, then, nprobe, d, metric, masked, mask);
            expectIdentical(masked, maskedRows);
            const want = new TopK(queryCount, 12);
            await reference.scanListsTopK(queries, blocked, then, nprobe, d, metric, want, mask);
            expectSameTopK(masked, want);
            if (mask[0] === 0) expect(Array.from(masked.sizes).every((n) => n === 0)).toBe(true);
          }
        }
      }
    }
  });

  it('starts scans past a list\'s first chunk, inside a block', async () => {
    // stride 600: a chunk holds 16384 / prefix rows rounded down to 4 (24 at 600, 52 at 300, 80 at 200, 128 at
    // 128), so lists of 130 take the tile from rows 24, 52, 80, 104, 128 ...: inside blocks of 32 and 8 rows
    const wide = 600, lengths = [130, 7, 64, 130, 33];
    const queryCount = 9, probes = randomProbes(queryCount, lengths.length, 41, lengths.length);
    const queries = rowBlock(randomMatrix(queryCount, wide, 42), queryCount, wide);
    const wideLayouts: BlockLayout[] = [...layouts, { blockRows: 8, groupWidth: 16 }];
    for (const layout of wideLayouts) {
      for (const backend of [cpu.one, cpu.split]) {
        // norms kept at the full stride only: other prefixes compute theirs from the blocks
        const options = { encoding: 'f32' as const, seed: 43, stride: wide, sizes: lengths, keptDim: wide };
        const rows = randomLists(backend.arena, options);
        const blocked = randomLists(backend.arena, { ...options, layout });
        for (const metric of METRICS as readonly Metric[]) {
          for (const d of [35, 128, 200, 300, 599, 600]) {
            const plain = new TopK(queryCount, 20);
            const got = new TopK(queryCount, 20);
            await backend.scanListsTopK(queries, rows, probes, lengths.length, d, metric, plain);
            await backend.scanListsTopK(queries, blocked, probes, lengths.length, d, metric, got);
            expectIdentical(got, plain);
            if (backend !== cpu.one) continue;
            for (let q = 0; q < queryCount; q++) {
              const alone = new TopK(1, 20);
              await backend.scanListsTopK(rowBlock(queries.data.subarray(q * wide, (q + 1) * wide), 1, wide), blocked, probes.subarray(q * lengths.length, (q + 1) * lengths.length), lengths.length, d, metric, alone);
              expectIdentical(rowOf(got, q), alone);
            }
          }
        }
      }
    }
  });
});
