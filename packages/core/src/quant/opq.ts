import { createRng, rowBlock, sampleIndices, type Backend } from '@adanns/compute';
import { Matrix, QrDecomposition, SingularValueDecomposition } from 'ml-matrix';
import { ProductQuantizer, type PqTrainOptions } from './product-quantizer.js';

export interface OpqTrainOptions {
  seed?: number;
  /** Alternating rotation / codebook updates (default 8). */
  iterations?: number;
  /** k-means iterations per codebook update inside the loop (default 4). */
  pqIterations?: number;
  /** k-means iterations of the final codebooks (default 16). */
  finalPqIterations?: number;
  /** Training vectors used for the rotation (default 16,384). */
  sampleSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/** x' = R x for each row: rows x dim (R is dim x dim, row p gives output p). */
export async function rotateRows(backend: Backend, rotation: Float32Array, dim: number, data: Float32Array, rows: number, stride = dim, offset = 0): Promise<Float32Array> {
  const out = new Float32Array(rows * dim);
  if (rows > 0) await backend.score(rowBlock(data, rows, stride, offset), rowBlock(rotation, dim, dim), dim, 'ip', out);
  return out;
}

/**
 * OPQ (Ge et al.; the non-parametric alternating optimisation FAISS's
 * OPQMatrix uses): starting from a random orthogonal R, alternate between
 * training PQ codebooks on the rotated data and solving the orthogonal
 * Procrustes problem min ||X R^T - Y|| for the reconstructions Y, whose
 * solution is R^T = U V^T with U S V^T the SVD of X^T Y.
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
  const iterations = options.iterations ?? 8;
  const rng = createRng(seed);
  const sample = sampleIndices(rows, options.sampleSize ?? 16_384, rng);
  const n = sample.length;
  const x = new Float32Array(n * dim);
  sample.forEach((r, i) => x.set(data.subarray(r * dim, (r + 1) * dim), i * dim));

  // random orthogonal start: Q of a Gaussian matrix
  const gauss = Matrix.from1DArray(dim, dim, Float64Array.from({ length: dim * dim }, () => rng.normal()));
  let rotation = Float32Array.from(new QrDecomposition(gauss).orthogonalMatrix.to1DArray());
  const xt = transpose(x, n, dim);
  let pq: ProductQuantizer | undefined;
  for (let it = 0; it < iterations; it++) {
    const rotated = await rotateRows(backend, rotation, dim, x, n);
    pq = await ProductQuantizer.train(backend, rotated, n, dim, m, { seed: seed + it, iterations: options.pqIterations ?? 4, initial: pq } satisfies PqTrainOptions);
    const y = pq.decode(await pq.encode(backend, rotated, n), n);
    // X^T Y (dim x dim) on the backend: rows of X^T against rows of Y^T
    const xty = new Float32Array(dim * dim);
    await backend.score(rowBlock(xt, dim, n), rowBlock(transpose(y, n, dim), dim, n), n, 'ip', xty);
    const svd = new SingularValueDecomposition(Matrix.from1DArray(dim, dim, Float64Array.from(xty)), { autoTranspose: true });
    // R^T = U V^T, so R = V U^T
    rotation = Float32Array.from(svd.rightSingularVectors.mmul(svd.leftSingularVectors.transpose()).to1DArray());
    options.onProgress?.(it + 1, iterations + 1);
  }
  const rotated = await rotateRows(backend, rotation, dim, x, n);
  pq = await ProductQuantizer.train(backend, rotated, n, dim, m, { seed, iterations: options.finalPqIterations ?? 16, initial: pq });
  options.onProgress?.(iterations + 1, iterations + 1);
  return { rotation, pq };
}

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}
