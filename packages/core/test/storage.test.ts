import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend, WasmSimdBackend, type ArenaArray, type ArrayArena, type Backend } from '@adanns/compute';
import { FASHION_MNIST_DIR, memoryStream, readFashionMnist } from '@adanns/datasets';
import { AdannsIndex, buildFromStream, exactNeighbours, loadIndex, readIndexManifest, recallAtK, saveIndex, selectQuantizedDim, type SearchResult } from '../src/index.js';
import { randomMatrix } from '../../compute/test/naive.js';

// The storage layout (issue 15): list codecs, the re-rank store, honest sizes
// and releasing dropped indexes.

const reference = new ReferenceBackend();
const dir = mkdtempSync(join(tmpdir(), 'adanns-storage-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const dim = 24;
const base = randomMatrix(1500, dim, 31);
const queries = randomMatrix(20, dim, 32);

/** Same answers; `extraMflops`: what `actual` spends more per query (a cosine re-rank of gathered rows computes their norms: cost.ts). */
function expectIdentical(actual: SearchResult, expected: SearchResult, extraMflops = 0): void {
  expect(Array.from(actual.counts)).toEqual(Array.from(expected.counts));
  expect(Array.from(actual.ids)).toEqual(Array.from(expected.ids));
  expect(Array.from(actual.scores)).toEqual(Array.from(expected.scores));
  if (extraMflops === 0) expect(Array.from(actual.mflops)).toEqual(Array.from(expected.mflops));
  else actual.mflops.forEach((m, q) => expect(m - expected.mflops[q]).toBeCloseTo(extraMflops, 9));
}

/** An arena on the heap that counts the bytes handed out and not yet released. */
class CountingArena implements ArrayArena {
  live = 0;
  private readonly held = new Set<ArrayBufferLike>();
  private track<T extends ArenaArray>(array: T): T {
    this.held.add(array.buffer);
    this.live += array.byteLength;
    return array;
  }
  float32 = (length: number) => this.track(new Float32Array(length));
  int32 = (length: number) => this.track(new Int32Array(length));
  uint8 = (length: number) => this.track(new Uint8Array(length));
  release(array: ArenaArray): void {
    // only whole arrays from this arena count (views and heap arrays are ignored, as WasmMemory ignores them)
    if (!this.held.delete(array.buffer)) return;
    this.live -= array.buffer.byteLength;
  }
  touched(): void {}
}

function countingBackend(): { backend: Backend; arena: CountingArena } {
  const arena = new CountingArena();
  const r = new ReferenceBackend();
  const backend: Backend = {
    name: 'counting',
    arena,
    score: r.score.bind(r),
    scanTopK: r.scanTopK.bind(r),
    scanCodedTopK: r.scanCodedTopK.bind(r),
    rescoreTopK: r.rescoreTopK.bind(r),
    adcScanTopK: r.adcScanTopK.bind(r),
    fastScanTopK: r.fastScanTopK.bind(r),
    fastScanListsTopK: r.fastScanListsTopK.bind(r),
    scanListsTopK: r.scanListsTopK.bind(r),
    pqScanListsTopK: r.pqScanListsTopK.bind(r),
    assign: r.assign.bind(r),
    centroidSums: r.centroidSums.bind(r),
    dispose: async () => {},
  };
  return { backend, arena };
}

describe('list codecs', () => {
  const cases: [string, 'cosine' | 'ip' | 'l2', number][] = [
    ['ivf8@8,flat@16', 'cosine', 16 * 4],
    ['ivf8@8,f16@16', 'cosine', 16 * 2],
    ['pca,ivf8@8,sq8@16', 'l2', 16],
    ['ivf8@8,f16@16,rerank@24:f32', 'ip', 16 * 2],
    ['ivf8@8,pq8@16', 'ip', 8],
    ['ivf8@8,opq8@16,rerank@24', 'cosine', 8],
  ];
  for (const [spec, metric, codeBytes] of cases) {
    it(`${spec} (${metric}): codes of ${codeBytes} bytes, scanned, saved and loaded to identical results`, async () => {
      const index = await AdannsIndex.build(reference, spec, base.subarray(0, 1200 * dim), 1200, dim, { metric, seed: 3, pqTrainSize: 1000, opqIterations: 2 });
      const { lists } = index.parts();
      expect(lists.codeBytes).toBe(codeBytes);
      // lists hold only codes: nothing per member but the code, its slot and (cosine, float codecs) prefix norms
      const sizes = index.sizes();
      expect(sizes.lists + sizes.codes).toBeLessThanOrEqual(2 * 1200 * codeBytes + 8 * 16 * codeBytes);
      const params = { nprobe: 8 };
      const built = await index.search(queries, 20, 10, params);
      index.remove([1, 2, 700]);
      await index.add([5000, 5001], base.subarray(1300 * dim, 1302 * dim), 2);
      const before = await index.search(queries, 20, 10, params);
      expect(before.ids).not.toContain(700);
      const out = join(dir, spec.replace(/[^a-z0-9]/g, '_') + metric);
      saveIndex(index, out);
      expect(readIndexManifest(out).version).toBe(2);
      const loaded = loadIndex(reference, out);
      expectIdentical(await loaded.search(queries, 20, 10, params), before);
      // the same index with float32 lists (the same centroids: k-means does not depend on the codec) finds about the same
      const flatSpec = spec.replace(/(f16|sq8|pq8|opq8)@16/, 'flat@16').replace(/rerank@24$/, 'rerank@24:f32');
      const exact = await AdannsIndex.build(reference, flatSpec, base.subarray(0, 1200 * dim), 1200, dim, { metric, seed: 3 });
      const truth = await exact.search(queries, 20, 10, params);
      const recall = recallAtK(built.ids, 10, truth.ids, 10, 20, 10);
      expect(recall).toBeGreaterThanOrEqual(spec.includes('rerank') ? 0.95 : spec.includes('pq') ? 0.3 : spec.includes('sq8') ? 0.9 : 0.97);
    });
  }

  it('f16 and sq8 lists decode to within their error of the float32 values', async () => {
    for (const [spec, bound] of [['flat@24', 0], ['f16@24', 2 ** -11], ['sq8@24', 1 / 255 / 2 + 1e-6]] as const) {
      const index = await AdannsIndex.build(reference, spec, base.subarray(0, 300 * dim), 300, dim, { metric: 'l2' });
      const { lists, codec } = index.parts();
      const decoded = new Float32Array(300 * dim);
      // the members' codes one after another (the lists hold float codes in prefix blocks)
      const { codes, slots } = lists.export();
      codec.decode!(codes, 300, dim, decoded);
      let worst = 0;
      for (let i = 0; i < 300; i++) {
        for (let j = 0; j < dim; j++) {
          const x = base[slots[i] * dim + j];
          // f16: relative to the value; sq8: relative to the trained range (about 1 here)
          worst = Math.max(worst, Math.abs(decoded[i * dim + j] - x) / (spec.startsWith('f16') ? Math.abs(x) + 2 ** -14 : 1));
        }
      }
      expect(worst).toBeLessThanOrEqual(bound);
    }
  });

  it('rejects a scan prefix on codes that cannot be sliced, and prints the new tokens back', async () => {
    const index = await AdannsIndex.build(reference, 'ivf4@8,sq8@16,rerank@20:f16', base.subarray(0, 400 * dim), 400, dim, { metric: 'l2' });
    expect(index.describe()).toContain('ivf4@8,sq8@16,rerank@20:f16');
    // float codecs scan any prefix up to d_s
    const r = await index.search(queries, 20, 5, { scanDim: 8, nprobe: 4 });
    expect(r.counts[0]).toBe(5);
  });
});

describe('re-rank store', () => {
  it('re-ranking from disk gives the same ids and scores as from memory, also after save, load, adds and removes', async () => {
    for (const [metric, spec] of [['cosine', 'ivf8@8,flat@8,rerank@24'], ['l2', 'pca,ivf8@8,sq8@8,rerank@16']] as const) {
      const disk = await AdannsIndex.build(reference, spec, base.subarray(0, 1200 * dim), 1200, dim, { metric, seed: 5 });
      const memory = await AdannsIndex.build(reference, `${spec}:f32`, base.subarray(0, 1200 * dim), 1200, dim, { metric, seed: 5 });
      expect(disk.parts().rerank!.storage).toBe('disk');
      expect(memory.parts().rerank!.storage).toBe('f32');
      const params = { nprobe: 3, shortlist: 40 };
      // from disk, a cosine re-rank computes the 40 gathered rows' norms at d_r (memory keeps them)
      const norms = metric === 'cosine' ? (40 * disk.parts().rerank!.dim) / 1e6 : 0;
      expectIdentical((await disk.search(queries, 20, 10, params)), (await memory.search(queries, 20, 10, params)), norms);
      const sizes = disk.sizes();
      expect(sizes.rerankDisk).toBe(1200 * disk.parts().rerank!.dim * 4);
      expect(sizes.rerank).toBeLessThan(memory.sizes().rerank);
      const out = join(dir, `rerank-${metric}`);
      saveIndex(disk, out);
      expect(statSync(join(out, 'rerank.f32')).size).toBe(1200 * disk.parts().rerank!.dim * 4);
      const loaded = loadIndex(reference, out);
      const saved = readFileSync(join(out, 'rerank.f32'));
      for (const index of [loaded, memory]) {
        index.remove([0, 3, 1100]);
        await index.add([9000, 9001, 9002], base.subarray(1300 * dim, 1303 * dim), 3);
      }
      expectIdentical((await loaded.search(queries, 20, 10, params)), (await memory.search(queries, 20, 10, params)), norms);
      // a loaded disk store never writes the saved file; its changes are resident until saved again
      expect(readFileSync(join(out, 'rerank.f32')).equals(saved)).toBe(true);
      expect(loaded.sizes().rerank).toBeGreaterThan(0);
      saveIndex(loaded, join(dir, `rerank-${metric}-again`));
      expectIdentical((await loadIndex(reference, join(dir, `rerank-${metric}-again`)).search(queries, 20, 10, params)), (await memory.search(queries, 20, 10, params)), norms);
      if (disk.parts().rerank!.dim === dim) {
        // exact ground truth reads the disk store in chunks
        expect(Array.from((await loaded.exactSearch(queries, 20, 10)).ids)).toEqual(Array.from((await memory.exactSearch(queries, 20, 10)).ids));
      }
      for (const index of [disk, memory, loaded]) index.release();
    }
  });

  it('f16 re-rank vectors stay within half precision of float32 re-ranking', async () => {
    const f32 = await AdannsIndex.build(reference, 'ivf8@8,flat@8,rerank@24:f32', base.subarray(0, 1200 * dim), 1200, dim, { metric: 'ip', seed: 5 });
    const f16 = await AdannsIndex.build(reference, 'ivf8@8,flat@8,rerank@24:f16', base.subarray(0, 1200 * dim), 1200, dim, { metric: 'ip', seed: 5 });
    const a = await f32.search(queries, 20, 10, { nprobe: 8, shortlist: 50 });
    const b = await f16.search(queries, 20, 10, { nprobe: 8, shortlist: 50 });
    expect(recallAtK(b.ids, 10, a.ids, 10, 20, 10)).toBeGreaterThan(0.95);
    for (let i = 0; i < a.scores.length; i++) expect(Math.abs(b.scores[i] - a.scores[i])).toBeLessThan(1e-2);
    expect(f16.sizes().rerank).toBe(f32.sizes().rerank / 2);
  });

  it('exact search reads the store or the flat lists at D, and says what is missing otherwise', async () => {
    const flat = await AdannsIndex.build(reference, 'ivf8@8,flat', base.subarray(0, 500 * dim), 500, dim, { metric: 'l2' });
    const truth = await exactNeighbours(reference, base.subarray(0, 500 * dim), 500, queries, 20, dim, 'l2', 5);
    expect(Array.from((await flat.exactSearch(queries, 20, 5)).ids)).toEqual(Array.from(truth.ids, Number));
    // a flat index at D keeps no copy besides its lists
    expect(flat.sizes().rerank + flat.sizes().rerankDisk).toBe(0);
    const small = await AdannsIndex.build(reference, 'ivf8@8,flat@8', base.subarray(0, 500 * dim), 500, dim, { metric: 'l2', calibrate: { sampleSize: 20, maxSeconds: 5 } });
    expect(small.calibration!.points.length).toBeGreaterThan(0); // build passes its input as the ground truth
    await expect(small.exactSearch(queries, 20, 5)).rejects.toThrow(/needs the vectors at the full dimension 24, and index "ivf8@8,flat@8" keeps none: build it with rerank@24/);
  });
});

describe('streaming build', () => {
  it('train then add chunk by chunk equals build, and a disk re-rank store writes straight into the output directory', async () => {
    const rows = 1000;
    const data = base.subarray(0, rows * dim);
    const source = memoryStream({ name: 'rows', data, rows, dim });
    const spec = 'pca,ivf8@8,sq8@16,rerank@24';
    const out = join(dir, 'streamed');
    // a training sample of every row: the same training as build()
    const streamed = await buildFromStream(reference, spec, source, { metric: 'cosine', seed: 4, chunkRows: 128, trainRows: rows, rerankDir: out });
    // written as the rows were added, beside rerank.f32 until saved (a saved index there keeps its own until then)
    const building = join(out, 'rerank.f32.building');
    expect(statSync(building).size).toBe(rows * dim * 4);
    expect(existsSync(join(out, 'rerank.f32'))).toBe(false);
    const built = await AdannsIndex.build(reference, spec, data, rows, dim, { metric: 'cosine', seed: 4 });
    expectIdentical(await streamed.search(queries, 20, 10, { nprobe: 3 }), await built.search(queries, 20, 10, { nprobe: 3 }));
    expect(streamed.sizes()).toEqual(built.sizes());
    const inode = statSync(building).ino;
    saveIndex(streamed, out);
    expect(statSync(join(out, 'rerank.f32')).ino).toBe(inode); // renamed, nothing copied
    expectIdentical(await loadIndex(reference, out).search(queries, 20, 10, { nprobe: 3 }), await built.search(queries, 20, 10, { nprobe: 3 }));
    // calibration without full vectors in the index reads them from the source
    const bare = await buildFromStream(reference, 'ivf8@8,flat@8', source, { metric: 'l2', trainRows: rows, calibrate: { sampleSize: 20, maxSeconds: 5 } });
    expect(bare.calibration!.points.length).toBeGreaterThan(0);
  });
});

describe('saved indexes of format version 1', () => {
  const fixtures = join(import.meta.dirname, 'fixtures', 'index-v1');
  const expected = JSON.parse(readFileSync(join(fixtures, 'expected.json'), 'utf8')) as Record<string, { spec: string; ids: number[]; scores: number[] }>;
  const fixtureQueries = (() => {
    let s = 6;
    return Float32Array.from({ length: 6 * 8 }, () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 32 - 0.5;
    });
  })();
  for (const name of Object.keys(expected)) {
    it(`${expected[name].spec} loads (migrated) and answers as it did when saved; saving writes version 2`, async () => {
      const index = loadIndex(reference, join(fixtures, name));
      const r = await index.search(fixtureQueries, 6, 5, index.spec.coarse ? { nprobe: 2 } : {});
      expect(Array.from(r.ids)).toEqual(expected[name].ids);
      r.scores.forEach((s, i) => expect(Math.abs(s - expected[name].scores[i])).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(s))));
      const out = join(dir, `v1-${name}`);
      saveIndex(index, out);
      expect(readIndexManifest(out).version).toBe(2);
      expect(existsSync(join(out, 'originals.bin'))).toBe(false);
      expect(Array.from((await loadIndex(reference, out).search(fixtureQueries, 6, 5, index.spec.coarse ? { nprobe: 2 } : {})).ids)).toEqual(expected[name].ids);
    });
  }
});

describe('honest sizes and releasing', () => {
  it('sizes count every array by kind, the arena bytes are exactly what the index allocated, and release gives them all back', async () => {
    for (const [spec, metric] of [['pca,ivf8@8,flat@16,rerank@24:f32', 'cosine'], ['ivf8@8,opq8@16,rerank@24', 'ip'], ['sq8@24,rerank@24:f16', 'l2']] as const) {
      const { backend, arena } = countingBackend();
      const index = await AdannsIndex.build(backend, spec, base.subarray(0, 1000 * dim), 1000, dim, { metric, pqTrainSize: 500, opqIterations: 1 });
      await index.search(queries, 20, 5, index.spec.coarse ? { coarseDim: 4, nprobe: 2 } : {}); // caches a prefix norm of the centroids
      const sizes = index.sizes();
      const held = index.arrays();
      const sum = (kind?: string) => held.filter((h) => kind === undefined || h.kind === kind).reduce((a, h) => a + h.array.byteLength, 0);
      expect(sizes.resident).toBe(sum());
      for (const kind of ['lists', 'codes', 'norms', 'ids', 'centroids', 'rotation', 'codebooks', 'rerank'] as const) expect(sizes[kind], kind).toBe(sum(kind));
      expect(sizes.lists + sizes.codes + sizes.norms + sizes.ids + sizes.centroids + sizes.rotation + sizes.codebooks + sizes.rerank).toBe(sizes.resident);
      expect(index.bytes).toBe(sizes.resident);
      expect(arena.live, spec).toBe(sizes.arena);
      index.release();
      expect(arena.live, spec).toBe(0);
    }
  });

  it('selectQuantizedDim releases every candidate it drops', async () => {
    const { backend, arena } = countingBackend();
    const r = await selectQuantizedDim(backend, 'opq4@8', base.subarray(0, 600 * dim), 600, dim, { metric: 'ip', queries, queryRows: 20, dims: [8, 16, 24], pqTrainSize: 300, opqIterations: 1 });
    expect(r.candidates).toHaveLength(3);
    expect(arena.live).toBe(r.index.sizes().arena);
    r.index.release();
    expect(arena.live).toBe(0);
  });

  it('dropped indexes return their bytes to the WebAssembly arena', async () => {
    const simd = await WasmSimdBackend.create({ threads: 1 });
    try {
      const memory = simd.arena as unknown as { inUse?: number };
      const inUse = () => memory.inUse ?? Number.NaN;
      const build = () => AdannsIndex.build(simd, 'pca,ivf8@8,sq8@16,rerank@24:f32', base.subarray(0, 1000 * dim), 1000, dim, { metric: 'cosine' });
      // a first build leaves the backend's reusable staging regions allocated; the second must leave nothing more
      (await build()).release();
      const before = inUse();
      const index = await build();
      expect(inUse() - before).toBeGreaterThanOrEqual(index.sizes().arena);
      index.release();
      expect(inUse()).toBe(before);
    } finally {
      await simd.dispose();
    }
  });
});

const haveFashion = existsSync(join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')) && existsSync(join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz'));

describe.runIf(haveFashion)('f16 and sq8 lists on Fashion-MNIST', () => {
  let simd: WasmSimdBackend;
  beforeAll(async () => {
    simd = await WasmSimdBackend.create({ threads: 1 });
  });
  afterAll(async () => simd?.dispose());

  it('recall@10 of f16 within 0.005 and sq8 within 0.02 of float32 lists (same centroids, scan only)', async () => {
    const n = 20_000, rows = 200, d = 784;
    const train = readFashionMnist('train');
    const test = readFashionMnist('test');
    const data = train.data.subarray(0, n * d);
    const qs = test.data.subarray(0, rows * d);
    const truth = await exactNeighbours(simd, data, n, qs, rows, d, 'cosine', 10);
    const recall: Record<string, number> = {};
    for (const codec of ['flat', 'f16', 'sq8']) {
      const index = await AdannsIndex.build(simd, `pca,ivf32@64,${codec}@128`, data, n, d, { metric: 'cosine', seed: 1 });
      const r = await index.search(qs, rows, 10, { nprobe: 4 });
      recall[codec] = recallAtK(r.ids, 10, truth.ids, 10, rows, 10);
      index.release();
    }
    expect(recall.flat).toBeGreaterThan(0.5);
    console.log(`Fashion-MNIST 20k, pca,ivf32@64,<codec>@128, nprobe 4, recall@10: ${JSON.stringify(recall)}`);
    expect(Math.abs(recall.f16 - recall.flat)).toBeLessThanOrEqual(0.005);
    expect(Math.abs(recall.sq8 - recall.flat)).toBeLessThanOrEqual(0.02);
  }, 120_000);
});

