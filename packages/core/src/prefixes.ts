/**
 * Matryoshka prefixes: the dims ladder an index can adapt over, and helpers
 * for slicing rows to a prefix and re-normalising each prefix (for cosine,
 * every prefix is scored as if it were a unit vector of its own, as the AdANNS
 * reference code does by slicing and then L2-normalising).
 */

/** Powers of two from `min` below `dim`, then `dim` itself: 8, 16, 32, ..., dim. */
export function dimsLadder(dim: number, min = 8): number[] {
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`dimension must be a positive integer, got ${dim}`);
  const ladder: number[] = [];
  for (let d = min; d < dim; d *= 2) ladder.push(d);
  ladder.push(dim);
  return ladder;
}

/** Copies the first `dim` values of each row into a new contiguous rows x dim matrix. */
export function slicePrefix(data: Float32Array, rows: number, stride: number, dim: number, offset = 0): Float32Array {
  if (dim > stride) throw new Error(`prefix ${dim} exceeds row length ${stride}`);
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) out.set(data.subarray(offset + r * stride, offset + r * stride + dim), r * dim);
  return out;
}

/** L2-normalises the first `dim` values of each row in place (zero rows stay zero). */
export function normalizePrefixInPlace(data: Float32Array, rows: number, stride: number, dim: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * stride;
    let s = 0;
    for (let i = 0; i < dim; i++) s += data[o + i] * data[o + i];
    if (s === 0) continue;
    const inv = 1 / Math.sqrt(s);
    for (let i = 0; i < dim; i++) data[o + i] *= inv;
  }
}
