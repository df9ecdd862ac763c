import { afterAll, describe, expect, it } from 'vitest';
import { METRICS, ReferenceBackend, TopK, WebGpuBackend, rowBlock, type Backend, type RowBlock } from '../src/index.js';
import { expectCentroidSumsAgree, expectClose, expectCodedScanAgrees, expectSameTopK, randomCoded, tolerance } from './compare.js';
import { randomMatrix } from './naive.js';

// WGSL kernels against the reference on small, awkward inputs. Without a GPU
// they run on Mesa's software GL (llvmpipe): correct, slow. REQUIRE_WEBGPU=1
// (set by .ci/run) turns a missing adapter into a failure instead of a skip.

const REL = 1e-4;
const reference = new ReferenceBackend();
let gpu: WebGpuBackend | undefined;
try {
  gpu = await WebGpuBackend.create();
} catch (e) {
  if (process.env.REQUIRE_WEBGPU === '1') throw e;
  console.warn(`WebGPU conformance tests skipped: ${(e as Error).message}`);
}
afterAll(async () => gpu?.dispose());

const SHAPES: [number, number][] = [[1, 1], [7, 3], [13, 13], [70, 33]];

function scan(backend: Backend, q: RowBlock, b: RowBlock, dim: number, metric: (typeof METRICS)[number], best: TopK, ids?: Int32Array, rows?: Int32Array): Promise<void> {
  return backend.scanTopK(q, b, dim, metric, best, ids, rows);
}

describe.skipIf(!gpu)('WebGpuBackend equals the reference backend', () => {
  const g = gpu!;

  it('reports its adapter', () => {
    expect(g.description.length).toBeGreaterThan(0);
  });

  for (const metric of METRICS) {
    it(`${metric}: score over prefixes of 1, 3, 13 and 33, 0-37 rows`, async () => {
      for (const [stride, dim] of SHAPES) {
        for (const [m, n] of [[1, 1], [5, 37], [3, 0]]) {
          const q = rowBlock(randomMatrix(m, stride, m + n), m, stride);
          const b = rowBlock(randomMatrix(n, stride, n + 1), n, stride);
          const want = new Float32Array(m * n);
          const got = new Float32Array(m * n);
          await reference.score(q, b, dim, metric, want);
          await g.score(q, b, dim, metric, got);
          expectClose(got, want, REL);
        }
      }
    });

    it(`${metric}: scanTopK with mapped ids and rows over several calls, empty and single-row lists, k above the candidates`, async () => {
      for (const [stride, dim] of SHAPES) {
        const q = rowBlock(randomMatrix(3, stride, 11), 3, stride);
        const data = randomMatrix(120, stride, 12);
        const rows = Int32Array.from([4, 0, 2]);
        for (const k of [1, 10, 200]) {
          const want = new TopK(5, k);
          const got = new TopK(5, k);
          for (const [from, count] of [[0, 50], [50, 0], [50, 1], [51, 69]]) {
            const ids = Int32Array.from({ length: count }, (_, j) => 500 + from + j);
            const b = rowBlock(data, count, stride, from * stride);
            await scan(reference, q, b, dim, metric, want, ids, rows);
            await scan(g, q, b, dim, metric, got, ids, rows);
          }
          expectSameTopK(got, want, REL);
        }
      }
    });

    it(`${metric}: rescoreTopK and assign`, async () => {
      const stride = 21, dim = 19;
      const base = rowBlock(randomMatrix(80, stride, 21), 80, stride);
      const q = rowBlock(randomMatrix(3, stride, 22), 3, stride);
      const candidates = new TopK(3, 20);
      for (let i = 0; i < 20; i++) candidates.push(0, (i * 7) % 80, i);
      candidates.push(2, 79, 1);
      for (const k of [1, 5, 30]) {
        const want = new TopK(3, k);
        const got = new TopK(3, k);
        await reference.rescoreTopK(q, base, dim, metric, candidates, want);
        await g.rescoreTopK(q, base, dim, metric, candidates, got);
        expectSameTopK(got, want, REL);
      }
      const v = rowBlock(randomMatrix(17, stride, 23), 17, stride);
      const want = { labels: new Int32Array(17), scores: new Float32Array(17) };
      const got = { labels: new Int32Array(17), scores: new Float32Array(17) };
      await reference.assign(v, base, dim, metric, want.labels, want.scores);
      await g.assign(v, base, dim, metric, got.labels, got.scores);
      expectClose(got.scores, want.scores, REL);
      for (let i = 0; i < 17; i++) {
        if (got.labels[i] === want.labels[i]) continue;
        const out = new Float32Array(80);
        await reference.score(rowBlock(v.data, 1, stride, i * stride), base, dim, metric, out);
        expect(Math.abs(out[got.labels[i]] - out[want.labels[i]])).toBeLessThanOrEqual(tolerance(want.scores[i], REL));
      }
    });
  }

  it('centroidSums: labelled sums and counts, empty clusters, prefixes not a multiple of 4', () => expectCentroidSumsAgree(g, REL));

  it('scanCodedTopK: float16 and sq8 rows decoded on the device, every metric, mapped ids and rows', () => expectCodedScanAgrees(g, REL, { queries: 3, rows: 60 }));

  it('scanCodedTopK reads encoded rows resident in its arena', async () => {
    const base = randomCoded('sq8', 50, 12, 3, true);
    const codes = g.arena.uint8(base.codes.length);
    codes.set(base.codes);
    const q = rowBlock(randomMatrix(2, 12, 4), 2, 12);
    const want = new TopK(2, 5);
    const got = new TopK(2, 5);
    await reference.scanCodedTopK(q, base, 10, 'cosine', want);
    await g.scanCodedTopK(q, { ...base, codes }, 10, 'cosine', got);
    expectSameTopK(got, want, REL);
    g.arena.release(codes);
  });

  it('8-bit ADC with bias, mapped rows, m of 1, 3 and 8 (codes not a multiple of 4 bytes)', async () => {
    for (const m of [1, 3, 8]) {
      for (const rows of [0, 1, 5, 203]) {
        const tables = randomMatrix(2, m * 256, m + rows);
        const codes = Uint8Array.from(randomMatrix(rows, m, rows + 5), (x) => Math.floor((x + 0.5) * 256));
        const ids = Int32Array.from({ length: rows }, (_, j) => 3 * j + 1);
        const bias = Float32Array.from([0.25, -1]);
        const queryRows = Int32Array.from([1, 0]);
        for (const k of [1, 9, 300]) {
          const want = new TopK(2, k);
          const got = new TopK(2, k);
          await reference.adcScanTopK(tables, 2, m, codes, rows, want, ids, queryRows, bias);
          await g.adcScanTopK(tables, 2, m, codes, rows, got, ids, queryRows, bias);
          expectSameTopK(got, want, REL);
        }
      }
    }
  });

  it('8-bit ADC reads codes resident in its arena at a non-zero offset', async () => {
    const m = 4, rows = 70, skip = 9;
    const tables = randomMatrix(1, m * 256, 41);
    const all = g.arena.uint8((rows + skip) * m);
    all.set(Uint8Array.from(randomMatrix(rows + skip, m, 42), (x) => Math.floor((x + 0.5) * 256)));
    // a list that starts part-way into an arena array, as an inverted list's later rows do
    const codes = all.subarray(skip * m);
    const want = new TopK(1, 10);
    const got = new TopK(1, 10);
    await reference.adcScanTopK(tables, 1, m, codes.slice(), rows, want);
    await g.adcScanTopK(tables, 1, m, codes, rows, got);
    expectSameTopK(got, want, REL);
    g.arena.release(all);
  });

  it('keeps arena arrays on the device and refreshes them when touched', async () => {
    const stride = 8;
    const data = g.arena.float32(40 * stride);
    data.set(randomMatrix(40, stride, 31));
    const q = rowBlock(randomMatrix(1, stride, 32), 1, stride);
    const first = new TopK(1, 1);
    await g.scanTopK(q, rowBlock(data, 40, stride), stride, 'ip', first);
    // make row 7 the best match, in place
    data.set(Array.from(q.data).map((x) => x * 100), 7 * stride);
    g.arena.touched(data);
    const second = new TopK(1, 1);
    await g.scanTopK(q, rowBlock(data, 40, stride), stride, 'ip', second);
    expect(second.ids[0]).toBe(7);
    g.arena.release(data);
  });

  it('rejects what the reference rejects', async () => {
    const m = randomMatrix(2, 4, 7);
    await expect(g.score(rowBlock(m, 2, 4), rowBlock(m, 2, 4), 5, 'ip', new Float32Array(4))).rejects.toThrow(/exceeds row length/);
    await expect(g.scanTopK(rowBlock(m, 2, 4), rowBlock(m, 2, 4), 4, 'ip', new TopK(2, 1), new Int32Array(1))).rejects.toThrow(/base ids/);
  });
});
