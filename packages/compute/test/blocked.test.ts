import { describe, expect, it } from 'vitest';
import {
  blockedBytes,
  checkBlockLayout,
  METRICS,
  moveBlockedRow,
  readBlockedRow,
  ReferenceBackend,
  rowBlock,
  TopK,
  unblockRows,
  writeBlockedRow,
  type BlockLayout,
  type ListSet,
  type Metric,
} from '../src/index.js';
import { expectIdentical, expectSameTopK } from './compare.js';
import { cpuBackends, makeLists, makeProbes, randomLists, sizes, SPREAD_FILLER, stride, type ListsOptions } from './blocked-lists.js';
import { randomMatrix } from './naive.js';

// The prefix-blocked list layout (blocked.ts): its addressing round trip, and
// fused list scans over blocked lists. A blocked list scores every member
// exactly as the same list with its members one after another (the kernels
// add a member's products in the same order), on the CPU backend and the
// reference composition alike; and the CPU scan agrees with the reference.

describe('blocked rows', () => {
  const layout: BlockLayout = { blockRows: 4, groupWidth: 16 };
  const stride = 40; // groups of 16, 16 and a narrower 8

  it('write, read, move and unblock round-trip; rows past the size stay zero', () => {
    const rows = 11;
    const values = Uint8Array.from({ length: rows * stride }, (_, i) => 1 + (i % 251));
    const codes = new Uint8Array(blockedBytes(layout, stride, 1, rows));
    expect(codes.length).toBe(12 * stride);
    for (let r = 0; r < rows; r++) writeBlockedRow(codes, layout, stride, 1, r, values, r * stride);
    expect(Array.from(unblockRows(codes, layout, stride, 1, rows))).toEqual(Array.from(values));
    // group 0 of block 0 is elements 0..15 of rows 0..3 one after another; group 2 holds 8 elements per row
    expect(Array.from(codes.subarray(16, 32))).toEqual(Array.from(values.subarray(stride, stride + 16)));
    expect(Array.from(codes.subarray(4 * 32, 4 * 32 + 8))).toEqual(Array.from(values.subarray(32, 40)));
    const out = new Uint8Array(stride);
    readBlockedRow(codes, layout, stride, 1, 6, out, 0);
    expect(Array.from(out)).toEqual(Array.from(values.subarray(6 * stride, 7 * stride)));
    // remove row 2 the InvertedLists way: the last row (10) moves into it and its place is zeroed
    moveBlockedRow(codes, layout, stride, 1, 10, 2);
    readBlockedRow(codes, layout, stride, 1, 2, out, 0);
    expect(Array.from(out)).toEqual(Array.from(values.subarray(10 * stride, 11 * stride)));
    readBlockedRow(codes, layout, stride, 1, 10, out, 0);
    expect(out.every((x) => x === 0)).toBe(true);
  });

  it('refuses layouts the kernels cannot address', () => {
    expect(() => checkBlockLayout({ blockRows: 6, groupWidth: 16 })).toThrow(/blockRows must be a multiple of 4/);
    expect(() => checkBlockLayout({ blockRows: 32, groupWidth: 8 })).toThrow(/groupWidth must be a multiple of 16/);
    expect(() => checkBlockLayout({ blockRows: 0, groupWidth: 16 })).toThrow(/blockRows/);
  });
});

const reference = new ReferenceBackend();
const cpu = cpuBackends();

// prefixes on and off group boundaries (groups of 16; 17 is where the norms are kept; 40 is the whole stride, its last group 8 wide), and below 4
const dims = [1, 3, 8, 16, 17, 32, 35, 40];
const layouts: BlockLayout[] = [
  { blockRows: 32, groupWidth: 16 },
  { blockRows: 4, groupWidth: 32 },
];

describe('fused scans of blocked lists', () => {
  for (const encoding of ['f32', 'f16', 'sq8'] as const) {
    for (const metric of METRICS as readonly Metric[]) {
      it(`${encoding} lists, ${metric}: blocked scores equal row-major ones, and the reference's`, async () => {
        for (const layout of layouts) {
          for (const backend of [cpu.one, cpu.split, cpu.spread]) {
            const { rows, blocked } = makeLists(backend.arena, encoding, layout, 7, backend === cpu.spread ? SPREAD_FILLER : 0);
            if (backend === cpu.spread) expect(backend.arena.memories.length).toBeGreaterThan(1);
            for (const queryCount of [1, 7, 130]) {
              const queries = rowBlock(randomMatrix(queryCount, stride, queryCount + 3), queryCount, stride);
              const probes = makeProbes(queryCount, 5, queryCount);
              for (const d of queryCount === 130 ? [17, 40] : dims) {
                const k = queryCount === 1 ? 300 : 10;
                const plain = new TopK(queryCount, k);
                const got = new TopK(queryCount, k);
                await backend.scanListsTopK(queries, rows, probes, 5, d, metric, plain);
                await backend.scanListsTopK(queries, blocked, probes, 5, d, metric, got);
                expectIdentical(got, plain);
                if (backend === cpu.one) {
                  const want = new TopK(queryCount, k);
                  const wantRows = new TopK(queryCount, k);
                  await reference.scanListsTopK(queries, blocked, probes, 5, d, metric, want);
                  await reference.scanListsTopK(queries, rows, probes, 5, d, metric, wantRows);
                  expectIdentical(want, wantRows);
                  expectSameTopK(got, want);
                }
              }
            }
          }
        }
      });
    }
  }

  // fewer than four queries on a list of f16/sq8 blocks decode its rows in registers (kernels/cpu/simd.ts
  // scoreBlockedCoded) at whole-group prefixes where, for cosine, the lists keep the rows' norms: at 32 here
  for (const encoding of ['f16', 'sq8'] as const) {
    it(`${encoding} lists, cosine with norms kept at a whole-group prefix: rows decoded in registers score as decoded blocks`, async () => {
      const options: ListsOptions = { encoding, seed: 11, stride, sizes, keptDim: 32 };
      for (const backend of [cpu.one, cpu.split]) {
        const rows = randomLists(backend.arena, options);
        const blocked = randomLists(backend.arena, { ...options, layout: { blockRows: 32, groupWidth: 16 } });
        // 7 queries of 5 probes over 14 lists: some lists probed by fewer than four (in registers), some by more (decoded)
        for (const queryCount of [1, 3, 7]) {
          const queries = rowBlock(randomMatrix(queryCount, stride, queryCount + 5), queryCount, stride);
          const probes = makeProbes(queryCount, 5, queryCount + 1);
          const plain = new TopK(queryCount, 40);
          const got = new TopK(queryCount, 40);
          const want = new TopK(queryCount, 40);
          await backend.scanListsTopK(queries, rows, probes, 5, 32, 'cosine', plain);
          await backend.scanListsTopK(queries, blocked, probes, 5, 32, 'cosine', got);
          await reference.scanListsTopK(queries, blocked, probes, 5, 32, 'cosine', want);
          expectIdentical(got, plain);
          expectSameTopK(got, want);
        }
      }
    });
  }

  it('checks that a blocked list holds its whole blocks', async () => {
    const { blocked } = makeLists(cpu.one.arena, 'f32', layouts[0], 1);
    const short: ListSet = { ...blocked, codes: (l) => blocked.codes(l).subarray(0, sizes[l] * stride * 4) };
    const queries = rowBlock(randomMatrix(1, stride, 1), 1, stride);
    // list 2 has 5 members: 5 rows of bytes, a block of 32 needed
    await expect(cpu.one.scanListsTopK(queries, short, Int32Array.of(2), 1, 8, 'ip', new TopK(1, 3))).rejects.toThrow(/list 2 holds 800 bytes .* in blocks/);
    await expect(cpu.one.scanListsTopK(queries, { ...blocked, layout: { blockRows: 3, groupWidth: 16 } }, Int32Array.of(2), 1, 8, 'ip', new TopK(1, 3))).rejects.toThrow(/blockRows must be a multiple of 4/);
  });
});
