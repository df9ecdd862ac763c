import { createRng, rowBlock, sampleIndices, type Backend, type Metric } from '@adanns/compute';
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';

export interface PcaOptions {
  /** Vectors used to estimate the covariance (default 10,000). */
  sampleSize?: number;
  seed?: number;
  /** The rows to fit on (increasing), instead of a seeded sample of sampleSize: a build leaves its held-out calibration rows out. */
  sample?: Int32Array;
}

/**
 * A learned orthogonal rotation whose components are ordered by variance, so
 * that the first d rotated coordinates are the best d-dimensional summary of
 * a vector: prefixes of rigid (non-Matryoshka) embeddings become meaningful.
 * For cosine and ip it is a pure rotation (no centring, so inner products are
 * preserved; for cosine the second moment is taken over unit vectors, since
 * only directions matter); for l2 the data are centred first, which preserves
 * distances.
 */
export class PcaTransform {
  constructor(
    readonly dim: number,
    /** dim x dim, row p is the p-th component (largest variance first). */
    readonly components: Float32Array,
    /** Variance (eigenvalue) of each component, descending. */
    readonly variances: Float64Array,
    /** Mean subtracted before rotating (l2 only). */
    readonly mean: Float32Array | undefined,
  ) {
    if (components.length !== dim * dim) throw new Error(`PCA components must be ${dim} x ${dim}`);
    if (variances.length !== dim) throw new Error(`PCA variances must have ${dim} entries`);
    if (mean && mean.length !== dim) throw new Error(`PCA mean must have ${dim} entries`);
  }

  static fit(data: Float32Array, rows: number, dim: number, metric: Metric, options: PcaOptions = {}): PcaTransform {
    if (rows < 2) throw new Error(`PCA needs at least 2 vectors, got ${rows}`);
    const sample = options.sample ?? sampleIndices(rows, options.sampleSize ?? 10_000, createRng(options.seed ?? 1));
    const centre = metric === 'l2';
    const mean = new Float64Array(dim);
    if (centre) {
      for (const r of sample) for (let i = 0; i < dim; i++) mean[i] += data[r * dim + i];
      for (let i = 0; i < dim; i++) mean[i] /= sample.length;
    }
    // Second moment (upper triangle), accumulated in float64 four rows at a time: a quarter of the passes over
    // the dim x dim sums (2.5x faster at 512 dimensions; this sum is most of a fit's time)
    const cov = new Float64Array(dim * dim);
    const x = new Float64Array(4 * dim);
    for (let s = 0; s < sample.length; s += 4) {
      x.fill(0);
      for (let t = 0; t < 4 && s + t < sample.length; t++) {
        const r = sample[s + t];
        const at = t * dim;
        let norm2 = 0;
        for (let i = 0; i < dim; i++) {
          x[at + i] = data[r * dim + i] - mean[i];
          norm2 += x[at + i] * x[at + i];
        }
        if (metric === 'cosine') {
          // a zero vector adds nothing
          const inv = norm2 === 0 ? 0 : 1 / Math.sqrt(norm2);
          for (let i = 0; i < dim; i++) x[at + i] *= inv;
        }
      }
      for (let i = 0; i < dim; i++) {
        const x0 = x[i];
        const x1 = x[dim + i];
        const x2 = x[2 * dim + i];
        const x3 = x[3 * dim + i];
        if (x0 === 0 && x1 === 0 && x2 === 0 && x3 === 0) continue;
        const row = i * dim;
        for (let j = i; j < dim; j++) cov[row + j] += x0 * x[j] + x1 * x[dim + j] + x2 * x[2 * dim + j] + x3 * x[3 * dim + j];
      }
    }
    for (let i = 0; i < dim; i++) {
      for (let j = i; j < dim; j++) {
        const v = cov[i * dim + j] / sample.length;
        cov[i * dim + j] = v;
        cov[j * dim + i] = v;
      }
    }
    const eig = new EigenvalueDecomposition(Matrix.from1DArray(dim, dim, cov), { assumeSymmetric: true });
    const values = eig.realEigenvalues;
    const vectors = eig.eigenvectorMatrix;
    const order = values.map((_, i) => i).sort((a, b) => values[b] - values[a] || a - b);
    const components = new Float32Array(dim * dim);
    const variances = new Float64Array(dim);
    order.forEach((col, p) => {
      variances[p] = Math.max(0, values[col]);
      // Fix each component's sign (largest coordinate positive) so a fit is reproducible.
      let largest = 0;
      for (let i = 0; i < dim; i++) if (Math.abs(vectors.get(i, col)) > Math.abs(largest)) largest = vectors.get(i, col);
      const sign = largest < 0 ? -1 : 1;
      for (let i = 0; i < dim; i++) components[p * dim + i] = sign * vectors.get(i, col);
    });
    return new PcaTransform(dim, components, variances, centre ? Float32Array.from(mean) : undefined);
  }

  /**
   * Share of the total variance (the second moment for cosine and ip, which
   * are not centred) held by the first d components, for each d in
   * `prefixes`: the spectrum `auto` reads and the console plots.
   */
  varianceShare(prefixes: readonly number[]): { dim: number; share: number }[] {
    let total = 0;
    for (const v of this.variances) total += v;
    const cumulative = new Float64Array(this.dim + 1);
    for (let i = 0; i < this.dim; i++) cumulative[i + 1] = cumulative[i] + this.variances[i];
    return prefixes.map((d) => {
      if (!Number.isInteger(d) || d < 1 || d > this.dim) throw new Error(`PCA prefix must be in [1, ${this.dim}], got ${d}`);
      // no variance at all (constant data): every dimension counts the same
      return { dim: d, share: total > 0 ? cumulative[d] / total : d / this.dim };
    });
  }

  /**
   * `rows` x d vectors given by their first d components in `from`'s space
   * (another fit to the same data), in this one's: each taken as the vector
   * whose other components there are zero (auto's trial's centroids, mapped
   * into the build's own PCA to start its k-means).
   */
  mapPrefix(from: PcaTransform, data: Float32Array, rows: number, d: number): Float32Array {
    const D = this.dim;
    if (from.dim !== D) throw new Error(`PCA mapPrefix: the fits have ${from.dim} and ${D} dimensions`);
    if (d < 1 || d > D || data.length < rows * d) throw new Error(`PCA mapPrefix: ${rows} x ${d} rows expected`);
    // x = from's first d components' combination + from.mean, so here: map (this x from components) and shift
    // (this components . (from.mean - this.mean))
    const map = new Float64Array(d * d);
    const shift = new Float64Array(d);
    for (let i = 0; i < d; i++) {
      const ci = this.components.subarray(i * D, (i + 1) * D);
      for (let j = 0; j < d; j++) {
        const cj = from.components.subarray(j * D, (j + 1) * D);
        let dot = 0;
        for (let k = 0; k < D; k++) dot += ci[k] * cj[k];
        map[i * d + j] = dot;
      }
      if (this.mean || from.mean) for (let k = 0; k < D; k++) shift[i] += ci[k] * ((from.mean?.[k] ?? 0) - (this.mean?.[k] ?? 0));
    }
    const out = new Float32Array(rows * d);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < d; i++) {
        let v = shift[i];
        for (let j = 0; j < d; j++) v += map[i * d + j] * data[r * d + j];
        out[r * d + i] = v;
      }
    }
    return out;
  }

  /**
   * Rotates rows x dim vectors and keeps the first `outDim` components
   * (rows x outDim): only those components are computed, which is what the
   * cost model charges (dim x outDim per vector).
   */
  async apply(backend: Backend, data: Float32Array, rows: number, outDim: number): Promise<Float32Array> {
    if (outDim < 1 || outDim > this.dim) throw new Error(`PCA output dim must be in [1, ${this.dim}], got ${outDim}`);
    const out = new Float32Array(rows * outDim);
    if (rows === 0) return out;
    const components = rowBlock(this.components, outDim, this.dim);
    let input = data;
    if (this.mean) {
      input = new Float32Array(data.length);
      for (let r = 0; r < rows; r++) for (let i = 0; i < this.dim; i++) input[r * this.dim + i] = data[r * this.dim + i] - this.mean[i];
    }
    await backend.score(rowBlock(input, rows, this.dim), components, this.dim, 'ip', out);
    return out;
  }
}
