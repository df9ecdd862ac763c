/**
 * Per-row bounded top-k in flat arrays (one binary min-heap of size k per row,
 * worst candidate at the root). Ordering is total: higher score first, then
 * lower id, so the kept set does not depend on the order candidates arrive in,
 * which is what lets different backends and block orders agree exactly.
 * `ids`, `scores` and `sizes` may be views of one buffer (above 16 entries):
 * read them through their own offset and length, never `.buffer` whole.
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
    const n = rows * k;
    // V8 keeps typed arrays of up to 64 bytes in its heap; past that each is an allocation of its own, so the three share one
    if (n <= 16) {
      this.ids = new Int32Array(n);
      this.scores = new Float32Array(n);
      this.sizes = new Int32Array(rows);
    } else {
      const buffer = new ArrayBuffer(n * 8 + rows * 4);
      this.ids = new Int32Array(buffer, 0, n);
      this.scores = new Float32Array(buffer, n * 4, n);
      this.sizes = new Int32Array(buffer, n * 8, rows);
    }
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
    // replace the root and sift it down
    scores[base] = score;
    ids[base] = id;
    this.siftDown(base, 0, k);
  }

  /**
   * Sorts every row best first in place (the heaps are consumed) and returns
   * this. Rows with fewer than k candidates keep their count in `sizes`. A
   * heapsort on the typed arrays (the order is total, so it is deterministic):
   * each row is made a heap first, so sorting a sorted row again is harmless.
   */
  sort(): this {
    for (let row = 0; row < this.rows; row++) {
      const base = row * this.k;
      const n = this.sizes[row];
      for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(base, i, n);
      // the worst of the heap's first `end` entries goes to the end: the row ends best first
      for (let end = n - 1; end > 0; end--) {
        const id = this.ids[base + end];
        const score = this.scores[base + end];
        this.ids[base + end] = this.ids[base];
        this.scores[base + end] = this.scores[base];
        this.ids[base] = id;
        this.scores[base] = score;
        this.siftDown(base, 0, end);
      }
    }
    return this;
  }

  /** Restores the heap order (worst at the root) below position i of a row's first n entries. */
  private siftDown(base: number, i: number, n: number): void {
    const ids = this.ids;
    const scores = this.scores;
    const id = ids[base + i];
    const score = scores[base + i];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      let c = l;
      const r = l + 1;
      if (r < n) {
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
}
