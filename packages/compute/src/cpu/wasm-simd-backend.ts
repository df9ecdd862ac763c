import { cpus } from 'node:os';
import type { Backend } from '../backend.js';
import { checkCoded, codedInvNorms, encodedBytes, type CodedRows } from '../coded.js';
import { checkFastScan, checkFastScanLists, fastScanBytes, fastScanProbeTable, quantizeFastScanTable, type FastScanLists, type FastScanTables } from '../fastscan.js';
import type { Metric } from '../metric.js';
import { checkAdcScan, checkAssign, checkCentroidSums, checkPrefix, checkRescore, type RowBlock, type RowGroups } from '../rows.js';
import type { TopK } from '../topk.js';
import { checkListRescore, checkListScan, checkPqScan, pqListBiases, PQ_TABLE, type ListCandidates, type ListSet, type PqQuantizer } from '../lists.js';
import { checkMask, maskCodes, maskCoded, maskFastScanCodes, maskRows } from '../mask.js';
import { directoryBytes, groupArrays, groupProbeEntries, planListScan, writeDirectory } from './list-scan.js';
import { ListDirectories, planListRescore, type ListDirectory } from './list-rescore.js';
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
  /**
   * How rescoreTopK takes a batch of four queries or more: 'rows', its
   * candidates in row order (rescoreByRows); 'groups', group by group when
   * the call groups the rows (rescoreGrouped; any batch up to
   * RESCORE_GROUPED_MAX_PAIRS candidates), else as 'auto';
   * 'queries', each shortlist in place; 'auto' (default), group by group
   * when the rows are grouped, else in row order when that pays (see
   * rescoreTopK). The kernel benchmark and the tests set one path.
   */
  rescoreOrder?: RescoreOrder;
}

export type RescoreOrder = 'auto' | 'rows' | 'groups' | 'queries';
const RESCORE_ORDERS: readonly RescoreOrder[] = ['auto', 'rows', 'groups', 'queries'];

const METRIC_CODE: Record<Metric, number> = { cosine: 0, ip: 1, l2: 2 };
const DEFAULT_PARALLEL_MIN_WORK = 1 << 23;
/** Largest chunkRows(): the kernels' scratch holds four such rows. */
const MAX_CHUNK_ROWS = 16384;
/** Widest prefix of encoded rows a scan decodes: four rows and their scores fill the scratch. */
const MAX_CODED_DIM = 4 * MAX_CHUNK_ROWS / 4 - 4;

/**
 * Stages a filter for the list kernels (kernels/cpu/simd.ts, "filters"): its
 * word count, then its words, in the region list scans leave unused; 0
 * without one.
 */
function stageMask(s: Space, mask: Uint32Array | undefined): number {
  if (!mask) return 0;
  const at = s.region(Stage.Counts, 4 + mask.byteLength);
  s.words()[at >>> 2] = mask.length;
  s.copyTo(mask, mask.byteLength, at + 4);
  return at;
}

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

/** Queries from which rescoreTopK may take a batch's candidates in row order (rescoreByRows): a tile's worth. */
const RESCORE_BY_ROWS = 4;
/**
 * Shortlist slots per base row from which one thread re-ranks in row order
 * rather than query by query: a row must be wanted by several queries for
 * reading it once to pay for the sort. `npm run bench:kernels`, lines
 * rescore-batched (shortlists of 100, rows of 784, one thread; 2026-12-02,
 * 2 shared cores): row order 0.85x and 0.77x of per-query at 4 and 16
 * queries over 60,000 rows, 1.05x at 1,000 (1.67 slots a row: break-even
 * within the noise), 1.63x at 1,000 over 20,000 rows (5 a row).
 */
const RESCORE_BY_ROWS_SHARING = 2;
/**
 * rescoreTopK takes a batch group by group ('auto', rows grouped) when its
 * shortlist slots are at least 1/RESCORE_GROUPS_SHARE of the base rows. On
 * the Fashion-MNIST 0.95 plan's shortlists (100 of 60,000 rows, 256 lists,
 * one thread, 2 loaded cores) group order took 0.96x the per-query time at
 * 16 queries, 0.89x at 1,000 and 0.39x at 10,000 (in row order: 1.0x at
 * 1,000, 1.02x at 10,000); below the share the per-query path is as fast
 * and nothing is staged.
 */
const RESCORE_GROUPS_SHARE = 8;
/**
 * The most (query, candidate) pairs a grouped re-rank takes in one call: it stages a scratch entry per pair and
 * private heaps per extra thread for the whole batch, so past this (16 MiB of scratch) a batch goes in row order,
 * whose scratch is sliced, rather than run the WebAssembly memory out.
 */
const RESCORE_GROUPED_MAX_PAIRS = 1 << 22;
/**
 * Shortlist slots (queries x candidates.k) a rescoreByRows call sorts (its
 * scratch: 8 bytes a slot): larger batches go in slices of queries. A slice
 * never holds fewer than RESCORE_BY_ROWS queries, so a shortlist of more than
 * 2^18 slots sorts more than this in one call.
 */
const RESCORE_SLICE = 1 << 20;

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
/** A re-rank's operands staged in the call's space: queries, base rows, their norms, the candidates, the heaps. */
function stageRescore(s: Space, queries: RowBlock, base: RowBlock, dim: number, metric: Metric, candidates: TopK, best: TopK) {
  const m = queries.rows;
  const q = s.rows(queries, dim, Stage.Queries);
  const b = s.rows(base, dim, Stage.Base);
  const qInv = s.norms(queries, q, dim, metric, Stage.QueryNorms);
  // norms a gathered block comes without are computed as the reference does, so it scores as resident rows with theirs
  const bInv = s.exactNorms(base, b, dim, metric, Stage.BaseNorms);
  const cand = s.array(candidates.ids, m * candidates.k, Stage.Ids);
  const sizes = s.array(candidates.sizes, m, Stage.CandidateSizes);
  return { q, b, qInv, bInv, cand, sizes, heaps: s.gatherHeaps(best, m, undefined) };
}

export class WasmSimdBackend implements Backend {
  readonly name = 'cpu';
  private readonly spaces: Spaces;
  /** rescoreListsTopK's directories of every list, kept while the lists do not change. */
  private readonly directories: ListDirectories;

  private constructor(
    readonly arena: WasmArena,
    module: WebAssembly.Module,
    private readonly pool: KernelPool,
    private readonly parallelMinWork: number,
    private readonly rescoreOrder: RescoreOrder,
  ) {
    this.spaces = new Spaces(arena, module, pool.threads);
    this.directories = new ListDirectories(arena);
  }

  static async create(options: WasmSimdBackendOptions = {}): Promise<WasmSimdBackend> {
    const threads = options.threads ?? defaultThreads();
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be a positive integer, got ${threads}`);
    const module = await compileKernels();
    const arena = new WasmArena(options);
    const order = options.rescoreOrder ?? 'auto';
    if (!RESCORE_ORDERS.includes(order)) throw new Error(`rescoreOrder must be one of ${RESCORE_ORDERS.join(', ')}, got "${order}"`);
    const pool = await KernelPool.create(module, arena, threads);
    return new WasmSimdBackend(arena, module, pool, options.parallelMinWork ?? DEFAULT_PARALLEL_MIN_WORK, order);
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
    mask?: Uint32Array,
  ): Promise<void> {
    checkPrefix(queries, dim, 'scan queries');
    checkPrefix(base, dim, 'scan base');
    checkMask(mask, 'scan');
    const m = queries.rows, n = base.rows;
    if (m === 0 || n === 0) return;
    if (mask) {
      // a filtered block scan (rare: searches filter inside the list scans) compacts the allowed rows first (mask.ts)
      const kept = maskRows(mask, base, dim, baseIds);
      if (kept) return kept.base.rows > 0 ? this.scanTopK(queries, kept.base, dim, metric, best, kept.ids, queryRows) : undefined;
    }
    if (baseIds && baseIds.length < n) throw new Error(`scan: ${baseIds.length} base ids for ${n} rows`);
    // each thread's scratch: its chunk's scores, then the candidate buffers of its heap rows
    const scratch = (rows: number) => this.rawKernels.scanTopKScratch(dim, rows, best.k);
    const s = this.spaces.bind([base, queries, baseIds], this.topKStaging(m, best.k, scratch(0)) + this.bufferStaging(m, best.k));
    const { q, b, qInv, bInv } = this.operands(s, queries, base, dim, metric);
    const ids = baseIds ? s.array(baseIds, n, Stage.Ids) : 0;
    // tiles take four queries: split by queries only when every thread gets a few
    this.splitTopK('scanTopK', s, best, m, n, queryRows, m * n * dim, 4, (t, qFrom, qTo, bFrom, bTo, h) => [
      q, qFrom, qTo, queries.stride, qInv, b, bFrom, bTo, base.stride, bInv, ids, dim, METRIC_CODE[metric], h[0], h[1], h[2], best.k, s.scratch(t, scratch(qTo - qFrom)),
    ]);
  }

  async scanCodedTopK(queries: RowBlock, base: CodedRows, dim: number, metric: Metric, best: TopK, baseIds?: Int32Array, queryRows?: Int32Array, mask?: Uint32Array): Promise<void> {
    checkPrefix(queries, dim, 'scan queries');
    checkCoded(base, dim, 'scan base');
    checkMask(mask, 'scan');
    if (mask && base.rows > 0) {
      const kept = maskCoded(mask, base, baseIds);
      if (kept) return kept.base.rows > 0 ? this.scanCodedTopK(queries, kept.base, dim, metric, best, kept.ids, queryRows) : undefined;
    }
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

  async rescoreTopK(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, candidates: TopK, best: TopK, groups?: RowGroups): Promise<void> {
    checkRescore(queries, base, dim, candidates, best, groups);
    const m = queries.rows;
    if (m === 0 || base.rows === 0) return;
    // grouped rows (an IVF index's lists): a batch group by group (rescoreGrouped), split by groups over the pool; 'auto'
    // when the batch's candidates are many beside the base rows (the groups, an int a row, are staged with the call)
    const grouped = this.rescoreOrder === 'groups' || (this.rescoreOrder === 'auto' && m >= RESCORE_BY_ROWS && m * candidates.k * RESCORE_GROUPS_SHARE >= base.rows);
    if (groups && grouped && m * candidates.k <= RESCORE_GROUPED_MAX_PAIRS) return this.rescoreGrouped(queries, base, dim, metric, candidates, best, groups);
    // a batch: its candidates in row order (rescoreByRows: each row read once for all the queries that want it, the
    // base streamed in address order), split by queries over the pool; else each shortlist in place, one thread.
    // 'auto' takes row order where it wins: the work is split over threads (the per-query path runs on one), or
    // the batch's shortlists share rows (RESCORE_BY_ROWS_SHARING)
    const slice = Math.max(RESCORE_BY_ROWS, Math.floor(RESCORE_SLICE / candidates.k));
    const split = this.threadsFor(m * candidates.k * dim, Math.ceil(Math.min(m, slice) / 4));
    const batched = m >= RESCORE_BY_ROWS && this.rescoreOrder !== 'queries'
      && (this.rescoreOrder === 'rows' || split > 1 || m * candidates.k >= RESCORE_BY_ROWS_SHARING * base.rows);
    const threads = batched ? split : 1;
    const scratch = batched ? this.rawKernels.rescoreByRowsScratch(share(Math.min(m, slice), threads, 0, 4)[1] * candidates.k) : 0;
    const s = this.spaces.bind([base, queries, candidates.ids, candidates.sizes], this.topKStaging(m, best.k, scratch, threads));
    const { q, b, qInv, bInv, cand, sizes, heaps } = stageRescore(s, queries, base, dim, metric, candidates, best);
    if (batched) {
      for (let q0 = 0; q0 < m; q0 += slice) {
        const n = Math.min(slice, m - q0);
        for (let t = 0; t < threads; t++) {
          const [from, to] = share(n, threads, t, 4);
          this.pool.args(t).set([q, q0 + from, q0 + to, queries.stride, qInv, b, base.stride, bInv, cand, candidates.k, sizes, dim, METRIC_CODE[metric], heaps[0], heaps[1], heaps[2], best.k, s.scratch(t, scratch)]);
        }
        this.run('rescoreByRows', threads, s);
      }
    } else {
      s.kernels.rescoreTopK(q, m, queries.stride, qInv, b, base.stride, bInv, cand, candidates.k, sizes, dim, METRIC_CODE[metric], heaps[0], heaps[1], heaps[2], best.k);
    }
    s.scatterHeaps(best, m, undefined, heaps);
  }

  /**
   * rescoreTopK group by group (kernels/cpu/simd.ts, rescoreGrouped): thread t
   * takes a share of the groups for every query into its own heaps (thread
   * 0 into the call's), merged after, so each group's rows are read by one
   * thread once for the whole batch.
   */
  private rescoreGrouped(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, candidates: TopK, best: TopK, groups: RowGroups): void {
    const m = queries.rows;
    const count = groups.count;
    const threads = this.threadsFor(m * candidates.k * dim, count);
    const scratch = this.rawKernels.rescoreGroupedScratch(m * candidates.k, share(count, threads, 0, 1)[1], candidates.k);
    const s = this.spaces.bind([base, queries, candidates.ids, candidates.sizes, groups.of], this.topKStaging(m, best.k, scratch, threads));
    const { q, b, qInv, bInv, cand, sizes, heaps } = stageRescore(s, queries, base, dim, metric, candidates, best);
    const of = s.array(groups.of, base.rows, Stage.Labels);
    for (let t = 0; t < threads; t++) {
      const [from, to] = share(count, threads, t, 1);
      const h = t === 0 ? heaps : s.privateHeaps(t, m, best.k);
      this.pool.args(t).set([q, m, queries.stride, qInv, b, base.stride, bInv, cand, candidates.k, sizes, of, count, from, to, dim, METRIC_CODE[metric], h[0], h[1], h[2], best.k, s.scratch(t, scratch)]);
    }
    this.run('rescoreGrouped', threads, s);
    s.scatterHeaps(best, m, undefined, heaps);
    for (let t = 1; t < threads; t++) s.mergeHeaps(best, m, undefined, s.privateHeaps(t, m, best.k, false));
  }

  /**
   * One kernel call per memory holding the candidates' lists (one in all but
   * indexes past 4 GiB): the lists named by a directory as a list scan's,
   * each candidate by its entry and position, rows read in place (f16/sq8
   * decoded in the kernel), heaps kept in the kernel. One thread: shortlists
   * are small. Lists with a source (ListSet.source) in one memory: a
   * directory of every list, kept while they do not change (after a change
   * built once calls have planned as many entries as there are lists), and
   * the candidates' lists are its entries (a call plans nothing).
   */
  async rescoreListsTopK(queries: RowBlock, lists: ListSet, candidates: ListCandidates, dim: number, metric: Metric, best: TopK): Promise<void> {
    checkListRescore(queries, lists, candidates, dim, best);
    const rows = queries.rows;
    const ck = candidates.k;
    if (rows === 0) return;
    const normsDim = metric === 'cosine' ? dim : 0;
    const scratch = this.rawKernels.listRescoreScratch(dim);
    const mode = METRIC_CODE[metric] + 4 * (lists.encoding === 'f16' ? 0 : lists.encoding === 'sq8' ? 1 : 2);
    // lists with a source: a directory of all of them kept between calls, the candidates' lists are its entries (nothing planned)
    const kept = this.directories.get(lists, normsDim, rows * ck);
    if (kept) {
      const s = this.spaces.bind([kept.view, queries, lists.params, candidates.lists, candidates.positions, candidates.sizes], this.topKStaging(rows, best.k, scratch, 1) + 64);
      if (s.index === kept.memory) {
        const q = s.rows(queries, dim, Stage.Queries);
        const qInv = s.norms(queries, q, dim, metric, Stage.QueryNorms);
        const params = lists.encoding === 'sq8' ? s.array(lists.params!, 2 * lists.stride, Stage.Tables) : 0;
        const entries = s.array(candidates.lists, rows * ck, Stage.Ids);
        const positions = s.array(candidates.positions, rows * ck, Stage.Labels);
        const sizes = s.array(candidates.sizes, rows, Stage.CandidateSizes);
        const heaps = s.gatherHeaps(best, rows, undefined);
        s.kernels.rescoreListsTopK(q, rows, queries.stride, qInv, kept.view.byteOffset, entries, positions, ck, sizes, lists.stride, dim, mode, heaps[0], heaps[1], heaps[2], best.k, s.scratch(0, scratch), params);
        s.scatterHeaps(best, rows, undefined, heaps);
        return;
      }
    }
    const plan = planListRescore(this.arena, lists, candidates, rows, normsDim);
    for (const { entries } of plan.groups) {
      const local = groupProbeEntries(plan, entries);
      const operands = [queries, lists.params, candidates.positions, candidates.sizes, local, ...groupArrays(plan, entries)];
      const s = this.spaces.bind(operands, this.topKStaging(rows, best.k, scratch, 1) + directoryBytes(entries.length) + 64);
      const q = s.rows(queries, dim, Stage.Queries);
      const qInv = s.norms(queries, q, dim, metric, Stage.QueryNorms);
      const params = lists.encoding === 'sq8' ? s.array(lists.params!, 2 * lists.stride, Stage.Tables) : 0;
      const at = s.array(local, rows * ck, Stage.Ids);
      const positions = s.array(candidates.positions, rows * ck, Stage.Labels);
      const sizes = s.array(candidates.sizes, rows, Stage.CandidateSizes);
      const dir = writeDirectory(s, lists, plan, entries);
      const heaps = s.gatherHeaps(best, rows, undefined);
      s.kernels.rescoreListsTopK(q, rows, queries.stride, qInv, dir, at, positions, ck, sizes, lists.stride, dim, mode, heaps[0], heaps[1], heaps[2], best.k, s.scratch(0, scratch), params);
      s.scatterHeaps(best, rows, undefined, heaps);
    }
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
    mask?: Uint32Array,
  ): Promise<void> {
    checkAdcScan(tables, queries, m, codes, rows, baseIds, bias);
    checkMask(mask, 'ADC scan');
    if (queries === 0 || rows === 0) return;
    if (mask) {
      const kept = maskCodes(mask, codes, rows, m, baseIds);
      if (kept) return kept.rows > 0 ? this.adcScanTopK(tables, queries, m, kept.codes, kept.rows, best, kept.ids, queryRows, bias) : undefined;
    }
    const s = this.spaces.bind([codes, tables, baseIds, bias], this.topKStaging(queries, best.k, 0));
    const t0 = s.array(tables, queries * m * 256, Stage.Tables);
    const c = s.array(codes, rows * m, Stage.Codes);
    const ids = baseIds ? s.array(baseIds, rows, Stage.Ids) : 0;
    const bi = bias ? s.array(bias, queries, Stage.Bias) : 0;
    this.splitTopK('adcScanTopK', s, best, queries, rows, queryRows, queries * rows * m, 1, (_t, qFrom, qTo, from, to, h) => [
      t0, qFrom, qTo, m, c, from, to, ids, bi, h[0], h[1], h[2], best.k,
    ]);
  }

  async fastScanTopK(
    tables: Uint8Array,
    queries: number,
    m: number,
    codes: Uint8Array,
    rows: number,
    scales: Float32Array,
    bias: Float32Array,
    best: TopK,
    baseIds?: Int32Array,
    queryRows?: Int32Array,
    mask?: Uint32Array,
  ): Promise<void> {
    checkFastScan(tables, queries, m, codes, rows, scales, bias, best, baseIds, queryRows);
    checkMask(mask, 'fast scan');
    if (queries === 0 || rows === 0) return;
    if (mask) {
      const kept = maskFastScanCodes(mask, codes, rows, m, baseIds);
      if (kept) return kept.rows > 0 ? this.fastScanTopK(tables, queries, m, kept.codes, kept.rows, scales, bias, best, kept.ids, queryRows) : undefined;
    }
    const scratch = 192; // a block's 32 lane sums (kernels/cpu/simd.ts, fastScanTopK)
    const s = this.spaces.bind([codes, tables, baseIds, scales, bias], this.topKStaging(queries, best.k, scratch));
    const t0 = s.array(tables, queries * m * 16, Stage.Tables);
    const c = s.array(codes, fastScanBytes(m, rows), Stage.Codes);
    const ids = baseIds ? s.array(baseIds, rows, Stage.Ids) : 0;
    const sc = s.array(scales, queries, Stage.QueryNorms);
    const bi = s.array(bias, queries, Stage.Bias);
    // rows split in multiples of 64, so every thread starts on a block of 32
    this.splitTopK('fastScanTopK', s, best, queries, rows, queryRows, (queries * rows * m) / 8, 1, (t, qFrom, qTo, from, to, h) => [
      t0, qFrom, qTo, m, c, from, to, ids, sc, bi, h[0], h[1], h[2], best.k, s.scratch(t, scratch),
    ]);
  }

  /**
   * One kernel call per memory holding probed lists (one in all but indexes
   * past 4 GiB): the lists are named by a directory of their addresses, the
   * queries probing each are gathered in the kernel, heaps stay in the kernel.
   */
  async scanListsTopK(queries: RowBlock, lists: ListSet, probes: Int32Array, nprobe: number, dim: number, metric: Metric, best: TopK, mask?: Uint32Array): Promise<void> {
    const normsDim = metric === 'cosine' ? dim : 0;
    // a query alone on lists with a kept directory: their lists were checked when it was built, only its probes are
    const built = queries.rows === 1 ? this.directories.built(lists, normsDim) : undefined;
    checkListScan(queries, lists, probes, nprobe, dim, best, 'list scan', built !== undefined);
    checkMask(mask, 'list scan');
    if (lists.encoding === 'pq') throw new Error('list scan: PQ codes are scanned by pqScanListsTopK');
    const coded = lists.encoding !== 'f32';
    if (coded && dim > MAX_CODED_DIM) throw new Error(`scan of encoded rows: prefix ${dim} exceeds the CPU kernels' limit of ${MAX_CODED_DIM}`);
    const rows = queries.rows;
    if (rows === 0 || nprobe === 0) return;
    const scratch = this.rawKernels.listScanScratch(dim, coded ? 1 : 0, mask ? 1 : 0);
    // past each thread's scratch the candidate buffers of its heap rows (bufferStaging)
    const buffers = (n: number) => this.rawKernels.topKBufferBytes(n, best.k);
    const bufferBytes = this.bufferStaging(rows, best.k);
    const mode = METRIC_CODE[metric] + 4 * (lists.encoding === 'f16' ? 0 : lists.encoding === 'sq8' ? 1 : 2);
    // a query alone on lists with a kept directory: its probes' entries copied from it, nothing planned
    if (rows === 1) {
      const kept = built ?? this.directories.get(lists, normsDim, nprobe);
      if (kept && this.scanOne(queries, lists, probes, nprobe, dim, metric, best, mask, kept, scratch + buffers(1), mode)) return;
    }
    const plan = planListScan(this.arena, lists, probes, rows, nprobe, normsDim);
    for (const { entries } of plan.groups) {
      const operands = [queries, lists.params, plan.members, mask, ...groupArrays(plan, entries)];
      const s = this.spaces.bind(operands, this.topKStaging(rows, best.k, scratch) + bufferBytes + directoryBytes(entries.length) + 64);
      const q = s.rows(queries, dim, Stage.Queries);
      // a filter is skipped member by member in the kernel, which scores the allowed ones alone
      const maskAt = stageMask(s, mask);
      const qInv = s.norms(queries, q, dim, metric, Stage.QueryNorms);
      const params = lists.encoding === 'sq8' ? s.array(lists.params!, 2 * lists.stride, Stage.Tables) : 0;
      const members = s.array(plan.members, plan.members.length, Stage.Ids);
      const dir = writeDirectory(s, lists, plan, entries);
      const work = (plan.scanned * dim * entries.length) / plan.lists.length;
      // by queries when each thread gets a few (their heap rows are theirs), else by list with private heaps merged after
      this.splitTopK('scanListsTopK', s, best, rows, entries.length, undefined, work, 4, (t, qFrom, qTo, from, to, h) => [
        q, queries.stride, qInv, dir, from, to, members, qFrom, qTo, lists.stride, dim, mode, h[0], h[1], h[2], best.k, s.scratch(t, scratch + buffers(qTo - qFrom)), params, maskAt,
      ], 1);
    }
  }

  /**
   * scanListsTopK of one query from a kept directory of every list
   * (ListDirectories): an entry per probe of a non-empty list, copied from it,
   * probed by query 0 alone (a list probed twice is scanned twice, as the
   * planned call gathers the query twice). False, with nothing run, when the
   * call would not run in the directory's memory.
   */
  private scanOne(queries: RowBlock, lists: ListSet, probes: Int32Array, nprobe: number, dim: number, metric: Metric, best: TopK, mask: Uint32Array | undefined, kept: ListDirectory, scratch: number, mode: number): boolean {
    const s = this.spaces.bind([kept.view, queries, lists.params, mask], this.topKStaging(1, best.k, scratch) + nprobe * 32 + 128);
    if (s.index !== kept.memory) return false;
    const q = s.rows(queries, dim, Stage.Queries);
    const maskAt = stageMask(s, mask);
    const qInv = s.norms(queries, q, dim, metric, Stage.QueryNorms);
    const params = lists.encoding === 'sq8' ? s.array(lists.params!, 2 * lists.stride, Stage.Tables) : 0;
    const dir = s.region(Stage.Codes, nprobe * 32);
    const members = s.region(Stage.Ids, 4);
    const words = s.words();
    const from = kept.view;
    words[members >>> 2] = 0;
    let entries = 0, scanned = 0;
    for (let p = 0; p < nprobe; p++) {
      const l = probes[p];
      const size = l >= 0 ? from[l * 8 + 3] : 0;
      if (size === 0) continue;
      const w = (dir >>> 2) + entries * 8;
      for (let i = 0; i < 8; i++) words[w + i] = from[l * 8 + i];
      words[w + 4] = 0;
      words[w + 5] = 1;
      entries++;
      scanned += size;
    }
    if (entries === 0) return true;
    this.splitTopK('scanListsTopK', s, best, 1, entries, undefined, scanned * dim, 4, (t, qFrom, qTo, from, to, h) => [
      q, queries.stride, qInv, dir, from, to, members, qFrom, qTo, lists.stride, dim, mode, h[0], h[1], h[2], best.k, s.scratch(t, scratch), params, maskAt,
    ], 1);
    return true;
  }

  /**
   * PQ/OPQ lists in one kernel call per memory holding them: the rotation,
   * the lookup tables (per probed list for l2 residuals) and the ADC with
   * its heaps all run in the kernel; split by queries, or by probe for few.
   */
  async pqScanListsTopK(queries: RowBlock, pq: PqQuantizer, lists: ListSet, probes: Int32Array, nprobe: number, metric: Metric, best: TopK, mask?: Uint32Array): Promise<void> {
    checkListScan(queries, lists, probes, nprobe, pq.dim, best, 'PQ list scan');
    checkPqScan(queries, pq, lists, metric, 'PQ list scan');
    checkMask(mask, 'PQ list scan');
    const rows = queries.rows;
    if (rows === 0 || nprobe === 0) return;
    const { dim, m } = pq;
    const plan = planListScan(this.arena, lists, probes, rows, nprobe);
    const perList = pq.refs !== undefined && metric === 'l2';
    const listRefs = perList ? (pq.rotation ? pq.rotatedRefs : pq.refs) : undefined;
    // ip residual terms x . ref on the host in float64, as the reference composes them (lists.ts)
    const biases = pq.refs && !perList ? pqListBiases(queries, pq.refs, dim, lists, probes, nprobe) : undefined;
    const scratch = this.rawKernels.pqScanScratch(dim, m);
    for (const { entries } of plan.groups) {
      const operands = [queries, pq.codebooks, pq.bounds, pq.rotation, biases, listRefs, ...groupArrays(plan, entries)];
      const s = this.spaces.bind([...operands, mask], this.topKStaging(rows, best.k, scratch) + directoryBytes(entries.length) + rows * nprobe * 4 + 128);
      // a filter is skipped code by code in the kernel (a list it leaves empty builds no table)
      const maskAt = stageMask(s, mask);
      const x = s.rows(queries, dim, Stage.Queries);
      const cfg = s.region(Stage.Bias, 32);
      const config = [
        dim, m, s.array(pq.codebooks, PQ_TABLE * dim, Stage.Tables), s.array(pq.bounds, m + 1, Stage.Labels),
        pq.rotation ? s.array(pq.rotation, dim * dim, Stage.BaseNorms) : 0,
        biases ? s.array(biases, rows * nprobe, Stage.QueryNorms) : 0,
        listRefs ? s.array(listRefs, lists.count * dim, Stage.Out) : 0,
        METRIC_CODE[metric],
      ];
      const probeEntries = groupProbeEntries(plan, entries);
      const pe = s.array(probeEntries, rows * nprobe, Stage.CandidateSizes);
      const dir = writeDirectory(s, lists, plan, entries);
      s.words().set(config, cfg >>> 2);
      const tables = (perList ? rows * nprobe : rows) * PQ_TABLE * dim;
      const work = tables + (plan.scanned * m * entries.length) / plan.lists.length;
      this.splitTopK('pqScanListsTopK', s, best, rows, nprobe, undefined, work, 1, (t, qFrom, qTo, from, to, h) => [
        x, queries.stride, qFrom, qTo, pe, nprobe, from, to, dir, cfg, h[0], h[1], h[2], best.k, s.scratch(t, scratch), maskAt,
      ], 1);
    }
  }

  async fastScanListsTopK(tables: FastScanTables, m: number, lists: FastScanLists, probes: Int32Array, queries: number, nprobe: number, best: TopK, mask?: Uint32Array): Promise<void> {
    checkFastScanLists(tables, m, lists, probes, queries, nprobe, best);
    checkMask(mask, 'fast scan');
    const entries = queries * nprobe;
    if (entries === 0) return;
    const { query, listTerms, extra } = tables;
    // list terms an index keeps in the arena are read in place (FastScanCodec)
    const operands: ArrayBufferView[] = [query, ...(listTerms ? [listTerms] : []), ...(extra ? [extra] : [])];
    const seen = new Set<number>();
    let scanned = 0;
    for (let i = 0; i < entries; i++) {
      const l = probes[i];
      if (l < 0 || lists.size(l) === 0) continue;
      scanned += lists.size(l);
      if (seen.has(l)) continue;
      seen.add(l);
      operands.push(lists.codes(l), lists.ids(l));
    }
    if (scanned === 0) return;
    const scratch = this.rawKernels.fastScanListsScratch(m);
    if (mask) operands.push(mask);
    const size = m * 16;
    const s = this.spaces.bind(operands, this.topKStaging(queries, best.k, scratch) + entries * 16 + 128);
    // a filter is skipped in the kernel: blocks of 32 members with none allowed before their sums, other members before the heap
    const maskAt = stageMask(s, mask);
    // per (query, probe): the list's codes and ids where they lie in the call's memory, its size and number
    const dir = new Int32Array(entries * 4);
    const elsewhere: number[] = [];
    for (let i = 0; i < entries; i++) {
      const l = probes[i];
      if (l < 0 || lists.size(l) === 0) continue;
      const codes = s.memory.addressOf(lists.codes(l));
      const ids = s.memory.addressOf(lists.ids(l));
      // a list in another memory (an index past one memory's 4 GiB) is scanned by its own call below
      if (codes === undefined || ids === undefined) elsewhere.push(i);
      else dir.set([codes, ids, lists.size(l), l], i * 4);
    }
    const d = s.array(dir, entries * 4, Stage.Ids);
    const t = s.array(query, queries * size, Stage.Tables);
    const terms = listTerms ? s.array(listTerms, lists.count * size, Stage.Codes) : 0;
    const ex = extra ? s.array(extra, entries, Stage.Bias) : 0;
    // the probes' tables are quantised in the kernel: per probe (l2 residuals) or once per query
    const work = (scanned * m) / 8 + (listTerms ? entries : queries) * size;
    // by queries when there are enough, else by probes (per-thread heaps merged)
    this.splitTopK('fastScanListsTopK', s, best, queries, nprobe, undefined, work, 1, (th, qFrom, qTo, from, to, h) => [
      t, terms, ex, m, d, nprobe, qFrom, qTo, from, to, h[0], h[1], h[2], best.k, s.scratch(th, scratch), maskAt,
    ], 1);
    if (elsewhere.length === 0) return;
    const values = new Float32Array(size);
    const bytes = new Uint8Array(size);
    for (const i of elsewhere) {
      const q = Math.floor(i / nprobe), l = probes[i];
      fastScanProbeTable(tables, m, q, l, values);
      const [scale, low] = quantizeFastScanTable(values, 0, m, bytes, 0);
      await this.fastScanTopK(bytes, 1, m, lists.codes(l), lists.size(l), Float32Array.of(scale), Float32Array.of(low + (extra?.[i] ?? 0)), best, lists.ids(l), Int32Array.of(q), mask);
    }
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

  /**
   * Staging for the candidate buffers (kernels' topKBufferBytes) of `rows`
   * heap rows, past the threads' scratch: each thread's share when a call
   * splits by queries (four a thread at least), else every row per thread.
   */
  private bufferStaging(rows: number, k: number): number {
    const threads = this.pool.threads;
    const buffers = (n: number) => this.rawKernels.topKBufferBytes(n, k);
    return rows >= 4 * threads ? buffers(rows) + threads * buffers(4) : threads * buffers(rows);
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
   * thread's kernel arguments from its query range, row range and heaps;
   * row ranges are multiples of `rowAlign` (list scans split by probed list).
   */
  private splitTopK(
    op: 'scanTopK' | 'adcScanTopK' | 'scanCodedTopK' | 'fastScanTopK' | 'scanListsTopK' | 'pqScanListsTopK' | 'fastScanListsTopK',
    s: Space,
    best: TopK,
    queries: number,
    rows: number,
    queryRows: Int32Array | undefined,
    work: number,
    queryAlign: number,
    args: (t: number, qFrom: number, qTo: number, from: number, to: number, heaps: [number, number, number]) => number[],
    rowAlign = 64,
  ): void {
    const heaps = s.gatherHeaps(best, queries, queryRows);
    const byQueries = queries >= queryAlign * this.pool.threads;
    const threads = this.threadsFor(work, byQueries ? Math.ceil(queries / queryAlign) : Math.ceil(rows / rowAlign));
    for (let t = 0; t < threads; t++) {
      const [qFrom, qTo] = byQueries ? share(queries, threads, t, queryAlign) : [0, queries];
      const [from, to] = byQueries ? [0, rows] : share(rows, threads, t, rowAlign);
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
