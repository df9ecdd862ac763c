import { createRng } from '@adanns/random';
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

/** Rows [from, from + rows) of one part of a synthetic set, with their cluster labels. */
export interface SyntheticChunk {
  part: 'base' | 'queries';
  from: number;
  rows: number;
  data: Float32Array;
  labels: Int32Array;
}

/** The name a synthetic set's base goes by (its queries add "-queries"). */
export function syntheticName(options: SyntheticOptions): string {
  const { n, dim, clusters, seed, decay, noise } = checkSynthetic(options);
  // decay and noise change the data: named when they differ from the defaults (older names stay valid)
  const shape = `${decay !== 0.5 ? `-decay${decay}` : ''}${noise !== 0.5 ? `-noise${noise}` : ''}`;
  return `synthetic-n${n}-d${dim}-c${clusters}-s${seed}${shape}`;
}

/** The options with their defaults filled in, or an error naming the bad one. */
export function checkSynthetic(options: SyntheticOptions): Required<SyntheticOptions> {
  const full = {
    n: options.n,
    dim: options.dim,
    clusters: options.clusters ?? 64,
    queries: options.queries ?? 1000,
    decay: options.decay ?? 0.5,
    noise: options.noise ?? 0.5,
    seed: options.seed ?? 42,
  };
  for (const key of ['n', 'dim', 'clusters'] as const) {
    const value = full[key];
    if (!Number.isInteger(value) || value < 1) throw new Error(`synthetic: ${key} must be a positive integer, got ${value}`);
  }
  if (!Number.isInteger(full.queries) || full.queries < 0) throw new Error(`synthetic: queries must be a non-negative integer, got ${full.queries}`);
  if (!(full.decay >= 0) || !(full.noise > 0)) throw new Error(`synthetic: decay must be >= 0 and noise > 0, got decay=${full.decay}, noise=${full.noise}`);
  return full;
}

/**
 * A seeded Matryoshka-like data set, generated in chunks of `chunkRows` rows:
 * the base rows, then the queries, always in that order from one seeded
 * stream, so a set larger than memory can be written out chunk by chunk and
 * equals the in-memory one. Cluster centres and within-cluster noise both
 * follow a decaying spectrum, so the first coordinates carry most of the
 * variance and the coarse (cluster) structure, and longer prefixes refine it,
 * as in a Matryoshka-trained embedding. Labels are the cluster of each point.
 */
export function* syntheticChunks(options: SyntheticOptions, chunkRows = 4096): Generator<SyntheticChunk> {
  const { n, dim, clusters, queries: queryCount, decay, noise, seed } = checkSynthetic(options);
  if (!Number.isInteger(chunkRows) || chunkRows < 1) throw new Error(`synthetic: chunk rows must be a positive integer, got ${chunkRows}`);
  const rng = createRng(seed);
  const scale = Float64Array.from({ length: dim }, (_, i) => (i + 1) ** -decay);
  const centres = new Float64Array(clusters * dim);
  for (let c = 0; c < clusters; c++) for (let i = 0; i < dim; i++) centres[c * dim + i] = rng.normal() * scale[i];
  for (const [part, total] of [['base', n], ['queries', queryCount]] as const) {
    for (let from = 0; from < total; from += chunkRows) {
      const rows = Math.min(chunkRows, total - from);
      const data = new Float32Array(rows * dim);
      const labels = new Int32Array(rows);
      for (let r = 0; r < rows; r++) {
        const c = rng.int(clusters);
        labels[r] = c;
        for (let i = 0; i < dim; i++) data[r * dim + i] = centres[c * dim + i] + noise * rng.normal() * scale[i];
      }
      yield { part, from, rows, data, labels };
    }
  }
}

/** The whole synthetic set in memory (see syntheticChunks). */
export function generateSynthetic(options: SyntheticOptions): { base: VectorSet; queries: VectorSet } {
  const { n, dim, queries } = checkSynthetic(options);
  const label = syntheticName(options);
  const sets = {
    base: { name: label, data: new Float32Array(n * dim), rows: n, dim, labels: new Int32Array(n) },
    queries: { name: `${label}-queries`, data: new Float32Array(queries * dim), rows: queries, dim, labels: new Int32Array(queries) },
  };
  for (const chunk of syntheticChunks(options, 65536)) {
    const set = sets[chunk.part];
    set.data.set(chunk.data, chunk.from * dim);
    set.labels.set(chunk.labels, chunk.from);
  }
  return sets;
}
