import { createRng, gatherRows, rowBlock, sampleIndices, type Backend, type Metric } from '@adanns/compute';
import type { ListCodec, TrainOptions } from '../codecs/codec.js';
import { codecDefinition } from '../codecs/registry.js';
import { kmeans } from '../kmeans.js';
import type { AutoTrained } from '../planner/auto.js';
import { normalizePrefixInPlace, slicePrefix } from '../prefixes.js';
import { validateSpec, type IndexSpec } from '../spec.js';
import { CoarseQuantizer } from '../stages/coarse.js';
import { PcaTransform } from '../transform/pca.js';

export type ProgressFn = (stage: string, done: number, total: number) => void;

/** How the stages are trained (a subset of BuildOptions). */
export interface StageTrainOptions {
  metric: Metric;
  seed?: number;
  /** Vectors sampled to fit PCA (default 10,000). */
  pcaSampleSize?: number;
  /** Lloyd iterations of the IVF k-means (default IVF_KMEANS_ITERATIONS; the first half on half the sample, coarseKmeans). */
  kmeansIterations?: number;
  maxPointsPerCentroid?: number;
  /** Seeding of the IVF k-means (default random, as FAISS's IVF training; kmeans.ts's own default is k-means++). */
  kmeansInit?: 'kmeans++' | 'random';
  /** PQ/OPQ with IVF: encode residuals against each list's reference (default true, as FAISS's IVFPQ). */
  residual?: boolean;
  /** Vectors sampled to train codecs (PQ codebooks, sq8 ranges; default 32,768). */
  pqTrainSize?: number;
  /** OPQ rotation iterations (default 50, as FAISS). */
  opqIterations?: number;
  /**
   * A PCA already fitted to this data by fitPca with these options, used
   * instead of fitting again (AdANNS-OPQ's prefix selection builds one index
   * per prefix on the same data and fits once).
   */
  pca?: PcaTransform;
  /**
   * Centroids the IVF k-means starts from instead of random seeds (lists x
   * coarse.dim, in the space of `pca` when given, mapped into the index's own
   * PCA otherwise: PcaTransform.mapPrefix), after `iterations` Lloyd
   * iterations on a sample of their own of about a warm-up half's size:
   * auto's trial's at the chosen d_c (reusedFromTrial). Those iterations
   * count towards the warm-up half (coarseKmeans).
   */
  kmeansStart?: { centroids: Float32Array; iterations: number; pca?: PcaTransform };
  /**
   * Coarse centroids trained elsewhere (lists x coarse.dim, in the index
   * space: after `pca`, unit rows for cosine and ip as spherical k-means
   * leaves them), used instead of k-means: the shards of a cluster
   * collection share one coarse quantiser (with its `pca`), so their lists
   * partition the same cells and their budgets plan on comparable lists.
   */
  coarseCentroids?: Float32Array;
  onProgress?: ProgressFn;
  /**
   * Rows of the training data no sample may draw (increasing): the held-out
   * calibration queries, drawn before training so that calibration measures
   * recall on vectors no stage was fitted to (docs/ARCHITECTURE.md, "Calibration and planning").
   */
  heldOut?: Int32Array;
  /** Called with the rows each stage's sample drew (what tests check held-out rows against). */
  onSample?: (stage: 'pca' | 'kmeans' | 'codec', rows: Int32Array) => void;
}

/**
 * A seeded sample of `size` of `rows` rows, none of `excluded` (increasing);
 * without exclusions exactly sampleIndices(rows, size, rng).
 */
export function sampleRowsExcept(rows: number, size: number, seed: number, excluded?: Int32Array): Int32Array {
  if (!excluded || excluded.length === 0) return sampleIndices(rows, size, createRng(seed));
  const pool = new Int32Array(rows - excluded.length);
  let n = 0;
  for (let r = 0, e = 0; r < rows; r++) {
    if (e < excluded.length && excluded[e] === r) e++;
    else pool[n++] = r;
  }
  // the pool is increasing and so is the sample of its positions
  return sampleIndices(n, size, createRng(seed)).map((i) => pool[i]);
}

/**
 * The rows a build holds out of training to calibrate on: `wanted` (default
 * 300) but at most a tenth of the rows and leaving `minTraining` to train on
 * (minTrainingRows); empty when fewer than 2 remain (the calibration then
 * samples stored vectors, source "stored"). A smaller `minTraining` draws a
 * superset (same seed: the draw's first rows), which auto's trial keeps out
 * before the spec, and so minTraining, is known.
 */
export function heldOutRows(rows: number, seed: number, wanted = 300, minTraining = 1): Int32Array {
  const count = Math.min(wanted, Math.floor(rows / 10), rows - minTraining);
  return count < 2 ? new Int32Array(0) : sampleIndices(rows, count, createRng(seed));
}

/**
 * What a build of `spec` takes from auto's trial (AutoChoice.trained): its
 * centroids at the spec's d_c as the k-means start, when it trained at the
 * spec's list count. Nothing for a spec without a PCA stage (the centroids
 * live in the trial's PCA space) or when the caller brings its own centroids
 * or start. The build fits its own PCA: the trial's, on 5,000 rows, cost
 * 0.2-0.8 points of recall@10 at nprobe 16 on the 512-d stand-in (three
 * seeds; docs/ARCHITECTURE.md, "What the build reuses from the trial").
 */
export function reusedFromTrial(spec: IndexSpec, trained: AutoTrained | undefined, options: StageTrainOptions): Pick<StageTrainOptions, 'kmeansStart'> {
  const c = trained?.coarse;
  if (!c || spec.transform !== 'pca' || options.coarseCentroids || options.kmeansStart) return {};
  return spec.coarse && c.lists === spec.coarse.lists && c.dim === spec.coarse.dim ? { kmeansStart: { centroids: c.centroids, iterations: c.iterations, pca: trained.pca } } : {};
}

/**
 * The fewest training rows `spec` accepts (validateSpec: one per list, the
 * codec's minimum such as PQ's 256 centroids), so held-out calibration rows
 * never leave training short; `rows` when even all of them do not suffice
 * (training then reports why).
 */
export function minTrainingRows(spec: IndexSpec, dim: number, rows: number): number {
  const enough = (n: number): boolean => {
    try {
      validateSpec(spec, dim, n);
      return true;
    } catch {
      return false;
    }
  };
  if (!enough(rows)) return rows;
  // validity only grows with the row count: binary search for its threshold
  let lo = 1;
  let hi = rows;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (enough(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Lloyd iterations of the IVF k-means (BuildOptions.kmeansIterations). */
export const IVF_KMEANS_ITERATIONS = 18;
/** Vectors per list a warm-up half must hold (below it every iteration runs on the whole sample). */
const WARMUP_PER_LIST = 32;

/**
 * The IVF centroids: k-means at d_c over the training sample, seeded at random (FAISS's IVF recipe: k-means++
 * reads the sample once per centroid, 40% on top of the Lloyd iterations at 1,265 lists x 128 dims, for no better
 * recall). The first half of the iterations (10 of 18) run on a seeded random half of the sample, the rest on all
 * of it: 13 passes' worth instead of 18. At 100k x 512 (1,265 lists at 128) its objective came within 0.1% of 20
 * whole-sample iterations', at 0.2-0.7 points more recall@10 at equal nprobe (two seeds); 10 whole-sample
 * iterations (FAISS's count) lost about 1 point.
 */
async function coarseKmeans(backend: Backend, train: Float32Array, n: number, dc: number, lists: number, metric: Metric, seed: number, perCentroid: number, options: StageTrainOptions, onProgress: (done: number, total: number) => void): Promise<Float32Array> {
  const total = options.kmeansIterations ?? IVF_KMEANS_ITERATIONS;
  if (!Number.isInteger(total) || total < 1) throw new Error(`kmeansIterations must be a positive integer, got ${total}`);
  const halfRows = Math.floor(n / 2);
  // floor(T/2) + 1 <= T - 1 from T = 2: the whole sample always has the last iteration
  const warmup = total >= 2 && halfRows >= lists * WARMUP_PER_LIST ? Math.floor(total / 2) + 1 : 0;
  // a start from auto's trial ran some of the warm-up already, on its sample of 39 vectors a list (about a half's
  // size), so it runs the rest. On the 512-d stand-in (1,265 lists at 128, the trial's PCA, one seed) its centroids
  // then 8 iterations on the whole sample, no half, came 0.2 points of recall@10 below cold k-means at nprobe 32 and 64
  const skipped = Math.min(warmup, options.kmeansStart?.iterations ?? 0);
  const common = { seed, maxPointsPerCentroid: perCentroid, spherical: metric !== 'l2', init: options.kmeansInit ?? 'random' };
  let initialCentroids = options.kmeansStart?.centroids;
  if (warmup > skipped) {
    const rows = gatherRows(train, dc, sampleIndices(n, halfRows, createRng(seed + 7)));
    ({ centroids: initialCentroids } = await kmeans(backend, rows, halfRows, dc, lists, { ...common, iterations: warmup - skipped, initialCentroids, onProgress: (done) => onProgress(skipped + done, total) }));
  }
  const { centroids } = await kmeans(backend, train, n, dc, lists, {
    ...common,
    iterations: total - warmup,
    initialCentroids,
    onProgress: (done) => onProgress(warmup + done, total),
  });
  return centroids;
}

/** The PCA trainStages fits for `data` under `options` (seeded sample, held-out rows excluded). */
export function fitPca(data: Float32Array, rows: number, dim: number, options: StageTrainOptions): PcaTransform {
  const sample = sampleRowsExcept(rows, options.pcaSampleSize ?? 10_000, options.seed ?? 1, options.heldOut);
  options.onSample?.('pca', sample);
  return PcaTransform.fit(data, rows, dim, options.metric, { sample });
}

export interface TrainedStages {
  pca?: PcaTransform;
  coarse?: CoarseQuantizer;
  codec: ListCodec;
}

/**
 * Trains everything an index learns from a sample of its vectors: PCA, the
 * IVF centroids at d_c (spherical k-means for cosine and ip) and the list
 * codec at d_s (PQ/OPQ on residuals against per-list references by default,
 * sq8 ranges). `data` may be the whole data set or a sample of it: k-means
 * and the codec each draw a seeded sample from it, and only those samples are
 * rotated into the PCA space.
 */
export async function trainStages(backend: Backend, spec: IndexSpec, data: Float32Array, rows: number, dim: number, options: StageTrainOptions): Promise<TrainedStages> {
  const progress = options.onProgress ?? (() => {});
  const seed = options.seed ?? 1;
  const metric = options.metric;
  let pca: PcaTransform | undefined;
  if (spec.transform === 'pca') {
    progress('pca', 0, 1);
    if (options.pca && options.pca.dim !== dim) throw new Error(`trainStages: the given PCA is fitted to ${options.pca.dim} dimensions, the data has ${dim}`);
    pca = options.pca ?? fitPca(data, rows, dim, options);
    progress('pca', 1, 1);
  }
  const codecOptions: TrainOptions = { seed, trainSize: options.pqTrainSize ?? 32_768, residual: options.residual ?? true, opqIterations: options.opqIterations, onProgress: progress };
  const definition = codecDefinition(spec.scan.codec);
  const perCentroid = options.maxPointsPerCentroid ?? 256;
  const lists = spec.coarse?.lists ?? 1;
  const context = { backend, metric, spec: spec.scan, lists };
  const prefix = Math.max(spec.coarse?.dim ?? 0, spec.scan.dim);
  const stride = pca ? prefix : dim;
  // a seeded sample, rotated into the index space (only the prefix the stages use)
  const draw = async (size: number, sampleSeed: number, stage: 'kmeans' | 'codec'): Promise<{ space: Float32Array; n: number }> => {
    const picked = sampleRowsExcept(rows, size, sampleSeed, options.heldOut);
    options.onSample?.(stage, picked);
    const n = picked.length;
    // a sample of every row is the data itself: no copy (a streaming build passes exactly its sample)
    const raw = n === rows ? data.subarray(0, rows * dim) : new Float32Array(n * dim);
    if (n < rows) picked.forEach((r, i) => raw.set(data.subarray(r * dim, (r + 1) * dim), i * dim));
    return { space: pca ? await pca.apply(backend, raw, n, prefix) : raw, n };
  };

  let coarse: CoarseQuantizer | undefined;
  if (spec.coarse && options.coarseCentroids) {
    const { lists: given, dim: dc } = spec.coarse;
    if (options.coarseCentroids.length !== given * dc) throw new Error(`trainStages: the given coarse centroids hold ${options.coarseCentroids.length} values, spec "${spec.coarse.lists} lists at ${dc}" needs ${given * dc}`);
    if (spec.transform === 'pca' && !options.pca) throw new Error('trainStages: coarse centroids given for a PCA index without the PCA they were trained in');
    coarse = CoarseQuantizer.of(backend, options.coarseCentroids, given, dc, metric);
  } else if (spec.coarse) {
    const start = options.kmeansStart;
    if (start) {
      if (start.centroids.length !== lists * spec.coarse.dim) throw new Error(`trainStages: the k-means start holds ${start.centroids.length} values, spec "${lists} lists at ${spec.coarse.dim}" needs ${lists * spec.coarse.dim}`);
      if (spec.transform === 'pca' && !start.pca && !options.pca) throw new Error('trainStages: a k-means start given for a PCA index without the PCA it was trained in');
    }
    // the k-means sample does not depend on the codec, so indexes that differ only in their codec share centroids
    const { space, n } = await draw(lists * perCentroid, seed, 'kmeans');
    const { dim: dc } = spec.coarse;
    const train = slicePrefix(space, n, stride, dc);
    if (metric === 'cosine') normalizePrefixInPlace(train, n, dc, dc);
    // a start from another PCA fit (auto's trial's) is mapped into this one (spherical k-means re-normalises it)
    const mapped = start?.pca && pca && start.pca !== pca ? { ...start, centroids: pca.mapPrefix(start.pca, start.centroids, lists, dc) } : start;
    const centroids = await coarseKmeans(backend, train, n, dc, lists, metric, seed, perCentroid, { ...options, kmeansStart: mapped }, (done, total) => progress('kmeans', done, total));
    coarse = CoarseQuantizer.of(backend, centroids, lists, dc, metric);
  }
  const codecSize = definition.sampleSize(codecOptions);
  if (codecSize === 0) return { pca, coarse, codec: await definition.train(context, { data: new Float32Array(0), rows: 0, stride, lists }, codecOptions) };
  const { space, n } = await draw(codecSize, seed + 1, 'codec');
  let labels: Int32Array | undefined;
  if (coarse) {
    labels = new Int32Array(n);
    await coarse.assign(rowBlock(space, n, stride), labels, new Float32Array(n));
  }
  const codec = await definition.train(context, { data: space, rows: n, stride, labels, lists }, codecOptions);
  return { pca, coarse, codec };
}
