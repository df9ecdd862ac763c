import { createRng, gatherRows, rowBlock, sampleIndices, TopK, type Backend, type Metric, type RowBlock } from '@adanns/compute';
import type { ByteKind, HeldArray, ListCodec } from '../codecs/codec.js';
import { decodedInvNorms } from '../codecs/float-codec.js';
import { queryMflops, type FunnelWork, type QueryWork } from '../cost.js';
import { defaultParams, formatFunnel, formatParams, formatPatience, formatRerankPatience, funnelShapeError, patienceError, probeMarginError, raiseToK, rerankPatienceError, servedK, usesShortlist, type FunnelStage, type PatienceRule, type SearchParams } from '../params.js';
import { calibrate, type Calibration, type CalibrateOptions } from '../planner/calibrate.js';
import { paretoFrontier } from '../planner/frontier.js';
import { formatBudget, planBudget, type Budget, type Plan } from '../planner/plan.js';
import { judgeBudget, pricePoint, probedMass, type PointPrice } from '../planner/pricing.js';
import { calibrationLevels, pointsAtK } from '../planner/levels.js';
import { exactLatency, filteredEstimate } from '../planner/filtered-calibration.js';
import type { FrontierPoint } from '../planner/frontier.js';
import { dimsLadder } from '../prefixes.js';
import { createRerankStore, type RerankStore } from '../rerank/store.js';
import { chooseAutoSpec, isAutoSpec, type AutoChoice, type WholeData } from '../planner/auto.js';
import { formatSpec, parseSpec, validateSpec, type IndexSpec, type RerankStorage } from '../spec.js';
import { cutProbes, probeWithPatience } from '../stages/adaptive-probe.js';
import { rerankWithPatience } from '../stages/adaptive-rerank.js';
import { cutScan, shareScan } from '../stages/scan-reuse.js';
import type { CoarseQuantizer } from '../stages/coarse.js';
import { listRows, rerankFromLists, rerankGathered, rerankStored, storeRows } from '../stages/rerank.js';
import { transformQueries } from '../stages/transform.js';
import { PcaTransform } from '../transform/pca.js';
import { checkPositiveInt, checkVectors } from '../validate.js';
import { toArena } from './growable.js';
import { InvertedLists } from './inverted-lists.js';
import { SlotStore } from './slots.js';
import { checkAllowedIds, type AllowedIds } from './filter.js';
import { exactOverMatches, firstRoundProbes, judgeFilteredBudget, listsHolding, maskedSlots, PreparedFilter, probeUntilEnough, slotFilter, type FilteredPlan, type FilterPlanKind, type FilterReport, type SearchOptions, type SlotFilter } from './filtered.js';
import { heldOutRows, minTrainingRows, reusedFromTrial, trainStages, type StageTrainOptions } from './training.js';

export type { ProgressFn } from './training.js';

/** How an empty index is trained (AdannsIndex.train); build() takes these too. */
export interface TrainOptions extends StageTrainOptions {
  /**
   * File the re-rank vectors end up in, for a spec that re-ranks from disk:
   * they are written as they are added to `<file>.building`, which saving
   * into the file's directory renames to it (default: an anonymous temporary
   * file; saving copies it into the index directory). A streaming build
   * points it at `<out>/rerank.f32`, so the save copies nothing.
   */
  rerankFile?: string;
  /**
   * Supplies the re-rank store instead of the spec's storage (e.g. an
   * ExternalRerankStore over a collection's LMDB); undefined = the spec's.
   */
  rerankStore?: (spec: IndexSpec, dim: number) => RerankStore | undefined;
  /** Spec `auto` (planner/auto.ts): the prefix ladder it may choose from (default dimsLadder(dim)). */
  autoDims?: readonly number[];
  /** Spec `auto`: vectors the index will hold, when the rows given are a sample (default: those rows). */
  count?: number;
  /** Spec `auto`: where a chosen re-rank keeps its vectors (default disk, as `rerank@D`; the bench asks f32 in memory). */
  autoRerank?: RerankStorage;
}

export interface BuildOptions extends TrainOptions {
  /** One id per vector (non-negative safe integers, unique); default 0..n-1. */
  ids?: ArrayLike<number>;
  /** Calibrate for budgets once built (default off in the library; the CLI turns it on). */
  calibrate?: boolean | CalibrateOptions;
  /** Called once the stages are trained, before the vectors are added (a cluster shard shares its quantiser from here). */
  onTrained?: (index: AdannsIndex) => void | Promise<void>;
}

export interface SearchResult {
  queries: number;
  k: number;
  /** queries x k ids, best first; -1 past `counts[q]`. */
  ids: Float64Array;
  /** queries x k scores (larger = closer; negated squared distance for l2); NaN past `counts[q]`. */
  scores: Float32Array;
  /** Results found per query (below k only when the probed lists hold fewer vectors; with a filter, only when fewer than k live vectors match; or when hits were removed while the search ran). */
  counts: Int32Array;
  /** Modelled MFLOPs of each query (docs/ARCHITECTURE.md, "Cost model": real probed list sizes). */
  mflops: Float64Array;
  params: SearchParams;
  /** Calibrated recall@k of these params (null when the index has no calibration point for them). */
  expectedRecall: number | null;
  /** Whether this answer met the requested budget (null when no budget was given): judgeBudget on what it measured. */
  budgetMet: boolean | null;
  /** Why the budget was not met (or cannot be claimed); null otherwise. */
  budgetNote: string | null;
  /** Wall time of the search in milliseconds. */
  tookMs: number;
  /** With a filter: how many vectors it matched, the plan it took and why (filtered.ts). */
  filter?: FilterReport;
  /** With patience: how many lists each query probed (its first ones in centroid order). */
  listsProbed?: Int32Array;
}

/** What `auto` recorded about its choice (planner/auto.ts). */
export interface IndexChoice {
  reason: string;
  /** Shortlists (multiples of k) calibration tries beyond its own. */
  shortlistMultiples: number[];
}

/** Full-dimension vectors by slot: gathers the rows of `slots` into out (slots.length x D). */
export type VectorReader = (slots: ArrayLike<number>, out: Float32Array) => void | Promise<void>;

/** The parts a built index consists of: its stages (what save/load moves). */
export interface IndexParts {
  spec: IndexSpec;
  metric: Metric;
  dim: number;
  /** Stage 1: the transform (PCA), absent without one. */
  pca?: PcaTransform;
  /** Stage 2: the coarse quantiser (IVF), absent without one. */
  coarse?: CoarseQuantizer;
  /** Stage 3: what the lists hold per member and how they are scanned. */
  codec: ListCodec;
  lists: InvertedLists;
  /** Stage 4: the re-rank vectors, absent without a re-rank stage. */
  rerank?: RerankStore;
  slots: SlotStore;
}

/** Bytes an index holds, by kind (every array counted at its allocated length). */
export interface IndexSizes {
  /** float32 list members (flat codec). */
  lists: number;
  /** Encoded list members (f16, sq8, PQ/OPQ codes). */
  codes: number;
  /** Cosine inverse norms kept per list member and prefix. */
  norms: number;
  /** Slot numbers in the lists, slot ids and the slot map. */
  ids: number;
  /** IVF centroids (and their cached prefix norms). */
  centroids: number;
  /** PCA components, mean and variances; OPQ rotation. */
  rotation: number;
  /** PQ codebooks and residual references, sq8 ranges. */
  codebooks: number;
  /** Re-rank vectors held in memory (a disk store's write buffer and unsaved changes). */
  rerank: number;
  /** Re-rank vectors on disk. */
  rerankDisk: number;
  /** Everything held in memory (the sum of the kinds above but rerankDisk). */
  resident: number;
  /** Of `resident`, what lives in the backend's arena. */
  arena: number;
  /** Live vectors. */
  vectors: number;
}

const CHUNK = 4096;

const formatPatienceOf = (p: SearchParams) => (p.patience ? formatPatience(p.patience) : '');

/** Same search params (the shortlist counts only when a re-rank or funnel rescores it). */
function sameParams(a: SearchParams, p: SearchParams): boolean {
  const funnel = (x: SearchParams) => formatFunnel(x.funnel ?? []);
  const rerankRule = (x: SearchParams) => (x.rerankPatience ? formatRerankPatience(x.rerankPatience) : '');
  return a.coarseDim === p.coarseDim && a.nprobe === p.nprobe && a.probeMargin === p.probeMargin && formatPatienceOf(a) === formatPatienceOf(p) && rerankRule(a) === rerankRule(p) && a.scanDim === p.scanDim && a.rerankDim === p.rerankDim && funnel(a) === funnel(p) && (!usesShortlist(a) || a.shortlist === p.shortlist);
}

/** Two increasing row lists as one (either may be absent). */
function mergeRows(a: Int32Array | undefined, b: Int32Array): Int32Array {
  return a && a.length > 0 ? Int32Array.from(new Set([...a, ...b])).sort() : b;
}

/**
 * AdANNS index, composed of stages with one job each: a transform (PCA), a
 * coarse quantiser (IVF centroids at d_c), a list codec (what the lists hold
 * per member at d_s: float32, float16, sq8, PQ or OPQ codes) scanned over
 * list-contiguous members, a re-rank store (vectors at d_r on disk or in
 * memory) and a slot store (ids). Search composes them and adds up their
 * modelled cost. Rigid IVF is d_c = d_s = D; a flat exact index is no IVF
 * with flat@D, whose lists are the vectors.
 */
export class AdannsIndex {
  readonly spec: IndexSpec;
  readonly metric: Metric;
  readonly dim: number;
  readonly ladder: number[];
  private readonly pca?: PcaTransform;
  private readonly coarse?: CoarseQuantizer;
  private readonly codec: ListCodec;
  private readonly lists: InvertedLists;
  private readonly rerankStore?: RerankStore;
  private readonly slots: SlotStore;
  /** Calibrated configurations for budgets (docs/ARCHITECTURE.md, "Calibration and planning"). */
  calibration?: Calibration;
  /** Why `auto` chose this spec (absent for a spec given), and the longer shortlists its trial asked calibration to try; saved with the index. */
  choice?: IndexChoice;
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
    this.coarse = parts.coarse;
    this.codec = parts.codec;
    this.lists = parts.lists;
    this.rerankStore = parts.rerank;
    this.slots = parts.slots;
    this.rerankStore?.bind?.((slot) => this.slots.idOf(slot));
  }

  /** Prefixes whose cosine inverse norms the lists keep: the ladder up to d_s and d_s itself (decoding codecs). */
  static normDims(metric: Metric, spec: IndexSpec): number[] {
    if (metric !== 'cosine') return [];
    return [...new Set([...dimsLadder(spec.scan.dim), spec.scan.dim])].sort((a, b) => a - b);
  }

  /**
   * Trains an empty index on a sample of its vectors (rows x dim; the whole
   * data set works too: training draws its own seeded samples from it). Add
   * vectors with add(), chunk by chunk; build() is train() then add().
   */
  static async train(backend: Backend, spec: IndexSpec | string, sample: Float32Array, rows: number, dim: number, options: TrainOptions): Promise<AdannsIndex> {
    checkVectors(sample, rows, dim, 'training vectors');
    const choice = isAutoSpec(spec) ? await AdannsIndex.chooseAuto(backend, sample, rows, dim, options) : undefined;
    const parsed = choice ? parseSpec(choice.spec, dim) : typeof spec === 'string' ? parseSpec(spec, dim) : spec;
    validateSpec(parsed, dim, rows);
    const { pca, coarse, codec } = await trainStages(backend, parsed, sample, rows, dim, { ...options, ...reusedFromTrial(parsed, choice?.trained, options) });
    const normDims = codec.decodes ? AdannsIndex.normDims(options.metric, parsed) : [];
    const lists = new InvertedLists(parsed.coarse?.lists ?? 1, codec.codeBytes, normDims, backend.arena, parsed.scan.codec === 'flat' ? 'lists' : 'codes', codec.layout);
    const rerank = parsed.rerank ? (options.rerankStore?.(parsed, dim) ?? createRerankStore(parsed.rerank.storage ?? 'disk', parsed.rerank.dim, options.metric, backend.arena, options.rerankFile)) : undefined;
    const index = new AdannsIndex(backend, { spec: parsed, metric: options.metric, dim, pca, coarse, codec, lists, rerank, slots: new SlotStore() });
    if (choice) index.choice = { reason: choice.reason, shortlistMultiples: choice.shortlistMultiples };
    return index;
  }

  /**
   * The spec `auto` chooses for these vectors (planner/auto.ts); build(), train() and buildFromStream() call it for
   * spec "auto". Its trial samples none of options.heldOut, so the build may reuse what it fitted (AutoChoice.trained).
   */
  static chooseAuto(backend: Backend, data: Float32Array, rows: number, dim: number, options: TrainOptions, whole?: WholeData): Promise<AutoChoice> {
    options.onProgress?.('auto', 0, 1);
    return chooseAutoSpec(backend, data, rows, dim, { metric: options.metric, count: options.count, seed: options.seed, dims: options.autoDims, rerankStorage: options.autoRerank, excluded: options.heldOut, whole }).finally(() => options.onProgress?.('auto', 1, 1));
  }

  static async build(backend: Backend, spec: IndexSpec | string, data: Float32Array, rows: number, dim: number, options: BuildOptions): Promise<AdannsIndex> {
    checkVectors(data, rows, dim, 'build vectors');
    const progress = options.onProgress ?? (() => {});
    const given = options.calibrate === true ? {} : options.calibrate || undefined;
    // calibration queries are drawn before training and left out of every training sample (still indexed: they are data);
    // auto's trial, run before the spec fixes minTrainingRows, keeps out the superset drawn with one training row
    const calibrationRows = (minTraining: number) => (given && !given.queries ? heldOutRows(rows, (options.seed ?? 1) + 303, given.sampleSize, minTraining) : new Int32Array(0));
    const choice = isAutoSpec(spec) ? await AdannsIndex.chooseAuto(backend, data, rows, dim, { ...options, heldOut: mergeRows(options.heldOut, calibrationRows(1)) }) : undefined;
    const parsed = choice ? parseSpec(choice.spec, dim) : typeof spec === 'string' ? parseSpec(spec, dim) : spec;
    const heldOut = calibrationRows(minTrainingRows(parsed, dim, rows));
    const trainOptions = { ...options, ...reusedFromTrial(parsed, choice?.trained, options) };
    const index = await AdannsIndex.train(backend, parsed, data, rows, dim, heldOut.length > 0 ? { ...trainOptions, heldOut: mergeRows(options.heldOut, heldOut) } : trainOptions);
    await options.onTrained?.(index);
    if (choice) index.choice = { reason: choice.reason, shortlistMultiples: choice.shortlistMultiples };
    const ids = options.ids ?? Float64Array.from({ length: rows }, (_, i) => i);
    await index.add(ids, data, rows, (done, total) => progress('add', done, total));
    index.trim();
    if (given) {
      // the data is at hand: exact ground truth reads it when the index keeps no full vectors (slot = row in a fresh build)
      const vectors: VectorReader | undefined = index.fullVectors() ? undefined : (slots, out) => {
        for (let i = 0; i < slots.length; i++) out.set(data.subarray(slots[i] * dim, (slots[i] + 1) * dim), i * dim);
      };
      const held = heldOut.length > 0 ? { queries: gatherRows(data, dim, heldOut), queryRows: heldOut.length, queryIds: Float64Array.from(heldOut, (r) => ids[r]) } : {};
      await index.calibrate({ seed: options.seed ?? 1, vectors, ...held, ...given, onProgress: (done, total) => progress('calibrate', done, total) });
    }
    return index;
  }

  get size(): number {
    return this.slots.size;
  }

  /** Every array the index holds, by kind. */
  arrays(): HeldArray[] {
    const out: HeldArray[] = [];
    if (this.pca) {
      out.push({ kind: 'rotation', array: this.pca.components, arena: true }, { kind: 'rotation', array: this.pca.variances, arena: false });
      if (this.pca.mean) out.push({ kind: 'rotation', array: this.pca.mean, arena: false });
    }
    if (this.coarse) out.push(...this.coarse.arrays());
    out.push(...this.codec.arrays(), ...this.lists.arrays(), ...this.slots.arrays());
    if (this.rerankStore) out.push(...this.rerankStore.arrays());
    return out;
  }

  /** Bytes held, by kind (the bench's index size and `adanns info`). */
  sizes(): IndexSizes {
    const sizes: IndexSizes = { lists: 0, codes: 0, norms: 0, ids: 0, centroids: 0, rotation: 0, codebooks: 0, rerank: 0, rerankDisk: 0, resident: 0, arena: 0, vectors: this.size };
    for (const { kind, array, arena } of this.arrays()) {
      sizes[kind satisfies ByteKind] += array.byteLength;
      sizes.resident += array.byteLength;
      if (arena) sizes.arena += array.byteLength;
    }
    sizes.rerankDisk = this.rerankStore?.diskBytes() ?? 0;
    return sizes;
  }

  /** Memory held by the index's arrays, in bytes (sizes().resident; re-rank vectors on disk not included). */
  get bytes(): number {
    return this.sizes().resident;
  }

  /** Current size of every inverted list (one list without IVF). */
  listSizes(): Int32Array {
    return Int32Array.from({ length: this.lists.count }, (_, l) => this.lists.size(l));
  }

  /** The ids list `list` holds (the filtered calibration draws its filters from them). */
  listIds(list: number): Float64Array {
    return this.idsOf(this.lists.slots(list).subarray(0, this.lists.size(list)));
  }

  has(id: number): boolean {
    return this.slots.has(id);
  }

  /**
   * Adds vectors with new ids (rows x dim) to a trained index: assigned to
   * lists at d_c, encoded by the list codec, and written to the re-rank store.
   * Call it once for everything or chunk by chunk (a streaming build).
   */
  async add(ids: ArrayLike<number>, data: Float32Array, rows: number, onProgress?: (done: number, total: number) => void): Promise<void> {
    checkVectors(data, rows, this.dim, 'add vectors');
    if (ids.length !== rows) throw new Error(`add: ${ids.length} ids for ${rows} vectors`);
    const batch = new Set<number>();
    for (let i = 0; i < rows; i++) {
      const id = ids[i];
      if (!Number.isSafeInteger(id) || id < 0) throw new Error(`add: id at position ${i} must be a non-negative safe integer, got ${id}`);
      if (batch.has(id)) throw new Error(`add: id ${id} appears twice in one batch`);
      if (this.slots.has(id)) throw new Error(`add: id ${id} is already in the index (remove it first to replace it)`);
      batch.add(id);
    }
    const dc = this.spec.coarse?.dim ?? 0;
    const store = this.rerankStore;
    const storeRaw = store !== undefined && store.dim === this.dim;
    const prefix = Math.max(dc, this.spec.scan.dim, store && !storeRaw ? store.dim : 0);
    const labels = new Int32Array(Math.min(CHUNK, rows));
    const scores = new Float32Array(labels.length);
    const normDims = this.lists.normDims;
    for (let from = 0; from < rows; from += CHUNK) {
      const n = Math.min(CHUNK, rows - from);
      const chunk = data.subarray(from * this.dim, (from + n) * this.dim);
      const space = await transformQueries(this.backend, this.pca, chunk, n, this.dim, prefix);
      if (this.coarse) await this.coarse.assign(space, labels, scores);
      const codes = await this.codec.encode(this.backend, space, this.coarse ? labels : undefined);
      const norms = normDims.length > 0 ? decodedInvNorms(this.codec, codes, n, normDims) : undefined;
      const so = space.offset ?? 0;
      for (let i = 0; i < n; i++) {
        const slot = this.slots.allocate(ids[from + i]);
        this.lists.append(this.coarse ? labels[i] : 0, slot, codes, i * this.codec.codeBytes, norms, i * normDims.length);
        if (store) store.write(slot, storeRaw ? chunk : space.data, storeRaw ? i * this.dim : so + i * space.stride);
      }
      onProgress?.(from + n, rows);
    }
  }

  /** Shrinks the lists, the slot map and a resident re-rank store to what they hold, after a bulk of adds (build() does). */
  trim(): void {
    this.lists.trim();
    this.slots.trim();
    this.rerankStore?.trim?.();
  }

  /** Removes ids; returns how many were present. Removed vectors leave their lists at once. */
  remove(ids: ArrayLike<number>): number {
    let removed = 0;
    for (let i = 0; i < ids.length; i++) {
      const slot = this.slots.free(ids[i]);
      if (slot === undefined) continue;
      this.lists.remove(slot);
      removed++;
    }
    return removed;
  }

  /** Fills in defaults and rejects params this index cannot serve. */
  resolveParams(k: number, given: Partial<SearchParams> = {}): SearchParams {
    const p = defaultParams(this.spec, k, given);
    if (given.rerankDim === undefined && !this.spec.rerank) delete p.rerankDim;
    if (this.spec.coarse) {
      checkPositiveInt(p.coarseDim, 'coarseDim', this.spec.coarse.dim);
      checkPositiveInt(p.nprobe, 'nprobe', this.spec.coarse.lists);
      const marginError = p.probeMargin === undefined ? undefined : probeMarginError(p.probeMargin);
      if (marginError) throw new Error(marginError);
      const patience = p.patience === undefined ? undefined : patienceError(p.patience);
      if (patience) throw new Error(patience);
      if (p.patience && p.probeMargin !== undefined) throw new Error(`patience ${formatPatience(p.patience)} and probeMargin ${p.probeMargin}: one probe rule at a time`);
    } else {
      // 0 is what this index reports for them (calibration points, plans): accepted back
      if ((given.coarseDim ?? 0) !== 0 || (given.nprobe ?? 0) !== 0 || given.probeMargin !== undefined || given.patience !== undefined) throw new Error(`index "${formatSpec(this.spec)}" has no IVF stage: coarseDim, nprobe, probeMargin and patience do not apply`);
      p.coarseDim = 0;
      p.nprobe = 0;
    }
    checkPositiveInt(p.scanDim, 'scanDim', this.spec.scan.dim);
    if (!this.codec.decodes && p.scanDim !== this.spec.scan.dim) {
      throw new Error(`scanDim ${p.scanDim}: a ${this.spec.scan.codec} scan runs at the built d_s = ${this.spec.scan.dim} (codes cannot be sliced)`);
    }
    checkPositiveInt(p.shortlist, 'shortlist');
    if (p.rerankDim !== undefined) {
      const store = this.rerankStore;
      if (!store) throw new Error(`rerankDim ${p.rerankDim}: index "${formatSpec(this.spec)}" has no re-rank stage`);
      checkPositiveInt(p.rerankDim, 'rerankDim', store.dim);
      // full-dimension vectors are in the input space: with PCA their prefixes are not the index's prefixes
      if (this.pca && store.dim === this.dim && p.rerankDim !== this.dim) {
        throw new Error(`rerankDim ${p.rerankDim}: this index re-ranks PCA-rotated queries only at the full dimension ${this.dim}`);
      }
      if (p.shortlist < k) throw new Error(`shortlist ${p.shortlist} must be at least k = ${k} when re-ranking`);
    }
    if (p.funnel === undefined || p.funnel.length === 0) delete p.funnel;
    else p.funnel = this.checkFunnel(p, k);
    if (p.patience === undefined) delete p.patience;
    else {
      // the watched top lies within the scan's heap (the shortlist when rescored, else k)
      const scanK = usesShortlist(p) ? p.shortlist : k;
      if (p.patience.top > scanK) throw new Error(`patience ${formatPatience(p.patience)}: top ${p.patience.top} must not exceed the scan's ${usesShortlist(p) ? `shortlist ${scanK}` : `k = ${scanK}`}`);
      // a window longer than the cap can never stop a query early (and sizes per-query state)
      if (p.patience.lists > p.nprobe) throw new Error(`patience ${formatPatience(p.patience)}: its window of ${p.patience.lists} lists must not exceed nprobe ${p.nprobe}, the cap`);
      p.patience = { ...p.patience };
    }
    if (p.rerankPatience === undefined) delete p.rerankPatience;
    else {
      const error = rerankPatienceError(p.rerankPatience);
      if (error) throw new Error(error);
      if (p.rerankDim === undefined) throw new Error(`rerankPatience ${formatRerankPatience(p.rerankPatience)}: it paces the final re-rank, and these params have no rerankDim`);
      if (p.rerankPatience.first < k) throw new Error(`rerankPatience ${formatRerankPatience(p.rerankPatience)}: first ${p.rerankPatience.first} must be at least k = ${k} (the exact top it watches holds the answer)`);
      p.rerankPatience = { ...p.rerankPatience };
    }
    return p;
  }

  /**
   * Where a funnel stage at prefix `dim` reads its vectors: the lists when
   * their codec decodes prefixes up to d_s (flat@128 lists scanned at 32 can
   * rescore at 64 or 128), or the re-rank store when its rows are in the
   * index space (prefixes meaningful: not raw full-dimension rows under PCA);
   * where both can, the cheaper in the cost model (float32 lists before a
   * store; a store before f16/sq8 lists, which decode each value).
   * Undefined when neither holds that prefix.
   */
  funnelSource(dim: number): 'lists' | 'store' | undefined {
    const lists = this.codec.decodes && dim <= this.spec.scan.dim;
    const store = this.rerankStore !== undefined && dim <= this.rerankStore.dim && !(this.pca && this.rerankStore.dim === this.dim);
    if (lists && (!store || this.codec.flopsPerValue <= 1)) return 'lists';
    return store ? 'store' : undefined;
  }

  /** The prefixes of the dims ladder (and d_s) a funnel stage can read (funnelSource), ascending. */
  funnelDims(): number[] {
    const candidates = new Set([...this.ladder, ...(this.codec.decodes ? [this.spec.scan.dim] : [])]);
    return [...candidates].filter((d) => this.funnelSource(d) !== undefined).sort((a, b) => a - b);
  }

  /** A funnel this index can run for params p at k (copied: the caller's stages are not kept), else an error naming the stage. */
  private checkFunnel(p: SearchParams, k: number): FunnelStage[] {
    const shape = funnelShapeError(p.funnel);
    if (shape) throw new Error(shape);
    const funnel = p.funnel!.map((s) => ({ dim: s.dim, keep: s.keep }));
    funnel.forEach((stage, i) => {
      const at = `funnel stage ${i} (keep ${stage.keep} at dim ${stage.dim})`;
      // float32 lists scan exactly: a stage at or below scanDim would recompute the scan's own scores
      if (i === 0 && this.spec.scan.codec === 'flat' && stage.dim <= p.scanDim) throw new Error(`${at}: dim must exceed scanDim ${p.scanDim} (the float32 scan's scores at that prefix are already exact)`);
      if (p.rerankDim !== undefined && stage.dim >= p.rerankDim) throw new Error(`${at}: dim must be below rerankDim ${p.rerankDim} (the final re-rank)`);
      if (this.funnelSource(stage.dim) === undefined) {
        const store = this.rerankStore;
        const lists = this.codec.decodes ? `its lists hold prefixes up to d_s = ${this.spec.scan.dim}` : `its ${this.spec.scan.codec} lists hold codes, not prefixes`;
        const rows = !store ? 'it has no re-rank store' : this.pca && store.dim === this.dim ? `its re-rank store holds raw ${store.dim}-d vectors, whose prefixes are not the PCA space's (only the full dimension re-ranks)` : `its re-rank store holds prefixes up to ${store.dim}`;
        throw new Error(`${at}: index "${formatSpec(this.spec)}" cannot read vectors at dim ${stage.dim}: ${lists}, and ${rows}`);
      }
    });
    if (funnel[0].keep > p.shortlist) throw new Error(`funnel stage 0 (keep ${funnel[0].keep} at dim ${funnel[0].dim}): keep must not exceed the shortlist ${p.shortlist} (a stage keeps at most the candidates it is given)`);
    const last = funnel[funnel.length - 1];
    if (last.keep < k) throw new Error(`funnel stage ${funnel.length - 1} (keep ${last.keep} at dim ${last.dim}): keep must be at least k = ${k}`);
    return funnel;
  }

  /** Batched search: queries is rows x dim. */
  async search(queries: Float32Array, rows: number, k: number, given?: Partial<SearchParams>, options: SearchOptions = {}): Promise<SearchResult> {
    const started = performance.now();
    checkVectors(queries, rows, this.dim, 'search queries');
    checkPositiveInt(k, 'k');
    if (this.size === 0) throw new Error('search: the index is empty');
    if (k > this.size) throw new Error(`k = ${k} exceeds the ${this.size} vectors in the index`);
    const p = this.resolveParams(k, given);
    // a filter (filtered.ts): a slot mask once per call (or once per request, prepared), and the plan its selectivity calls for
    const filter = options.filter ? this.slotFilterOf(options.filter) : undefined;
    const filterPlan = filter && this.planFilter(p, k, filter, options.filterPlan);
    if (filter && filterPlan?.plan === 'exact') return this.searchMatches(queries, rows, k, p, filter, filterPlan, started, options.filter instanceof PreparedFilter);
    const rerankDim = p.rerankDim;
    const storeRaw = this.rerankStore !== undefined && this.rerankStore.dim === this.dim;
    const rerankInSpace = rerankDim !== undefined && !storeRaw;
    // funnel stages read the index space (funnelSource), at prefixes up to their last dim
    const prefix = Math.max(p.coarseDim, p.scanDim, rerankInSpace ? rerankDim : 0, p.funnel?.at(-1)?.dim ?? 0);
    // candidates need a liveness check only when the slot map changed since the search began (a remove ran while a backend yielded)
    const version = this.slots.version;
    const live = () => (this.slots.version === version ? undefined : this.live);
    const space = await transformQueries(this.backend, this.pca, queries, rows, this.dim, prefix);

    const nprobe = this.coarse ? p.nprobe : 1;
    const scanK = usesShortlist(p) ? p.shortlist : k;
    // adaptive probing: the ranked lists cut per query by the margin rule (-1 after its last list), nprobe the cap
    const probeAll = async () => (!this.coarse ? new Int32Array(rows) : p.probeMargin === undefined ? await this.coarse.probe(space, p.coarseDim, nprobe) : await this.coarse.rank(space, p.coarseDim, nprobe).then((r) => (cutProbes(r.lists, r.scores, rows, nprobe, p.probeMargin!), r.lists)));
    // patience: lists scanned one round at a time until each query's top settles (stages/adaptive-probe.ts)
    const patient = async () => {
      const ranked = await this.coarse!.rank(space, p.coarseDim, nprobe);
      const r = await probeWithPatience({ backend: this.backend, codec: this.codec, lists: this.lists, metric: this.metric }, space, ranked.lists, nprobe, p.scanDim, scanK, p.patience!, filter?.mask);
      listsProbed = r.depths;
      return r;
    };
    let listsProbed: Int32Array | undefined;
    const scan = async () => (p.patience ? patient() : this.codec.scan({ backend: this.backend, queries: space, probes: await probeAll(), nprobe, lists: this.lists, scanDim: p.scanDim, metric: this.metric, shortlist: scanK, mask: filter?.mask }));
    // a filtered IVF search probes lists in order until enough matches are seen (filtered.ts); without IVF, every list is scanned with the mask
    const probed = filterPlan?.plan === 'probe' ? await probeUntilEnough({ backend: this.backend, coarse: this.coarse!, codec: this.codec, lists: this.lists, metric: this.metric }, space, p.coarseDim, p.scanDim, filter!, filterPlan.firstProbes, scanK, Math.min(scanK, filter!.count)) : undefined;
    if (options.reuseScan && filter) throw new Error('reuseScan: a filtered search scans under its mask (unfiltered searches only)');
    const { best, scanned, quantizerFlops } = probed ?? (options.reuseScan ? cutScan(options.reuseScan, scanK, rows) : await scan());
    if (options.onScan) options.onScan(shareScan({ best, scanned, quantizerFlops }));
    if (filterPlan && probed) filterPlan.maxListsProbed = probed.probed.reduce((a, b) => Math.max(a, b), 0);

    // funnel: each stage rescores the candidates left at its prefix and keeps its best; without a final re-rank the last one answers (its best k)
    let candidates: TopK = best;
    const rescored: Int32Array[] = [];
    const funnel = p.funnel ?? [];
    for (let i = 0; i < funnel.length; i++) {
      rescored.push(Int32Array.from(candidates.sizes));
      const keep = rerankDim === undefined && i === funnel.length - 1 ? k : funnel[i].keep;
      // from the lists: rescored where they lie (one backend call); from a store: gathered
      candidates =
        this.funnelSource(funnel[i].dim) === 'store'
          ? await rerankGathered(this.backend, space, candidates, this.rerankStore!, funnel[i].dim, this.metric, keep, live())
          : await rerankFromLists(this.backend, space, candidates, this.lists, this.codec.listSet!(this.lists), funnel[i].dim, this.metric, keep, live());
    }

    let final: TopK = candidates;
    let reranked: Int32Array | undefined;
    if (rerankDim !== undefined) {
      const store = this.rerankStore!;
      const q = storeRaw ? rowBlock(queries, rows, this.dim) : space;
      const inPlace = rerankDim === store.dim ? store.inPlace?.() : undefined;
      // resident float32 rows are rescored where they lie; other stores gather the shortlist
      const rerank = (block: RowBlock, chunk: TopK, keep: number) => (inPlace ? rerankStored(this.backend, block, chunk, inPlace, this.metric, keep, live(), this.coarse ? this.lists.rowGroups() : undefined) : rerankGathered(this.backend, block, chunk, store, rerankDim, this.metric, keep, live()));
      // re-rank patience: the candidates rescored in chunks until the exact top `first` settles (stages/adaptive-rerank.ts)
      if (p.rerankPatience) ({ final, reranked } = await rerankWithPatience(q, candidates, p.rerankPatience, rerank));
      else final = await rerank(q, candidates, k);
    }
    const mflops = new Float64Array(rows);
    for (let q = 0; q < rows; q++) {
      mflops[q] = queryMflops(this.queryWork(p, scanned[q], quantizerFlops ? quantizerFlops[q] : 0, rerankDim !== undefined ? (reranked ? reranked[q] : candidates.sizes[q]) : 0, rescored.map((sizes) => sizes[q])));
    }
    // under a filter the filtered calibration's estimate for the probe plan, when it measured these params (filterPlan.note says)
    const expectedRecall = filterPlan ? filterPlan.estimatedRecall : this.calibratedRecall(p, k);
    return { queries: rows, k, ...this.hits(final.sort(), rows, k), mflops, params: p, expectedRecall, budgetMet: null, budgetNote: null, tookMs: performance.now() - started, ...(filterPlan ? { filter: filterPlan } : {}), ...(listsProbed ? { listsProbed } : {}) };
  }

  /** Whether a slot still holds a vector (stages drop candidates removed while a backend yielded). */
  private readonly live = (slot: number): boolean => this.slots.isLive(slot);

  /** Ids, scores and counts of a search's final heaps (sorted), k per query; a hit removed during the search is left out. */
  private hits(final: TopK, rows: number, k: number): Pick<SearchResult, 'ids' | 'scores' | 'counts'> {
    const ids = new Float64Array(rows * k).fill(-1);
    const scores = new Float32Array(rows * k).fill(NaN);
    const counts = new Int32Array(rows);
    for (let q = 0; q < rows; q++) {
      let n = 0;
      for (let i = 0; i < final.sizes[q] && n < k; i++) {
        const slot = final.ids[q * final.k + i];
        if (!this.slots.isLive(slot)) continue;
        ids[q * k + n] = this.slots.idOf(slot);
        scores[q * k + n++] = final.scores[q * final.k + i];
      }
      counts[q] = n;
    }
    return { ids, scores, counts };
  }

  /**
   * A filter evaluated once against this index's slots, for several searches
   * (a request searching its queries in slices): pass it as search's
   * `filter`. Valid while the slots don't change; a search after an add or
   * remove derives the mask again (transparently).
   */
  prepareFilter(allowed: AllowedIds): PreparedFilter {
    checkAllowedIds(allowed);
    return new PreparedFilter(allowed, this, this.slots.version, slotFilter(allowed, this.slots));
  }

  /** The slot mask of a filter, from a prepared one while it is current. */
  private slotFilterOf(filter: AllowedIds | PreparedFilter): SlotFilter {
    if (!(filter instanceof PreparedFilter)) return slotFilter(filter, this.slots);
    if (filter.owner !== this) throw new Error('filter: this prepared filter was made by another index (prepareFilter on the index searched)');
    if (filter.version !== this.slots.version) {
      filter.slots = slotFilter(filter.allowed, this.slots);
      filter.version = this.slots.version;
    }
    return filter.slots;
  }

  /**
   * The MFLOPs per query a search with this filter is priced at before it
   * runs (work limits, slice sizing): the plan search would take (or `force`),
   * its predicted mean and its worst case. Exact plan: the exact scan of the
   * matches (mean = max; none when nothing matches); probe plan: the mean is
   * the first round, the worst case probing every list that holds a match
   * (its tables included, the per-query tables once per round); scan plan
   * (no IVF): every list with the mask.
   */
  priceFilter(k: number, given: Partial<SearchParams> | undefined, filter: AllowedIds | PreparedFilter, force?: 'exact' | 'probe'): { plan: FilterPlanKind; mflops: number; mflopsMax: number } {
    checkPositiveInt(k, 'k');
    const p = this.resolveParams(k, given);
    const report = this.planFilter(p, k, this.slotFilterOf(filter), force);
    if (report.plan === 'exact') {
      const exact = report.matches === 0 ? 0 : report.predicted.exact;
      return { plan: report.plan, mflops: exact, mflopsMax: exact };
    }
    return { plan: report.plan, mflops: report.predicted.ivf, mflopsMax: report.predicted.ivfMax };
  }

  /**
   * The plan a filter calls for (filtered.ts) at params p: an exact scan of
   * the matches when the index keeps vectors to read them from and that costs
   * fewer modelled MFLOPs than the IVF plan probing lists in order until
   * enough matches are seen (its first round: nprobe / selectivity lists);
   * without IVF, the masked scan of every list.
   */
  private planFilter(p: SearchParams, k: number, filter: SlotFilter, force?: 'exact' | 'probe'): FilterReport {
    const live = this.size;
    const c = filter.count;
    const store = this.rerankStore;
    const exactDim = store ? store.dim : this.codec.decodes ? this.spec.scan.dim : 0;
    let exact = Infinity;
    if (exactDim > 0) {
      // the store's raw rows need no rotation; rows in the index space (store or lists) do under PCA
      const inSpace = !(store && store.dim === this.dim);
      const rotation = this.pca && inSpace ? this.dim * exactDim : 0;
      // gathered rows' cosine norms are computed per search unless the source keeps them (a resident
      // float32 store, lists with norms at that dim); f16/sq8 list values are decoded
      const normsKept = store ? storeRows(store).readInvNorms !== undefined : this.lists.hasNorms(exactDim);
      const perValue = (this.metric === 'cosine' && !normsKept ? 2 : 1) + (!store ? this.codec.flopsPerValue - 1 : 0);
      exact = (rotation + c * exactDim * perValue) / 1e6;
    }
    // float32 rows rank exactly; float16 / sq8 rows by rounded values
    const exactLossless = store ? store.storage !== 'f16' : this.spec.scan.codec === 'flat';
    const scanK = usesShortlist(p) ? p.shortlist : k;
    const lists = this.coarse?.lists ?? 1;
    const firstProbes = this.coarse ? firstRoundProbes(p.nprobe, lists, c, live) : 1;
    // the masked scan scores only matches and builds tables only for lists holding one; the probe hands on
    // min(scanK, c) candidates (it probes on until it has them), each funnel stage its keep
    // (only code scans build tables: float scans skip the O(members) count)
    const holding = this.codec.quantizerFlops ? listsHolding(filter, this.lists) : 0;
    const candidates = Math.min(scanK, c);
    // mean: matches and the lists holding them spread over the lists, the first round probing a share of them
    const share = firstProbes / lists;
    const ivf = this.modelMflops(p, c * share, holding * share, candidates);
    // worst case: every list holding a match probed, the per-query tables rebuilt by each doubling round
    let rounds = 1;
    for (let covered = firstProbes; covered < lists; covered *= 2) rounds++;
    const ivfMax = this.modelMflops(p, c, holding, candidates) + ((rounds - 1) * (this.codec.quantizerFlops?.(0) ?? 0)) / 1e6;
    if (force === 'exact' && exactDim === 0) throw new Error(`filterPlan exact: index "${formatSpec(this.spec)}" keeps no vectors to scan the matches from (its ${this.spec.scan.codec} lists hold codes and it has no re-rank store)`);
    if (force === 'probe' && !this.coarse) throw new Error(`filterPlan probe: index "${formatSpec(this.spec)}" has no IVF stage`);
    // no match: nothing to scan (an exact scan of none)
    const plan = c === 0 || force === 'exact' || (force === undefined && exact <= ivf) ? 'exact' : this.coarse ? 'probe' : 'scan';
    // starts with the share, not the count: a collection prefixes "filter matches N points: "
    const of = `${((100 * c) / Math.max(1, live)).toPrecision(3)}% of ${live} vectors`;
    // the probe plan's recall under filters of this selectivity, when the filtered calibration measured these params
    const estimate = plan === 'probe' && this.calibration ? filteredEstimate(this.calibration, k, p, c / Math.max(1, live)) : undefined;
    const probeRecall = estimate ? `recall under filters estimated at ${estimate.expected.toFixed(4)} (lower bound ${estimate.lowerBound.toFixed(4)}) by the filtered calibration` : "this plan's recall under filters is not calibrated for these params, k and selectivity";
    const recall = exactDim !== this.dim ? `; exact at dim ${exactDim} < ${this.dim}, recall against full-dimension neighbours not calibrated` : exactLossless ? ', recall 1' : `; from ${store ? store.storage : this.spec.scan.codec} rows (lossy), recall not calibrated`;
    const note =
      c === 0 ? `${of}: no hits`
      : plan === 'exact' ? `${of}: exact scan of the matches at dim ${exactDim} (${exact.toPrecision(3)} MFLOPs predicted, IVF plan ${ivf.toPrecision(3)})${recall}`
      : plan === 'probe' ? `${of}: IVF probed lists in centroid order until each query's top ${scanK} held ${Math.min(scanK, c)} matches (first round ${firstProbes} of ${lists} lists; exact scan of the matches predicted at ${exact === Infinity ? 'n/a: no stored vectors' : `${exact.toPrecision(3)} MFLOPs`}); ${probeRecall}`
      : `${of}: every list scanned with the filter; the calibrated recall is for unfiltered queries: this plan's recall is not calibrated`;
    return { matches: c, live, plan, exactDim: plan === 'exact' && c > 0 ? exactDim : 0, firstProbes: plan === 'probe' ? firstProbes : 0, maxListsProbed: 0, predicted: { exact, ivf, ivfMax }, exactLossless, estimatedRecall: plan === 'exact' ? (c === 0 || (exactDim === this.dim && exactLossless) ? 1 : null) : (estimate?.expected ?? null), note };
  }

  /** A filtered search answered from the matches alone: none (a filter matching nothing), or the exact scan of them (planFilter). */
  private async searchMatches(queries: Float32Array, rows: number, k: number, p: SearchParams, filter: SlotFilter, report: FilterReport, started: number, prepared: boolean): Promise<SearchResult> {
    const mflops = new Float64Array(rows);
    let final = new TopK(rows, k);
    if (filter.count > 0) {
      const store = this.rerankStore;
      const dim = report.exactDim;
      const raw = store !== undefined && store.dim === this.dim;
      const q = raw ? rowBlock(queries, rows, this.dim) : await transformQueries(this.backend, this.pca, queries, rows, this.dim, dim);
      const source = store ? storeRows(store) : listRows(this.backend, this.lists, this.codec, dim);
      // a prepared filter keeps the rows it gathered for the next searches under it (a request's slices); not
      // f16/sq8 list rows: their decoding is work each search reports (cost.ts), done again rather than kept
      final = await exactOverMatches(this.backend, q, filter, source, this.metric, k, this.live, prepared && (store !== undefined || this.codec.flopsPerValue <= 1));
      mflops.fill(report.predicted.exact);
    }
    const exactAtD = filter.count === 0 || (report.exactDim === this.dim && report.exactLossless);
    return { queries: rows, k, ...this.hits(final.sort(), rows, k), mflops, params: p, expectedRecall: exactAtD ? 1 : null, budgetMet: null, budgetNote: null, tookMs: performance.now() - started, filter: report };
  }

  /**
   * Searches with the params the planner picks for a budget (one plan for the
   * whole batch); budgetMet says whether this answer met it (judgeBudget).
   */
  async searchWithBudget(queries: Float32Array, rows: number, k: number, budget: Budget, options: { strict?: boolean; filter?: AllowedIds | PreparedFilter } = {}): Promise<SearchResult & { plan: Plan; filterPlan?: FilteredPlan }> {
    if (options.filter) {
      // under a filter the plan is priced for it (planFiltered) and the search takes the plan it chose
      const fp = this.planFiltered(budget, k, options.filter, { strict: options.strict, rows });
      const result = await this.search(queries, rows, k, fp.params, { filter: options.filter, ...(fp.plan === 'scan' ? {} : { filterPlan: fp.plan }) });
      let maxMflops = 0;
      for (const m of result.mflops) maxMflops = Math.max(maxMflops, m);
      const verdict = judgeFilteredBudget(budget, { k, maxMflops, tookMs: result.tookMs }, fp, result.filter!);
      // `plan` in the unfiltered shape: an unknown recall is bounded below by 0
      const plan: Plan = { params: fp.params, expectedRecall: fp.expectedRecall ?? 0, recallLowerBound: fp.recallLowerBound ?? 0, expectedMflops: fp.expectedMflops, expectedLatencyMs: fp.expectedLatencyMs ?? NaN, budgetMet: fp.budgetMet, calibratedK: k };
      return { ...result, expectedRecall: fp.expectedRecall, budgetMet: verdict.met, budgetNote: [result.filter!.note, fp.note, verdict.note].filter((n) => n).join('; '), plan, filterPlan: fp };
    }
    const plan = this.plan(budget, k, { strict: options.strict, rows });
    const result = await this.search(queries, rows, k, plan.params);
    let maxMflops = 0;
    for (const m of result.mflops) maxMflops = Math.max(maxMflops, m);
    const verdict = judgeBudget(budget, { k, maxMflops, tookMs: result.tookMs }, { lowerBound: plan.recallLowerBound, calibratedK: plan.calibratedK ?? this.calibration!.k, estimate: plan.recallNote });
    return { ...result, expectedRecall: plan.expectedRecall, budgetMet: verdict.met, budgetNote: verdict.note, plan };
  }

  /**
   * The plan a budget buys under a filter (docs/ARCHITECTURE.md, "Budgets
   * under filters"), priced for this filter: the exact scan of the matches
   * (recall 1 from float32 rows at the full dimension; its MFLOPs from the
   * matches; its latency from the exact scans the filtered calibration timed),
   * or the probe plan at a calibrated point, its recall estimated from the
   * filtered calibration at the selectivities around this filter's
   * (filtered-calibration.ts), its MFLOPs modelled on this filter's matches and
   * lists (the largest query: the larger of that and what calibration saw),
   * its latency as calibration timed it. A recall budget takes the cheapest
   * plan whose recall lower bound reaches it; MFLOPs and latency budgets the
   * most accurate that fits. The unfiltered plan, run with the filter's own
   * choice, stays a candidate whose recall is not known (an index calibrated
   * before filtered calibration, a k it did not calibrate, a selectivity
   * below the smallest calibrated). budgetMet is the prediction; the answer
   * judges what it measured (judgeFilteredBudget).
   */
  planFiltered(budget: Budget, k: number, filter: AllowedIds | PreparedFilter, options: { strict?: boolean; rows?: number } = {}): FilteredPlan {
    if (!this.calibration) throw new Error('this index has no calibration: build it with calibration or run calibrate first');
    checkPositiveInt(k, 'k');
    const calibration = this.calibration;
    const slots = this.slotFilterOf(filter);
    const c = slots.count;
    const selectivity = this.size > 0 ? c / this.size : 0;
    const rows = options.rows ?? 1;
    const scale = this.latencyScale * rows;
    const base = this.plan(budget, k, { rows });
    const candidates: FilteredPlan[] = [];
    const share = `${(100 * selectivity).toPrecision(3)}% selectivity`;
    // the exact scan of the matches: its recall is 1 from float32 rows at D
    const exactParams = this.resolveParams(k, base.params);
    const exact = this.codec.decodes || this.rerankStore ? this.planFilter(exactParams, k, slots, 'exact') : undefined;
    if (exact) {
      const known = c === 0 || (exact.exactDim === this.dim && exact.exactLossless);
      const mflops = c === 0 ? 0 : exact.predicted.exact;
      const latency = exactLatency(calibration, c);
      candidates.push({ params: exactParams, plan: 'exact', matches: c, selectivity, expectedRecall: known ? 1 : null, recallLowerBound: known ? 1 : null, expectedMflops: mflops, budgetMflops: mflops, expectedLatencyMs: latency === undefined ? null : latency * scale, budgetMet: false, note: `exact scan of the matches${known ? ' (recall 1)' : `: its recall is not known (${exact.exactDim < this.dim ? `dim ${exact.exactDim} < ${this.dim}` : 'lossy rows'})`}` });
    }
    // the probe plan at each calibrated point whose recall the filtered calibration estimates here
    const level = this.coarse && c > 0 ? calibrationLevels(calibration).find((l) => l.k === k) : undefined;
    for (const point of level?.points ?? []) {
      const estimate = filteredEstimate(calibration, k, point.params, selectivity);
      if (!estimate) continue;
      let p: SearchParams;
      try {
        p = this.resolveParams(k, point.params);
      } catch {
        continue;
      }
      const report = this.planFilter(p, k, slots, 'probe');
      const around = estimate.from.map((s) => (s === 1 ? 'unfiltered' : `${100 * s}%`)).join(' and ');
      candidates.push({ params: p, plan: 'probe', matches: c, selectivity, expectedRecall: estimate.expected, recallLowerBound: estimate.lowerBound, expectedMflops: report.predicted.ivf, budgetMflops: Math.max(report.predicted.ivf, estimate.mflopsMax), expectedLatencyMs: estimate.latencyMs * scale, budgetMet: false, note: `probe plan at ${formatParams(p)}: recall under a filter of ${share} estimated from the filtered calibration at ${around} (random and region filters): ${estimate.expected.toFixed(4)}, lower bound ${estimate.lowerBound.toFixed(4)}` });
    }
    // the unfiltered plan with the filter's own choice: its recall under the filter is not known
    if (c > 0) {
      const p = this.resolveParams(k, base.params);
      const report = this.planFilter(p, k, slots);
      const why = !calibration.filtered ? 'the calibration has no filtered part (calibrated before it was kept, or an index without IVF)' : !level ? `k = ${k} is not calibrated` : selectivity < Math.min(...calibration.filtered.selectivities) ? `${share} is below the smallest calibrated (${100 * Math.min(...calibration.filtered.selectivities)}%)` : 'no calibrated point was measured under filters there';
      const mflops = report.plan === 'exact' ? report.predicted.exact : report.predicted.ivf;
      const known = report.plan === 'exact' && report.exactDim === this.dim && report.exactLossless;
      if (!known) candidates.push({ params: p, plan: report.plan, matches: c, selectivity, expectedRecall: null, recallLowerBound: null, expectedMflops: mflops, budgetMflops: report.plan === 'exact' ? mflops : report.predicted.ivfMax, expectedLatencyMs: null, budgetMet: false, note: `${report.plan} plan at ${formatParams(p)}: its recall under this filter is not calibrated (${why})` });
    }
    const recallOf = (f: FilteredPlan) => f.recallLowerBound ?? -1;
    let ok: FilteredPlan[];
    let fallback: FilteredPlan;
    let limit: string;
    if ('recall' in budget) {
      ok = candidates.filter((f) => f.recallLowerBound !== null && f.recallLowerBound >= budget.recall).sort((a, b) => a.expectedMflops - b.expectedMflops);
      fallback = [...candidates].sort((a, b) => recallOf(b) - recallOf(a) || a.expectedMflops - b.expectedMflops)[0];
      limit = `no plan's recall lower bound under this filter reaches ${budget.recall} (the best known is ${fallback?.recallLowerBound?.toFixed(4) ?? 'none'})`;
    } else {
      const cost = 'mflops' in budget ? (f: FilteredPlan) => f.budgetMflops : (f: FilteredPlan) => f.expectedLatencyMs ?? Infinity;
      const bound = 'mflops' in budget ? budget.mflops : budget.latencyMs;
      ok = candidates.filter((f) => cost(f) <= bound).sort((a, b) => recallOf(b) - recallOf(a) || a.expectedMflops - b.expectedMflops);
      fallback = [...candidates].sort((a, b) => cost(a) - cost(b) || recallOf(b) - recallOf(a))[0];
      limit = `no plan under this filter is predicted within ${bound}${'mflops' in budget ? ' MFLOPs' : ' ms (the exact scan and the probe plan are timed by the filtered calibration)'}`;
    }
    if (candidates.length === 0) {
      // nothing matches and no exact plan: an empty answer costs nothing
      return { params: exactParams, plan: this.coarse ? 'probe' : 'scan', matches: 0, selectivity, expectedRecall: 1, recallLowerBound: 1, expectedMflops: 0, budgetMflops: 0, expectedLatencyMs: null, budgetMet: !('latencyMs' in budget), note: 'the filter matches nothing' };
    }
    if (ok.length > 0) return { ...ok[0], budgetMet: true };
    if (options.strict) throw new Error(`budget ${formatBudget(budget)} cannot be met under this filter: ${limit} (strict)`);
    return { ...fallback, budgetMet: false, note: `${fallback.note}; ${limit}` };
  }

  /**
   * The params a budget buys, from the calibrated points priced on the lists
   * as they are now (docs/ARCHITECTURE.md, "Calibration and planning"): an
   * MFLOPs budget on each point's predicted largest query, a latency budget on
   * the predicted time of `rows` queries (default 1) on this machine.
   */
  plan(budget: Budget, k: number, options: { strict?: boolean; rows?: number } = {}): Plan {
    if (!this.calibration) throw new Error('this index has no calibration: build it with calibration or run calibrate first');
    const price = this.pricer(k);
    const rows = options.rows ?? 1;
    // the points at this k, or recall estimated from the calibrated ks around it (levels.ts)
    const atK = pointsAtK(this.calibration, k);
    const plan = planBudget(atK.points, budget, {
      strict: options.strict,
      latencyScale: this.latencyScale,
      price: (p) => {
        const priced = price(p);
        return { budgetMflops: priced.mflopsMax, mflops: priced.mflops, latencyMs: priced.latencyMs * rows };
      },
    });
    return { ...plan, params: raiseToK(plan.params, k), calibratedK: atK.calibratedK, recallFrom: atK.from, recallNote: atK.note };
  }

  /**
   * One query's work at params p (cost.ts) given what its scan scored, the
   * multiply-adds its quantiser spent and the candidates it re-ranked: what
   * search counts and boundMflops bounds.
   */
  private queryWork(p: SearchParams, scanned: number, quantizerFlops: number, reranked: number, funnelRescored: readonly number[] = []): QueryWork {
    const rerankDim = p.rerankDim;
    const funnel: FunnelWork[] = (p.funnel ?? []).map((stage, i) => ({ rescored: funnelRescored[i] ?? 0, dim: stage.dim, flopsPerValue: this.funnelFlopsPerValue(stage.dim) }));
    const rerankInSpace = rerankDim !== undefined && !(this.rerankStore !== undefined && this.rerankStore.dim === this.dim);
    const perValue = this.flopsPerValue(p);
    return {
      fullDim: this.dim,
      // the largest prefix the query needs in the rotated space (as search transforms it)
      rotatedDims: this.pca ? Math.max(p.coarseDim, p.scanDim, rerankInSpace ? rerankDim : 0, p.funnel?.at(-1)?.dim ?? 0) : 0,
      lists: this.coarse ? this.coarse.lists : 0,
      coarseDim: p.coarseDim,
      scanned,
      scanDim: p.scanDim,
      // code scans: table lookup-adds per vector (M: code bytes x lookups per byte)
      codeBytes: this.codec.decodes ? 0 : this.codec.codeBytes * this.codec.flopsPerValue,
      scanFlopsPerValue: perValue.scan,
      quantizerFlops,
      reranked,
      rerankDim: rerankDim ?? 0,
      rerankFlopsPerValue: perValue.rerank,
      funnel,
    };
  }

  /**
   * Multiply-adds per value a funnel stage at `dim` rescores (cost.ts): 1, plus
   * the decode of f16/sq8 lists, plus 1 for cosine unless the lists keep the
   * rows' norms at dim (gathered rows' norms are computed per search).
   */
  private funnelFlopsPerValue(dim: number): number {
    const fromLists = this.funnelSource(dim) === 'lists';
    const norms = this.metric === 'cosine' && !(fromLists && this.lists.hasNorms(dim)) ? 1 : 0;
    return (fromLists ? this.codec.flopsPerValue : 1) + norms;
  }

  /**
   * Multiply-adds of a funnel and the final re-rank when the scan hands over
   * `shortlist` candidates: each stage rescores what the one before kept,
   * the re-rank the last keep (no funnel: the shortlist). Pricing uses it for
   * a plan whose shortlist and keeps are raised to its k.
   */
  private rescoreFlops(p: SearchParams, shortlist: number): number {
    let given = shortlist;
    let flops = 0;
    for (const stage of p.funnel ?? []) {
      flops += given * stage.dim * this.funnelFlopsPerValue(stage.dim);
      given = Math.min(given, stage.keep);
    }
    return p.rerankDim !== undefined ? flops + given * p.rerankDim * this.flopsPerValue(p).rerank : flops;
  }

  /**
   * An upper bound on one query's MFLOPs at params p on the lists as they are
   * now, for params calibration never measured (work limits): the query
   * probes the nprobe largest lists (a margin only probes fewer), re-ranks a
   * full shortlist, and is counted by the same terms as search (queryWork).
   * p: resolved params (resolveParams).
   */
  boundMflops(p: SearchParams): number {
    const sizes = this.listSizes().sort();
    const probes = this.coarse ? Math.min(p.nprobe, sizes.length) : sizes.length;
    let scanned = 0;
    let probed = 0;
    for (let i = sizes.length - probes; i < sizes.length; i++) {
      scanned += sizes[i];
      if (sizes[i] > 0) probed++;
    }
    return this.modelMflops(p, scanned, probed);
  }

  /**
   * One query's modelled MFLOPs at params p (resolved) when its scan scores
   * `scanned` vectors in `probed` non-empty lists and hands a full shortlist
   * through every funnel stage to the re-rank: the terms search counts
   * (queryWork). Calibration compares funnel variants with it; a filtered
   * plan gives `handed`, the candidates its scan hands on (min(shortlist, matches)).
   */
  modelMflops(p: SearchParams, scanned: number, probed: number, handed?: number): number {
    // a full shortlist through every funnel stage, each keeping its keep
    let given = handed ?? Math.min(usesShortlist(p) ? p.shortlist : 0, scanned);
    const rescored: number[] = [];
    for (const stage of p.funnel ?? []) {
      rescored.push(given);
      given = Math.min(given, stage.keep);
    }
    return queryMflops(this.queryWork(p, scanned, this.codec.quantizerFlops?.(probed) ?? 0, p.rerankDim !== undefined ? given : 0, rescored));
  }

  /**
   * Predicted mean MFLOPs per query of calibrated params on the lists as they
   * are now (undefined when calibration did not measure them): what work
   * limits are checked on.
   */
  predictMflops(p: SearchParams): number | undefined {
    // the cost does not depend on the k a point was calibrated at: any level's point with these params
    const point = this.calibration && calibrationLevels(this.calibration).flatMap((l) => l.points).find((c) => sameParams(c.params, p));
    // priced at the k its shortlist and keeps serve as they are (nothing raised)
    return point && this.pricer(usesShortlist(p) ? servedK(p) : 1)(point).mflops;
  }

  /** Prices calibrated points for a search at k on the current list sizes (probed mass computed once per coarseDim and nprobe). */
  private pricer(k: number): (p: FrontierPoint) => PointPrice {
    const stats = this.calibration?.probeStats;
    const now = this.listSizes();
    const memo = new Map<string, number | undefined>();
    const mass = (coarseDim: number, nprobe: number, sizes: ArrayLike<number>, probeMargin?: number, patience?: PatienceRule, scanDim?: number) => {
      const key = `${sizes === now ? 'now' : 'then'}/${coarseDim}/${nprobe}/${probeMargin}/${patience ? `${formatPatience(patience)}@${scanDim}` : ''}`;
      if (!memo.has(key)) memo.set(key, stats && probedMass(stats, sizes, coarseDim, nprobe, probeMargin, patience, scanDim));
      return memo.get(key);
    };
    return (p) => {
      // the scan's multiply-adds per vector in the cost model (cost.ts): code bytes, or scanDim x the codec's flops per value
      const perValue = this.flopsPerValue(p.params);
      const perVector = this.codec.decodes ? p.params.scanDim * perValue.scan : this.codec.codeBytes * this.codec.flopsPerValue;
      const raised = raiseToK(p.params, k);
      // the shortlist and keeps raised to k rescore more: priced as the search counts it
      let extra = usesShortlist(p.params) ? this.rescoreFlops(raised, raised.shortlist) - this.rescoreFlops(p.params, p.params.shortlist) : 0;
      // re-rank patience raised to k watches a wider top, whose depth calibration did not measure: priced as if each
      // query rescored all its candidates (the point's figure already counts at least its calibrated `first` of them)
      const calibratedFirst = p.params.rerankPatience?.first;
      if (calibratedFirst !== undefined && raised.rerankPatience && raised.rerankPatience.first > calibratedFirst && p.params.rerankDim !== undefined) {
        const candidates = Math.min(raised.shortlist, raised.funnel?.at(-1)?.keep ?? raised.shortlist);
        extra += Math.max(0, candidates - calibratedFirst) * p.params.rerankDim * perValue.rerank;
      }
      return pricePoint(p, stats, now, perVector, raised.shortlist, mass, perValue.rerank, extra);
    };
  }

  /**
   * Multiply-adds per scanned and per re-ranked value at params p (cost.ts):
   * the codec's per value, twice that for a cosine float scan at a prefix
   * whose member norms the lists do not keep (the scan computes them), and 2
   * per re-ranked value when a cosine re-rank gathers its rows (their norms
   * are computed per search; resident float32 rows at the store's dim keep theirs).
   */
  private flopsPerValue(p: SearchParams): { scan: number; rerank: number } {
    const cosine = this.metric === 'cosine';
    const scanNorms = cosine && this.codec.decodes && !this.lists.hasNorms(p.scanDim);
    const store = this.rerankStore;
    const inPlace = store !== undefined && p.rerankDim === store.dim && store.inPlace !== undefined;
    return { scan: this.codec.flopsPerValue * (scanNorms ? 2 : 1), rerank: cosine && p.rerankDim !== undefined && !inPlace ? 2 : 1 };
  }

  /** Scores the centroids at coarseDim for each query (rows x dim, input space) and returns the nprobe best lists, best first (rows x nprobe). */
  async probeLists(queries: Float32Array, rows: number, coarseDim: number, nprobe: number): Promise<Int32Array> {
    return (await this.rankLists(queries, rows, coarseDim, nprobe)).lists;
  }

  /** probeLists with the centroid scores beside the lists (rows x nprobe each), for adaptive probe rules. */
  async rankLists(queries: Float32Array, rows: number, coarseDim: number, nprobe: number): Promise<{ lists: Int32Array; scores: Float32Array }> {
    checkVectors(queries, rows, this.dim, 'probe queries');
    if (!this.coarse) throw new Error(`index "${formatSpec(this.spec)}" has no IVF stage to probe`);
    checkPositiveInt(coarseDim, 'coarseDim', this.spec.coarse!.dim);
    checkPositiveInt(nprobe, 'nprobe', this.coarse.lists);
    const space = await transformQueries(this.backend, this.pca, queries, rows, this.dim, coarseDim);
    return this.coarse.rank(space, coarseDim, nprobe);
  }

  /** Calibrates on demand (or again, e.g. after the index has grown). */
  async calibrate(options: CalibrateOptions = {}): Promise<Calibration> {
    this.calibration = await calibrate(this, options);
    this.latencyScale = 1;
    return this.calibration;
  }

  /** The recall@k / MFLOPs frontier of the calibration (empty without one). */
  /** The recall@k / MFLOPs frontier of the calibration at k (default its primary k; empty without one or when k is not calibrated). */
  frontier(k?: number): ReturnType<typeof paretoFrontier> {
    if (!this.calibration) return [];
    const level = k === undefined ? { points: this.calibration.points } : calibrationLevels(this.calibration).find((l) => l.k === k);
    return level ? paretoFrontier(level.points, (p) => p.mflops) : [];
  }

  /** Share of the variance held by each prefix of the PCA space (PcaTransform.varianceShare); undefined without a PCA stage. */
  varianceShare(prefixes: readonly number[]): { dim: number; share: number }[] | undefined {
    return this.pca?.varianceShare(prefixes);
  }

  /**
   * Measures how fast this machine runs a calibrated point compared with the
   * calibrating machine, so latency budgets plan with local timings. An index
   * that keeps no full vectors has no queries to time and keeps its scale.
   */
  async probeLatency(queries = 16): Promise<number> {
    const front = this.frontier();
    if (front.length === 0 || !this.fullVectors()) return this.latencyScale;
    const point = front[Math.floor(front.length / 2)];
    const sample = await this.sampleStored(queries, 11);
    const n = sample.ids.length;
    const k = Math.min(this.calibration!.k, this.size);
    await this.search(sample.vectors.subarray(0, this.dim), 1, k, point.params);
    const t = performance.now();
    for (let q = 0; q < n; q++) await this.search(sample.vectors.subarray(q * this.dim, (q + 1) * this.dim), 1, k, point.params);
    const measured = (performance.now() - t) / n;
    this.latencyScale = point.latencyMs > 0 ? Math.min(10, Math.max(0.1, measured / point.latencyMs)) : 1;
    return this.latencyScale;
  }

  /**
   * Where this index reads its vectors at the full dimension (input space):
   * a re-rank store at D, else float32 lists at D without PCA (the lists are
   * the vectors); undefined when it keeps neither.
   */
  fullVectors(): VectorReader | undefined {
    const store = this.rerankStore;
    if (store && store.dim === this.dim) return (slots, out) => store.read(slots, out);
    if (!this.pca && this.spec.scan.codec === 'flat' && this.spec.scan.dim === this.dim) {
      return (slots, out) => {
        for (let i = 0; i < slots.length; i++) {
          const at = this.lists.locate(slots[i])!;
          this.codec.decode!(at.codes.subarray(at.offset, at.offset + this.codec.codeBytes), 1, this.dim, out.subarray(i * this.dim, (i + 1) * this.dim));
        }
      };
    }
    return undefined;
  }

  /** The ids these slots hold (a VectorReader's slots, for callers that read the vectors by id elsewhere). */
  idsOf(slots: ArrayLike<number>): Float64Array {
    return Float64Array.from(slots, (slot) => this.slots.idOf(slot));
  }

  private requireFullVectors(given: VectorReader | undefined, what: string): VectorReader {
    const reader = given ?? this.fullVectors();
    if (!reader) {
      throw new Error(`${what} needs the vectors at the full dimension ${this.dim}, and index "${formatSpec(this.spec)}" keeps none: build it with rerank@${this.dim} (or flat@${this.dim} without PCA), or pass the vectors`);
    }
    return reader;
  }

  /** `count` stored vectors (and their ids), sampled with a seed; `vectors` reads them when the index keeps none. */
  async sampleStored(count: number, seed: number, vectors?: VectorReader): Promise<{ vectors: Float32Array; ids: Float64Array }> {
    const read = this.requireFullVectors(vectors, 'sampling stored vectors');
    const live = this.slots.liveSlots();
    const picked = sampleIndices(live.length, count, createRng(seed));
    const slots = Int32Array.from(picked, (i) => live[i]);
    const out = new Float32Array(slots.length * this.dim);
    await read(slots, out);
    return { vectors: out, ids: this.idsOf(slots) };
  }

  /** Calibrated recall at k of these params (null when k or the params were not calibrated). */
  private calibratedRecall(p: SearchParams, k: number): number | null {
    const level = this.calibration && calibrationLevels(this.calibration).find((l) => l.k === k);
    return level?.points.find((point) => sameParams(point.params, p))?.recall ?? null;
  }

  /**
   * Exact k nearest ids at the full dimension over the stored vectors (brute
   * force, reading them chunk by chunk from where the index keeps them, or
   * from `vectors`): the ground-truth oracle for this index's contents.
   */
  async exactSearch(queries: Float32Array, rows: number, k: number, vectors?: VectorReader, filter?: AllowedIds | PreparedFilter): Promise<{ ids: Float64Array; scores: Float32Array }> {
    checkVectors(queries, rows, this.dim, 'exact search queries');
    // with a filter: the exact filtered neighbours (filtered calibration's truth), k at most the matches
    const matched = filter ? this.slotFilterOf(filter) : undefined;
    checkPositiveInt(k, 'k', matched ? matched.count : this.size);
    const read = this.requireFullVectors(vectors, 'exact search');
    const best = new TopK(rows, k);
    const q = rowBlock(queries, rows, this.dim);
    const inPlace = vectors === undefined && this.rerankStore?.dim === this.dim ? this.rerankStore.inPlace?.() : undefined;
    if (inPlace && !this.slots.hasFree && !matched) {
      await this.backend.scanTopK(q, inPlace, this.dim, this.metric, best);
    } else {
      const live = matched ? maskedSlots(matched) : this.slots.liveSlots();
      const buffer = new Float32Array(Math.min(CHUNK, live.length) * this.dim);
      for (let from = 0; from < live.length; from += CHUNK) {
        const slots = live.subarray(from, Math.min(live.length, from + CHUNK));
        await read(slots, buffer);
        await this.backend.scanTopK(q, rowBlock(buffer, slots.length, this.dim), this.dim, this.metric, best, slots);
      }
    }
    best.sort();
    return { ids: Float64Array.from(best.ids, (slot) => this.slots.idOf(slot)), scores: best.scores };
  }

  /**
   * Gives the index's arrays back to the backend's arena (and closes a disk
   * re-rank store). Call it when the index is dropped and no search on it is
   * still running; the index is unusable afterwards.
   */
  release(): void {
    this.lists.release();
    this.coarse?.release();
    if (this.pca) this.backend.arena.release(this.pca.components);
    this.codec.release();
    this.rerankStore?.release();
    this.slots.clear();
  }

  /** The parts, for saving (live, not copies). */
  parts(): IndexParts {
    return { spec: this.spec, metric: this.metric, dim: this.dim, pca: this.pca, coarse: this.coarse, codec: this.codec, lists: this.lists, rerank: this.rerankStore, slots: this.slots };
  }

  describe(k = 10): string {
    return `${formatSpec(this.spec)} (${this.metric}, ${this.size} vectors of dim ${this.dim}; default params ${formatParams(this.resolveParams(k))})`;
  }
}
