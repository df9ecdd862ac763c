import { cpus } from 'node:os';
import type { Backend } from '../backend.js';
import { checkCoded, codedInvNorms, encodedBytes, type CodedRows } from '../coded.js';
import type { Metric } from '../metric.js';
import { checkAdcScan, checkAssign, checkCentroidSums, checkPrefix, checkRescore, type RowBlock } from '../rows.js';
import type { TopK } from '../topk.js';
import { compileKernels, type PoolOp, type SimdKernels } from './kernels.js';
import { KernelPool } from './pool.js';
import { Spaces, Stage, type Space } from './staging.js';
import { WasmArena, type WasmArenaOptions } from './wasm-memory.js';

export interface WasmSimdBackendOptions extends WasmArenaOptions {
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
/** Widest prefix of encoded rows a scan decodes: four rows and their scores fill the scratch. */
const MAX_CODED_DIM = 4 * MAX_CHUNK_ROWS / 4 - 4;

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
 * The default backend: WebAssembly SIMD kernels (kernels/cpu) on shared
 * memories, split across a thread pool for large calls. Index arrays
 * allocated from `arena` are read in place; anything else is staged (copied)
 * per call. The arena spans several memories when one wasm32 memory (4 GiB)
 * is not enough: each call runs on the memory holding its main operand, with
 * the other operands staged there (staging.ts). Results equal the plain
 * TypeScript ReferenceBackend up to float32 rounding and depend neither on
 * the thread count nor on which memories the arrays lie in.
 */
export class WasmSimdBackend implements Backend {
  readonly name = 'cpu';
  private readonly spaces: Spaces;

  private constructor(
    readonly arena: WasmArena,
    module: WebAssembly.Module,
    private readonly pool: KernelPool,
    private readonly parallelMinWork: number,
  ) {
    this.spaces = new Spaces(arena, module, pool.threads);
  }

  static async create(options: WasmSimdBackendOptions = {}): Promise<WasmSimdBackend> {
    const threads = options.threads ?? defaultThreads();
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be a positive integer, got ${threads}`);
    const module = await compileKernels();
    const arena = new WasmArena(options);
    const pool = await KernelPool.create(module, arena, threads);
    return new WasmSimdBackend(arena, module, pool, options.parallelMinWork ?? DEFAULT_PARALLEL_MIN_WORK);
  }

  get threads(): number {
    return this.pool.threads;
  }

  /** The raw kernels on the first memory, for the kernel benchmark. */
  get rawKernels(): SimdKernels {
    return this.spaces.at(0).kernels;
  }

  async score(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, out: Float32Array): Promise<void> {
    checkPrefix(queries, dim, 'score queries');
    checkPrefix(base, dim, 'score base');
    const m = queries.rows, n = base.rows;
    if (out.length < m * n) throw new Error(`score output holds ${out.length} values, needs ${m * n}`);
    if (m === 0 || n === 0) return;
    const s = this.spaces.bind([base, queries, out]);
    const { q, b, qInv, bInv } = this.operands(s, queries, base, dim, metric);
    const o = s.output(out, m * n, Stage.Out);
    const threads = this.threadsFor(m * n * dim, Math.ceil(m / 4));
    for (let t = 0; t < threads; t++) {
      const [from, to] = share(m, threads, t, 4);
      this.pool.args(t).set([q, from, to, queries.stride, qInv, b, n, base.stride, bInv, dim, METRIC_CODE[metric], o + from * n * 4]);
    }
    this.run('score', threads, s);
    s.copyOut(out, o, m * n);
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
    const scratch = 4 * this.rawKernels.chunkRows(dim) * 4;
    const s = this.spaces.bind([base, queries, baseIds], this.topKStaging(m, best.k, scratch));
    const { q, b, qInv, bInv } = this.operands(s, queries, base, dim, metric);
    const ids = baseIds ? s.array(baseIds, n, Stage.Ids) : 0;
    // tiles take four queries: split by queries only when every thread gets a few
    this.splitTopK('scanTopK', s, best, m, n, queryRows, m * n * dim, 4, (t, qFrom, qTo, bFrom, bTo, h) => [
      q, qFrom, qTo, queries.stride, qInv, b, bFrom, bTo, base.stride, bInv, ids, dim, METRIC_CODE[metric], h[0], h[1], h[2], best.k, s.scratch(t, scratch),
    ]);
  }

  async scanCodedTopK(queries: RowBlock, base: CodedRows, dim: number, metric: Metric, best: TopK, baseIds?: Int32Array, queryRows?: Int32Array): Promise<void> {
    checkPrefix(queries, dim, 'scan queries');
    checkCoded(base, dim, 'scan base');
    // the kernel decodes blocks into the thread's scratch (65536 floats), at least four rows at a time
    if (dim > MAX_CODED_DIM) throw new Error(`scan of encoded rows: prefix ${dim} exceeds the CPU kernels' limit of ${MAX_CODED_DIM}`);
    const m = queries.rows, n = base.rows;
    if (m === 0 || n === 0) return;
    if (baseIds && baseIds.length < n) throw new Error(`scan: ${baseIds.length} base ids for ${n} rows`);
    const invNorms = metric === 'cosine' ? (base.invNorms ?? codedInvNorms(base, dim)) : undefined;
    const scratch = (4 + dim) * this.rawKernels.codedChunkRows(dim) * 4; // scores of four queries, then the decoded block
    const s = this.spaces.bind([base.codes, queries, base.params, invNorms, baseIds], this.topKStaging(m, best.k, scratch));
    const q = s.rows(queries, dim, Stage.Queries);
    const qInv = s.norms(queries, q, dim, metric, Stage.QueryNorms);
    const b = s.array(base.codes, ((n - 1) * base.stride + dim) * encodedBytes(base.encoding), Stage.Codes);
    const bInv = invNorms ? s.array(invNorms, n, Stage.BaseNorms) : 0;
    // sq8 min and scale ride in the (otherwise unused) tables region when not resident
    const params = base.encoding === 'sq8' ? s.array(base.params!, 2 * base.stride, Stage.Tables) : 0;
    const mode = METRIC_CODE[metric] + 4 * (base.encoding === 'f16' ? 0 : 1);
    const ids = baseIds ? s.array(baseIds, n, Stage.Ids) : 0;
    this.splitTopK('scanCodedTopK', s, best, m, n, queryRows, m * n * dim, 4, (t, qFrom, qTo, bFrom, bTo, h) => [
      q, qFrom, qTo, queries.stride, qInv, b, bFrom, bTo, base.stride, bInv, ids, dim, mode, h[0], h[1], h[2], best.k, s.scratch(t, scratch), params,
    ]);
  }

  async rescoreTopK(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, candidates: TopK, best: TopK): Promise<void> {
    checkRescore(queries, base, dim, candidates, best);
    const m = queries.rows;
    if (m === 0 || base.rows === 0) return;
    // shortlists are small: one thread, rows read in place
    const s = this.spaces.bind([base, queries, candidates.ids, candidates.sizes], this.topKStaging(m, best.k, 0, 1));
    const { q, b, qInv, bInv } = this.operands(s, queries, base, dim, metric);
    const cand = s.array(candidates.ids, m * candidates.k, Stage.Ids);
    const sizes = s.array(candidates.sizes, m, Stage.CandidateSizes);
    const heaps = s.gatherHeaps(best, m, undefined);
    s.kernels.rescoreTopK(q, m, queries.stride, qInv, b, base.stride, bInv, cand, candidates.k, sizes, dim, METRIC_CODE[metric], heaps[0], heaps[1], heaps[2], best.k);
    s.scatterHeaps(best, m, undefined, heaps);
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
    const s = this.spaces.bind([codes, tables, baseIds, bias], this.topKStaging(queries, best.k, 0));
    const t0 = s.array(tables, queries * m * 256, Stage.Tables);
    const c = s.array(codes, rows * m, Stage.Codes);
    const ids = baseIds ? s.array(baseIds, rows, Stage.Ids) : 0;
    const bi = bias ? s.array(bias, queries, Stage.Bias) : 0;
    this.splitTopK('adcScanTopK', s, best, queries, rows, queryRows, queries * rows * m, 1, (_t, qFrom, qTo, from, to, h) => [
      t0, qFrom, qTo, m, c, from, to, ids, bi, h[0], h[1], h[2], best.k,
    ]);
  }

  async assign(vectors: RowBlock, centroids: RowBlock, dim: number, metric: Metric, labels: Int32Array, scores: Float32Array): Promise<void> {
    checkAssign(vectors, centroids, dim, labels, scores);
    const n = vectors.rows;
    if (n === 0) return;
    const scratch = 4 * this.rawKernels.chunkRows(dim) * 4;
    const s = this.spaces.bind([vectors, centroids, labels, scores], scratch * this.pool.threads);
    const { q: v, b: c, qInv: vInv, bInv: cInv } = this.operands(s, vectors, centroids, dim, metric);
    const l = s.output(labels, n, Stage.Labels);
    const o = s.output(scores, n, Stage.Out);
    const threads = this.threadsFor(n * centroids.rows * dim, Math.ceil(n / 4));
    for (let t = 0; t < threads; t++) {
      const [from, to] = share(n, threads, t, 4);
      this.pool.args(t).set([v, from, to, vectors.stride, vInv, c, centroids.rows, centroids.stride, cInv, dim, METRIC_CODE[metric], l, o, s.scratch(t, scratch)]);
    }
    this.run('assign', threads, s);
    s.copyOut(labels, l, n);
    s.copyOut(scores, o, n);
  }

  async centroidSums(vectors: RowBlock, dim: number, labels: Int32Array, k: number, sums: Float32Array, counts: Int32Array): Promise<void> {
    checkCentroidSums(vectors, dim, labels, k, sums, counts);
    const s = this.spaces.bind([vectors, labels], (k * dim + k) * 4);
    const v = vectors.rows > 0 ? s.rows(vectors, dim, Stage.Queries) : 0;
    const l = s.array(labels, vectors.rows, Stage.Labels);
    // memory-bound and O(n * dim): one thread, into zeroed staging
    const o = s.zeroed(Stage.Out, k * dim);
    const c = s.zeroed(Stage.Counts, k);
    s.kernels.centroidSums(v, vectors.rows, vectors.stride, dim, l, o, c);
    s.copyOut(sums, o, k * dim);
    s.copyOut(counts, c, k);
  }

  async dispose(): Promise<void> {
    await this.pool.dispose();
  }

  /** Queries and base in the call's memory with their cosine inverse norms (0 for other metrics). */
  private operands(s: Space, queries: RowBlock, base: RowBlock, dim: number, metric: Metric): { q: number; b: number; qInv: number; bInv: number } {
    const q = s.rows(queries, dim, Stage.Queries);
    const b = s.rows(base, dim, Stage.Base);
    return { q, b, qInv: s.norms(queries, q, dim, metric, Stage.QueryNorms), bInv: s.norms(base, b, dim, metric, Stage.BaseNorms) };
  }

  /** Staging a top-k call needs besides its operands, at most: heaps of `queries` rows (one set per thread) and per-thread scratch. */
  private topKStaging(queries: number, k: number, scratch: number, threads = this.pool.threads): number {
    return threads * (queries * (8 * k + 4) + scratch);
  }

  /** Runs a pooled op on threads 0..threads-1, on the call's memory. */
  private run(op: PoolOp, threads: number, s: Space): void {
    this.pool.run(op, threads, s.index, s.kernels);
  }

  /**
   * Runs a top-k kernel over `queries` x `rows` on the pool and merges into
   * `best`. With at least `queryAlign` queries per thread the queries are
   * split (each thread owns its heap rows); otherwise the rows are, each
   * thread filling private heaps that are merged afterwards. `args` gives a
   * thread's kernel arguments from its query range, row range and heaps.
   */
  private splitTopK(
    op: 'scanTopK' | 'adcScanTopK' | 'scanCodedTopK',
    s: Space,
    best: TopK,
    queries: number,
    rows: number,
    queryRows: Int32Array | undefined,
    work: number,
    queryAlign: number,
    args: (t: number, qFrom: number, qTo: number, from: number, to: number, heaps: [number, number, number]) => number[],
  ): void {
    const heaps = s.gatherHeaps(best, queries, queryRows);
    const byQueries = queries >= queryAlign * this.pool.threads;
    const threads = this.threadsFor(work, byQueries ? Math.ceil(queries / queryAlign) : Math.ceil(rows / 64));
    for (let t = 0; t < threads; t++) {
      const [qFrom, qTo] = byQueries ? share(queries, threads, t, queryAlign) : [0, queries];
      const [from, to] = byQueries ? [0, rows] : share(rows, threads, t, 64);
      this.pool.args(t).set(args(t, qFrom, qTo, from, to, byQueries || t === 0 ? heaps : s.privateHeaps(t, queries, best.k)));
    }
    this.run(op, threads, s);
    s.scatterHeaps(best, queries, queryRows, heaps);
    if (!byQueries) for (let t = 1; t < threads; t++) s.mergeHeaps(best, queries, queryRows, s.privateHeaps(t, queries, best.k, false));
  }

  /** Threads for a call of `work` multiply-adds that splits into at most `units` pieces. */
  private threadsFor(work: number, units: number): number {
    if (this.pool.threads === 1 || work < this.parallelMinWork) return 1;
    return Math.max(1, Math.min(this.pool.threads, units));
  }
}
