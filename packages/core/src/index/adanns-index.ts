import { computeInvNorms, createRng, rowBlock, sampleIndices, TopK, type Backend, type Metric, type RowBlock } from '@adanns/compute';
import { queryMflops } from '../cost.js';
import { defaultParams, formatParams, type SearchParams } from '../params.js';
import { dimsLadder } from '../prefixes.js';
import { formatSpec, parseSpec, validateSpec, type IndexSpec } from '../spec.js';
import { rotateRows } from '../quant/opq.js';
import { calibrate, type Calibration, type CalibrateOptions } from '../planner/calibrate.js';
import { paretoFrontier } from '../planner/frontier.js';
import { planBudget, type Budget, type Plan } from '../planner/plan.js';
import { probeLists } from '../stages/coarse.js';
import { scanPqLists, scanVectorsOf, type PqScanCodec } from '../stages/scan-pq.js';
import { rerank, rerankStored } from '../stages/rerank.js';
import { scanFlatLists } from '../stages/scan-flat.js';
import { transformQueries } from '../stages/transform.js';
import { PcaTransform } from '../transform/pca.js';
import { checkPositiveInt, checkVectors } from '../validate.js';
import { grow, toArena } from './growable.js';
import { InvertedLists } from './inverted-lists.js';
import { trainQuantizers } from './training.js';

export type ProgressFn = (stage: string, done: number, total: number) => void;

export interface BuildOptions {
  metric: Metric;
  /** One id per vector (non-negative safe integers, unique); default 0..n-1. */
  ids?: ArrayLike<number>;
  seed?: number;
  /** Vectors sampled to fit PCA (default 10,000). */
  pcaSampleSize?: number;
  kmeansIterations?: number;
  maxPointsPerCentroid?: number;
  kmeansInit?: 'kmeans++' | 'random';
  /** PQ/OPQ with IVF: encode residuals against each list's reference (default true, as FAISS's IVFPQ). */
  residual?: boolean;
  /** Vectors sampled to train PQ codebooks (default 32,768). */
  pqTrainSize?: number;
  /** OPQ rotation iterations (default 8). */
  opqIterations?: number;
  /** Calibrate for budgets once built (default off in the library; the CLI turns it on). */
  calibrate?: boolean | CalibrateOptions;
  onProgress?: ProgressFn;
}

export interface SearchResult {
  queries: number;
  k: number;
  /** queries x k ids, best first; -1 past `counts[q]`. */
  ids: Float64Array;
  /** queries x k scores (larger = closer; negated squared distance for l2); NaN past `counts[q]`. */
  scores: Float32Array;
  /** Results found per query (below k only when the probed lists hold fewer vectors). */
  counts: Int32Array;
  /** Modelled MFLOPs of each query (ARCHITECTURE.md cost model, real probed list sizes). */
  mflops: Float64Array;
  params: SearchParams;
  /** Calibrated recall@k of these params (null when the index has no calibration point for them). */
  expectedRecall: number | null;
  /** Whether the requested budget was met (null when no budget was given). */
  budgetMet: boolean | null;
  /** Wall time of the search in milliseconds. */
  tookMs: number;
}

/** The parts a built index consists of (what save/load moves). */
export interface IndexParts {
  spec: IndexSpec;
  metric: Metric;
  dim: number;
  pca?: PcaTransform;
  /** lists x d_c, row-major (normalised for cosine/ip, as spherical k-means leaves them). */
  centroids?: Float32Array;
  lists: InvertedLists;
  /** PQ/OPQ codec of the scan stage (codebooks, OPQ rotation, residual references). */
  codec?: PqScanCodec;
  /** slotCount x dim original vectors (the re-rank source at the full dimension). */
  originals: Float32Array;
  /** id of each slot; NaN for a free slot. */
  slotIds: Float64Array;
  slotCount: number;
}

const CHUNK = 4096;

/**
 * AdANNS index: optional PCA, optional IVF (centroids at d_c), a flat scan at
 * d_s over list-contiguous prefixes, optional exact re-rank at d_r. Rigid IVF
 * is d_c = d_s = D; a flat exact index is no IVF with d_s = D.
 */
export class AdannsIndex {
  readonly spec: IndexSpec;
  readonly metric: Metric;
  readonly dim: number;
  readonly ladder: number[];
  private readonly pca?: PcaTransform;
  private readonly centroids?: Float32Array;
  private readonly lists: InvertedLists;
  private readonly codec?: PqScanCodec;
  private originals: Float32Array;
  private originalInvNorms: Float32Array;
  private slotIds: Float64Array;
  private slotCount: number;
  private readonly idToSlot = new Map<number, number>();
  private readonly freeSlots: number[] = [];
  private readonly centroidInvNorms = new Map<number, Float32Array>();
  /** Calibrated configurations for budgets (ARCHITECTURE.md: compute-aware search). */
  calibration?: Calibration;
  /** This machine's latency relative to the calibrating one (set by probeLatency). */
  latencyScale = 1;

  constructor(
    private readonly backend: Backend,
    parts: IndexParts,
  ) {
    this.spec = parts.spec;
    this.metric = parts.metric;
    this.dim = parts.dim;
    this.ladder = dimsLadder(parts.dim);
    // everything a query reads lives in the backend's arena, so kernels read it in place
    this.pca = parts.pca && new PcaTransform(parts.pca.dim, toArena(backend.arena, parts.pca.components), parts.pca.variances, parts.pca.mean);
    this.centroids = parts.centroids && toArena(backend.arena, parts.centroids);
    this.lists = parts.lists;
    this.codec = parts.codec;
    this.originals = toArena(backend.arena, parts.originals);
    this.slotIds = parts.slotIds;
    this.slotCount = parts.slotCount;
    this.originalInvNorms = backend.arena.float32(this.slotCount);
    for (let s = 0; s < this.slotCount; s++) {
      const id = this.slotIds[s];
      if (Number.isNaN(id)) {
        this.freeSlots.push(s);
        continue;
      }
      if (this.idToSlot.has(id)) throw new Error(`index holds id ${id} twice`);
      this.idToSlot.set(id, s);
    }
    if (this.metric === 'cosine') computeInvNorms(rowBlock(this.originals, this.slotCount, this.dim), this.dim, this.originalInvNorms);
  }

  /**
   * Float prefix stored in the lists: for a flat scan the scan dim (or a
   * larger re-rank dim below D, which must come from the lists' space); for
   * PQ only a re-rank dim below D (0 when none: the lists hold codes).
   */
  static listDim(spec: IndexSpec, dim: number): number {
    const r = spec.rerank?.dim;
    const rerankFromLists = r !== undefined && r < dim ? r : 0;
    return spec.scan.codec === 'flat' ? Math.max(spec.scan.dim, rerankFromLists) : rerankFromLists;
  }

  /** Prefixes whose cosine norms the lists keep: the ladder up to the list dim, plus a flat scan's dim. */
  static normDims(metric: Metric, spec: IndexSpec, listDim: number): number[] {
    if (metric !== 'cosine' || listDim === 0) return [];
    const dims = dimsLadder(listDim);
    if (spec.scan.codec === 'flat') dims.push(spec.scan.dim);
    return [...new Set(dims)].sort((a, b) => a - b);
  }

  static codeBytes(spec: IndexSpec): number {
    return spec.scan.codec === 'flat' ? 0 : spec.scan.bytes;
  }

  static async build(backend: Backend, spec: IndexSpec | string, data: Float32Array, rows: number, dim: number, options: BuildOptions): Promise<AdannsIndex> {
    checkVectors(data, rows, dim, 'build vectors');
    const parsed = typeof spec === 'string' ? parseSpec(spec, dim) : spec;
    validateSpec(parsed, dim, rows);
    const progress = options.onProgress ?? (() => {});
    const seed = options.seed ?? 1;
    let pca: PcaTransform | undefined;
    if (parsed.transform === 'pca') {
      progress('pca', 0, 1);
      pca = PcaTransform.fit(data, rows, dim, options.metric, { sampleSize: options.pcaSampleSize, seed });
      progress('pca', 1, 1);
    }
    const { centroids, codec } = await trainQuantizers(backend, parsed, data, rows, dim, pca, options, progress);
    const listDim = AdannsIndex.listDim(parsed, dim);
    const index = new AdannsIndex(backend, {
      spec: parsed,
      metric: options.metric,
      dim,
      pca,
      centroids,
      lists: new InvertedLists(parsed.coarse?.lists ?? 1, listDim, AdannsIndex.normDims(options.metric, parsed, listDim), AdannsIndex.codeBytes(parsed), backend.arena),
      codec,
      originals: new Float32Array(0),
      slotIds: new Float64Array(0),
      slotCount: 0,
    });
    const ids = options.ids ?? Float64Array.from({ length: rows }, (_, i) => i);
    await index.add(ids, data, rows, (done, total) => progress('add', done, total));
    if (options.calibrate) {
      const given = options.calibrate === true ? {} : options.calibrate;
      await index.calibrate({ seed, ...given, onProgress: (done, total) => progress('calibrate', done, total) });
    }
    return index;
  }

  get size(): number {
    return this.idToSlot.size;
  }

  /** Memory held by the index's arrays, in bytes. */
  get bytes(): number {
    const lists = this.lists.total * (this.lists.dim * 4 + 4 + 4 * AdannsIndex.normDims(this.metric, this.spec, this.lists.dim).length);
    return this.slotCount * (this.dim * 4 + 8) + lists + (this.centroids?.byteLength ?? 0) + (this.pca ? this.pca.components.byteLength : 0);
  }

  /** Current size of every inverted list (one list without IVF). */
  listSizes(): Int32Array {
    return Int32Array.from({ length: this.lists.count }, (_, l) => this.lists.size(l));
  }

  has(id: number): boolean {
    return this.idToSlot.has(id);
  }

  /** Adds vectors with new ids (rows x dim) to a trained index: assigned to lists at d_c and stored. */
  async add(ids: ArrayLike<number>, data: Float32Array, rows: number, onProgress?: (done: number, total: number) => void): Promise<void> {
    checkVectors(data, rows, this.dim, 'add vectors');
    if (ids.length !== rows) throw new Error(`add: ${ids.length} ids for ${rows} vectors`);
    const batch = new Set<number>();
    for (let i = 0; i < rows; i++) {
      const id = ids[i];
      if (!Number.isSafeInteger(id) || id < 0) throw new Error(`add: id at position ${i} must be a non-negative safe integer, got ${id}`);
      if (batch.has(id)) throw new Error(`add: id ${id} appears twice in one batch`);
      if (this.idToSlot.has(id)) throw new Error(`add: id ${id} is already in the index (remove it first to replace it)`);
      batch.add(id);
    }
    const dc = this.spec.coarse?.dim ?? 0;
    const prefix = Math.max(dc, this.lists.dim, this.spec.scan.dim);
    const labels = new Int32Array(Math.min(CHUNK, rows));
    const scores = new Float32Array(labels.length);
    for (let from = 0; from < rows; from += CHUNK) {
      const n = Math.min(CHUNK, rows - from);
      const chunk = data.subarray(from * this.dim, (from + n) * this.dim);
      const space = await transformQueries(this.backend, this.pca, chunk, n, this.dim, prefix);
      if (this.centroids) {
        await this.backend.assign(space, this.coarseBlock(dc), dc, this.metric, labels, scores);
      }
      const codes = this.codec ? await this.encode(space, n, labels) : undefined;
      for (let i = 0; i < n; i++) {
        const slot = this.allocateSlot(ids[from + i]);
        this.originals.set(chunk.subarray(i * this.dim, (i + 1) * this.dim), slot * this.dim);
        if (this.metric === 'cosine') computeInvNorms(rowBlock(this.originals, 1, this.dim, slot * this.dim), this.dim, this.originalInvNorms.subarray(slot, slot + 1));
        this.lists.append(this.centroids ? labels[i] : 0, slot, space.data, (space.offset ?? 0) + i * space.stride, codes, i * this.lists.codeBytes);
      }
      this.backend.arena.touched(this.originals);
      this.backend.arena.touched(this.originalInvNorms);
      onProgress?.(from + n, rows);
    }
  }

  /** Removes ids; returns how many were present. Removed vectors leave their lists at once. */
  remove(ids: ArrayLike<number>): number {
    let removed = 0;
    for (let i = 0; i < ids.length; i++) {
      const slot = this.idToSlot.get(ids[i]);
      if (slot === undefined) continue;
      this.lists.remove(slot);
      this.idToSlot.delete(ids[i]);
      this.slotIds[slot] = NaN;
      this.freeSlots.push(slot);
      removed++;
    }
    return removed;
  }

  /** Fills in defaults and rejects params this index cannot serve. */
  resolveParams(k: number, given: Partial<SearchParams> = {}): SearchParams {
    const defaults = defaultParams(this.spec, k);
    const p: SearchParams = { ...defaults, ...given };
    if (given.rerankDim === undefined && defaults.rerankDim === undefined) delete p.rerankDim;
    if (this.spec.coarse) {
      checkPositiveInt(p.coarseDim, 'coarseDim', this.spec.coarse.dim);
      checkPositiveInt(p.nprobe, 'nprobe', this.spec.coarse.lists);
    } else {
      if (given.coarseDim !== undefined || given.nprobe !== undefined) throw new Error(`index "${formatSpec(this.spec)}" has no IVF stage: coarseDim and nprobe do not apply`);
      p.coarseDim = 0;
      p.nprobe = 0;
    }
    checkPositiveInt(p.scanDim, 'scanDim', this.spec.scan.dim);
    if (this.codec && p.scanDim !== this.spec.scan.dim) {
      throw new Error(`scanDim ${p.scanDim}: a ${this.spec.scan.codec} scan runs at the built d_s = ${this.spec.scan.dim} (codes cannot be sliced)`);
    }
    checkPositiveInt(p.shortlist, 'shortlist');
    if (p.rerankDim !== undefined) {
      checkPositiveInt(p.rerankDim, 'rerankDim', this.dim);
      if (p.rerankDim !== this.dim && p.rerankDim > this.lists.dim) {
        throw new Error(`rerankDim ${p.rerankDim}: this index re-ranks at the full dimension ${this.dim} or at prefixes up to ${this.lists.dim}`);
      }
      if (p.shortlist < k) throw new Error(`shortlist ${p.shortlist} must be at least k = ${k} when re-ranking`);
    }
    return p;
  }

  /** Batched search: queries is rows x dim. */
  async search(queries: Float32Array, rows: number, k: number, given?: Partial<SearchParams>): Promise<SearchResult> {
    const started = performance.now();
    checkVectors(queries, rows, this.dim, 'search queries');
    checkPositiveInt(k, 'k');
    if (this.size === 0) throw new Error('search: the index is empty');
    if (k > this.size) throw new Error(`k = ${k} exceeds the ${this.size} vectors in the index`);
    const p = this.resolveParams(k, given);
    const rerankDim = p.rerankDim;
    const rerankFromLists = rerankDim !== undefined && rerankDim < this.dim;
    const prefix = Math.max(p.coarseDim, p.scanDim, rerankFromLists ? rerankDim : 0);
    const space = await transformQueries(this.backend, this.pca, queries, rows, this.dim, prefix);

    const nprobe = this.centroids ? p.nprobe : 1;
    const probes = this.centroids ? await probeLists(this.backend, space, this.coarseBlock(p.coarseDim), p.coarseDim, nprobe, this.metric) : new Int32Array(rows);
    const scanK = rerankDim !== undefined ? p.shortlist : k;
    let best: TopK;
    let scanned: Float64Array;
    let quantizerFlops: Float64Array | undefined;
    if (this.codec) {
      const vectors = scanVectorsOf(space.data, rows, space.stride, space.offset ?? 0, p.scanDim, this.metric);
      ({ best, scanned, quantizerFlops } = await scanPqLists(this.backend, vectors, rows, probes, nprobe, this.lists, this.codec, this.metric, scanK));
    } else {
      ({ best, scanned } = await scanFlatLists(this.backend, space, probes, nprobe, this.lists, p.scanDim, this.metric, scanK));
    }

    let final: TopK = best;
    if (rerankDim !== undefined) {
      if (rerankFromLists) {
        best.sort();
        final = await rerank(this.backend, space, best, (slot) => this.lists.locate(slot)!, rerankDim, this.metric, k);
      } else {
        // full-dimension re-rank reads the stored vectors in place, by slot
        const stored = rowBlock(this.originals, this.slotCount, this.dim, 0, this.metric === 'cosine' ? this.originalInvNorms : undefined);
        final = await rerankStored(this.backend, rowBlock(queries, rows, this.dim), best, stored, this.metric, k);
      }
    }
    final.sort();

    const ids = new Float64Array(rows * k).fill(-1);
    const scores = new Float32Array(rows * k).fill(NaN);
    const counts = new Int32Array(rows);
    const mflops = new Float64Array(rows);
    for (let q = 0; q < rows; q++) {
      const n = Math.min(final.sizes[q], k);
      counts[q] = n;
      for (let i = 0; i < n; i++) {
        ids[q * k + i] = this.slotIds[final.ids[q * final.k + i]];
        scores[q * k + i] = final.scores[q * final.k + i];
      }
      mflops[q] = queryMflops({
        fullDim: this.dim,
        rotatedDims: this.pca ? prefix : 0,
        lists: this.centroids ? this.spec.coarse!.lists : 0,
        coarseDim: p.coarseDim,
        scanned: scanned[q],
        scanDim: p.scanDim,
        codeBytes: this.lists.codeBytes,
        quantizerFlops: quantizerFlops ? quantizerFlops[q] : 0,
        reranked: rerankDim !== undefined ? best.sizes[q] : 0,
        rerankDim: rerankDim ?? 0,
      });
    }
    return { queries: rows, k, ids, scores, counts, mflops, params: p, expectedRecall: this.calibratedRecall(p), budgetMet: null, tookMs: performance.now() - started };
  }

  /** Searches with the params the planner picks for a budget (one plan for the whole batch). */
  async searchWithBudget(queries: Float32Array, rows: number, k: number, budget: Budget, options: { strict?: boolean } = {}): Promise<SearchResult & { plan: Plan }> {
    const plan = this.plan(budget, k, options);
    const result = await this.search(queries, rows, k, plan.params);
    return { ...result, expectedRecall: plan.expectedRecall, budgetMet: plan.budgetMet, plan };
  }

  /** The params a budget buys, from the calibrated points. */
  plan(budget: Budget, k: number, options: { strict?: boolean } = {}): Plan {
    if (!this.calibration) throw new Error('this index has no calibration: build it with calibration or run calibrate first');
    const plan = planBudget(this.calibration.points, budget, { strict: options.strict, latencyScale: this.latencyScale });
    if (plan.params.rerankDim !== undefined) plan.params.shortlist = Math.max(plan.params.shortlist, k);
    return plan;
  }

  /** Calibrates on demand (or again, e.g. after the index has grown). */
  async calibrate(options: CalibrateOptions = {}): Promise<Calibration> {
    this.calibration = await calibrate(this, options);
    this.latencyScale = 1;
    return this.calibration;
  }

  /** The recall@k / MFLOPs frontier of the calibration (empty without one). */
  frontier(): ReturnType<typeof paretoFrontier> {
    return this.calibration ? paretoFrontier(this.calibration.points, (p) => p.mflops) : [];
  }

  /**
   * Measures how fast this machine runs a calibrated point compared with the
   * calibrating machine, so latency budgets plan with local timings.
   */
  async probeLatency(queries = 16): Promise<number> {
    const front = this.frontier();
    if (front.length === 0) return this.latencyScale;
    const point = front[Math.floor(front.length / 2)];
    const sample = this.sampleStored(queries, 11);
    const n = sample.ids.length;
    const k = Math.min(this.calibration!.k, this.size);
    await this.search(sample.vectors.subarray(0, this.dim), 1, k, point.params);
    const t = performance.now();
    for (let q = 0; q < n; q++) await this.search(sample.vectors.subarray(q * this.dim, (q + 1) * this.dim), 1, k, point.params);
    const measured = (performance.now() - t) / n;
    this.latencyScale = point.latencyMs > 0 ? Math.min(10, Math.max(0.1, measured / point.latencyMs)) : 1;
    return this.latencyScale;
  }

  /** `count` stored vectors (and their ids), sampled with a seed. */
  sampleStored(count: number, seed: number): { vectors: Float32Array; ids: Float64Array } {
    const live = Int32Array.from(this.idToSlot.values()).sort();
    const picked = sampleIndices(live.length, count, createRng(seed));
    const vectors = new Float32Array(picked.length * this.dim);
    const ids = new Float64Array(picked.length);
    picked.forEach((i, j) => {
      const slot = live[i];
      vectors.set(this.originals.subarray(slot * this.dim, (slot + 1) * this.dim), j * this.dim);
      ids[j] = this.slotIds[slot];
    });
    return { vectors, ids };
  }

  private calibratedRecall(p: SearchParams): number | null {
    const same = (a: SearchParams) =>
      a.coarseDim === p.coarseDim && a.nprobe === p.nprobe && a.scanDim === p.scanDim && a.rerankDim === p.rerankDim && (a.rerankDim === undefined || a.shortlist === p.shortlist);
    return this.calibration?.points.find((point) => same(point.params))?.recall ?? null;
  }

  /**
   * Exact k nearest ids at the full dimension over the stored vectors (brute
   * force): the ground-truth oracle for this index's contents.
   */
  async exactSearch(queries: Float32Array, rows: number, k: number): Promise<{ ids: Float64Array; scores: Float32Array }> {
    checkVectors(queries, rows, this.dim, 'exact search queries');
    checkPositiveInt(k, 'k', this.size);
    // scan the stored vectors in place when no slot is free, else a compact copy of the live ones
    let base = this.originals;
    let live: Int32Array | undefined;
    if (this.freeSlots.length > 0) {
      live = Int32Array.from(this.idToSlot.values()).sort();
      base = new Float32Array(live.length * this.dim);
      live.forEach((slot, i) => base.set(this.originals.subarray(slot * this.dim, (slot + 1) * this.dim), i * this.dim));
    }
    const best = new TopK(rows, k);
    const block = rowBlock(base, this.size, this.dim, 0, live ? undefined : this.originalInvNorms);
    await this.backend.scanTopK(rowBlock(queries, rows, this.dim), block, this.dim, this.metric, best, live);
    best.sort();
    return { ids: Float64Array.from(best.ids, (slot) => this.slotIds[slot]), scores: best.scores };
  }

  /**
   * Gives the index's arrays back to the backend's arena. Call it when the
   * index is dropped and no search on it is still running; the index is
   * unusable afterwards.
   */
  release(): void {
    this.lists.release();
    const arena = this.backend.arena;
    if (this.centroids) arena.release(this.centroids);
    if (this.pca) arena.release(this.pca.components);
    for (const inv of this.centroidInvNorms.values()) arena.release(inv);
    this.centroidInvNorms.clear();
    this.backend.arena.release(this.originals);
    this.backend.arena.release(this.originalInvNorms);
    this.originals = new Float32Array(0);
    this.originalInvNorms = new Float32Array(0);
    this.idToSlot.clear();
    this.slotCount = 0;
  }

  /** The parts, for saving (live views, not copies). */
  parts(): IndexParts {
    return {
      spec: this.spec,
      metric: this.metric,
      dim: this.dim,
      pca: this.pca,
      centroids: this.centroids,
      lists: this.lists,
      codec: this.codec,
      originals: this.originals.subarray(0, this.slotCount * this.dim),
      slotIds: this.slotIds.subarray(0, this.slotCount),
      slotCount: this.slotCount,
    };
  }

  describe(k = 10): string {
    return `${formatSpec(this.spec)} (${this.metric}, ${this.size} vectors of dim ${this.dim}; default params ${formatParams(this.resolveParams(k))})`;
  }

  /** PQ codes of a chunk in the index space: scan prefix (normalised for cosine), minus its list's reference, rotated, encoded. */
  private async encode(space: RowBlock, rows: number, labels: Int32Array): Promise<Uint8Array> {
    const { pq, rotation, refs } = this.codec!;
    const ds = this.spec.scan.dim;
    let vectors = scanVectorsOf(space.data, rows, space.stride, space.offset ?? 0, ds, this.metric);
    if (refs) for (let i = 0; i < rows; i++) for (let j = 0; j < ds; j++) vectors[i * ds + j] -= refs[labels[i] * ds + j];
    if (rotation) vectors = await rotateRows(this.backend, rotation, ds, vectors, rows);
    return pq.encode(this.backend, vectors, rows);
  }

  /** Centroids sliced to `coarseDim` (stride d_c), with cosine norms of that prefix, cached per prefix. */
  private coarseBlock(coarseDim: number): RowBlock {
    const { lists, dim } = this.spec.coarse!;
    let inv: Float32Array | undefined;
    if (this.metric === 'cosine') {
      inv = this.centroidInvNorms.get(coarseDim);
      if (!inv) {
        inv = toArena(this.backend.arena, computeInvNorms(rowBlock(this.centroids!, lists, dim), coarseDim));
        this.centroidInvNorms.set(coarseDim, inv);
      }
    }
    return rowBlock(this.centroids!, lists, dim, 0, inv);
  }

  private allocateSlot(id: number): number {
    const slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.slotCount++;
    this.originals = grow(this.originals, (slot + 1) * this.dim, this.backend.arena);
    this.originalInvNorms = grow(this.originalInvNorms, slot + 1, this.backend.arena);
    this.slotIds = grow(this.slotIds, slot + 1);
    this.slotIds[slot] = id;
    this.idToSlot.set(id, slot);
    return slot;
  }
}

