import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fastScanBytes,
  fastScanCodeBytes,
  fastScanNibble,
  fastScanScore,
  moveFastScan,
  packFastScan,
  ReferenceBackend,
  TopK,
  unpackFastScan,
  WasmSimdBackend,
  WebGpuBackend,
  type Backend,
  type FastScanLists,
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

/** Lists of random codes (sizes unaligned, one empty), probes with -1 and repeats across queries. */
function randomLists(m: number, seed: number): FastScanLists & { sizes: number[] } {
  const sizes = [70, 0, 33, 1, 128, 45];
  const packed = sizes.map((n, l) => randomCodes(m, n, seed + l).packed);
  const ids = sizes.map((n, l) => Int32Array.from({ length: n }, (_, j) => 100 * l + j));
  return { count: sizes.length, sizes, size: (l) => sizes[l], codes: (l) => packed[l], ids: (l) => ids[l] };
}

async function runLists(backend: Backend, m: number, perProbe: boolean, queries: number, k: number, seed: number): Promise<TopK> {
  const nprobe = 4;
  const r = rng(seed);
  const lists = randomLists(m, seed);
  const probes = Int32Array.from({ length: queries * nprobe }, (_, i) => [0, 2, 4, -1, 1, 5, 3, 0, 5, 4, 2, 1][(i + seed) % 12]);
  const tables = Uint8Array.from({ length: (perProbe ? queries * nprobe : queries) * m * 16 }, () => Math.floor(r() * 256));
  const scales = Float32Array.from({ length: queries * nprobe }, () => 0.001 + r() * 0.01);
  const bias = Float32Array.from({ length: queries * nprobe }, () => r() * 4 - 2);
  const best = new TopK(queries, k);
  await backend.fastScanListsTopK(tables, perProbe, scales, bias, m, lists, probes, queries, nprobe, best);
  return best;
}

describe('fastScanListsTopK (every probed list of a batch in one call)', () => {
  it('equals one fastScanTopK per probe exactly, with per-query and per-probe tables', async () => {
    for (const m of [3, 16, 32]) {
      for (const perProbe of [false, true]) {
        // one query: the pool splits the probes; five: the queries
        for (const queries of [1, 5]) {
          for (const k of [1, 10, 300]) {
            const want = await runLists(reference, m, perProbe, queries, k, m + queries);
            identical(await runLists(simd, m, perProbe, queries, k, m + queries), want);
            identical(await runLists(pooled, m, perProbe, queries, k, m + queries), want);
          }
        }
      }
    }
  });

  it('checks its arguments', async () => {
    const lists = randomLists(2, 1);
    const one = new Float32Array(4);
    await expect(simd.fastScanListsTopK(new Uint8Array(32), false, one, one, 2, lists, Int32Array.of(9, 0, 0, 0), 1, 4, new TopK(1, 1))).rejects.toThrow(/probe 0 names list 9, not one of the 6 lists/);
    await expect(reference.fastScanListsTopK(new Uint8Array(32), true, one, one, 2, lists, Int32Array.of(0, 0, 0, 0), 1, 4, new TopK(1, 1))).rejects.toThrow(/tables hold 32 bytes, 4 tables x 2 x 16 needed/);
    const shortIds = { ...lists, ids: (l: number) => lists.ids(l).subarray(0, Math.max(0, lists.size(l) - 1)) };
    for (const backend of [simd, reference]) {
      await expect(backend.fastScanListsTopK(new Uint8Array(32), false, one, one, 2, shortIds, Int32Array.of(0, 2, 4, -1), 1, 4, new TopK(1, 1))).rejects.toThrow(/list 0 has 69 ids for 70 members/);
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
    expectSameTopK(await runLists(gpu!, 16, true, 2, 10, 7), await runLists(reference, 16, true, 2, 10, 7), 1e-6);
  });
});
