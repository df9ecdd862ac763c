import { createRng, rowBlock, sampleIndices, type Backend, type Rng } from '@adanns/compute';
import { procrustesRotation } from './procrustes.js';
import { PQ_CENTROIDS, ProductQuantizer } from './product-quantizer.js';

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
 * OPQMatrix, with its defaults): on the centred sample X, starting from a
 * random orthogonal R, alternate between training PQ codebooks on the rotated
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
  const iterations = options.iterations ?? 50;
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
  } else {
    rotation = randomRotation(dim, rng);
  }
  let pq: ProductQuantizer | undefined;
  for (let it = 0; it < iterations; it++) {
    const rotated = await rotateRows(backend, rotation, dim, x, n);
    const pqIterations = pq ? (options.pqIterations ?? 4) : (options.firstPqIterations ?? 40);
    pq = await ProductQuantizer.train(backend, rotated, n, dim, m, { seed: seed + it, iterations: pqIterations, initial: pq, centroids });
    const codes = await pq.encode(backend, rotated, n);
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
