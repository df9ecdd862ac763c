import { computeInvNorms, rowBlock, TopK, type Backend, type Metric, type RowBlock } from '@adanns/compute';
import type { HeldArray } from '../codecs/codec.js';
import { toArena } from '../index/growable.js';

/**
 * Stage 2, the coarse quantiser: `lists` k-means centroids at prefix d_c
 * (normalised for cosine and ip, as spherical k-means leaves them), in the
 * backend's arena. Probes score them at any prefix up to d_c; cosine norms of
 * each prefix used are computed once and kept.
 */
export class CoarseQuantizer {
  private readonly invNorms = new Map<number, Float32Array>();

  constructor(
    private readonly backend: Backend,
    /** lists x dim, row-major, in the arena. */
    readonly centroids: Float32Array,
    readonly lists: number,
    readonly dim: number,
    private readonly metric: Metric,
  ) {}

  /** Copies trained or loaded centroids into the backend's arena. */
  static of(backend: Backend, centroids: Float32Array, lists: number, dim: number, metric: Metric): CoarseQuantizer {
    return new CoarseQuantizer(backend, toArena(backend.arena, centroids), lists, dim, metric);
  }

  /** Centroids sliced to `coarseDim` (stride d_c), with cosine norms of that prefix. */
  block(coarseDim: number): RowBlock {
    let inv: Float32Array | undefined;
    if (this.metric === 'cosine') {
      inv = this.invNorms.get(coarseDim);
      if (!inv) {
        inv = toArena(this.backend.arena, computeInvNorms(rowBlock(this.centroids, this.lists, this.dim), coarseDim));
        this.invNorms.set(coarseDim, inv);
      }
    }
    return rowBlock(this.centroids, this.lists, this.dim, 0, inv);
  }

  /** The list of each vector (index space, prefix >= d_c), scored at d_c. */
  async assign(space: RowBlock, labels: Int32Array, scores: Float32Array): Promise<void> {
    await this.backend.assign(space, this.block(this.dim), this.dim, this.metric, labels, scores);
  }

  /**
   * Scores every centroid at prefix `coarseDim` and keeps the `nprobe` best
   * lists per query: rows x nprobe list numbers, best first (-1 where fewer lists exist).
   */
  async probe(queries: RowBlock, coarseDim: number, nprobe: number): Promise<Int32Array> {
    return (await this.rank(queries, coarseDim, nprobe)).lists;
  }

  /**
   * The `nprobe` best lists per query with their centroid scores (rows x
   * nprobe, best first; list -1 and score NaN where fewer lists exist): what
   * an adaptive probe rule (stages/adaptive-probe.ts) cuts short.
   */
  async rank(queries: RowBlock, coarseDim: number, nprobe: number): Promise<{ lists: Int32Array; scores: Float32Array }> {
    const best = new TopK(queries.rows, nprobe);
    await this.backend.scanTopK(queries, this.block(coarseDim), coarseDim, this.metric, best);
    // the sorted heaps are the answer (rows x nprobe): only a row short of nprobe lists is padded
    const { ids: lists, scores, sizes } = best.sort();
    for (let q = 0; q < queries.rows; q++) {
      lists.fill(-1, q * nprobe + sizes[q], (q + 1) * nprobe);
      scores.fill(NaN, q * nprobe + sizes[q], (q + 1) * nprobe);
    }
    return { lists, scores };
  }

  arrays(): HeldArray[] {
    return [{ kind: 'centroids', array: this.centroids, arena: true }, ...[...this.invNorms.values()].map((array): HeldArray => ({ kind: 'centroids', array, arena: true }))];
  }

  release(): void {
    this.backend.arena.release(this.centroids);
    for (const inv of this.invNorms.values()) this.backend.arena.release(inv);
    this.invNorms.clear();
  }
}
