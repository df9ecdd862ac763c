import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fastScanBytes,
  floatToHalf,
  maskAllows,
  METRICS,
  packFastScan,
  ReferenceBackend,
  rowBlock,
  TopK,
  WasmSimdBackend,
  WebGpuBackend,
  type Backend,
  type FastScanLists,
  type ListSet,
  type PqQuantizer,
} from '../src/index.js';
import { expectSameTopK } from './compare.js';
import { randomMatrix } from './naive.js';

// Filters inside the scans (mask.ts): every scan op with a mask returns what
// it returns on the allowed members alone. The reference defines it (the op
// on compacted copies); the CPU kernels skip masked members in place (a
// list chunk with some masked is packed, a fast-scan block with none
// allowed is skipped) and must agree with it: every list encoding and
// metric, lists longer than a kernel chunk, masks of every density, a mask
// shorter than the ids (ids past it are not allowed), one thread and two.
// WebGPU (compacting on the host) too where an adapter exists (llvmpipe).

const stride = 20;
const dim = 13;
// 2600 members: more than one chunk of the float kernels at this prefix (chunkRows(13) = 1260)
const sizes = [0, 3, 40, 2600, 7, 150, 64];
const count = sizes.length;

/** Ids of list l: interleaved over lists, so a mask density applies to each. */
const idOf = (l: number, j: number) => j * count + l;
const maxId = Math.max(...sizes) * count;

function mask(density: number, seed: number, words = Math.ceil(maxId / 32) + 1): Uint32Array {
  const out = new Uint32Array(words);
  let s = seed;
  for (let id = 0; id < words * 32; id++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    if (s / 2 ** 32 < density) out[id >>> 5] |= 1 << (id & 31);
  }
  return out;
}

const MASKS: [string, Uint32Array][] = [
  ['every id', mask(1, 1)],
  ['half', mask(0.5, 2)],
  ['a tenth', mask(0.1, 3)],
  ['1%', mask(0.01, 4)],
  ['none', mask(0, 5)],
  ['short (ids past it masked)', mask(0.6, 6, 40)],
];

function floatLists(backend: Backend, encoding: 'f32' | 'f16' | 'sq8', seed: number): ListSet {
  const arena = backend.arena;
  const params = encoding === 'sq8' ? Float32Array.from({ length: 2 * stride }, (_, j) => (j < stride ? -0.5 : 1 / 255)) : undefined;
  const codes: Uint8Array[] = [];
  const ids: Int32Array[] = [];
  sizes.forEach((size, l) => {
    const values = randomMatrix(size, stride, seed + 31 * l);
    const bytes = encoding === 'f32' ? new Uint8Array(values.buffer) : encoding === 'f16' ? new Uint8Array(Uint16Array.from(values, (v) => floatToHalf(v * 3)).buffer) : Uint8Array.from(values, (v) => Math.floor((v + 0.5) * 255.99));
    const held = arena.uint8(Math.max(4, bytes.length));
    held.set(bytes);
    codes.push(held);
    const id = arena.int32(Math.max(1, size));
    id.set(Int32Array.from({ length: size }, (_, j) => idOf(l, j)));
    ids.push(id);
  });
  return { encoding, count, stride, ...(params ? { params } : {}), size: (l) => sizes[l], codes: (l) => codes[l], ids: (l) => ids[l] };
}

function pqLists(backend: Backend, m: number, seed: number): ListSet {
  const codes = sizes.map((size, l) => {
    const held = backend.arena.uint8(Math.max(1, size * m));
    held.set(Uint8Array.from({ length: size * m }, (_, i) => (i * 131 + l * 17 + seed) & 255));
    return held;
  });
  const ids = sizes.map((size, l) => Int32Array.from({ length: size }, (_, j) => idOf(l, j)));
  return { encoding: 'pq', count, stride: m, size: (l) => sizes[l], codes: (l) => codes[l], ids: (l) => ids[l] };
}

function fastLists(backend: Backend, m: number, seed: number): FastScanLists {
  const codes = sizes.map((size, l) => {
    const packed = backend.arena.uint8(Math.max(16 * m, fastScanBytes(m, size)));
    const code = new Uint8Array((m + 1) >> 1);
    for (let j = 0; j < size; j++) {
      for (let b = 0; b < code.length; b++) code[b] = (j * 37 + b * 11 + l * 5 + seed) & 255;
      if (m % 2 === 1) code[code.length - 1] &= 15;
      packFastScan(packed, m, j, code, 0);
    }
    return packed;
  });
  const ids = sizes.map((size, l) => {
    const id = backend.arena.int32(Math.max(1, size));
    id.set(Int32Array.from({ length: size }, (_, j) => idOf(l, j)));
    return id;
  });
  return { count, size: (l) => sizes[l], codes: (l) => codes[l], ids: (l) => ids[l] };
}

/** Every query probes every list (in a query-dependent order), with a -1. */
function probesOf(rows: number): Int32Array {
  const nprobe = count + 1;
  const probes = new Int32Array(rows * nprobe);
  for (let q = 0; q < rows; q++) for (let p = 0; p < nprobe; p++) probes[q * nprobe + p] = p === count ? -1 : (p + q) % count;
  return probes;
}

function expectAllowed(best: TopK, m: Uint32Array, what: string): void {
  for (let r = 0; r < best.rows; r++) for (let i = 0; i < best.sizes[r]; i++) if (!maskAllows(m, best.ids[r * best.k + i])) expect.fail(`${what}: row ${r} holds masked id ${best.ids[r * best.k + i]}`);
}

const reference = new ReferenceBackend();
let one: WasmSimdBackend;
let split: WasmSimdBackend;
let gpu: WebGpuBackend | undefined;
beforeAll(async () => {
  one = await WasmSimdBackend.create({ threads: 1 });
  split = await WasmSimdBackend.create({ threads: 2, parallelMinWork: 1 });
  try {
    gpu = await WebGpuBackend.create();
  } catch (e) {
    if (process.env.REQUIRE_WEBGPU === '1') throw e;
  }
});
afterAll(async () => {
  await one.dispose();
  await split.dispose();
  await gpu?.dispose();
});

const backends = (): [string, Backend][] => [['cpu, one thread', one], ['cpu, two threads', split], ...(gpu ? [['webgpu', gpu] as [string, Backend]] : [])];

describe('masked list scans = the scans of the allowed members', () => {
  for (const encoding of ['f32', 'f16', 'sq8'] as const) {
    for (const metric of METRICS) {
      it(`${encoding} lists, ${metric}`, async () => {
        for (const [name, backend] of backends()) {
          const lists = floatLists(backend, encoding, 7);
          for (const rows of [1, 7]) {
            const queries = rowBlock(randomMatrix(rows, stride, rows + 3), rows, stride);
            const probes = probesOf(rows);
            for (const [label, m] of MASKS) {
              for (const d of [dim, 4]) {
                const want = new TopK(rows, 25);
                const got = new TopK(rows, 25);
                await reference.scanListsTopK(queries, lists, probes, count + 1, d, metric, want, m);
                await backend.scanListsTopK(queries, lists, probes, count + 1, d, metric, got, m);
                expectAllowed(want, m, `${name}, ${label}`);
                expectSameTopK(got, want, name === 'webgpu' ? 1e-4 : 1e-5);
              }
            }
          }
        }
      });
    }
  }

  it('the reference keeps what an unmasked scan of the allowed members keeps', async () => {
    const lists = floatLists(reference, 'f32', 3);
    const queries = rowBlock(randomMatrix(3, stride, 9), 3, stride);
    const m = mask(0.3, 12);
    const probes = probesOf(3);
    const got = new TopK(3, 1000);
    await reference.scanListsTopK(queries, lists, probes, count + 1, dim, 'ip', got, m);
    const all = new TopK(3, 20000);
    await reference.scanListsTopK(queries, lists, probes, count + 1, dim, 'ip', all);
    got.sort();
    all.sort();
    for (let q = 0; q < 3; q++) {
      const allowed = Array.from(all.ids.subarray(q * all.k, q * all.k + all.sizes[q])).filter((id) => maskAllows(m, id));
      expect(Array.from(got.ids.subarray(q * got.k, q * got.k + got.sizes[q]))).toEqual(allowed.slice(0, 1000));
    }
  });

  for (const [name, residual, metric] of [['no residuals', false, 'ip'], ['ip residuals', true, 'ip'], ['l2 residuals', true, 'l2']] as const) {
    it(`PQ lists, ${name}`, async () => {
      const m = 4;
      const pq: PqQuantizer = {
        dim,
        m,
        codebooks: randomMatrix(256, dim, 5),
        bounds: Int32Array.of(0, 4, 7, 10, 13),
        ...(residual ? { refs: randomMatrix(count, dim, 6) } : {}),
      };
      for (const [label, backend] of backends()) {
        const lists = pqLists(backend, m, 3);
        for (const rows of [1, 7]) {
          const queries = rowBlock(randomMatrix(rows, dim, rows), rows, dim);
          for (const [maskName, mk] of MASKS) {
            const want = new TopK(rows, 20);
            const got = new TopK(rows, 20);
            await reference.pqScanListsTopK(queries, pq, lists, probesOf(rows), count + 1, metric, want, mk);
            await backend.pqScanListsTopK(queries, pq, lists, probesOf(rows), count + 1, metric, got, mk);
            expectAllowed(want, mk, `${label}, ${maskName}`);
            expectSameTopK(got, want, label === 'webgpu' ? 1e-4 : 1e-5);
          }
        }
      }
    });
  }

  it('fast-scan lists', async () => {
    const m = 5;
    for (const [label, backend] of backends()) {
      const lists = fastLists(backend, m, 2);
      for (const rows of [1, 7]) {
        const entries = rows * (count + 1);
        const tables = {
          query: Float32Array.from({ length: rows * m * 16 }, (_, i) => ((i * 53 + 7) % 255) * 0.01),
          listTerms: Float32Array.from({ length: lists.count * m * 16 }, (_, i) => ((i * 31 + 3) % 97) * 0.02),
          extra: Float32Array.from({ length: entries }, (_, i) => (i % 5) * 0.1),
        };
        for (const [maskName, mk] of MASKS) {
          const want = new TopK(rows, 30);
          const got = new TopK(rows, 30);
          await reference.fastScanListsTopK(tables, m, lists, probesOf(rows), rows, count + 1, want, mk);
          await backend.fastScanListsTopK(tables, m, lists, probesOf(rows), rows, count + 1, got, mk);
          expectAllowed(want, mk, `${label}, ${maskName}`);
          expectSameTopK(got, want, label === 'webgpu' ? 1e-4 : 1e-5);
        }
      }
    }
  });
});

describe('masked block scans', () => {
  it('scanTopK, scanCodedTopK, adcScanTopK and fastScanTopK skip masked rows', async () => {
    const n = 300;
    const base = rowBlock(randomMatrix(n, stride, 4), n, stride);
    const queries = rowBlock(randomMatrix(3, stride, 5), 3, stride);
    const ids = Int32Array.from({ length: n }, (_, j) => 5 * j + 1);
    const codes = Uint8Array.from({ length: n * 4 }, (_, i) => (i * 29) & 255);
    const tables = randomMatrix(3 * 4 * 256, 1, 6);
    const packed = new Uint8Array(fastScanBytes(4, n));
    for (let j = 0; j < n; j++) packFastScan(packed, 4, j, Uint8Array.of(j & 255, (j * 7) & 255), 0);
    const bytes = Uint8Array.from({ length: 3 * 4 * 16 }, (_, i) => (i * 13) & 255);
    const one3 = Float32Array.of(0.5, 0.25, 1);
    const f16 = { encoding: 'f16' as const, codes: new Uint8Array(Uint16Array.from(base.data, (v) => floatToHalf(v)).buffer), rows: n, stride };
    for (const [label, backend] of backends()) {
      for (const [maskName, mk] of MASKS) {
        const what = `${label}, ${maskName}`;
        for (const withIds of [true, false]) {
          const baseIds = withIds ? ids : undefined;
          const runs: [string, (b: Backend, best: TopK) => Promise<void>][] = [
            ['scanTopK', (b, best) => b.scanTopK(queries, base, dim, 'cosine', best, baseIds, undefined, mk)],
            ['scanCodedTopK', (b, best) => b.scanCodedTopK(queries, f16, dim, 'l2', best, baseIds, undefined, mk)],
            ['adcScanTopK', (b, best) => b.adcScanTopK(tables, 3, 4, codes, n, best, baseIds, undefined, undefined, mk)],
            ['fastScanTopK', (b, best) => b.fastScanTopK(bytes, 3, 4, packed, n, one3, one3, best, baseIds, undefined, mk)],
          ];
          for (const [op, run] of runs) {
            const want = new TopK(3, 40);
            const got = new TopK(3, 40);
            await run(reference, want);
            await run(backend, got);
            expectAllowed(want, mk, `${what}, ${op}`);
            expectSameTopK(got, want, label === 'webgpu' ? 1e-4 : 1e-5);
          }
        }
      }
    }
  });

  it('refuses a mask that is not a Uint32Array', async () => {
    const base = rowBlock(randomMatrix(4, stride, 4), 4, stride);
    await expect(reference.scanTopK(base, base, dim, 'ip', new TopK(4, 2), undefined, undefined, [1] as unknown as Uint32Array)).rejects.toThrow(/mask must be a Uint32Array/);
    await expect(one.scanListsTopK(base, floatLists(one, 'f32', 1), Int32Array.of(0, 0, 0, 0), 1, dim, 'ip', new TopK(4, 2), new Int32Array(2) as unknown as Uint32Array)).rejects.toThrow(/mask must be a Uint32Array/);
  });
});
