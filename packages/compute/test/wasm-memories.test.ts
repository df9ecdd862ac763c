import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codedRows, METRICS, rowBlock, TopK, WasmArena, WasmSimdBackend, type RowBlock } from '../src/index.js';
import { expectIdentical } from './compare.js';
import { randomMatrix } from './naive.js';

// The CPU backend's arena over several WebAssembly memories: a per-memory cap
// forced tiny spreads arrays over memories, and every kernel must give
// bit-identical results to the same arrays in one memory, on 1 and 2 threads.

const CAP = 1 << 20; // 16 pages: 512 KiB for arrays, 512 KiB kept for staging
/** One full wasm32 memory, the default, given explicitly so that ADANNS_WASM_MEMORY_BYTES cannot change these tests. */
const FULL = 2 ** 32;
const stride = 48, dim = 40, rows = 2600;

let one: WasmSimdBackend;
let many: WasmSimdBackend;

beforeAll(async () => {
  one = await WasmSimdBackend.create({ threads: 1, maxMemoryBytes: FULL });
  // every call split across two threads, however small, so workers run on every memory
  many = await WasmSimdBackend.create({ threads: 2, parallelMinWork: 1, maxMemoryBytes: CAP });
});
afterAll(async () => {
  await one.dispose();
  await many.dispose();
});

function copyInto<T extends Float32Array | Int32Array | Uint8Array>(target: T, values: ArrayLike<number>): T {
  target.set(values);
  return target;
}

/** Index-like arrays of one backend: two lists' rows, ids and norms, PQ and sq8 codes, in its arena. */
async function place(backend: WasmSimdBackend, warmUp?: (dataA: Float32Array) => Promise<void>) {
  const arena = backend.arena;
  const dataA = copyInto(arena.float32(rows * stride), randomMatrix(rows, stride, 1));
  await warmUp?.(dataA);
  const dataB = copyInto(arena.float32(rows * stride), randomMatrix(rows, stride, 2));
  // fill list A's memory, so that its ids and norms go to another one
  const fill: Uint8Array[] = [];
  const home = arena.locate(dataA)!.memory;
  while (arena.memories.length > 1 && (fill.length === 0 || arena.locate(fill[fill.length - 1])!.memory === home)) fill.push(arena.uint8(4096));
  const idsA = copyInto(arena.int32(rows), Int32Array.from({ length: rows }, (_, j) => 7 * j + 3));
  const normsA = arena.float32(rows);
  for (let j = 0; j < rows; j++) {
    let s = 0;
    for (let i = 0; i < dim; i++) s += dataA[j * stride + i] ** 2;
    normsA[j] = 1 / Math.sqrt(s);
  }
  const idsB = copyInto(arena.int32(rows), Int32Array.from({ length: rows }, (_, j) => 100_000 + j));
  const pq = copyInto(arena.uint8(rows * 8), Uint8Array.from(randomMatrix(rows, 8, 3), (x) => Math.floor((x + 0.5) * 256)));
  const sq8 = copyInto(arena.uint8(rows * stride), Uint8Array.from(randomMatrix(rows, stride, 4), (x) => Math.floor((x + 0.5) * 256)));
  const sq8Params = copyInto(arena.float32(2 * stride), Float32Array.from({ length: 2 * stride }, (_, j) => (j < stride ? -0.5 : 1 / 255)));
  return { arena, dataA, dataB, fill, idsA, normsA, idsB, pq, sq8, sq8Params };
}

describe('WasmSimdBackend over several memories', () => {
  it('spreads arrays over memories, each wholly in one, and every kernel matches one memory bit for bit', async () => {
    const q = rowBlock(randomMatrix(9, stride, 5), 9, stride);
    const x = await place(one);
    // a first call on both threads runs before list B opens a second memory: the workers must take that memory later
    const y = await place(many, async (dataA) => {
      expect(many.arena.memories.length).toBe(1);
      await many.scanTopK(q, rowBlock(dataA, 100, stride), dim, 'ip', new TopK(9, 3));
    });
    expect(one.arena.memories.length).toBe(1);
    expect(many.arena.memories.length).toBeGreaterThanOrEqual(2);
    const where = (a: ArrayBufferView) => many.arena.locate(a)!.memory;
    expect(where(y.dataA)).not.toBe(where(y.dataB));
    expect(where(y.idsA)).not.toBe(where(y.dataA)); // list A's ids and norms must be staged into its memory
    expect(where(y.normsA)).not.toBe(where(y.dataA));
    expect(where(y.pq)).not.toBe(where(y.dataA));

    const block = (s: typeof x, list: 'A' | 'B', norms: boolean): RowBlock =>
      rowBlock(list === 'A' ? s.dataA : s.dataB, rows, stride, 0, norms && list === 'A' ? s.normsA : undefined);
    for (const metric of METRICS) {
      for (const k of [1, 10, 500]) {
        const queryRows = Int32Array.from([8, 0, 3, 1, 2, 4, 5, 6, 7]);
        const [a, b] = [new TopK(9, k), new TopK(9, k)];
        for (const [s, best, backend] of [[x, a, one], [y, b, many]] as const) {
          await backend.scanTopK(q, block(s, 'A', true), dim, metric, best, s.idsA, queryRows);
          await backend.scanTopK(q, block(s, 'B', false), dim, metric, best, s.idsB, queryRows);
          await backend.scanTopK(rowBlock(q.data, 1, stride, 2 * stride), block(s, 'A', false), dim, metric, best, s.idsA, Int32Array.of(5));
        }
        expectIdentical(b, a);
      }
      const [sa, sb] = [new Float32Array(9 * rows), new Float32Array(9 * rows)];
      await one.score(q, block(x, 'A', true), dim, metric, sa);
      await many.score(q, block(y, 'A', true), dim, metric, sb);
      expect(Array.from(sb)).toEqual(Array.from(sa));
      // output in the arena, in another memory than the base
      const out = many.arena.float32(2 * rows);
      const other = where(out) === where(y.dataB) ? 'A' : 'B';
      await many.score(rowBlock(q.data, 2, stride), block(y, other, false), dim, metric, out);
      const want = new Float32Array(2 * rows);
      await one.score(rowBlock(q.data, 2, stride), block(x, other, false), dim, metric, want);
      expect(Array.from(out)).toEqual(Array.from(want));
      many.arena.release(out);

      const candidates = new TopK(9, 50);
      for (let i = 0; i < 9; i++) for (let j = 0; j < 50; j++) candidates.push(i, (i * 131 + j * 17) % rows, j);
      const [ra, rb] = [new TopK(9, 10), new TopK(9, 10)];
      await one.rescoreTopK(q, block(x, 'A', true), dim, metric, candidates, ra);
      await many.rescoreTopK(q, block(y, 'A', true), dim, metric, candidates, rb);
      expectIdentical(rb, ra);

      const [ca, cb] = [new TopK(9, 10), new TopK(9, 10)];
      await one.scanCodedTopK(q, codedRows('sq8', x.sq8, rows, stride, x.sq8Params), dim, metric, ca, x.idsA);
      await many.scanCodedTopK(q, codedRows('sq8', y.sq8, rows, stride, y.sq8Params), dim, metric, cb, y.idsA);
      expectIdentical(cb, ca);

      const labels = [new Int32Array(9), many.arena.int32(9)];
      const scores = [new Float32Array(9), new Float32Array(9)];
      await one.assign(q, block(x, 'B', false), dim, metric, labels[0], scores[0]);
      await many.assign(q, block(y, 'B', false), dim, metric, labels[1], scores[1]);
      expect(Array.from(labels[1])).toEqual(Array.from(labels[0]));
      expect(Array.from(scores[1])).toEqual(Array.from(scores[0]));
      many.arena.release(labels[1]);
    }

    const tables = randomMatrix(3, 8 * 256, 6);
    const [pa, pb] = [new TopK(3, 20), new TopK(3, 20)];
    await one.adcScanTopK(tables, 3, 8, x.pq, rows, pa, x.idsA, undefined, Float32Array.of(0.5, 0, -1));
    await many.adcScanTopK(tables, 3, 8, y.pq, rows, pb, y.idsA, undefined, Float32Array.of(0.5, 0, -1));
    expectIdentical(pb, pa);

    const labels = [one.arena.int32(rows), many.arena.int32(rows)];
    for (const l of labels) for (let j = 0; j < rows; j++) l[j] = (j * 7) % 13;
    const list = where(labels[1]) === where(y.dataA) ? 'B' : 'A'; // labels in another memory than the vectors
    const sums = [new Float32Array(13 * dim), new Float32Array(13 * dim)];
    const counts = [new Int32Array(13), new Int32Array(13)];
    await one.centroidSums(block(x, list, false), dim, labels[0], 13, sums[0], counts[0]);
    await many.centroidSums(block(y, list, false), dim, labels[1], 13, sums[1], counts[1]);
    expect(Array.from(sums[1])).toEqual(Array.from(sums[0]));
    expect(Array.from(counts[1])).toEqual(Array.from(counts[0]));

    for (const s of [x, y]) for (const a of [...s.fill, s.dataA, s.dataB, s.idsA, s.normsA, s.idsB, s.pq, s.sq8, s.sq8Params]) s.arena.release(a);
    one.arena.release(labels[0]);
    many.arena.release(labels[1]);
  });
});

describe('WasmArena limits', () => {
  it('rejects per-memory caps that are not whole pages of one wasm32 memory', () => {
    expect(() => new WasmArena({ maxMemoryBytes: 1000 })).toThrow(/maxMemoryBytes 1000 must be a multiple of 65536/);
    expect(() => new WasmArena({ maxMemoryBytes: 2 ** 33 })).toThrow(/4 GiB/);
    const saved = process.env.ADANNS_WASM_MEMORY_BYTES;
    process.env.ADANNS_WASM_MEMORY_BYTES = '1MB';
    try {
      expect(() => new WasmArena()).toThrow(/ADANNS_WASM_MEMORY_BYTES "1MB"/);
      process.env.ADANNS_WASM_MEMORY_BYTES = String(4 * 65536);
      expect(new WasmArena().memoryBytes).toBe(4 * 65536);
    } finally {
      if (saved === undefined) delete process.env.ADANNS_WASM_MEMORY_BYTES;
      else process.env.ADANNS_WASM_MEMORY_BYTES = saved;
    }
  });

  it('refuses an array larger than one memory, naming the sizes', () => {
    const arena = new WasmArena({ maxMemoryBytes: CAP });
    expect(arena.maxArrayBytes).toBeLessThan(CAP);
    expect(() => arena.float32(CAP / 4)).toThrow(new RegExp(`array of ${CAP} bytes does not fit in one memory \\(at most ${arena.maxArrayBytes} bytes`));
    expect(arena.memories.length).toBe(1);
    // the largest array still fits, alone in a memory
    arena.uint8(arena.maxArrayBytes);
  });

  it('opens memories until the limit, then fails with the bytes asked and in use; released bytes are reused', () => {
    const arena = new WasmArena({ maxMemoryBytes: CAP, maxMemories: 2 });
    const held: Uint8Array[] = [];
    for (let i = 0; i < 4; i++) held.push(arena.uint8(200_000)); // two to a memory
    expect(arena.memories.length).toBe(2);
    expect(held.map((a) => arena.locate(a)!.memory)).toEqual([0, 0, 1, 1]);
    const inUse = arena.inUse;
    expect(() => arena.uint8(200_000)).toThrow(new RegExp(`out of WebAssembly memory: asked for 200000 bytes .*2 memories .* hold ${inUse} bytes .* in use, and the limit is 2 memories`));
    arena.release(held[1]);
    expect(arena.inUse).toBe(inUse - 200_000);
    const again = arena.uint8(200_000);
    expect(arena.locate(again)).toEqual(arena.locate(held[1]));
    expect(again.every((v) => v === 0)).toBe(true);
  });

  it('knows its arrays in a memory after another memory grew (V8 then renews every shared buffer object)', async () => {
    const arena = new WasmArena({ maxMemoryBytes: 64 << 20 }); // 32 MiB for arrays; memories start at 16 MiB and grow
    const a = arena.uint8(20 << 20); // never written: reserved, not resident
    const b = arena.uint8(20 << 20);
    expect([arena.locate(a)!.memory, arena.locate(b)!.memory]).toEqual([0, 1]);
    expect(arena.memories[1].bytes).toBeGreaterThan(16 << 20); // the second memory grew
    const c = arena.float32(100);
    expect(arena.locate(c)).toEqual({ memory: 0, address: expect.any(Number) });
    arena.release(c);
    expect(arena.inUse).toBe((20 << 20) * 2);
  });

  it('still runs calls once the arena is exhausted: copies go to the staging reserve, or fail with a clear error', async () => {
    const backend = await WasmSimdBackend.create({ threads: 1, maxMemoryBytes: CAP, maxMemories: 1 });
    try {
      const data = backend.arena.float32(rows * stride);
      data.set(randomMatrix(rows, stride, 9));
      expect(() => backend.arena.float32(100_000)).toThrow(/out of WebAssembly memory: asked for 400000 bytes/);
      const q = rowBlock(randomMatrix(4, stride, 10), 4, stride);
      const [a, b] = [new TopK(4, 5), new TopK(4, 5)];
      await backend.scanTopK(q, rowBlock(data, rows, stride), dim, 'l2', a);
      await one.scanTopK(q, rowBlock(Float32Array.from(data), rows, stride), dim, 'l2', b);
      expectIdentical(a, b);
      // heap rows too large for the staging room: an error that says so, not a crash
      const big = rowBlock(randomMatrix(3000, stride, 11), 3000, stride);
      await expect(backend.scanTopK(q, big, dim, 'l2', new TopK(4, 5))).rejects.toThrow(/out of WebAssembly memory: a kernel call needs 5\d{5} bytes of staging and no memory has room \(1 memory of at most/);
      // and nothing was left half-done: the next call still works
      await backend.scanTopK(q, rowBlock(data, rows, stride), dim, 'l2', new TopK(4, 5));
    } finally {
      await backend.dispose();
    }
  });

  it('holds more than 4 GiB at the default cap: lists in both memories scan as on the heap', async () => {
    const big = await WasmSimdBackend.create({ threads: 2, parallelMinWork: 1, maxMemoryBytes: FULL });
    try {
      // pads never written (reserved, not resident): the first fills the first memory but for two lists
      const listBytes = 500 * stride * 4;
      big.arena.uint8(big.arena.maxArrayBytes - 2 * listBytes - 1024);
      const list = (seed: number) => copyInto(big.arena.float32(500 * stride), randomMatrix(500, stride, seed));
      const lists = [list(20), list(21)];
      big.arena.uint8(1e8);
      lists.push(list(22));
      expect(big.arena.memories.length).toBe(2);
      expect(big.arena.inUse).toBeGreaterThan(2 ** 32);
      expect(lists.map((l) => big.arena.locate(l)!.memory)).toEqual([0, 0, 1]);
      expect(() => big.arena.uint8(2 ** 32)).toThrow(/array of 4294967296 bytes does not fit in one memory \(at most 4227858368 bytes/);
      const q = rowBlock(randomMatrix(3, stride, 23), 3, stride);
      for (const l of lists) {
        const [a, b] = [new TopK(3, 10), new TopK(3, 10)];
        await big.scanTopK(q, rowBlock(l, 500, stride), dim, 'cosine', a);
        await one.scanTopK(q, rowBlock(Float32Array.from(l), 500, stride), dim, 'cosine', b);
        expectIdentical(a, b);
      }
    } finally {
      await big.dispose();
    }
  });

  it('reads and stages arrays that lie above 2 GiB in a memory, on the calling thread and on workers', async () => {
    const two = await WasmSimdBackend.create({ threads: 2, parallelMinWork: 1, maxMemoryBytes: FULL });
    // the pad is never written, so these pages are reserved, not resident
    const pad = two.arena.uint8(2 ** 31 + 4096);
    const high = two.arena.float32(300 * stride);
    try {
      expect(two.arena.locate(high)!.address).toBeGreaterThan(2 ** 31);
      high.set(randomMatrix(300, stride, 12));
      const heap = Float32Array.from(high);
      const q = rowBlock(randomMatrix(3, stride, 13), 3, stride);
      for (const metric of METRICS) {
        const [a, b] = [new TopK(3, 7), new TopK(3, 7)];
        await two.scanTopK(q, rowBlock(high, 300, stride), dim, metric, a);
        await one.scanTopK(q, rowBlock(heap, 300, stride), dim, metric, b);
        expectIdentical(a, b);
        // staging regions opened now lie above 2 GiB too: copies in and out there
        const [sa, sb] = [new Float32Array(900), new Float32Array(900)];
        await two.score(q, rowBlock(heap, 300, stride), dim, metric, sa);
        await one.score(q, rowBlock(heap, 300, stride), dim, metric, sb);
        expect(Array.from(sa)).toEqual(Array.from(sb));
      }
    } finally {
      two.arena.release(high);
      two.arena.release(pad);
      await two.dispose();
    }
  });
});
