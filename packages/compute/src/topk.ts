/**
 * Per-row bounded top-k in flat arrays (one binary min-heap of size k per row,
 * worst candidate at the root). Ordering is total: higher score first, then
 * lower id, so the kept set does not depend on the order candidates arrive in,
 * which is what lets different backends and block orders agree exactly.
 */
export class TopK {
  readonly ids: Int32Array;
  readonly scores: Float32Array;
  readonly sizes: Int32Array;

  constructor(
    readonly rows: number,
    readonly k: number,
  ) {
    if (!Number.isInteger(k) || k < 1) throw new Error(`k must be a positive integer, got ${k}`);
    this.ids = new Int32Array(rows * k);
    this.scores = new Float32Array(rows * k);
    this.sizes = new Int32Array(rows);
  }

  /** Score a candidate must beat to enter a full row; -Infinity while the row has room. */
  threshold(row: number): number {
    return this.sizes[row] < this.k ? -Infinity : this.scores[row * this.k];
  }

  push(row: number, id: number, score: number): void {
    const k = this.k;
    const base = row * k;
    const ids = this.ids;
    const scores = this.scores;
    let size = this.sizes[row];
    if (size < k) {
      // sift up from the new leaf
      let i = size++;
      this.sizes[row] = size;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        const ps = scores[base + parent];
        if (ps < score || (ps === score && ids[base + parent] > id)) break;
        scores[base + i] = ps;
        ids[base + i] = ids[base + parent];
        i = parent;
      }
      scores[base + i] = score;
      ids[base + i] = id;
      return;
    }
    const rs = scores[base];
    if (score < rs || (score === rs && id >= ids[base])) return;
    // replace the root and sift down
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= k) break;
      let c = l;
      const r = l + 1;
      if (r < k) {
        const ls = scores[base + l];
        const rsc = scores[base + r];
        if (rsc < ls || (rsc === ls && ids[base + r] > ids[base + l])) c = r;
      }
      const cs = scores[base + c];
      if (score < cs || (score === cs && id > ids[base + c])) break;
      scores[base + i] = cs;
      ids[base + i] = ids[base + c];
      i = c;
    }
    scores[base + i] = score;
    ids[base + i] = id;
  }

  /**
   * Sorts every row best first in place (the heaps are consumed) and returns
   * this. Rows with fewer than k candidates keep their count in `sizes`.
   */
  sort(): this {
    const k = this.k;
    const order: number[] = [];
    const tmpIds = new Int32Array(k);
    const tmpScores = new Float32Array(k);
    for (let row = 0; row < this.rows; row++) {
      const base = row * k;
      const n = this.sizes[row];
      order.length = 0;
      for (let i = 0; i < n; i++) order.push(i);
      order.sort((a, b) => this.scores[base + b] - this.scores[base + a] || this.ids[base + a] - this.ids[base + b]);
      for (let i = 0; i < n; i++) {
        tmpIds[i] = this.ids[base + order[i]];
        tmpScores[i] = this.scores[base + order[i]];
      }
      this.ids.set(tmpIds.subarray(0, n), base);
      this.scores.set(tmpScores.subarray(0, n), base);
    }
    return this;
  }
}
