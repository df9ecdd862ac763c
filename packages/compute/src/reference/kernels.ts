import type { Metric } from '../metric.js';
import type { RowBlock } from '../rows.js';

/**
 * Plain TypeScript reference kernels. They favour clarity with a little
 * register blocking (four base rows per pass over the query) so that the
 * reference is usable on real data sets; accumulation is in float64 (JS numbers).
 */

/** 1 / ||row[:dim]|| for every row (0 for an all-zero prefix, so its cosine is 0, never NaN). */
export function computeInvNorms(block: RowBlock, dim: number, out: Float32Array = new Float32Array(block.rows)): Float32Array {
  const { data, stride } = block;
  let o = block.offset ?? 0;
  let r = 0;
  // four rows side by side: independent sums keep the adder busy, each row summed in the same order as alone
  for (; r + 4 <= block.rows; r += 4, o += 4 * stride) {
    const o1 = o + stride, o2 = o1 + stride, o3 = o2 + stride;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let i = 0; i < dim; i++) {
      const x0 = data[o + i], x1 = data[o1 + i], x2 = data[o2 + i], x3 = data[o3 + i];
      s0 += x0 * x0;
      s1 += x1 * x1;
      s2 += x2 * x2;
      s3 += x3 * x3;
    }
    out[r] = s0 > 0 ? 1 / Math.sqrt(s0) : 0;
    out[r + 1] = s1 > 0 ? 1 / Math.sqrt(s1) : 0;
    out[r + 2] = s2 > 0 ? 1 / Math.sqrt(s2) : 0;
    out[r + 3] = s3 > 0 ? 1 / Math.sqrt(s3) : 0;
  }
  for (; r < block.rows; r++, o += stride) {
    let s = 0;
    for (let i = 0; i < dim; i++) s += data[o + i] * data[o + i];
    out[r] = s > 0 ? 1 / Math.sqrt(s) : 0;
  }
  return out;
}

/**
 * Scores one query (q[qo .. qo+dim)) against base rows [from, to) and writes
 * out[outOffset + (j - from)]. qInv is the query's inverse norm (cosine only),
 * baseInv the base rows' inverse norms indexed by row (cosine only).
 */
export function scoreQueryAgainstRows(
  q: Float32Array,
  qo: number,
  qInv: number,
  base: RowBlock,
  baseInv: Float32Array | undefined,
  from: number,
  to: number,
  dim: number,
  metric: Metric,
  out: Float32Array,
  outOffset: number,
): void {
  const b = base.data;
  const stride = base.stride;
  const bo = base.offset ?? 0;
  let j = from;
  if (metric === 'l2') {
    for (; j + 4 <= to; j += 4) {
      const o0 = bo + j * stride;
      const o1 = o0 + stride;
      const o2 = o1 + stride;
      const o3 = o2 + stride;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let i = 0; i < dim; i++) {
        const x = q[qo + i];
        const d0 = x - b[o0 + i];
        const d1 = x - b[o1 + i];
        const d2 = x - b[o2 + i];
        const d3 = x - b[o3 + i];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
      }
      const w = outOffset + j - from;
      out[w] = -s0;
      out[w + 1] = -s1;
      out[w + 2] = -s2;
      out[w + 3] = -s3;
    }
    for (; j < to; j++) {
      const o = bo + j * stride;
      let s = 0;
      for (let i = 0; i < dim; i++) {
        const d = q[qo + i] - b[o + i];
        s += d * d;
      }
      out[outOffset + j - from] = -s;
    }
    return;
  }
  for (; j + 4 <= to; j += 4) {
    const o0 = bo + j * stride;
    const o1 = o0 + stride;
    const o2 = o1 + stride;
    const o3 = o2 + stride;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let i = 0; i < dim; i++) {
      const x = q[qo + i];
      s0 += x * b[o0 + i];
      s1 += x * b[o1 + i];
      s2 += x * b[o2 + i];
      s3 += x * b[o3 + i];
    }
    const w = outOffset + j - from;
    out[w] = s0;
    out[w + 1] = s1;
    out[w + 2] = s2;
    out[w + 3] = s3;
  }
  for (; j < to; j++) {
    const o = bo + j * stride;
    let s = 0;
    for (let i = 0; i < dim; i++) s += q[qo + i] * b[o + i];
    out[outOffset + j - from] = s;
  }
  if (metric === 'cosine') {
    const inv = baseInv!;
    for (let t = from; t < to; t++) out[outOffset + t - from] *= qInv * inv[t];
  }
}

/**
 * Four queries at once against base rows [from, to): a 4 x 4 register tile
 * (16 accumulators), so each loaded value serves four products. Writes
 * out[outOffset + t * outStride + (j - from)] for query t of the four. Each
 * score is accumulated in the same order as in scoreQueryAgainstRows, so a
 * query scores identically whether or not it is batched.
 */
export function scoreFourQueriesAgainstRows(
  q: Float32Array,
  qo: number,
  qStride: number,
  qInv: Float32Array | undefined,
  base: RowBlock,
  baseInv: Float32Array | undefined,
  from: number,
  to: number,
  dim: number,
  metric: Metric,
  out: Float32Array,
  outOffset: number,
  outStride: number,
): void {
  const b = base.data;
  const stride = base.stride;
  const bo = base.offset ?? 0;
  const q0 = qo, q1 = qo + qStride, q2 = q1 + qStride, q3 = q2 + qStride;
  const w0 = outOffset - from, w1 = w0 + outStride, w2 = w1 + outStride, w3 = w2 + outStride;
  const l2 = metric === 'l2';
  let j = from;
  for (; j + 4 <= to; j += 4) {
    const o0 = bo + j * stride;
    const o1 = o0 + stride;
    const o2 = o1 + stride;
    const o3 = o2 + stride;
    let a00 = 0, a01 = 0, a02 = 0, a03 = 0;
    let a10 = 0, a11 = 0, a12 = 0, a13 = 0;
    let a20 = 0, a21 = 0, a22 = 0, a23 = 0;
    let a30 = 0, a31 = 0, a32 = 0, a33 = 0;
    if (l2) {
      for (let i = 0; i < dim; i++) {
        const x0 = b[o0 + i], x1 = b[o1 + i], x2 = b[o2 + i], x3 = b[o3 + i];
        const y0 = q[q0 + i], y1 = q[q1 + i], y2 = q[q2 + i], y3 = q[q3 + i];
        let d = y0 - x0; a00 += d * d; d = y0 - x1; a01 += d * d; d = y0 - x2; a02 += d * d; d = y0 - x3; a03 += d * d;
        d = y1 - x0; a10 += d * d; d = y1 - x1; a11 += d * d; d = y1 - x2; a12 += d * d; d = y1 - x3; a13 += d * d;
        d = y2 - x0; a20 += d * d; d = y2 - x1; a21 += d * d; d = y2 - x2; a22 += d * d; d = y2 - x3; a23 += d * d;
        d = y3 - x0; a30 += d * d; d = y3 - x1; a31 += d * d; d = y3 - x2; a32 += d * d; d = y3 - x3; a33 += d * d;
      }
      a00 = -a00; a01 = -a01; a02 = -a02; a03 = -a03;
      a10 = -a10; a11 = -a11; a12 = -a12; a13 = -a13;
      a20 = -a20; a21 = -a21; a22 = -a22; a23 = -a23;
      a30 = -a30; a31 = -a31; a32 = -a32; a33 = -a33;
    } else {
      for (let i = 0; i < dim; i++) {
        const x0 = b[o0 + i], x1 = b[o1 + i], x2 = b[o2 + i], x3 = b[o3 + i];
        const y0 = q[q0 + i], y1 = q[q1 + i], y2 = q[q2 + i], y3 = q[q3 + i];
        a00 += y0 * x0; a01 += y0 * x1; a02 += y0 * x2; a03 += y0 * x3;
        a10 += y1 * x0; a11 += y1 * x1; a12 += y1 * x2; a13 += y1 * x3;
        a20 += y2 * x0; a21 += y2 * x1; a22 += y2 * x2; a23 += y2 * x3;
        a30 += y3 * x0; a31 += y3 * x1; a32 += y3 * x2; a33 += y3 * x3;
      }
    }
    out[w0 + j] = a00; out[w0 + j + 1] = a01; out[w0 + j + 2] = a02; out[w0 + j + 3] = a03;
    out[w1 + j] = a10; out[w1 + j + 1] = a11; out[w1 + j + 2] = a12; out[w1 + j + 3] = a13;
    out[w2 + j] = a20; out[w2 + j + 1] = a21; out[w2 + j + 2] = a22; out[w2 + j + 3] = a23;
    out[w3 + j] = a30; out[w3 + j + 1] = a31; out[w3 + j + 2] = a32; out[w3 + j + 3] = a33;
  }
  for (let t = 0; t < 4; t++) {
    if (j < to) scoreQueryAgainstRows(q, qo + t * qStride, qInv ? qInv[t] : 1, base, baseInv, j, to, dim, metric, out, outOffset + t * outStride + j - from);
  }
  if (metric !== 'cosine') return;
  for (let t = 0; t < 4; t++) {
    const w = outOffset + t * outStride - from;
    const s = qInv![t];
    // the tail rows [j, to) were scaled by scoreQueryAgainstRows already
    for (let jj = from; jj < j; jj++) out[w + jj] *= s * baseInv![jj];
  }
}
