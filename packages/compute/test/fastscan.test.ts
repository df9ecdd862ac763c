import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  allocateLike,
  fastScanBytes,
  fastScanCodeBytes,
  fastScanNibble,
  fastScanScore,
  moveFastScan,
  packFastScan,
  quantizeFastScanTable,
  ReferenceBackend,
  TopK,
  unpackFastScan,
  WasmSimdBackend,
  WebGpuBackend,
  type ArrayArena,
  type Backend,
  type FastScanLists,
  type FastScanTables,
} from '../src/index.js';
import { expectSameTopK } from './compare.js';

// 4-bit fast-scan: the SIMD kernel (16-bit lanes, runs of 256 sub-quantisers,
// integer threshold filter) against the reference's plain integer sums. The
// sums are exact, so ids and scores must be identical, not merely close.

const reference = new ReferenceBackend();
let simd: WasmSimdBackend;
let pooled: WasmSimdBackend;
let gpu: WebGpuBackend | undefined;

beforeAll(async () => {
  simd = await WasmSimdBackend.create({ threads: 1 });
  pooled = await WasmSimdBackend.create({ threads: 2, parallelMinWork: 1 });
  try {
    gpu = await WebGpuBackend.create();
  } catch (e) {
    if (process.env.REQUIRE_WEBGPU === '1') throw e;
  }
});
afterAll(async () => {
  await simd.dispose();
  await pooled.dispose();
  await gpu?.dispose();
});

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** `rows` random 4-bit codes (ceil(m/2) bytes each) and their block layout. */
function randomCodes(m: number, rows: number, seed: number, values = 16): { flat: Uint8Array; packed: Uint8Array; nibbles: number[][] } {
  const r = rng(seed);
  const bytes = fastScanCodeBytes(m);
  const flat = new Uint8Array(rows * bytes);
  const nibbles: number[][] = [];
  for (let j = 0; j < rows; j++) {
    const code = Array.from({ length: m }, () => Math.floor(r() * values));
    nibbles.push(code);
    code.forEach((c, s) => (flat[j * bytes + (s >> 1)] |= c << (s & 1 ? 4 : 0)));
  }
  const packed = new Uint8Array(fastScanBytes(m, rows));
  for (let j = 0; j < rows; j++) packFastScan(packed, m, j, flat, j * bytes);
  return { flat, packed, nibbles };
}

function identical(a: TopK, b: TopK): void {
  a.sort();
  b.sort();
  expect(Array.from(a.sizes)).toEqual(Array.from(b.sizes));
  expect(Array.from(a.ids)).toEqual(Array.from(b.ids));
  expect(Array.from(a.scores)).toEqual(Array.from(b.scores));
}

interface Case {
  m: number;
  rows: number;
  /** Distinct table values (few: many tied sums). */
  levels: number;
  /** Largest table value. */
  top: number;
}

/** Two calls (a list split in two, block-aligned or not) into the same heaps, mapped ids and query rows. */
async function run(backend: Backend, c: Case, k: number, seed: number, queries = 3): Promise<TopK> {
  const r = rng(seed);
  const tables = Uint8Array.from({ length: queries * c.m * 16 }, () => Math.round((Math.floor(r() * c.levels) / Math.max(1, c.levels - 1)) * c.top));
  const scales = Float32Array.from({ length: queries }, () => 0.001 + r() * 0.01);
  const bias = Float32Array.from({ length: queries }, () => r() * 4 - 2);
  const rowsOf = Int32Array.of(4, 0, 2).subarray(0, queries);
  const best = new TopK(5, k);
  const cut = Math.floor(c.rows / 3);
  for (const [from, to] of [[0, cut], [cut, c.rows]]) {
    const { packed } = randomCodes(c.m, to - from, seed * 7 + from);
    const ids = Int32Array.from({ length: to - from }, (_, j) => 1000 + from + j);
    await backend.fastScanTopK(tables, queries, c.m, packed, to - from, scales, bias, best, ids, rowsOf);
  }
  return best;
}

const CASES: Case[] = [
  { m: 1, rows: 1, levels: 256, top: 255 },
  { m: 2, rows: 31, levels: 3, top: 2 },
  { m: 3, rows: 33, levels: 256, top: 255 },
  { m: 16, rows: 100, levels: 256, top: 255 },
  { m: 16, rows: 257, levels: 2, top: 1 }, // heavy ties: order by id decides
  { m: 31, rows: 96, levels: 256, top: 255 },
  { m: 256, rows: 70, levels: 2, top: 255 }, // sums up to 65280: the 16-bit lanes wrap in the even/odd trick
  { m: 300, rows: 45, levels: 256, top: 255 }, // two runs widened to 32 bits
];

describe('fast-scan block layout', () => {
  it('packs, reads, unpacks and moves codes at fixed places', () => {
    for (const m of [1, 2, 5, 32]) {
      const rows = 70;
      const { flat, packed, nibbles } = randomCodes(m, rows, m);
      expect(packed.length).toBe(Math.ceil(rows / 32) * 16 * m);
      for (let j = 0; j < rows; j++) for (let s = 0; s < m; s++) expect(fastScanNibble(packed, m, j, s)).toBe(nibbles[j][s]);
      const out = new Uint8Array(flat.length);
      for (let j = 0; j < rows; j++) unpackFastScan(packed, m, j, out, j * fastScanCodeBytes(m));
      expect(Array.from(out)).toEqual(Array.from(flat));
      // the last member fills a hole; its old place is zero afterwards
      moveFastScan(packed, m, rows - 1, 5);
      for (let s = 0; s < m; s++) {
        expect(fastScanNibble(packed, m, 5, s)).toBe(nibbles[rows - 1][s]);
        expect(fastScanNibble(packed, m, rows - 1, s)).toBe(0);
        expect(fastScanNibble(packed, m, 4, s)).toBe(nibbles[4][s]);
        expect(fastScanNibble(packed, m, rows - 17, s)).toBe(nibbles[rows - 17][s]); // the other nibble of the byte it left
      }
    }
  });

  it('scores sums exactly in float32, multiply then add', () => {
    expect(fastScanScore(3, 0.1, 1)).toBe(Math.fround(Math.fround(3 * Math.fround(0.1)) + 1));
  });
});

describe('fastScanTopK equals the reference exactly', () => {
  for (const c of CASES) {
    it(`m = ${c.m}, ${c.rows} rows, ${c.levels} table levels up to ${c.top}`, async () => {
      // one query: the pool splits the rows (per-thread heaps merged); three: it splits the queries
      for (const queries of [1, 3]) {
        for (const k of [1, 10, c.rows + 5]) {
          const want = await run(reference, c, k, c.m + c.rows, queries);
          identical(await run(simd, c, k, c.m + c.rows, queries), want);
          identical(await run(pooled, c, k, c.m + c.rows, queries), want);
        }
      }
    });
  }

  it('checks its arguments', async () => {
    const best = new TopK(1, 1);
    const one = Float32Array.of(1);
    await expect(simd.fastScanTopK(new Uint8Array(10), 1, 1, new Uint8Array(16), 1, one, one, best)).rejects.toThrow(/tables hold 10 bytes/);
    await expect(reference.fastScanTopK(new Uint8Array(16), 1, 1, new Uint8Array(15), 1, one, one, best)).rejects.toThrow(/codes hold 15 bytes/);
    await expect(simd.fastScanTopK(new Uint8Array(32), 2, 1, new Uint8Array(16), 1, one, one, best)).rejects.toThrow(/scales or biases/);
  });
});

/**
 * Lists of random codes (sizes unaligned, one empty), probes with -1 and
 * repeats across queries; in `arena` (the CPU backend's memory, where its
 * fused kernel reads lists in place, as an index keeps them) when given.
 */
function randomLists(m: number, seed: number, arena?: ArrayArena): FastScanLists & { sizes: number[] } {
  const sizes = [70, 0, 33, 1, 128, 45];
  const place = <T extends Uint8Array | Int32Array>(array: T): T => {
    if (!arena) return array;
    const out = allocateLike(arena, array, array.length);
    out.set(array);
    return out;
  };
  const packed = sizes.map((n, l) => place(randomCodes(m, n, seed + l).packed));
  const ids = sizes.map((n, l) => place(Int32Array.from({ length: n }, (_, j) => 1000 * l + j)));
  return { count: sizes.length, sizes, size: (l) => sizes[l], codes: (l) => packed[l], ids: (l) => ids[l] };
}

/**
 * Float tables for `queries` queries: random entries, one query's table
 * constant (a zero query: span 0), one on a grid of half steps (v - lo lands
 * on x.5 steps, where rounding decides), and per-list terms when `terms`.
 */
function floatTables(m: number, queries: number, terms: boolean, extra: boolean, seed: number, listCount: number, nprobe: number): FastScanTables {
  const r = rng(seed);
  const size = m * 16;
  const query = Float32Array.from({ length: queries * size }, () => r() * 10 - 5);
  if (queries > 1) query.fill(0.75, size, 2 * size);
  if (queries > 2) for (let e = 0; e < size; e++) query[2 * size + e] = -1 + ((e * 7) % 511) * (3 / 510);
  return {
    query,
    ...(terms ? { listTerms: Float32Array.from({ length: listCount * size }, () => r() * 20 - 10) } : {}),
    ...(extra ? { extra: Float32Array.from({ length: queries * nprobe }, () => r() * 4 - 2) } : {}),
  };
}

async function runLists(backend: Backend, m: number, terms: boolean, extra: boolean, queries: number, k: number, seed: number): Promise<TopK> {
  const nprobe = 4;
  const lists = randomLists(m, seed, backend.arena);
  const probes = Int32Array.from({ length: queries * nprobe }, (_, i) => [0, 2, 4, -1, 1, 5, 3, 0, 5, 4, 2, 1][(i + seed) % 12]);
  const best = new TopK(queries, k);
  await backend.fastScanListsTopK(floatTables(m, queries, terms, extra, seed, lists.count, nprobe), m, lists, probes, queries, nprobe, best);
  return best;
}

describe('quantizeFastScanTable (the byte tables every backend scans)', () => {
  it('subtracts each sub-quantiser\'s minimum and shares one scale', () => {
    const values = Float32Array.from({ length: 2 * 16 }, (_, i) => (i < 16 ? i * 0.5 : -3 + (i - 16) * 0.1));
    const out = new Uint8Array(32);
    const [scale, low] = quantizeFastScanTable(values, 0, 2, out, 0);
    // spans 7.5 and 1.5: the larger maps to 255, the other to 51
    expect(out[0]).toBe(0);
    expect(out[15]).toBe(255);
    expect(out[16]).toBe(0);
    expect(out[31]).toBe(51);
    expect(low).toBe(Math.fround(-3));
    expect(scale).toBe(Math.fround(1 / Math.fround(255 / 7.5)));
    // a code's float score is recovered to within half a step per sub-quantiser
    const approx = low + (out[7] + out[16 + 9]) * scale;
    expect(Math.abs(approx - (7 * 0.5 + -3 + 9 * 0.1))).toBeLessThanOrEqual(scale);
  });

  it('maps a constant table to zero bytes with scale 1', () => {
    const out = new Uint8Array(16).fill(9);
    expect(quantizeFastScanTable(new Float32Array(16).fill(-2), 0, 1, out, 0)).toEqual([1, -2]);
    expect(Array.from(out)).toEqual(new Array(16).fill(0));
  });
});

describe('fastScanListsTopK (every probed list of a batch in one call)', () => {
  it('equals one fastScanTopK per probe on the host-quantised tables exactly: per-query and per-list tables, with and without probe biases', async () => {
    for (const m of [3, 16, 32]) {
      for (const terms of [false, true]) {
        for (const extra of [false, true]) {
          // one query: the pool splits the probes; five: the queries
          for (const queries of [1, 5]) {
            for (const k of [1, 10, 300]) {
              const want = await runLists(reference, m, terms, extra, queries, k, m + queries);
              identical(await runLists(simd, m, terms, extra, queries, k, m + queries), want);
              identical(await runLists(pooled, m, terms, extra, queries, k, m + queries), want);
            }
          }
        }
      }
    }
  });

  it('checks its arguments', async () => {
    const lists = randomLists(2, 1);
    const query = new Float32Array(32);
    await expect(simd.fastScanListsTopK({ query }, 2, lists, Int32Array.of(9, 0, 0, 0), 1, 4, new TopK(1, 1))).rejects.toThrow(/probe 0 names list 9, not one of the 6 lists/);
    await expect(reference.fastScanListsTopK({ query: new Float32Array(31) }, 2, lists, Int32Array.of(0, 0, 0, 0), 1, 4, new TopK(1, 1))).rejects.toThrow(/tables hold 31 floats, 1 queries x 2 x 16 needed/);
    await expect(simd.fastScanListsTopK({ query, listTerms: new Float32Array(32) }, 2, lists, Int32Array.of(0, 0, 0, 0), 1, 4, new TopK(1, 1))).rejects.toThrow(/list terms hold 32 floats, 6 lists x 2 x 16 needed/);
    await expect(reference.fastScanListsTopK({ query, extra: new Float32Array(3) }, 2, lists, Int32Array.of(0, 0, 0, 0), 1, 4, new TopK(1, 1))).rejects.toThrow(/3 probe biases for 4 probes/);
    const shortIds = { ...lists, ids: (l: number) => lists.ids(l).subarray(0, Math.max(0, lists.size(l) - 1)) };
    for (const backend of [simd, reference]) {
      await expect(backend.fastScanListsTopK({ query }, 2, shortIds, Int32Array.of(0, 2, 4, -1), 1, 4, new TopK(1, 1))).rejects.toThrow(/list 0 has 69 ids for 70 members/);
    }
  });
});

describe('fastScanTopK on WebGPU', () => {
  it('agrees with the reference (small sizes: llvmpipe is slow)', async (ctx) => {
    if (!gpu) ctx.skip();
    for (const c of [CASES[1], CASES[2], CASES[4], CASES[5]]) {
      for (const k of [1, 10]) {
        // f32 multiply-add on the device may be contracted: scores agree to rounding
        expectSameTopK(await run(gpu!, c, k, c.m + c.rows), await run(reference, c, k, c.m + c.rows), 1e-6);
      }
    }
    // the fused list scan (one dispatch per block of queries): per-query and per-pair tables, with and without probe biases
    for (const [m, terms, extra, queries] of [[16, true, true, 2], [3, false, false, 5], [32, false, true, 1], [5, true, false, 5]] as const) {
      expectSameTopK(await runLists(gpu!, m, terms, extra, queries, 10, 7), await runLists(reference, m, terms, extra, queries, 10, 7), 1e-6);
    }
    // bindings too small for a batch: blocks of fewer queries (16 KiB), or each query alone, per probe (8 KiB)
    for (const maxBindingBytes of [16 * 1024, 8 * 1024]) {
      const small = await WebGpuBackend.create({ maxBindingBytes });
      try {
        expectSameTopK(await runLists(small, 16, true, true, 5, 10, 3), await runLists(reference, 16, true, true, 5, 10, 3), 1e-6);
        expectSameTopK(await runLists(small, 8, false, true, 5, 10, 4), await runLists(reference, 8, false, true, 5, 10, 4), 1e-6);
      } finally {
        await small.dispose();
      }
    }
  });
});
