import { createRng, rowBlock, sampleIndices, type Backend } from '@adanns/compute';
import { kmeans } from '../kmeans.js';
import { normalizePrefixInPlace, slicePrefix } from '../prefixes.js';
import { trainOpq } from '../quant/opq.js';
import { ProductQuantizer } from '../quant/product-quantizer.js';
import type { IndexSpec } from '../spec.js';
import { scanVectorsOf, type PqScanCodec } from '../stages/scan-pq.js';
import type { PcaTransform } from '../transform/pca.js';
import type { BuildOptions, ProgressFn } from './adanns-index.js';

/**
 * Trains what an index learns besides PCA: the IVF centroids at d_c
 * (spherical k-means for cosine and ip) and the PQ/OPQ codec at d_s (on
 * residuals against per-list references by default). One seeded sample
 * serves both, and only it is rotated into the PCA space.
 */
export async function trainQuantizers(
  backend: Backend,
  spec: IndexSpec,
  data: Float32Array,
  rows: number,
  dim: number,
  pca: PcaTransform | undefined,
  options: BuildOptions,
  progress: ProgressFn,
): Promise<{ centroids?: Float32Array; codec?: PqScanCodec }> {
  const seed = options.seed ?? 1;
  const perCentroid = options.maxPointsPerCentroid ?? 256;
  const pqTrainSize = options.pqTrainSize ?? 32_768;
  const quantised = spec.scan.codec !== 'flat';
  const sampleSize = Math.max(spec.coarse ? spec.coarse.lists * perCentroid : 0, quantised ? pqTrainSize : 0);
  if (sampleSize === 0) return {};

  const sample = sampleIndices(rows, sampleSize, createRng(seed));
  const n = sample.length;
  const prefix = Math.max(spec.coarse?.dim ?? 0, spec.scan.dim);
  const raw = new Float32Array(n * dim);
  sample.forEach((r, i) => raw.set(data.subarray(r * dim, (r + 1) * dim), i * dim));
  const space = pca ? await pca.apply(backend, raw, n, prefix) : raw;
  const stride = pca ? prefix : dim;

  let centroids: Float32Array | undefined;
  let labels: Int32Array | undefined;
  if (spec.coarse) {
    const { lists, dim: dc } = spec.coarse;
    const train = slicePrefix(space, n, stride, dc);
    if (options.metric === 'cosine') normalizePrefixInPlace(train, n, dc, dc);
    ({ centroids } = await kmeans(backend, train, n, dc, lists, {
      seed,
      iterations: options.kmeansIterations,
      maxPointsPerCentroid: perCentroid,
      init: options.kmeansInit,
      spherical: options.metric !== 'l2',
      onProgress: (done, total) => progress('kmeans', done, total),
    }));
    if (quantised) {
      labels = new Int32Array(n);
      await backend.assign(rowBlock(space, n, stride), rowBlock(centroids, lists, dc), dc, options.metric, labels, new Float32Array(n));
    }
  }
  if (spec.scan.codec === 'flat') return { centroids };

  const ds = spec.scan.dim;
  let train = scanVectorsOf(space, n, stride, 0, ds, options.metric);
  let refs: Float32Array | undefined;
  if (labels && (options.residual ?? true)) {
    refs = listMeans(train, n, ds, labels, spec.coarse!.lists);
    for (let i = 0; i < n; i++) for (let j = 0; j < ds; j++) train[i * ds + j] -= refs[labels[i] * ds + j];
  }
  // the shared sample may be larger than the PQ training budget (it also fed k-means)
  const pqRows = Math.min(n, pqTrainSize);
  if (pqRows < n) {
    const keep = sampleIndices(n, pqRows, createRng(seed + 1));
    const sub = new Float32Array(pqRows * ds);
    keep.forEach((r, i) => sub.set(train.subarray(r * ds, (r + 1) * ds), i * ds));
    train = sub;
  }
  if (spec.scan.codec === 'opq') {
    const { rotation, pq } = await trainOpq(backend, train, pqRows, ds, spec.scan.bytes, {
      seed,
      iterations: options.opqIterations,
      onProgress: (done, total) => progress('opq', done, total),
    });
    return { centroids, codec: { pq, rotation, refs } };
  }
  progress('pq', 0, 1);
  const pq = await ProductQuantizer.train(backend, train, pqRows, ds, spec.scan.bytes, { seed });
  progress('pq', 1, 1);
  return { centroids, codec: { pq, refs } };
}

/** Mean of the rows of each list (lists x dim; zero for a list with no rows). */
function listMeans(data: Float32Array, rows: number, dim: number, labels: Int32Array, lists: number): Float32Array {
  const sums = new Float64Array(lists * dim);
  const counts = new Float64Array(lists);
  for (let i = 0; i < rows; i++) {
    counts[labels[i]]++;
    for (let j = 0; j < dim; j++) sums[labels[i] * dim + j] += data[i * dim + j];
  }
  const means = new Float32Array(lists * dim);
  for (let l = 0; l < lists; l++) if (counts[l] > 0) for (let j = 0; j < dim; j++) means[l * dim + j] = sums[l * dim + j] / counts[l];
  return means;
}
