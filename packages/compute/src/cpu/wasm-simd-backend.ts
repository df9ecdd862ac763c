import { cpus } from 'node:os';
import type { Backend } from '../backend.js';
import type { Metric } from '../metric.js';
import { checkAdcScan, checkAssign, checkCentroidSums, checkPrefix, checkRescore, type RowBlock } from '../rows.js';
import type { TopK } from '../topk.js';
import { compileKernels, instantiateKernels, type SimdKernels } from './kernels.js';
import { KernelPool } from './pool.js';
import { WasmMemory } from './wasm-memory.js';

export interface WasmSimdBackendOptions {
  /** Threads (the calling thread included); default ADANNS_THREADS, else all cores. */
  threads?: number;
  /**
   * Multiply-adds below which a call stays on the calling thread. Waking the
   * pool costs tens of microseconds, so only calls of about a millisecond or
   * more are split.
   */
  parallelMinWork?: number;
}

const METRIC_CODE: Record<Metric, number> = { cosine: 0, ip: 1, l2: 2 };
const DEFAULT_PARALLEL_MIN_WORK = 1 << 23;
/** Largest chunkRows(): the kernels' scratch holds four such rows. */
const MAX_CHUNK_ROWS = 16384;

/** Staging regions: inputs that do not live in the kernels' memory are copied here per call. */
const Stage = {
  Queries: 0,
  Base: 1,
  QueryNorms: 2,
  BaseNorms: 3,
  Ids: 4,
  HeapIds: 5,
  HeapScores: 6,
  HeapSizes: 7,
  Out: 8,
  Labels: 9,
  Tables: 10,
  Codes: 11,
  Bias: 12,
  CandidateSizes: 13,
  Counts: 14,
  /** Per-thread regions start here: heap ids, heap scores, heap sizes for thread t. */
  Threads: 15,
} as const;

/** Thread count from ADANNS_THREADS, else every core. */
export function defaultThreads(): number {
  const env = process.env.ADANNS_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new Error(`ADANNS_THREADS must be a positive integer, got "${env}"`);
    return n;
  }
  return Math.max(1, cpus().length);
}

/** [from, to) of part t when `total` items are split into `parts` runs, each a multiple of `align` but the last. */
function share(total: number, parts: number, t: number, align: number): [number, number] {
  const per = Math.ceil(total / parts / align) * align;
  const from = Math.min(total, t * per);
  return [from, Math.min(total, from + per)];
}

/**
 * The default backend: WebAssembly SIMD kernels (kernels/cpu) on a shared
 * memory, split across a thread pool for large calls. Index arrays allocated
 * from `arena` are read in place; anything else is staged (copied) per call.
 * Results equal the plain TypeScript ReferenceBackend up to float32 rounding and do
 * not depend on the thread count.
 */
export class WasmSimdBackend implements Backend {
  readonly name = 'cpu';
  private readonly staged = new Map<number, { at: number; bytes: number }>();
  private readonly scratch: number[] = [];
  private f32: Float32Array = new Float32Array(0);
  private i32: Int32Array = new Int32Array(0);
  private u8: Uint8Array = new Uint8Array(0);

  private constructor(
    readonly arena: WasmMemory,
    private readonly kernels: SimdKernels,
    private readonly pool: KernelPool,
    private readonly parallelMinWork: number,
  ) {
    for (let t = 0; t < pool.threads; t++) this.scratch.push(this.allocate(4 * MAX_CHUNK_ROWS * 4));
  }

  static async create(options: WasmSimdBackendOptions = {}): Promise<WasmSimdBackend> {
    const threads = options.threads ?? defaultThreads();
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be a positive integer, got ${threads}`);
    const module = await compileKernels();
    const memory = new WasmMemory();
    const kernels = instantiateKernels(module, memory.memory);
    const pool = await KernelPool.create(module, memory, kernels, threads);
    return new WasmSimdBackend(memory, kernels, pool, options.parallelMinWork ?? DEFAULT_PARALLEL_MIN_WORK);
  }

  get threads(): number {
    return this.pool.threads;
  }

  /** The raw kernels, for the kernel benchmark. */
  get rawKernels(): SimdKernels {
    return this.kernels;
  }

  async score(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, out: Float32Array): Promise<void> {
    checkPrefix(queries, dim, 'score queries');
    checkPrefix(base, dim, 'score base');
    const m = queries.rows, n = base.rows;
    if (out.length < m * n) throw new Error(`score output holds ${out.length} values, needs ${m * n}`);
    if (m === 0 || n === 0) return;
    const { q, b, qInv, bInv } = this.operands(queries, base, dim, metric);
    const o = this.outputOf(out, m * n, Stage.Out);
    const threads = this.threadsFor(m * n * dim, Math.ceil(m / 4));
    for (let t = 0; t < threads; t++) {
      const [from, to] = share(m, threads, t, 4);
      this.pool.args(t).set([q, from, to, queries.stride, qInv, b, n, base.stride, bInv, dim, METRIC_CODE[metric], o + from * n * 4]);
    }
    this.pool.run('score', threads);
    this.copyOut(out, o, m * n);
  }

  async scanTopK(
    queries: RowBlock,
    base: RowBlock,
    dim: number,
    metric: Metric,
    best: TopK,
    baseIds?: Int32Array,
    queryRows?: Int32Array,
  ): Promise<void> {
    checkPrefix(queries, dim, 'scan queries');
    checkPrefix(base, dim, 'scan base');
    const m = queries.rows, n = base.rows;
    if (m === 0 || n === 0) return;
    if (baseIds && baseIds.length < n) throw new Error(`scan: ${baseIds.length} base ids for ${n} rows`);
    const { q, b, qInv, bInv } = this.operands(queries, base, dim, metric);
    const ids = baseIds ? this.arrayOf(baseIds, n, Stage.Ids) : 0;
    // tiles take four queries: split by queries only when every thread gets a few
    this.splitTopK('scanTopK', best, m, n, queryRows, m * n * dim, 4, (t, qFrom, qTo, bFrom, bTo, h) => [
      q, qFrom, qTo, queries.stride, qInv, b, bFrom, bTo, base.stride, bInv, ids, dim, METRIC_CODE[metric], h[0], h[1], h[2], best.k, this.scratch[t],
    ]);
  }

  async rescoreTopK(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, candidates: TopK, best: TopK): Promise<void> {
    checkRescore(queries, base, dim, candidates, best);
    const m = queries.rows;
    if (m === 0 || base.rows === 0) return;
    // shortlists are small: one thread, rows read in place
    const { q, b, qInv, bInv } = this.operands(queries, base, dim, metric);
    const cand = this.arrayOf(candidates.ids, m * candidates.k, Stage.Ids);
    const sizes = this.arrayOf(candidates.sizes, m, Stage.CandidateSizes);
    const heaps = this.gatherHeaps(best, m, undefined);
    this.kernels.rescoreTopK(q, m, queries.stride, qInv, b, base.stride, bInv, cand, candidates.k, sizes, dim, METRIC_CODE[metric], heaps[0], heaps[1], heaps[2], best.k);
    this.scatterHeaps(best, m, undefined, heaps);
  }

  async adcScanTopK(
    tables: Float32Array,
    queries: number,
    m: number,
    codes: Uint8Array,
    rows: number,
    best: TopK,
    baseIds?: Int32Array,
    queryRows?: Int32Array,
    bias?: Float32Array,
  ): Promise<void> {
    checkAdcScan(tables, queries, m, codes, rows, baseIds, bias);
    if (queries === 0 || rows === 0) return;
    const t0 = this.arrayOf(tables, queries * m * 256, Stage.Tables);
    const c = this.arrayOf(codes, rows * m, Stage.Codes);
    const ids = baseIds ? this.arrayOf(baseIds, rows, Stage.Ids) : 0;
    const bi = bias ? this.arrayOf(bias, queries, Stage.Bias) : 0;
    this.splitTopK('adcScanTopK', best, queries, rows, queryRows, queries * rows * m, 1, (_t, qFrom, qTo, from, to, h) => [
      t0, qFrom, qTo, m, c, from, to, ids, bi, h[0], h[1], h[2], best.k,
    ]);
  }

  async assign(vectors: RowBlock, centroids: RowBlock, dim: number, metric: Metric, labels: Int32Array, scores: Float32Array): Promise<void> {
    checkAssign(vectors, centroids, dim, labels, scores);
    const n = vectors.rows;
    if (n === 0) return;
    const { q: v, b: c, qInv: vInv, bInv: cInv } = this.operands(vectors, centroids, dim, metric);
    const l = this.outputOf(labels, n, Stage.Labels);
    const s = this.outputOf(scores, n, Stage.Out);
    const threads = this.threadsFor(n * centroids.rows * dim, Math.ceil(n / 4));
    for (let t = 0; t < threads; t++) {
      const [from, to] = share(n, threads, t, 4);
      this.pool.args(t).set([v, from, to, vectors.stride, vInv, c, centroids.rows, centroids.stride, cInv, dim, METRIC_CODE[metric], l, s, this.scratch[t]]);
    }
    this.pool.run('assign', threads);
    this.copyOut(labels, l, n);
    this.copyOut(scores, s, n);
  }

  async centroidSums(vectors: RowBlock, dim: number, labels: Int32Array, k: number, sums: Float32Array, counts: Int32Array): Promise<void> {
    checkCentroidSums(vectors, dim, labels, k, sums, counts);
    const v = vectors.rows > 0 ? this.rowsOf(vectors, dim, Stage.Queries) : 0;
    const l = this.arrayOf(labels, vectors.rows, Stage.Labels);
    // memory-bound and O(n * dim): one thread, into zeroed staging
    const s = this.region(Stage.Out, k * dim * 4);
    const c = this.region(Stage.Counts, k * 4);
    this.views();
    this.f32.fill(0, s >> 2, (s >> 2) + k * dim);
    this.i32.fill(0, c >> 2, (c >> 2) + k);
    this.kernels.centroidSums(v, vectors.rows, vectors.stride, dim, l, s, c);
    sums.set(this.f32.subarray(s >> 2, (s >> 2) + k * dim));
    counts.set(this.i32.subarray(c >> 2, (c >> 2) + k));
  }

  async dispose(): Promise<void> {
    await this.pool.dispose();
  }

  /** Queries and base on the kernels' memory with their cosine inverse norms (0 for other metrics). */
  private operands(queries: RowBlock, base: RowBlock, dim: number, metric: Metric): { q: number; b: number; qInv: number; bInv: number } {
    const q = this.rowsOf(queries, dim, Stage.Queries);
    const b = this.rowsOf(base, dim, Stage.Base);
    return { q, b, qInv: this.normsOf(queries, q, dim, metric, Stage.QueryNorms), bInv: this.normsOf(base, b, dim, metric, Stage.BaseNorms) };
  }

  /**
   * Runs a top-k kernel over `queries` x `rows` on the pool and merges into
   * `best`. With at least `queryAlign` queries per thread the queries are
   * split (each thread owns its heap rows); otherwise the rows are, each
   * thread filling private heaps that are merged afterwards. `args` gives a
   * thread's kernel arguments from its query range, row range and heaps.
   */
  private splitTopK(
    op: 'scanTopK' | 'adcScanTopK',
    best: TopK,
    queries: number,
    rows: number,
    queryRows: Int32Array | undefined,
    work: number,
    queryAlign: number,
    args: (t: number, qFrom: number, qTo: number, from: number, to: number, heaps: [number, number, number]) => number[],
  ): void {
    const heaps = this.gatherHeaps(best, queries, queryRows);
    const byQueries = queries >= queryAlign * this.pool.threads;
    const threads = this.threadsFor(work, byQueries ? Math.ceil(queries / queryAlign) : Math.ceil(rows / 64));
    for (let t = 0; t < threads; t++) {
      const [qFrom, qTo] = byQueries ? share(queries, threads, t, queryAlign) : [0, queries];
      const [from, to] = byQueries ? [0, rows] : share(rows, threads, t, 64);
      this.pool.args(t).set(args(t, qFrom, qTo, from, to, byQueries || t === 0 ? heaps : this.privateHeaps(t, queries, best.k)));
    }
    this.pool.run(op, threads);
    this.scatterHeaps(best, queries, queryRows, heaps);
    if (!byQueries) for (let t = 1; t < threads; t++) this.mergeHeaps(best, queries, queryRows, this.privateHeaps(t, queries, best.k, false));
  }

  /** Threads for a call of `work` multiply-adds that splits into at most `units` pieces. */
  private threadsFor(work: number, units: number): number {
    if (this.pool.threads === 1 || work < this.parallelMinWork) return 1;
    return Math.max(1, Math.min(this.pool.threads, units));
  }

  private allocate(bytes: number): number {
    const at = this.arena.allocate(bytes);
    if (at === undefined) throw new Error(`out of WebAssembly memory allocating ${bytes} bytes (4 GiB address space)`);
    return at;
  }

  /** Address of a reusable staging region of at least `bytes`. */
  private region(stage: number, bytes: number): number {
    const held = this.staged.get(stage);
    if (held && held.bytes >= bytes) return held.at;
    if (held) this.arena.releaseAddress(held.at);
    const size = Math.max(bytes, 2 * (held?.bytes ?? 0), 4096);
    const at = this.allocate(size);
    this.staged.set(stage, { at, bytes: size });
    return at;
  }

  /** Views of the whole memory, renewed when it has grown. */
  private views(): void {
    const buffer = this.arena.memory.buffer;
    if (this.f32.buffer === buffer) return;
    this.f32 = new Float32Array(buffer);
    this.i32 = new Int32Array(buffer);
    this.u8 = new Uint8Array(buffer);
  }

  /** Address of a block's first row, staging a copy of its rows when it lives outside the memory. */
  private rowsOf(block: RowBlock, dim: number, stage: number): number {
    const offset = block.offset ?? 0;
    const at = this.arena.addressOf(block.data);
    if (at !== undefined) return at + offset * 4;
    const length = (block.rows - 1) * block.stride + dim;
    const to = this.region(stage, length * 4);
    this.views();
    this.f32.set(block.data.subarray(offset, offset + length), to >> 2);
    return to;
  }

  private arrayOf(array: Float32Array | Int32Array | Uint8Array, length: number, stage: number): number {
    const at = this.arena.addressOf(array);
    if (at !== undefined) return at;
    const to = this.region(stage, length * array.BYTES_PER_ELEMENT);
    this.views();
    if (array instanceof Float32Array) this.f32.set(array.subarray(0, length), to >> 2);
    else if (array instanceof Int32Array) this.i32.set(array.subarray(0, length), to >> 2);
    else this.u8.set(array.subarray(0, length), to);
    return to;
  }

  /** Cosine inverse norms at `dim` (supplied, or computed by the kernel from the rows at `rows`); 0 for other metrics. */
  private normsOf(block: RowBlock, rows: number, dim: number, metric: Metric, stage: number): number {
    if (metric !== 'cosine') return 0;
    if (block.invNorms) {
      if (block.invNorms.length < block.rows) throw new Error(`invNorms has ${block.invNorms.length} entries for ${block.rows} rows`);
      return this.arrayOf(block.invNorms, block.rows, stage);
    }
    const out = this.region(stage, block.rows * 4);
    this.kernels.invNorms(rows, block.rows, block.stride, dim, out);
    return out;
  }

  private outputOf(array: Float32Array | Int32Array, length: number, stage: number): number {
    return this.arena.addressOf(array) ?? this.region(stage, length * 4);
  }

  private copyOut(array: Float32Array | Int32Array, from: number, length: number): void {
    if (this.arena.addressOf(array) !== undefined) return;
    this.views();
    if (array instanceof Float32Array) array.set(this.f32.subarray(from >> 2, (from >> 2) + length));
    else array.set(this.i32.subarray(from >> 2, (from >> 2) + length));
  }

  /** Copies the heaps of the call's rows (queryRows, or 0..rows-1) into staging: [ids, scores, sizes] addresses. */
  private gatherHeaps(best: TopK, rows: number, queryRows: Int32Array | undefined): [number, number, number] {
    const k = best.k;
    const heaps: [number, number, number] = [this.region(Stage.HeapIds, rows * k * 4), this.region(Stage.HeapScores, rows * k * 4), this.region(Stage.HeapSizes, rows * 4)];
    this.views();
    for (let t = 0; t < rows; t++) {
      const row = queryRows ? queryRows[t] : t;
      const size = best.sizes[row];
      this.i32.set(best.ids.subarray(row * k, row * k + size), (heaps[0] >> 2) + t * k);
      this.f32.set(best.scores.subarray(row * k, row * k + size), (heaps[1] >> 2) + t * k);
      this.i32[(heaps[2] >> 2) + t] = size;
    }
    return heaps;
  }

  private scatterHeaps(best: TopK, rows: number, queryRows: Int32Array | undefined, heaps: [number, number, number]): void {
    const k = best.k;
    this.views();
    for (let t = 0; t < rows; t++) {
      const row = queryRows ? queryRows[t] : t;
      const size = this.i32[(heaps[2] >> 2) + t];
      best.ids.set(this.i32.subarray((heaps[0] >> 2) + t * k, (heaps[0] >> 2) + t * k + size), row * k);
      best.scores.set(this.f32.subarray((heaps[1] >> 2) + t * k, (heaps[1] >> 2) + t * k + size), row * k);
      best.sizes[row] = size;
    }
  }

  /** Thread t's own heaps when a call is split by base rows; emptied unless `reset` is false. */
  private privateHeaps(t: number, rows: number, k: number, reset = true): [number, number, number] {
    const base = Stage.Threads + 3 * t;
    const heaps: [number, number, number] = [this.region(base, rows * k * 4), this.region(base + 1, rows * k * 4), this.region(base + 2, rows * 4)];
    if (reset) {
      this.views();
      this.i32.fill(0, heaps[2] >> 2, (heaps[2] >> 2) + rows);
    }
    return heaps;
  }

  /** Pushes every entry of a thread's heaps into `best` (the heap order is total, so merge order does not matter). */
  private mergeHeaps(best: TopK, rows: number, queryRows: Int32Array | undefined, heaps: [number, number, number]): void {
    const k = best.k;
    this.views();
    for (let t = 0; t < rows; t++) {
      const row = queryRows ? queryRows[t] : t;
      const size = this.i32[(heaps[2] >> 2) + t];
      for (let i = 0; i < size; i++) best.push(row, this.i32[(heaps[0] >> 2) + t * k + i], this.f32[(heaps[1] >> 2) + t * k + i]);
    }
  }
}
