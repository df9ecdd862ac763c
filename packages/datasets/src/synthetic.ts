import { createRng } from '@adanns/compute';
import type { VectorSet } from './types.js';

export interface SyntheticOptions {
  n: number;
  dim: number;
  /** Number of clusters (labels); default 64. */
  clusters?: number;
  /** Number of held-out queries drawn from the same distribution; default 1,000. */
  queries?: number;
  /** Spectrum decay exponent: coordinate i has scale (i+1)^-decay; default 0.5. */
  decay?: number;
  /** Within-cluster spread relative to the spread of cluster centres; default 0.5. */
  noise?: number;
  seed?: number;
}

/**
 * A seeded Matryoshka-like data set: cluster centres and within-cluster noise
 * both follow a decaying spectrum, so the first coordinates carry most of the
 * variance and the coarse (cluster) structure, and longer prefixes refine it,
 * as in a Matryoshka-trained embedding. Labels are the cluster of each point.
 */
export function generateSynthetic(options: SyntheticOptions): { base: VectorSet; queries: VectorSet } {
  const { n, dim } = options;
  const clusters = options.clusters ?? 64;
  const queryCount = options.queries ?? 1000;
  const decay = options.decay ?? 0.5;
  const noise = options.noise ?? 0.5;
  for (const [key, value] of Object.entries({ n, dim, clusters })) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`synthetic: ${key} must be a positive integer, got ${value}`);
  }
  if (!Number.isInteger(queryCount) || queryCount < 0) throw new Error(`synthetic: queries must be a non-negative integer, got ${queryCount}`);
  if (!(decay >= 0) || !(noise > 0)) throw new Error(`synthetic: decay must be >= 0 and noise > 0, got decay=${decay}, noise=${noise}`);
  const rng = createRng(options.seed ?? 42);
  const scale = Float64Array.from({ length: dim }, (_, i) => (i + 1) ** -decay);
  const centres = new Float64Array(clusters * dim);
  for (let c = 0; c < clusters; c++) for (let i = 0; i < dim; i++) centres[c * dim + i] = rng.normal() * scale[i];
  const draw = (rows: number, name: string): VectorSet => {
    const data = new Float32Array(rows * dim);
    const labels = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      const c = rng.int(clusters);
      labels[r] = c;
      for (let i = 0; i < dim; i++) data[r * dim + i] = centres[c * dim + i] + noise * rng.normal() * scale[i];
    }
    return { name, data, rows, dim, labels };
  };
  const label = `synthetic-n${n}-d${dim}-c${clusters}-s${options.seed ?? 42}`;
  return { base: draw(n, label), queries: draw(queryCount, `${label}-queries`) };
}
