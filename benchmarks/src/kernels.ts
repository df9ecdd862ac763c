/**
 * Kernel throughput of the WebAssembly SIMD backend, one JSON line per
 * kernel: GFLOP/s (a multiply and an add counted separately) or Mcodes/s,
 * with the ratio to the plain TypeScript reference on the same inputs and to
 * the peak measured in this run (a register-resident SIMD multiply-add loop),
 * so ratios stay meaningful on a noisy machine.
 *
 *   npm run bench:kernels [-- --seconds 0.5 --dim 128]
 */
import { parseArgs } from 'node:util';
import { intOption } from '@adanns/cli-kit';
import { blockedBytes, computeInvNorms, createRng, fastScanBytes, heapArena, ReferenceBackend, TopK, WasmSimdBackend, rowBlock, writeBlockedRow, type Backend, type BlockLayout, type ListSet, type RowBlock } from '@adanns/compute';
import { FLOAT_BLOCKS } from '@adanns/core';
import { median } from './timing.js';

const { values: o } = parseArgs({
  options: {
    seconds: { type: 'string', default: '0.5' },
    dim: { type: 'string', default: '128' },
  },
});
const seconds = Number(o.seconds);
if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, got "${o.seconds}"`);
const dim = intOption(o.dim, 'dim');

/** Uniform values in [-0.5, 0.5) from a seed. */
function randomFloats(length: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length }, () => rng.next() - 0.5);
}

/** Best of three runs of `fn` repeated for `seconds`; returns seconds per call. */
async function secondsPerCall(fn: () => Promise<unknown> | unknown, budget = seconds): Promise<number> {
  await fn();
  let best = Infinity;
  for (let run = 0; run < 3; run++) {
    let calls = 0;
    const start = performance.now();
    let elapsed = 0;
    while (elapsed < (budget * 1000) / 3) {
      await fn();
      calls++;
      elapsed = performance.now() - start;
    }
    best = Math.min(best, elapsed / 1000 / calls);
  }
  return best;
}

const one = await WasmSimdBackend.create({ threads: 1 });
const two = await WasmSimdBackend.create({ threads: 2 });
const reference = new ReferenceBackend();

/**
 * A block of random rows with their inverse norms, in the backend's arena
 * (read in place, as index lists and their stored norms are) or on the heap.
 */
function block(backend: Backend | undefined, rows: number, seed: number, width = dim): RowBlock {
  const arena = backend?.arena ?? heapArena;
  const data = arena.float32(rows * width);
  data.set(randomFloats(rows * width, seed));
  const invNorms = arena.float32(rows);
  invNorms.set(computeInvNorms(rowBlock(data, rows, width), width));
  return rowBlock(data, rows, width, 0, invNorms);
}

const peakIterations = 1 << 22;
const peakSeconds = await secondsPerCall(() => one.rawKernels.peak(peakIterations, 0.5));
const peak = (peakIterations * 8 * 4 * 2) / peakSeconds / 1e9;

function report(kernel: string, fields: Record<string, number | string>): void {
  const rounded = Object.fromEntries(Object.entries(fields).map(([key, v]) => [key, typeof v === 'number' ? Number(v.toPrecision(4)) : v]));
  console.log(JSON.stringify({ kernel, ...rounded }));
}
report('peak', { gflops: peak, vsReference: 'n/a', vsPeak: 1, threads: 1 });

/** GFLOP/s of a scoring kernel on SIMD (1 thread) and on the reference, m queries x n rows. */
async function scoring(kernel: string, m: number, n: number, run: (b: Backend, q: RowBlock, base: RowBlock) => Promise<unknown>, detail: string): Promise<void> {
  const flops = 2 * m * n * dim;
  const q = block(one, m, 1);
  const base = block(one, n, 2);
  const gflops = flops / (await secondsPerCall(() => run(one, q, base))) / 1e9;
  const refQ = block(undefined, m, 1);
  const refBase = block(undefined, n, 2);
  const refGflops = flops / (await secondsPerCall(() => run(reference, refQ, refBase), seconds / 2)) / 1e9;
  report(kernel, { gflops, vsReference: gflops / refGflops, vsPeak: gflops / peak, threads: 1, shape: detail });
}

const scoreOut = new Float32Array(64 * 4096);
await scoring('score-batched', 64, 4096, (b, q, base) => b.score(q, base, dim, 'ip', scoreOut), `64 queries x 4096 rows x ${dim}, inner product`);
await scoring('score-single', 1, 4096, (b, q, base) => b.score(q, base, dim, 'ip', scoreOut), `1 query x 4096 rows x ${dim} (2 MiB, cache-resident)`);
await scoring('scan-topk-batched', 64, 4096, (b, q, base) => b.scanTopK(q, base, dim, 'cosine', new TopK(64, 10)), `64 queries x 4096 rows x ${dim}, cosine, top-10`);
await scoring('scan-topk-single', 1, 4096, (b, q, base) => b.scanTopK(q, base, dim, 'cosine', new TopK(1, 10)), `1 query x 4096 rows x ${dim}, cosine, top-10`);

// Fused list scans (scanListsTopK): 64 float32 lists of 256 members, each query probing 16 of them, one call per batch,
// in the prefix-blocked layout indexes hold float lists in (FLOAT_BLOCKS); at the full stride, and at a quarter of it
// (AdANNS scans a prefix of wider stored members) against the same lists with members one after another
{
  const lists = 64, size = 256, nprobe = 16;
  const listSet = (backend: Backend | undefined, layout: BlockLayout | undefined): ListSet => {
    const rows = block(backend, lists * size, 9);
    const arena = backend?.arena ?? heapArena;
    const ids = arena.int32(lists * size);
    ids.set(Int32Array.from({ length: lists * size }, (_, i) => i));
    const bytes = new Uint8Array(rows.data.buffer, rows.data.byteOffset, rows.data.byteLength);
    const codes = Array.from({ length: lists }, (_, l) => {
      const members = bytes.subarray(l * size * dim * 4, (l + 1) * size * dim * 4);
      if (!layout) return members;
      const blocked = arena.uint8(blockedBytes(layout, dim, 4, size));
      for (let i = 0; i < size; i++) writeBlockedRow(blocked, layout, dim, 4, i, members, i * dim * 4);
      return blocked;
    });
    return {
      encoding: 'f32', count: lists, stride: dim, ...(layout ? { layout } : {}),
      size: () => size,
      codes: (l) => codes[l],
      ids: (l) => ids.subarray(l * size, (l + 1) * size),
      invNorms: (l) => rows.invNorms!.subarray(l * size, (l + 1) * size),
    };
  };
  const probesOf = (m: number) => Int32Array.from({ length: m * nprobe }, (_, i) => (Math.floor(i / nprobe) * 7 + (i % nprobe) * 3) % lists);
  const blocked = listSet(one, FLOAT_BLOCKS);
  const rowMajor = listSet(one, undefined);
  const theirs = listSet(undefined, FLOAT_BLOCKS);
  const layoutName = `blocks of ${FLOAT_BLOCKS.blockRows} x ${FLOAT_BLOCKS.groupWidth}`;
  for (const m of [256, 1]) {
    const flops = 2 * m * nprobe * size * dim;
    const probes = probesOf(m);
    const q = block(one, m, 10);
    const gflops = flops / (await secondsPerCall(() => one.scanListsTopK(q, blocked, probes, nprobe, dim, 'cosine', new TopK(m, 10)))) / 1e9;
    const refQ = block(undefined, m, 10);
    const refGflops = flops / (await secondsPerCall(() => reference.scanListsTopK(refQ, theirs, probes, nprobe, dim, 'cosine', new TopK(m, 10)), seconds / 2)) / 1e9;
    const what = `${m} ${m > 1 ? 'queries' : 'query'} x ${nprobe} of ${lists} lists x ${size} members`;
    report(m > 1 ? 'list-scan-batched' : 'list-scan-single', { gflops, vsReference: gflops / refGflops, vsPeak: gflops / peak, threads: 1, shape: `${what} x ${dim} (${layoutName}), cosine, top-10, one call` });
    // a prefix of a quarter of the stored values: what the layout saves over members one after another
    const prefix = Math.max(1, dim >> 2);
    const prefixFlops = (flops / dim) * prefix;
    const prefixGflops = prefixFlops / (await secondsPerCall(() => one.scanListsTopK(q, blocked, probes, nprobe, prefix, 'ip', new TopK(m, 10)))) / 1e9;
    const rowGflops = prefixFlops / (await secondsPerCall(() => one.scanListsTopK(q, rowMajor, probes, nprobe, prefix, 'ip', new TopK(m, 10)))) / 1e9;
    report(m > 1 ? 'list-scan-prefix-batched' : 'list-scan-prefix-single', {
      gflops: prefixGflops, vsRowMajor: prefixGflops / rowGflops, rowMajorGflops: rowGflops, vsPeak: prefixGflops / peak, threads: 1,
      shape: `${what} x ${dim} stored, scanned at ${prefix} (${layoutName} vs one member after another), inner product, top-10, one call`,
    });
  }
}

const labels = new Int32Array(4096);
const scores = new Float32Array(4096);
await scoring('kmeans-assign', 4096, 256, (b, v, c) => b.assign(v, c, dim, 'l2', labels, scores), `4096 vectors x 256 centroids x ${dim}, l2`);

// PQ lookup tables: each query sub-vector scored against the 256 centroids of its sub-space
{
  const m = 16;
  const sub = Math.max(1, Math.floor(dim / m));
  const flops = 2 * 32 * 256 * sub * m;
  const tables = new Float32Array(32 * 256);
  const run = async (b: Backend, q: Float32Array, books: Float32Array) => {
    for (let s = 0; s < m; s++) await b.score(rowBlock(q, 32, dim, s * sub), rowBlock(books, 256, sub * m, s * sub), sub, 'ip', tables);
  };
  const q = block(one, 32, 3).data;
  const books = one.arena.float32(256 * sub * m);
  books.set(randomFloats(books.length, 4));
  const gflops = flops / (await secondsPerCall(() => run(one, q, books))) / 1e9;
  const refGflops = flops / (await secondsPerCall(() => run(reference, q.slice(), books.slice()), seconds / 2)) / 1e9;
  report('pq-tables', { gflops, vsReference: gflops / refGflops, vsPeak: gflops / peak, threads: 1, shape: `32 queries x ${m} sub-spaces x 256 centroids x ${sub}` });
}

// 8-bit ADC: one query's M x 256 tables against n codes of M bytes
{
  const m = 16;
  const n = 200_000;
  const tables = one.arena.float32(m * 256);
  tables.set(randomFloats(m * 256, 5));
  const codes = one.arena.uint8(n * m);
  codes.set(Uint8Array.from(randomFloats(n * m, 6), (x) => Math.floor((x + 0.5) * 255.99)));
  const run = (b: Backend, t: Float32Array, c: Uint8Array) => b.adcScanTopK(t, 1, m, c, n, new TopK(1, 100));
  const mcodes = n / (await secondsPerCall(() => run(one, tables, codes))) / 1e6;
  const refMcodes = n / (await secondsPerCall(() => run(reference, tables.slice(), codes.slice()), seconds / 2)) / 1e6;
  // one table add per byte: m FLOPs per code, against the multiply-add peak
  report('adc-8bit', { mcodesPerSec: mcodes, vsReference: mcodes / refMcodes, vsPeak: (mcodes * m) / 1e3 / peak, threads: 1, shape: `${n} codes x ${m} bytes, top-100` });
}

// 4-bit fast scan at the same 16 bytes per code: 32 sub-quantisers of 16 centroids, byte tables, blocks of 32 codes
{
  const m = 32;
  const n = 200_000;
  const tables = Uint8Array.from(randomFloats(m * 16, 7), (x) => Math.floor((x + 0.5) * 255.99));
  const codes = one.arena.uint8(fastScanBytes(m, n));
  codes.set(Uint8Array.from(randomFloats(codes.length, 8), (x) => Math.floor((x + 0.5) * 255.99)));
  const scales = Float32Array.of(0.01), bias = Float32Array.of(0);
  const run = (b: Backend, c: Uint8Array) => b.fastScanTopK(tables, 1, m, c, n, scales, bias, new TopK(1, 100));
  const mcodes = n / (await secondsPerCall(() => run(one, codes))) / 1e6;
  const refMcodes = n / (await secondsPerCall(() => run(reference, codes.slice()), seconds / 2)) / 1e6;
  // one byte lookup-add per sub-quantiser: m integer adds per code, against the float multiply-add peak
  report('fastscan-4bit', { mcodesPerSec: mcodes, vsReference: mcodes / refMcodes, vsPeak: (mcodes * m) / 1e3 / peak, threads: 1, shape: `${n} codes x ${m} sub-quantisers (16 bytes), top-100` });
}

// The re-rank of a batch (rescoreTopK): in row order (rescoreByRows) against each query's shortlist scored in place
// (the per-query path), on one thread, for batches of 4, 16 and 1000 queries with shortlists of 100 drawn at random
// from a base of 60,000 rows of 784 values (the shape of a Fashion-MNIST re-rank), and 1000 queries on the first
// 20,000 rows (shortlists sharing more rows): the figures behind the backend's choice of path ('auto',
// RESCORE_BY_ROWS_SHARING in wasm-simd-backend.ts). Consecutive calls take the next batch of the 1000 queries'
// shortlists, so small batches do not find their rows in cache. Seconds per query: the median of 9 passes of
// 8 x --seconds in all, the two paths taking turns in each so that a change in the machine's load falls on both;
// vsPerQuery is the median of the passes' ratios.
{
  const width = 784, rows = 60_000, shortlist = 100, total = 1000, passes = 9, budget = 8 * seconds;
  const byRows = await WasmSimdBackend.create({ threads: 1, rescoreOrder: 'rows' });
  const perQuery = await WasmSimdBackend.create({ threads: 1, rescoreOrder: 'queries' });
  // the same rows in each backend's arena (read in place, as an index's stored vectors are)
  const inArena = (backend: Backend, from: RowBlock): RowBlock => {
    const data = backend.arena.float32(from.data.length);
    data.set(from.data);
    const invNorms = backend.arena.float32(from.rows);
    invNorms.set(from.invNorms!);
    return rowBlock(data, from.rows, width, 0, invNorms);
  };
  const heapBase = block(undefined, rows, 13, width), heapQueries = block(undefined, total, 14, width);
  const paths = [byRows, perQuery].map((backend) => ({ backend, base: inArena(backend, heapBase), queries: inArena(backend, heapQueries) }));
  const firstRows = (b: RowBlock, n: number) => rowBlock(b.data.subarray(0, n * width), n, width, 0, b.invNorms!.subarray(0, n));
  for (const [m, among] of [[4, rows], [16, rows], [total, rows], [total, rows / 3]]) {
    const rng = createRng(12);
    const lists = Array.from({ length: total }, () => {
      const taken = new Set<number>();
      while (taken.size < shortlist) taken.add(Math.floor(rng.next() * among));
      return [...taken];
    });
    const distinct = new Set(lists.flat()).size;
    const batches = Array.from({ length: total / m }, (_, i) => {
      const candidates = new TopK(m, shortlist);
      for (let q = 0; q < m; q++) for (const row of lists[i * m + q]) candidates.push(q, row, 0);
      return candidates;
    });
    const calls = paths.map(({ backend, base, queries }) => {
      const held = firstRows(base, among);
      let next = 0;
      return () => {
        const i = next++ % batches.length;
        const q = rowBlock(queries.data.subarray(i * m * width, (i + 1) * m * width), m, width, 0, queries.invNorms!.subarray(i * m, (i + 1) * m));
        return backend.rescoreTopK(q, held, width, 'cosine', batches[i], new TopK(m, 10));
      };
    });
    for (const call of calls) for (let i = 0; i < batches.length; i++) await call();
    const perPass: number[][] = [[], []];
    for (let p = 0; p < passes; p++) {
      for (const [path, call] of calls.entries()) {
        let done = 0;
        const start = performance.now();
        while (done < 1 || performance.now() - start < (budget * 1000) / passes / 2) {
          await call();
          done++;
        }
        perPass[path].push((performance.now() - start) / 1000 / (done * m));
      }
    }
    const [rowOrder, alone] = perPass.map(median);
    const gflops = (2 * shortlist * width) / rowOrder / 1e9;
    report('rescore-batched', {
      usPerQuery: rowOrder * 1e6, perQueryUsPerQuery: alone * 1e6, vsPerQuery: median(perPass[1].map((t, p) => t / perPass[0][p])), gflops, vsPeak: gflops / peak,
      slotsPerRow: (m * shortlist) / among, threads: 1,
      shape: `${m} queries x shortlist ${shortlist} of ${among} rows x ${width} (${distinct} distinct rows in the ${total} queries' shortlists), cosine, top-10, row order vs per query, median of ${passes} passes`,
    });
  }
  await byRows.dispose();
  await perQuery.dispose();
}

// Two threads against one on a large batch
{
  const m = 256, n = 16384;
  const flops = 2 * m * n * dim;
  const out = new Float32Array(m * n);
  const q1 = block(one, m, 7), b1 = block(one, n, 8);
  const q2 = block(two, m, 7), b2 = block(two, n, 8);
  const single = flops / (await secondsPerCall(() => one.score(q1, b1, dim, 'ip', out))) / 1e9;
  const pair = flops / (await secondsPerCall(() => two.score(q2, b2, dim, 'ip', out))) / 1e9;
  report('score-batched-2-threads', { gflops: pair, vsOneThread: pair / single, vsReference: 'n/a', vsPeak: pair / (2 * peak), threads: 2, shape: `${m} queries x ${n} rows x ${dim}` });
  const topk = () => new TopK(m, 10);
  const scanOne = flops / (await secondsPerCall(() => one.scanTopK(q1, b1, dim, 'cosine', topk()))) / 1e9;
  const scanTwo = flops / (await secondsPerCall(() => two.scanTopK(q2, b2, dim, 'cosine', topk()))) / 1e9;
  report('scan-topk-batched-2-threads', { gflops: scanTwo, vsOneThread: scanTwo / scanOne, vsReference: 'n/a', vsPeak: scanTwo / (2 * peak), threads: 2, shape: `${m} queries x ${n} rows x ${dim}, cosine, top-10` });
}

await one.dispose();
await two.dispose();
