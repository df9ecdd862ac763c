import { createRng, rowBlock, sampleIndices, type Backend, type Rng } from '@adanns/compute';
import { procrustesRotation, symmetricEigen } from './procrustes.js';
import { PQ_CENTROIDS, ProductQuantizer, subspaceBounds } from './product-quantizer.js';

/** Alternations of a full OPQ training (FAISS's OPQMatrix niter). */
export const OPQ_ITERATIONS = 50;

export interface OpqTrainOptions {
  seed?: number;
  /** Alternating rotation / codebook updates (default 50, FAISS's OPQMatrix niter). */
  iterations?: number;
  /** k-means iterations per codebook update inside the loop, warm-started (default 4, FAISS's niter_pq). */
  pqIterations?: number;
  /** k-means iterations of the first codebooks, from random centroids (default 40, FAISS's niter_pq_0). */
  firstPqIterations?: number;
  /** k-means iterations of the final codebooks on the uncentred sample (default 25, FAISS's PQ default). */
  finalPqIterations?: number;
  /** Training vectors used (default 65,536 = 256 x 256, FAISS's cap). */
  sampleSize?: number;
  /**
   * Stop alternating once an alternation lowers the quantisation error by
   * less than this fraction (default 1e-3; 0 runs every iteration, as FAISS).
   */
  tolerance?: number;
  /**
   * Starting rotation when none is given: `eigen` (default) is OPQ's
   * parametric solution, the principal directions dealt to the sub-spaces so
   * that each gets a similar product of variances (Ge et al.'s eigenvalue
   * allocation); `random` a random orthogonal matrix (FAISS's start).
   */
  init?: 'eigen' | 'random';
  /** Starting rotation (dim x dim, orthogonal), e.g. a neighbouring prefix's; default a random orthogonal matrix. */
  initialRotation?: Float32Array;
  /** Centroids per sub-quantiser (default 256; 16 for 4-bit fast-scan codes). */
  centroids?: number;
  onProgress?: (done: number, total: number) => void;
}

/** x' = R x for each row: rows x dim (R is dim x dim, row p gives output p). */
export async function rotateRows(backend: Backend, rotation: Float32Array, dim: number, data: Float32Array, rows: number, stride = dim, offset = 0): Promise<Float32Array> {
  const out = new Float32Array(rows * dim);
  if (rows > 0) await backend.score(rowBlock(data, rows, stride, offset), rowBlock(rotation, dim, dim), dim, 'ip', out);
  return out;
}

/**
 * OPQ (Ge et al.; the non-parametric alternating optimisation of FAISS's
 * OPQMatrix, with its defaults): on the centred sample X, starting from the
 * eigenvalue allocation (or a random orthogonal R, as FAISS), alternate between training PQ codebooks on the rotated
 * data (40 k-means iterations the first time, then 4 warm-started) and solving
 * the orthogonal Procrustes problem min ||X R^T - Y|| for the reconstructions
 * Y (procrustes.ts). The final codebooks are trained on the uncentred rotated
 * sample, warm-started from the loop's shifted by R mean.
 *
 * X^T Y is not formed as an n x d by n x d product: Y's sub-space s is
 * centroid code_s(i) of row i, so X^T Y[:, s] = S_s^T C_s with S_s the
 * per-code sums of X (the backend's centroidSums) and C_s the codebook:
 * k x d^2 multiply-adds instead of n x d^2.
 */
export async function trainOpq(
  backend: Backend,
  data: Float32Array,
  rows: number,
  dim: number,
  m: number,
  options: OpqTrainOptions = {},
): Promise<{ rotation: Float32Array; pq: ProductQuantizer }> {
  const seed = options.seed ?? 1;
  const iterations = options.iterations ?? OPQ_ITERATIONS;
  const centroids = options.centroids ?? PQ_CENTROIDS;
  if (!Number.isInteger(iterations) || iterations < 0) throw new Error(`OPQ: iterations must be a non-negative integer, got ${iterations}`);
  const rng = createRng(seed);
  const sample = sampleIndices(rows, options.sampleSize ?? 65_536, rng);
  const n = sample.length;
  const x = new Float32Array(n * dim);
  sample.forEach((r, i) => x.set(data.subarray(r * dim, (r + 1) * dim), i * dim));
  // the rotation is fitted on centred data, as FAISS does: the mean would otherwise dominate X^T Y
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j] += x[i * dim + j];
  for (let j = 0; j < dim; j++) mean[j] /= n;
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) x[i * dim + j] -= mean[j];

  let rotation: Float32Array;
  if (options.initialRotation) {
    if (options.initialRotation.length !== dim * dim) throw new Error(`OPQ: initial rotation must be ${dim} x ${dim}`);
    rotation = options.initialRotation.slice();
  } else if (options.init === 'random') {
    rotation = randomRotation(dim, rng);
  } else {
    rotation = await eigenAllocation(backend, x, n, dim, m);
  }
  const tolerance = options.tolerance ?? 1e-3;
  let pq: ProductQuantizer | undefined;
  let error = Infinity;
  for (let it = 0; it < iterations; it++) {
    const rotated = await rotateRows(backend, rotation, dim, x, n);
    const pqIterations = pq ? (options.pqIterations ?? 4) : (options.firstPqIterations ?? 40);
    pq = await ProductQuantizer.train(backend, rotated, n, dim, m, { seed: seed + it, iterations: pqIterations, initial: pq, centroids });
    const codes = await pq.encode(backend, rotated, n);
    // the error of these codebooks under this rotation: it can only fall across alternations
    const decoded = pq.decode(codes, n);
    let next = 0;
    for (let i = 0; i < n * dim; i++) next += (rotated[i] - decoded[i]) ** 2;
    const converged = error - next < tolerance * error;
    error = next;
    if (converged) break;
    rotation = procrustesRotation(await reconstructionProduct(backend, x, n, dim, pq, codes), dim, rotation);
    options.onProgress?.(it + 1, iterations + 1);
  }
  // final codebooks on the uncentred sample: R (x - mean) + R mean
  const shift = new Float64Array(dim);
  for (let p = 0; p < dim; p++) for (let j = 0; j < dim; j++) shift[p] += rotation[p * dim + j] * mean[j];
  const rotated = await rotateRows(backend, rotation, dim, x, n);
  for (let i = 0; i < n; i++) for (let p = 0; p < dim; p++) rotated[i * dim + p] += shift[p];
  let initial: ProductQuantizer | undefined;
  if (pq) {
    const shifted = pq.codebooks.slice();
    for (let c = 0; c < centroids; c++) for (let p = 0; p < dim; p++) shifted[c * dim + p] += shift[p];
    initial = new ProductQuantizer(dim, m, shifted, centroids);
  }
  pq = await ProductQuantizer.train(backend, rotated, n, dim, m, { seed, iterations: options.finalPqIterations ?? 25, initial, centroids });
  options.onProgress?.(iterations + 1, iterations + 1);
  return { rotation, pq };
}

/** A random orthogonal dim x dim matrix (Haar-distributed: the orthogonal polar factor of a Gaussian matrix). */
function randomRotation(dim: number, rng: Rng): Float32Array {
  const gauss = Float64Array.from({ length: dim * dim }, () => rng.normal());
  const identity = new Float32Array(dim * dim);
  for (let i = 0; i < dim; i++) identity[i * dim + i] = 1;
  return procrustesRotation(gauss, dim, identity);
}

/**
 * Eigenvalue allocation (Ge et al., parametric OPQ): the covariance's
 * eigenvectors, largest variance first, each dealt to the sub-space (of
 * those with room) whose product of variances is smallest so far; row p of
 * the rotation is the direction dealt to output dimension p.
 */
async function eigenAllocation(backend: Backend, x: Float32Array, n: number, dim: number, m: number): Promise<Float32Array> {
  // X^T X on the backend: rows of X^T against themselves (x is centred)
  const xt = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) xt[j * n + i] = x[i * dim + j];
  const cov = new Float32Array(dim * dim);
  await backend.score(rowBlock(xt, dim, n), rowBlock(xt, dim, n), n, 'ip', cov);
  // symmetrise (float32 sums in two orders) into float64
  const sym = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++) for (let j = 0; j < dim; j++) sym[i * dim + j] = (cov[i * dim + j] + cov[j * dim + i]) / 2;
  const { values, vectors } = symmetricEigen(sym, dim);
  const order = Array.from({ length: dim }, (_, i) => i).sort((a, b) => values[b] - values[a] || a - b);
  const top = Math.max(values[order[0]], Number.MIN_VALUE);
  const bounds = subspaceBounds(dim, m);
  const filled = new Int32Array(m);
  const logProduct = new Float64Array(m);
  const rotation = new Float32Array(dim * dim);
  for (const e of order) {
    let pick = -1;
    for (let s = 0; s < m; s++) {
      if (filled[s] === bounds[s + 1] - bounds[s]) continue;
      if (pick < 0 || logProduct[s] < logProduct[pick]) pick = s;
    }
    // variances at the rounding floor (constant inputs) count as a tiny positive value
    logProduct[pick] += Math.log(Math.max(values[e], top * 1e-12));
    const row = bounds[pick] + filled[pick]++;
    for (let j = 0; j < dim; j++) rotation[row * dim + j] = vectors[e * dim + j];
  }
  return rotation;
}

/**
 * N = X^T Y (dim x dim, float64) for the centred sample X (n x dim) and its
 * reconstructions Y = decode(codes): for each sub-space, the per-code sums of
 * X (backend) times that sub-space's centroids.
 */
async function reconstructionProduct(backend: Backend, x: Float32Array, n: number, dim: number, pq: ProductQuantizer, codes: Uint8Array): Promise<Float64Array> {
  const k = pq.centroids;
  const out = new Float64Array(dim * dim);
  const labels = new Int32Array(n);
  const sums = new Float32Array(k * dim);
  const counts = new Int32Array(k);
  const book = pq.codebooks;
  for (let s = 0; s < pq.m; s++) {
    for (let i = 0; i < n; i++) labels[i] = codes[i * pq.m + s];
    await backend.centroidSums(rowBlock(x, n, dim), dim, labels, k, sums, counts);
    const from = pq.bounds[s];
    const to = pq.bounds[s + 1];
    for (let c = 0; c < k; c++) {
      if (counts[c] === 0) continue;
      for (let p = 0; p < dim; p++) {
        const sp = sums[c * dim + p];
        if (sp === 0) continue;
        const row = p * dim;
        for (let q = from; q < to; q++) out[row + q] += sp * book[c * dim + q];
      }
    }
  }
  return out;
}
