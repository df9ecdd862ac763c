import { createRng, rowBlock, sampleIndices, type Backend, type Rng, type RowBlock } from '@adanns/compute';
import { normalizePrefixInPlace } from './prefixes.js';

export interface KMeansOptions {
  seed?: number;
  /** Lloyd iterations (default 20; stops early when no assignment changes). */
  iterations?: number;
  /** Training points are sampled down to k x this (default 256, as FAISS). */
  maxPointsPerCentroid?: number;
  /** k-means++ seeding (default) or k distinct random points (FAISS's default, cheaper for very large k). */
  init?: 'kmeans++' | 'random';
  /** Spherical k-means: assign by inner product, centroids re-normalised (for cosine and ip, as FAISS does for IVF). */
  spherical?: boolean;
  /** Start from these k x dim centroids instead of seeding (warm start, e.g. across OPQ iterations). */
  initialCentroids?: Float32Array;
  onProgress?: (done: number, total: number) => void;
}

export interface KMeansResult {
  /** k x dim, row-major. */
  centroids: Float32Array;
  /**
   * Objective after each iteration on the training sample: sum of squared
   * distances (Euclidean) or sum of (1 - inner product) (spherical); it never increases.
   */
  objective: number[];
  /** Training points actually used. */
  trainedOn: number;
}

/**
 * Seeded k-means over rows x dim contiguous vectors, with assignments on the
 * backend. Deterministic for a seed on a given backend.
 */
export async function kmeans(backend: Backend, data: Float32Array, rows: number, dim: number, k: number, options: KMeansOptions = {}): Promise<KMeansResult> {
  if (!Number.isInteger(k) || k < 1) throw new Error(`k-means: k must be a positive integer, got ${k}`);
  if (rows < k) throw new Error(`k-means: ${k} centroids need at least ${k} training points, got ${rows}`);
  const rng = createRng(options.seed ?? 1);
  const iterations = options.iterations ?? 20;
  const spherical = options.spherical ?? false;
  const metric = spherical ? 'ip' : 'l2';
  const sample = sampleIndices(rows, k * (options.maxPointsPerCentroid ?? 256), rng);
  const n = sample.length;
  const x = new Float32Array(n * dim);
  sample.forEach((r, i) => x.set(data.subarray(r * dim, (r + 1) * dim), i * dim));
  const points = rowBlock(x, n, dim);

  let centroids: Float32Array;
  if (options.initialCentroids) {
    if (options.initialCentroids.length !== k * dim) throw new Error(`k-means: initial centroids must be ${k} x ${dim}`);
    centroids = options.initialCentroids.slice();
  } else {
    centroids = options.init === 'random' ? initRandom(x, n, dim, k, rng) : await initPlusPlus(backend, x, n, dim, k, rng);
  }
  if (spherical) normalizePrefixInPlace(centroids, k, dim, dim);

  const labels = new Int32Array(n).fill(-1);
  const newLabels = new Int32Array(n);
  const scores = new Float32Array(n);
  const objective: number[] = [];
  const sums = new Float32Array(k * dim);
  const counts = new Int32Array(k);
  for (let it = 0; it < iterations; it++) {
    await backend.assign(points, rowBlock(centroids, k, dim), dim, metric, newLabels, scores);
    let changed = 0;
    for (let i = 0; i < n; i++) if (newLabels[i] !== labels[i]) changed++;
    labels.set(newLabels);
    let total = 0;
    for (let i = 0; i < n; i++) total += spherical ? 1 - scores[i] : -scores[i];
    objective.push(total);
    options.onProgress?.(it + 1, iterations);
    if (changed === 0) break;
    await updateCentroids(backend, points, dim, labels, centroids, k, rng, sums, counts);
    if (spherical) normalizePrefixInPlace(centroids, k, dim, dim);
  }
  return { centroids, objective, trainedOn: n };
}

function initRandom(x: Float32Array, n: number, dim: number, k: number, rng: Rng): Float32Array {
  const centroids = new Float32Array(k * dim);
  sampleIndices(n, k, rng).forEach((r, c) => centroids.set(x.subarray(r * dim, (r + 1) * dim), c * dim));
  return centroids;
}

/** k-means++: each next centre is drawn with probability proportional to its squared distance to the nearest chosen one. */
async function initPlusPlus(backend: Backend, x: Float32Array, n: number, dim: number, k: number, rng: Rng): Promise<Float32Array> {
  const centroids = new Float32Array(k * dim);
  const nearest = new Float64Array(n).fill(Infinity);
  const scores = new Float32Array(n);
  const points = rowBlock(x, n, dim);
  let pick = rng.int(n);
  for (let c = 0; c < k; c++) {
    centroids.set(x.subarray(pick * dim, (pick + 1) * dim), c * dim);
    if (c === k - 1) break;
    await backend.score(rowBlock(centroids, 1, dim, c * dim), points, dim, 'l2', scores);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const d = -scores[i];
      if (d < nearest[i]) nearest[i] = d;
      total += nearest[i];
    }
    if (total <= 0) {
      // every point coincides with a chosen centre: fall back to uniform picks
      pick = rng.int(n);
      continue;
    }
    let target = rng.next() * total;
    pick = n - 1;
    for (let i = 0; i < n; i++) {
      target -= nearest[i];
      if (target < 0) {
        pick = i;
        break;
      }
    }
  }
  return centroids;
}

/**
 * Each cluster's mean of the points labelled with it, written into `means`
 * (k x dim); a cluster no point chose keeps its row there. Returns the
 * cluster sizes (`counts`).
 */
export async function labelledMeans(backend: Backend, points: RowBlock, dim: number, labels: Int32Array, k: number, means: Float32Array, sums: Float32Array = new Float32Array(k * dim), counts: Int32Array = new Int32Array(k)): Promise<Int32Array> {
  await backend.centroidSums(points, dim, labels, k, sums, counts);
  for (let c = 0; c < k; c++) {
    if (counts[c] === 0) continue;
    for (let j = 0; j < dim; j++) means[c * dim + j] = sums[c * dim + j] / counts[c];
  }
  return counts;
}

/**
 * Centroid = mean of its points (the sums run on the backend); an empty
 * cluster takes half of a large one (FAISS's split with a tiny symmetric perturbation).
 */
async function updateCentroids(backend: Backend, points: RowBlock, dim: number, labels: Int32Array, centroids: Float32Array, k: number, rng: Rng, sums: Float32Array, counts: Int32Array): Promise<void> {
  const n = points.rows;
  await labelledMeans(backend, points, dim, labels, k, centroids, sums, counts);
  // cluster sizes as reals: a split halves a size exactly
  const sizes = Float64Array.from(counts);
  const eps = 1 / 1024;
  for (let c = 0; c < k; c++) {
    if (sizes[c] > 0) continue;
    // choose a cluster to split with probability proportional to (size - 1)
    let donor = 0;
    for (;;) {
      donor = rng.int(k);
      if (sizes[donor] > 1 && rng.next() < (sizes[donor] - 1) / (n - k)) break;
    }
    for (let j = 0; j < dim; j++) {
      const v = centroids[donor * dim + j];
      const sign = j % 2 === 0 ? 1 : -1;
      centroids[c * dim + j] = v * (1 + sign * eps);
      centroids[donor * dim + j] = v * (1 - sign * eps);
    }
    sizes[c] = sizes[donor] / 2;
    sizes[donor] -= sizes[c];
  }
}
