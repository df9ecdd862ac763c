// WebAssembly SIMD kernels for the CPU backend (AssemblyScript).
//
// The module owns no memory: it imports one shared memory that the host (and
// every worker thread) lays out, and every argument is a byte address into
// it. Nothing here allocates, so one compiled module serves all threads.
//
// Every (query, row) score is computed in the same order whatever tile it is
// part of: four-lane partial sums over dim rounded down to a multiple of 4,
// added as (l0 + l1) + (l2 + l3), then the scalar tail. A query therefore
// scores bit-identically alone, batched, or split across threads.
//
// Metric codes: 0 cosine (scaled by both inverse norms), 1 inner product,
// 2 negated squared Euclidean distance. Larger scores are closer.

const COSINE: i32 = 0;
const L2: i32 = 2;

@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

@inline function dotTail(q: usize, b: usize, from: i32, dim: i32, s: f32): f32 {
  for (let i = from; i < dim; i++) s += load<f32>(q + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

@inline function l2Tail(q: usize, b: usize, from: i32, dim: i32, s: f32): f32 {
  for (let i = from; i < dim; i++) {
    const d = load<f32>(q + (<usize>i << 2)) - load<f32>(b + (<usize>i << 2));
    s += d * d;
  }
  return s;
}

/** One query against one row. */
function pair(q: usize, b: usize, dim: i32, l2: bool): f32 {
  const d4 = dim & ~3;
  let acc = f32x4.splat(0);
  if (l2) {
    for (let i = 0; i < d4; i += 4) {
      const d = f32x4.sub(v128.load(q + (<usize>i << 2)), v128.load(b + (<usize>i << 2)));
      acc = f32x4.add(acc, f32x4.mul(d, d));
    }
    return -l2Tail(q, b, d4, dim, hsum(acc));
  }
  for (let i = 0; i < d4; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(q + (<usize>i << 2)), v128.load(b + (<usize>i << 2))));
  return dotTail(q, b, d4, dim, hsum(acc));
}

/** One query against four rows (b0, b0 + bs, ...): scores to out[0..3]. */
@inline function tile1x4(q: usize, b0: usize, bs: usize, dim: i32, l2: bool, out: usize): void {
  v128.store(out, tile1x4At(q, b0, b0 + bs, b0 + 2 * bs, b0 + 3 * bs, dim, l2));
}

@inline function lanes4(s0: f32, s1: f32, s2: f32, s3: f32): v128 {
  return f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(s0), 1, s1), 2, s2), 3, s3);
}

/**
 * One query against four rows anywhere (b0..b3): their scores as lanes 0..3,
 * each exactly as pair() computes it. Four rows read side by side keep four
 * memory streams in flight, which is what a re-rank of scattered rows needs.
 */
function tile1x4At(q: usize, b0: usize, b1: usize, b2: usize, b3: usize, dim: i32, l2: bool): v128 {
  const d4 = dim & ~3;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  if (l2) {
    for (let i = 0; i < d4; i += 4) {
      const o = <usize>i << 2;
      const x = v128.load(q + o);
      let d = f32x4.sub(x, v128.load(b0 + o)); a0 = f32x4.add(a0, f32x4.mul(d, d));
      d = f32x4.sub(x, v128.load(b1 + o)); a1 = f32x4.add(a1, f32x4.mul(d, d));
      d = f32x4.sub(x, v128.load(b2 + o)); a2 = f32x4.add(a2, f32x4.mul(d, d));
      d = f32x4.sub(x, v128.load(b3 + o)); a3 = f32x4.add(a3, f32x4.mul(d, d));
    }
    return lanes4(-l2Tail(q, b0, d4, dim, hsum(a0)), -l2Tail(q, b1, d4, dim, hsum(a1)), -l2Tail(q, b2, d4, dim, hsum(a2)), -l2Tail(q, b3, d4, dim, hsum(a3)));
  }
  for (let i = 0; i < d4; i += 4) {
    const o = <usize>i << 2;
    const x = v128.load(q + o);
    a0 = f32x4.add(a0, f32x4.mul(x, v128.load(b0 + o)));
    a1 = f32x4.add(a1, f32x4.mul(x, v128.load(b1 + o)));
    a2 = f32x4.add(a2, f32x4.mul(x, v128.load(b2 + o)));
    a3 = f32x4.add(a3, f32x4.mul(x, v128.load(b3 + o)));
  }
  return lanes4(dotTail(q, b0, d4, dim, hsum(a0)), dotTail(q, b1, d4, dim, hsum(a1)), dotTail(q, b2, d4, dim, hsum(a2)), dotTail(q, b3, d4, dim, hsum(a3)));
}

/**
 * Four queries (q0, q0 + qs, ...) against two rows (b0, b0 + bs): eight
 * accumulators and six loads per step fit the 16 vector registers, so each
 * loaded value serves two to four products. Score of query t, row u goes to
 * out + t * os + u * 4.
 */
function tile4x2(q0: usize, qs: usize, b0: usize, bs: usize, dim: i32, l2: bool, out: usize, os: usize): void {
  const q1 = q0 + qs, q2 = q1 + qs, q3 = q2 + qs;
  const b1 = b0 + bs;
  const d4 = dim & ~3;
  let a00 = f32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
  if (l2) {
    for (let i = 0; i < d4; i += 4) {
      const o = <usize>i << 2;
      const x0 = v128.load(b0 + o), x1 = v128.load(b1 + o);
      let y = v128.load(q0 + o);
      let d = f32x4.sub(y, x0); a00 = f32x4.add(a00, f32x4.mul(d, d));
      d = f32x4.sub(y, x1); a01 = f32x4.add(a01, f32x4.mul(d, d));
      y = v128.load(q1 + o);
      d = f32x4.sub(y, x0); a10 = f32x4.add(a10, f32x4.mul(d, d));
      d = f32x4.sub(y, x1); a11 = f32x4.add(a11, f32x4.mul(d, d));
      y = v128.load(q2 + o);
      d = f32x4.sub(y, x0); a20 = f32x4.add(a20, f32x4.mul(d, d));
      d = f32x4.sub(y, x1); a21 = f32x4.add(a21, f32x4.mul(d, d));
      y = v128.load(q3 + o);
      d = f32x4.sub(y, x0); a30 = f32x4.add(a30, f32x4.mul(d, d));
      d = f32x4.sub(y, x1); a31 = f32x4.add(a31, f32x4.mul(d, d));
    }
    store<f32>(out, -l2Tail(q0, b0, d4, dim, hsum(a00)));
    store<f32>(out, -l2Tail(q0, b1, d4, dim, hsum(a01)), 4);
    store<f32>(out + os, -l2Tail(q1, b0, d4, dim, hsum(a10)));
    store<f32>(out + os, -l2Tail(q1, b1, d4, dim, hsum(a11)), 4);
    store<f32>(out + 2 * os, -l2Tail(q2, b0, d4, dim, hsum(a20)));
    store<f32>(out + 2 * os, -l2Tail(q2, b1, d4, dim, hsum(a21)), 4);
    store<f32>(out + 3 * os, -l2Tail(q3, b0, d4, dim, hsum(a30)));
    store<f32>(out + 3 * os, -l2Tail(q3, b1, d4, dim, hsum(a31)), 4);
    return;
  }
  // pointers advance instead of indices, so each load is a base plus an immediate
  const end = b0 + (<usize>d4 << 2);
  let p0 = b0, p1 = b1, r0 = q0, r1 = q1, r2 = q2, r3 = q3;
  for (; p0 < end; p0 += 16, p1 += 16, r0 += 16, r1 += 16, r2 += 16, r3 += 16) {
    const x0 = v128.load(p0), x1 = v128.load(p1);
    let y = v128.load(r0);
    a00 = f32x4.add(a00, f32x4.mul(y, x0)); a01 = f32x4.add(a01, f32x4.mul(y, x1));
    y = v128.load(r1);
    a10 = f32x4.add(a10, f32x4.mul(y, x0)); a11 = f32x4.add(a11, f32x4.mul(y, x1));
    y = v128.load(r2);
    a20 = f32x4.add(a20, f32x4.mul(y, x0)); a21 = f32x4.add(a21, f32x4.mul(y, x1));
    y = v128.load(r3);
    a30 = f32x4.add(a30, f32x4.mul(y, x0)); a31 = f32x4.add(a31, f32x4.mul(y, x1));
  }
  store<f32>(out, dotTail(q0, b0, d4, dim, hsum(a00)));
  store<f32>(out, dotTail(q0, b1, d4, dim, hsum(a01)), 4);
  store<f32>(out + os, dotTail(q1, b0, d4, dim, hsum(a10)));
  store<f32>(out + os, dotTail(q1, b1, d4, dim, hsum(a11)), 4);
  store<f32>(out + 2 * os, dotTail(q2, b0, d4, dim, hsum(a20)));
  store<f32>(out + 2 * os, dotTail(q2, b1, d4, dim, hsum(a21)), 4);
  store<f32>(out + 3 * os, dotTail(q3, b0, d4, dim, hsum(a30)));
  store<f32>(out + 3 * os, dotTail(q3, b1, d4, dim, hsum(a31)), 4);
}

/** Cosine from dot products: out[t][j - bFrom] *= qInv[t] * bInv[j] for queries [qFrom, qTo) (out rows os bytes apart), four base rows at a time. */
function scaleCosine(qInv: usize, qFrom: i32, qTo: i32, bInv: usize, bFrom: i32, bTo: i32, out: usize, os: usize): void {
  for (let u = qFrom; u < qTo; u++) {
    const qi = load<f32>(qInv + (<usize>u << 2));
    const q4 = f32x4.splat(qi);
    const op = out + <usize>(u - qFrom) * os;
    let j = bFrom;
    for (; j + 4 <= bTo; j += 4) {
      const p = op + (<usize>(j - bFrom) << 2);
      v128.store(p, f32x4.mul(v128.load(p), f32x4.mul(q4, v128.load(bInv + (<usize>j << 2)))));
    }
    for (; j < bTo; j++) {
      const p = op + (<usize>(j - bFrom) << 2);
      store<f32>(p, load<f32>(p) * (qi * load<f32>(bInv + (<usize>j << 2))));
    }
  }
}

/**
 * Scores queries [qFrom, qTo) against rows [bFrom, bTo): out holds one row of
 * outStride floats per query (relative to qFrom), column j - bFrom per row.
 * Strides are in floats. qInv / bInv: inverse norms indexed by query / row
 * number (cosine only).
 */
function scoreBlock(
  q: usize, qFrom: i32, qTo: i32, qStride: i32, qInv: usize,
  b: usize, bFrom: i32, bTo: i32, bStride: i32, bInv: usize,
  dim: i32, metric: i32, out: usize, outStride: i32,
): void {
  const l2 = metric == L2;
  const qs = <usize>qStride << 2, bs = <usize>bStride << 2, os = <usize>outStride << 2;
  let t = qFrom;
  for (; t + 4 <= qTo; t += 4) {
    const qp = q + <usize>t * qs;
    const op = out + <usize>(t - qFrom) * os;
    let j = bFrom;
    for (; j + 2 <= bTo; j += 2) tile4x2(qp, qs, b + <usize>j * bs, bs, dim, l2, op + (<usize>(j - bFrom) << 2), os);
    if (j < bTo) {
      for (let u = 0; u < 4; u++) store<f32>(op + <usize>u * os + (<usize>(j - bFrom) << 2), pair(qp + <usize>u * qs, b + <usize>j * bs, dim, l2));
    }
  }
  for (; t < qTo; t++) {
    const qp = q + <usize>t * qs;
    const op = out + <usize>(t - qFrom) * os;
    let j = bFrom;
    // eight rows at a time: twice tile1x4's independent sums per query load (a query alone: the coarse ranking, PCA)
    for (; j + 8 <= bTo; j += 8) {
      const p = b + <usize>j * bs, o = op + (<usize>(j - bFrom) << 2);
      v128.store(o, tile1x8At(qp, p, p + bs, p + 2 * bs, p + 3 * bs, p + 4 * bs, p + 5 * bs, p + 6 * bs, p + 7 * bs, dim, l2));
      v128.store(o, tile1x8High, 16);
    }
    for (; j + 4 <= bTo; j += 4) tile1x4(qp, b + <usize>j * bs, bs, dim, l2, op + (<usize>(j - bFrom) << 2));
    for (; j < bTo; j++) store<f32>(op + (<usize>(j - bFrom) << 2), pair(qp, b + <usize>j * bs, dim, l2));
  }
  if (metric == COSINE) scaleCosine(qInv, qFrom, qTo, bInv, bFrom, bTo, out, os);
}

/** Rows scored per cache block: about 64 KiB of row data, at least 16 rows. */
export function chunkRows(dim: i32): i32 {
  const rows = 16384 / dim;
  return rows < 16 ? 16 : rows;
}

/** out[r] = 1 / ||row r [:dim]|| (0 for a zero prefix, so its cosine is 0). */
export function invNorms(p: usize, rows: i32, stride: i32, dim: i32, out: usize): void {
  const s = <usize>stride << 2;
  for (let r = 0; r < rows; r++) {
    const n = pair(p + <usize>r * s, p + <usize>r * s, dim, false);
    store<f32>(out + (<usize>r << 2), n > 0 ? <f32>1 / Mathf.sqrt(n) : 0);
  }
}

/** out[t * bRows + j] = score(query t, row j) for queries [qFrom, qTo) (out starts at query qFrom). */
export function score(
  q: usize, qFrom: i32, qTo: i32, qStride: i32, qInv: usize,
  b: usize, bRows: i32, bStride: i32, bInv: usize,
  dim: i32, metric: i32, out: usize,
): void {
  const step = chunkRows(dim);
  for (let from = 0; from < bRows; from += step) {
    const to = min(bRows, from + step);
    scoreBlock(q, qFrom, qTo, qStride, qInv, b, from, to, bStride, bInv, dim, metric, out + (<usize>from << 2), bRows);
  }
}

// ---- per-row bounded top-k: the layout and order of TopK in packages/compute ----
// Row r: ids at hIds + r*k*4, scores at hScores + r*k*4, size at hSizes + r*4.
// A min-heap on (score, then higher id is worse): higher score first, then lower id.

function heapPush(hIds: usize, hScores: usize, hSizes: usize, k: i32, row: i32, id: i32, s: f32): void {
  const ids = hIds + (<usize>row * <usize>k << 2);
  const sc = hScores + (<usize>row * <usize>k << 2);
  const sizeAt = hSizes + (<usize>row << 2);
  let size = load<i32>(sizeAt);
  if (size < k) {
    let i = size;
    store<i32>(sizeAt, size + 1);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const ps = load<f32>(sc + (<usize>parent << 2));
      const pid = load<i32>(ids + (<usize>parent << 2));
      if (ps < s || (ps == s && pid > id)) break;
      store<f32>(sc + (<usize>i << 2), ps);
      store<i32>(ids + (<usize>i << 2), pid);
      i = parent;
    }
    store<f32>(sc + (<usize>i << 2), s);
    store<i32>(ids + (<usize>i << 2), id);
    return;
  }
  const rs = load<f32>(sc);
  if (s < rs || (s == rs && id >= load<i32>(ids))) return;
  store<f32>(sc, s);
  store<i32>(ids, id);
  heapSiftDown(ids, sc, 0, k);
}

/**
 * Restores the heap order (worst at the root: lower score, then higher id)
 * below position i of a heap's first n entries. It picks the worse child and
 * decides to stop with selects, not branches: which child is worse is a coin
 * toss the branch predictor loses, and a push into a shortlist of 100
 * descends up to seven levels.
 */
function heapSiftDown(ids: usize, sc: usize, i: i32, n: i32): void {
  const id = load<i32>(ids + (<usize>i << 2));
  const s = load<f32>(sc + (<usize>i << 2));
  while (true) {
    const l = 2 * i + 1;
    if (l >= n) break;
    let c = l;
    const r = l + 1;
    if (r < n) {
      const ls = load<f32>(sc + (<usize>l << 2)), rsc = load<f32>(sc + (<usize>r << 2));
      const lid = load<i32>(ids + (<usize>l << 2)), rid = load<i32>(ids + (<usize>r << 2));
      c = select<i32>(r, l, (<i32>(rsc < ls) | (<i32>(rsc == ls) & <i32>(rid > lid))) != 0);
    }
    const cs = load<f32>(sc + (<usize>c << 2));
    const cid = load<i32>(ids + (<usize>c << 2));
    if ((<i32>(s < cs) | (<i32>(s == cs) & <i32>(id > cid))) != 0) break;
    store<f32>(sc + (<usize>i << 2), cs);
    store<i32>(ids + (<usize>i << 2), cid);
    i = c;
  }
  store<f32>(sc + (<usize>i << 2), s);
  store<i32>(ids + (<usize>i << 2), id);
}

@inline function threshold(hScores: usize, hSizes: usize, k: i32, row: i32): f32 {
  return load<i32>(hSizes + (<usize>row << 2)) < k ? -Infinity : load<f32>(hScores + (<usize>row * <usize>k << 2));
}

/** Pushes scores[j - from] for rows [from, to) into heap row `row`; ids[j] names row j (j itself when ids is 0). */
function pushScores(scores: usize, from: i32, to: i32, ids: usize, hIds: usize, hScores: usize, hSizes: usize, k: i32, row: i32): void {
  let limit = threshold(hScores, hSizes, k, row);
  for (let j = from; j < to; j++) {
    const s = load<f32>(scores + (<usize>(j - from) << 2));
    if (s >= limit) {
      heapPush(hIds, hScores, hSizes, k, row, ids ? load<i32>(ids + (<usize>j << 2)) : j, s);
      limit = threshold(hScores, hSizes, k, row);
    }
  }
}

/** Bytes of scratch scanTopK needs for `rows` queries: four queries' scores of a chunk, then their candidate buffers (topKBufferBytes). */
export function scanTopKScratch(dim: i32, rows: i32, k: i32): i32 {
  return (4 * chunkRows(dim) << 2) + topKBufferBytes(rows, k);
}

/**
 * Scores queries [qFrom, qTo) against rows [bFrom, bTo) and merges each
 * query's scores into heap row t (the query's own number), through
 * candidate buffers (bufferPush: a row's candidates appended past its
 * threshold, cut when full) rather than a heap push per candidate: a query
 * ranking a thousand centroids for its nprobe best admits hundreds of them
 * before its threshold settles. scratch: scanTopKScratch(dim, qTo - qFrom, k).
 */
export function scanTopK(
  q: usize, qFrom: i32, qTo: i32, qStride: i32, qInv: usize,
  b: usize, bFrom: i32, bTo: i32, bStride: i32, bInv: usize, ids: usize,
  dim: i32, metric: i32,
  hIds: usize, hScores: usize, hSizes: usize, k: i32, scratch: usize,
): void {
  const step = chunkRows(dim);
  const bufs = buffersOpen(scratch + (<usize>(4 * step) << 2), qFrom, qTo, hIds, hScores, hSizes, k);
  for (let from = bFrom; from < bTo; from += step) {
    const to = min(bTo, from + step);
    for (let t = qFrom; t < qTo; t += 4) {
      const tEnd = min(qTo, t + 4);
      scoreBlock(q, t, tEnd, qStride, qInv, b, from, to, bStride, bInv, dim, metric, scratch, step);
      for (let u = t; u < tEnd; u++) bufferScores(scratch + (<usize>((u - t) * step) << 2), from, to, ids, bufs, u);
    }
  }
  buffersClose(bufs, qFrom, qTo, hIds, hScores, hSizes);
}

// ---- encoded rows (float16, 8-bit scalar quantisation): decode a block, then score it as float32 ----

const ENC_F16: i32 = 0;

/**
 * Decodes rows [from, to) of encoded rows (element stride `stride`), first
 * `dim` elements each, into out (float32, stride dim).
 * f16: bits << 13 of the 15 non-sign bits, read as float32 and scaled by
 * 2^112, is the exact value for normal and subnormal halves; the sign is
 * OR'd back. sq8: min[j] + scale[j] * code (scale at params + stride * 4).
 */
function decodeRows(b: usize, from: i32, to: i32, stride: i32, dim: i32, encoding: i32, params: usize, out: usize): void {
  if (encoding == ENC_F16) {
    for (let r = from; r < to; r++) decodeHalves(b + (<usize>r * <usize>stride << 1), dim, out + (<usize>((r - from) * dim) << 2));
    return;
  }
  const scale = params + (<usize>stride << 2);
  for (let r = from; r < to; r++) decodeBytes(b + <usize>r * <usize>stride, dim, params, scale, out + (<usize>((r - from) * dim) << 2));
}

/** Four float16 values widened to 32 bits in `h`, decoded exactly (x 2^112 of the 15 non-sign bits shifted into place, the sign OR'd back). */
@inline function halves4(h: v128): v128 {
  const m = f32x4.mul(i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13), f32x4.splat(<f32>5.192296858534828e33));
  return v128.or(m, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/** Four sq8 codes widened to 32 bits in `c`, decoded: mins + scales x code. */
@inline function bytes4(c: v128, mins: v128, scales: v128): v128 {
  return f32x4.add(mins, f32x4.mul(scales, f32x4.convert_i32x4_u(c)));
}

/** n float16 values from src to float32 at dst (decodeRows). */
@inline function decodeHalves(src: usize, n: i32, dst: usize): void {
  const d8 = n & ~7;
  let j = 0;
  for (; j < d8; j += 8) {
    const h = v128.load(src + (<usize>j << 1));
    v128.store(dst + (<usize>j << 2), halves4(i32x4.extend_low_i16x8_u(h)));
    v128.store(dst + (<usize>j << 2), halves4(i32x4.extend_high_i16x8_u(h)), 16);
  }
  for (; j < n; j++) {
    const h = <u32>load<u16>(src + (<usize>j << 1));
    const m = reinterpret<f32>((h & 0x7fff) << 13) * <f32>5.192296858534828e33;
    store<f32>(dst + (<usize>j << 2), reinterpret<f32>(reinterpret<u32>(m) | ((h & 0x8000) << 16)));
  }
}

/** n sq8 codes from src to float32 at dst: mins[j] + scales[j] * code (decodeRows). */
@inline function decodeBytes(src: usize, n: i32, mins: usize, scales: usize, dst: usize): void {
  const d16 = n & ~15;
  let j = 0;
  for (; j < d16; j += 16) {
    const c = v128.load(src + <usize>j);
    const w0 = i16x8.extend_low_i8x16_u(c), w1 = i16x8.extend_high_i8x16_u(c);
    const o = <usize>j << 2;
    v128.store(dst + o, bytes4(i32x4.extend_low_i16x8_u(w0), v128.load(mins + o), v128.load(scales + o)));
    v128.store(dst + o, bytes4(i32x4.extend_high_i16x8_u(w0), v128.load(mins + o, 16), v128.load(scales + o, 16)), 16);
    v128.store(dst + o, bytes4(i32x4.extend_low_i16x8_u(w1), v128.load(mins + o, 32), v128.load(scales + o, 32)), 32);
    v128.store(dst + o, bytes4(i32x4.extend_high_i16x8_u(w1), v128.load(mins + o, 48), v128.load(scales + o, 48)), 48);
  }
  for (; j < n; j++) {
    const o = <usize>j << 2;
    store<f32>(dst + o, load<f32>(mins + o) + load<f32>(scales + o) * <f32>load<u8>(src + <usize>j));
  }
}

/** Rows decoded per block: a chunkRows(dim) block, fewer when scores and decoded rows would overflow the scratch. */
export function codedChunkRows(dim: i32): i32 {
  const rows = 65536 / (dim + 4);
  const c = chunkRows(dim);
  return rows < c ? rows : c;
}

/**
 * scanTopK over encoded rows [bFrom, bTo): each block of rows is decoded into
 * the scratch and scored as float32 rows, so scores equal scanTopK's on the
 * decoded values. mode = metric + 4 * encoding (0 f16, 1 sq8); params: sq8
 * min then scale (2 x bStride floats). scratch holds 65536 floats.
 */
export function scanCodedTopK(
  q: usize, qFrom: i32, qTo: i32, qStride: i32, qInv: usize,
  b: usize, bFrom: i32, bTo: i32, bStride: i32, bInv: usize, ids: usize,
  dim: i32, mode: i32,
  hIds: usize, hScores: usize, hSizes: usize, k: i32, scratch: usize, params: usize,
): void {
  const metric = mode & 3, encoding = mode >> 2;
  const step = codedChunkRows(dim);
  const decoded = scratch + (<usize>(4 * step) << 2);
  for (let from = bFrom; from < bTo; from += step) {
    const to = min(bTo, from + step);
    decodeRows(b, from, to, bStride, dim, encoding, params, decoded);
    const inv = metric == COSINE ? bInv + (<usize>from << 2) : 0;
    for (let t = qFrom; t < qTo; t += 4) {
      const tEnd = min(qTo, t + 4);
      scoreBlock(q, t, tEnd, qStride, qInv, decoded, 0, to - from, dim, inv, dim, metric, scratch, step);
      for (let u = t; u < tEnd; u++) pushScores(scratch + (<usize>((u - t) * step) << 2), from, to, ids, hIds, hScores, hSizes, k, u);
    }
  }
}

/**
 * Exact re-scoring of shortlists by row number: for query t in [0, qRows),
 * the rows cand[t * candK + i] (i < candSizes[t]) of the base are scored and
 * merged into heap row t, reported by row number. No gather: rows are read
 * where they are stored.
 */
export function rescoreTopK(
  q: usize, qRows: i32, qStride: i32, qInv: usize,
  b: usize, bStride: i32, bInv: usize,
  cand: usize, candK: i32, candSizes: usize,
  dim: i32, metric: i32,
  hIds: usize, hScores: usize, hSizes: usize, k: i32,
): void {
  const qs = <usize>qStride << 2;
  for (let t = 0; t < qRows; t++) {
    const qi: f32 = metric == COSINE ? load<f32>(qInv + (<usize>t << 2)) : 1;
    rescoreRows(q + <usize>t * qs, qi, cand + (<usize>(t * candK) << 2), load<i32>(candSizes + (<usize>t << 2)), b, bStride, bInv, dim, metric, hIds, hScores, hSizes, k, t);
  }
}

/** Scores query qp (cosine inverse norm qi) against the `n` base rows named at rowsAt and merges them into heap row t (rescoreTopK's loop). */
function rescoreRows(
  qp: usize, qi: f32, rowsAt: usize, n: i32,
  b: usize, bStride: i32, bInv: usize, dim: i32, metric: i32,
  hIds: usize, hScores: usize, hSizes: usize, k: i32, t: i32,
): void {
  const l2 = metric == L2;
  const bs = <usize>bStride << 2;
  let limit = threshold(hScores, hSizes, k, t);
  const cosine = metric == COSINE;
  const q4 = f32x4.splat(qi);
  let i = 0;
  // eight rows side by side (tile1x8At): twice tile1x4At's memory streams in flight, for shortlists scattered over the base;
  // a cosine's row norms (as scattered) are read before the rows, so their misses overlap the rows'
  for (; i + 8 <= n; i += 8) {
    const at = rowsAt + (<usize>i << 2);
    const r0 = load<i32>(at), r1 = load<i32>(at, 4), r2 = load<i32>(at, 8), r3 = load<i32>(at, 12);
    const r4 = load<i32>(at, 16), r5 = load<i32>(at, 20), r6 = load<i32>(at, 24), r7 = load<i32>(at, 28);
    const c0 = cosine ? f32x4.mul(q4, lanes4(load<f32>(bInv + (<usize>r0 << 2)), load<f32>(bInv + (<usize>r1 << 2)), load<f32>(bInv + (<usize>r2 << 2)), load<f32>(bInv + (<usize>r3 << 2)))) : q4;
    const c1 = cosine ? f32x4.mul(q4, lanes4(load<f32>(bInv + (<usize>r4 << 2)), load<f32>(bInv + (<usize>r5 << 2)), load<f32>(bInv + (<usize>r6 << 2)), load<f32>(bInv + (<usize>r7 << 2)))) : q4;
    let low = tile1x8At(qp, b + <usize>r0 * bs, b + <usize>r1 * bs, b + <usize>r2 * bs, b + <usize>r3 * bs, b + <usize>r4 * bs, b + <usize>r5 * bs, b + <usize>r6 * bs, b + <usize>r7 * bs, dim, l2);
    let high = tile1x8High;
    if (cosine) {
      low = f32x4.mul(low, c0);
      high = f32x4.mul(high, c1);
    }
    for (let u = 0; u < 8; u++) {
      const row = load<i32>(at + (<usize>u << 2));
      const v = u < 4 ? low : high;
      const w = u & 3;
      const s = w == 0 ? f32x4.extract_lane(v, 0) : w == 1 ? f32x4.extract_lane(v, 1) : w == 2 ? f32x4.extract_lane(v, 2) : f32x4.extract_lane(v, 3);
      if (s >= limit) {
        heapPush(hIds, hScores, hSizes, k, t, row, s);
        limit = threshold(hScores, hSizes, k, t);
      }
    }
  }
  for (; i < n; i += 4) {
    const m = min(4, n - i);
    const at = rowsAt + (<usize>i << 2);
    const r0 = load<i32>(at);
    // a short tail repeats its first row in the unused lanes (their scores are not pushed)
    const r1 = m > 1 ? load<i32>(at, 4) : r0, r2 = m > 2 ? load<i32>(at, 8) : r0, r3 = m > 3 ? load<i32>(at, 12) : r0;
    const four = tile1x4At(qp, b + <usize>r0 * bs, b + <usize>r1 * bs, b + <usize>r2 * bs, b + <usize>r3 * bs, dim, l2);
    for (let u = 0; u < m; u++) {
      const row = u == 0 ? r0 : u == 1 ? r1 : u == 2 ? r2 : r3;
      let s = u == 0 ? f32x4.extract_lane(four, 0) : u == 1 ? f32x4.extract_lane(four, 1) : u == 2 ? f32x4.extract_lane(four, 2) : f32x4.extract_lane(four, 3);
      if (metric == COSINE) s *= qi * load<f32>(bInv + (<usize>row << 2));
      if (s >= limit) {
        heapPush(hIds, hScores, hSizes, k, t, row, s);
        limit = threshold(hScores, hSizes, k, t);
      }
    }
  }
}

/**
 * 8-bit ADC for queries [qFrom, qTo) over codes [from, to): code j scores
 * bias[q] + sum over s of tables[(q * m + s) * 256 + code[j * m + s]]. Four
 * codes run side by side so their table loads overlap.
 */
export function adcScanTopK(
  tables: usize, qFrom: i32, qTo: i32, m: i32,
  codes: usize, from: i32, to: i32, ids: usize, bias: usize,
  hIds: usize, hScores: usize, hSizes: usize, k: i32,
): void {
  const um = <usize>m;
  for (let q = qFrom; q < qTo; q++) {
    adcRows(tables + ((<usize>q * um) << 10), um, codes, from, to, ids, bias ? load<f32>(bias + (<usize>q << 2)) : 0, hIds, hScores, hSizes, k, q);
  }
}

/**
 * Nearest centroid of vectors [from, to): labels[i], scores[i] (ties: the
 * lower centroid). scratch holds 4 * chunkRows(dim) floats.
 */
export function assign(
  v: usize, from: i32, to: i32, vStride: i32, vInv: usize,
  c: usize, cRows: i32, cStride: i32, cInv: usize,
  dim: i32, metric: i32, labels: usize, scores: usize, scratch: usize,
): void {
  const step = chunkRows(dim);
  for (let t = from; t < to; t += 4) {
    const tEnd = min(to, t + 4);
    for (let u = t; u < tEnd; u++) {
      store<i32>(labels + (<usize>u << 2), -1);
      store<f32>(scores + (<usize>u << 2), -Infinity);
    }
    for (let cf = 0; cf < cRows; cf += step) {
      const ct = min(cRows, cf + step);
      scoreBlock(v, t, tEnd, vStride, vInv, c, cf, ct, cStride, cInv, dim, metric, scratch, step);
      for (let u = t; u < tEnd; u++) {
        const row = scratch + (<usize>((u - t) * step) << 2);
        let bestIndex = load<i32>(labels + (<usize>u << 2));
        let bestScore = load<f32>(scores + (<usize>u << 2));
        for (let j = cf; j < ct; j++) {
          const s = load<f32>(row + (<usize>(j - cf) << 2));
          if (s > bestScore || bestIndex < 0) {
            bestScore = s;
            bestIndex = j;
          }
        }
        store<i32>(labels + (<usize>u << 2), bestIndex);
        store<f32>(scores + (<usize>u << 2), bestScore);
      }
    }
  }
}

/**
 * k-means update sums: vector i (i < n) is added to sums row labels[i]
 * (four lanes at a time, in order of i); counts[c] counts them. sums and
 * counts must start zeroed.
 */
export function centroidSums(v: usize, n: i32, vStride: i32, dim: i32, labels: usize, sums: usize, counts: usize): void {
  const d4 = dim & ~3;
  const vs = <usize>vStride << 2;
  for (let i = 0; i < n; i++) {
    const c = load<i32>(labels + (<usize>i << 2));
    const countAt = counts + (<usize>c << 2);
    store<i32>(countAt, load<i32>(countAt) + 1);
    const src = v + <usize>i * vs;
    const dst = sums + (<usize>(c * dim) << 2);
    let j = 0;
    for (; j < d4; j += 4) {
      const o = <usize>j << 2;
      v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o)));
    }
    for (; j < dim; j++) {
      const o = <usize>j << 2;
      store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o));
    }
  }
}

/**
 * Peak reference: a register-resident SIMD multiply-add loop (8 independent
 * chains, no memory traffic). Returns a value that depends on every step so
 * the loop is not optimised away. FLOPs = iterations * 8 chains * 4 lanes * 2.
 */
export function peak(iterations: i32, seed: f32): f32 {
  const x = f32x4.splat(seed);
  const y = f32x4.splat(<f32>0.999999);
  let a0 = x, a1 = f32x4.add(x, y), a2 = f32x4.mul(x, y), a3 = f32x4.sub(x, y);
  let a4 = f32x4.add(a1, y), a5 = f32x4.add(a2, y), a6 = f32x4.add(a3, y), a7 = f32x4.add(a0, a1);
  for (let i = 0; i < iterations; i++) {
    a0 = f32x4.add(f32x4.mul(a0, y), x); a1 = f32x4.add(f32x4.mul(a1, y), x);
    a2 = f32x4.add(f32x4.mul(a2, y), x); a3 = f32x4.add(f32x4.mul(a3, y), x);
    a4 = f32x4.add(f32x4.mul(a4, y), x); a5 = f32x4.add(f32x4.mul(a5, y), x);
    a6 = f32x4.add(f32x4.mul(a6, y), x); a7 = f32x4.add(f32x4.mul(a7, y), x);
  }
  return hsum(f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7))));
}

// ---- 4-bit fast-scan PQ (packages/compute/src/fastscan.ts: the block layout and the score) ----
// Block b of 32 members holds 16 bytes per sub-quantiser s at b * 16 * m + 16 * s: byte j has member
// 32 b + j in its low nibble and member 32 b + 16 + j in its high nibble. A query's table for s is 16
// unsigned bytes, so one i8x16.swizzle looks up 16 members. The byte results are summed in 16-bit lanes
// as FAISS does: added as u16 lanes (even byte + 256 x odd byte, wrapping) and, shifted right by 8, as the
// odd bytes alone; even = total - (odd << 8) mod 2^16. Runs of at most 256 sub-quantisers cannot exceed
// 255 x 256 < 2^16, so longer codes are summed run by run into 32-bit totals. The sums are exact integers,
// which is what lets every backend agree on ids and scores.

/** Smallest integer sum whose score fround(sum * scale) + bias reaches `limit` (scores grow with the sum); maxSum + 1 when none does. */
function fastScanFloor(limit: f32, scale: f32, bias: f32, maxSum: i32): i32 {
  if (limit == -Infinity) return 0;
  const e = (limit - bias) / scale;
  let t: i32 = !(e > 0) ? 0 : e >= <f32>maxSum ? maxSum : <i32>e;
  while (t > 0 && <f32>(t - 1) * scale + bias >= limit) t--;
  while (t <= maxSum && <f32>t * scale + bias < limit) t++;
  return t;
}

/**
 * Fast-scan of members [from, to) (from a multiple of 32) for heap row q:
 * `t` is the row's m x 16 table bytes, scale and add map a sum to its score.
 * Each block's 32 sums are compared with the integer floor of the heap's
 * threshold in SIMD; only blocks with a lane at or above it reach the heap.
 * scratch holds 192 bytes.
 */
function fastScanRows(
  t: usize, scale: f32, add: f32, m: i32,
  codes: usize, from: i32, to: i32, ids: usize, q: i32,
  hIds: usize, hScores: usize, hSizes: usize, k: i32, scratch: usize, mask: usize = 0,
): void {
  const um = <usize>m;
  const blockBytes = um << 4;
  const low = i8x16.splat(0x0f);
  const maxSum = 255 * m;
  const totals = scratch + 64;
  let limit = threshold(hScores, hSizes, k, q);
  let floor = fastScanFloor(limit, scale, add, maxSum);
  for (let j = from; j < to && floor <= maxSum; j += 32) {
    // a filter: lanes of allowed members (a block with none is skipped before its sums)
    let lanes: u32 = 0xffffffff;
    if (mask) {
      lanes = 0;
      const end = min(32, to - j);
      for (let u = 0; u < end; u++) if (maskAllows(mask, ids ? load<i32>(ids + (<usize>(j + u) << 2)) : j + u)) lanes |= <u32>1 << u;
      if (lanes == 0) continue;
    }
    const block = codes + <usize>(j >> 5) * blockBytes;
    if (m <= 256) {
      let ea = i16x8.splat(0), oa = ea, eb = ea, ob = ea;
      for (let s: usize = 0; s < um; s++) {
        const c = v128.load(block + (s << 4));
        const lut = v128.load(t + (s << 4));
        const a = i8x16.swizzle(lut, v128.and(c, low));
        const b = i8x16.swizzle(lut, v128.and(i16x8.shr_u(c, 4), low));
        ea = i16x8.add(ea, a); oa = i16x8.add(oa, i16x8.shr_u(a, 8));
        eb = i16x8.add(eb, b); ob = i16x8.add(ob, i16x8.shr_u(b, 8));
      }
      ea = i16x8.sub(ea, i16x8.shl(oa, 8));
      eb = i16x8.sub(eb, i16x8.shl(ob, 8));
      const f = i16x8.splat(<i16>floor);
      if (!v128.any_true(v128.or(v128.or(i16x8.ge_u(ea, f), i16x8.ge_u(oa, f)), v128.or(i16x8.ge_u(eb, f), i16x8.ge_u(ob, f))))) continue;
      // lane sums by member, for the few blocks that reach the heap
      v128.store(scratch, ea); v128.store(scratch, oa, 16); v128.store(scratch, eb, 32); v128.store(scratch, ob, 48);
      for (let u = 0; u < 32; u++) store<u32>(totals + (<usize>u << 2), load<u16>(scratch + (<usize>(((u >> 4) << 4) + ((u & 1) << 3) + ((u & 15) >> 1)) << 1)));
    } else {
      for (let u = 0; u < 32; u++) store<u32>(totals + (<usize>u << 2), 0);
      for (let r: usize = 0; r < um; r += 256) {
        const end = min(um, r + 256);
        let ea = i16x8.splat(0), oa = ea, eb = ea, ob = ea;
        for (let s = r; s < end; s++) {
          const c = v128.load(block + (s << 4));
          const lut = v128.load(t + (s << 4));
          const a = i8x16.swizzle(lut, v128.and(c, low));
          const b = i8x16.swizzle(lut, v128.and(i16x8.shr_u(c, 4), low));
          ea = i16x8.add(ea, a); oa = i16x8.add(oa, i16x8.shr_u(a, 8));
          eb = i16x8.add(eb, b); ob = i16x8.add(ob, i16x8.shr_u(b, 8));
        }
        ea = i16x8.sub(ea, i16x8.shl(oa, 8));
        eb = i16x8.sub(eb, i16x8.shl(ob, 8));
        v128.store(scratch, ea); v128.store(scratch, oa, 16); v128.store(scratch, eb, 32); v128.store(scratch, ob, 48);
        for (let u = 0; u < 32; u++) {
          const at = totals + (<usize>u << 2);
          store<u32>(at, load<u32>(at) + <u32>load<u16>(scratch + (<usize>(((u >> 4) << 4) + ((u & 1) << 3) + ((u & 15) >> 1)) << 1)));
        }
      }
    }
    const n = min(32, to - j);
    for (let u = 0; u < n; u++) {
      const sum = load<i32>(totals + (<usize>u << 2));
      if (sum < floor || ((lanes >>> u) & 1) == 0) continue;
      const sc = <f32>sum * scale + add;
      if (sc >= limit) {
        const jj = j + u;
        heapPush(hIds, hScores, hSizes, k, q, ids ? load<i32>(ids + (<usize>jj << 2)) : jj, sc);
        limit = threshold(hScores, hSizes, k, q);
        floor = fastScanFloor(limit, scale, add, maxSum);
      }
    }
  }
}

/**
 * Fast-scan top-k for queries [qFrom, qTo) over members [from, to) (from a
 * multiple of 32): tables hold m x 16 bytes per query, scales and bias one
 * float per query. scratch holds 192 bytes.
 */
export function fastScanTopK(
  tables: usize, qFrom: i32, qTo: i32, m: i32,
  codes: usize, from: i32, to: i32, ids: usize, scales: usize, bias: usize,
  hIds: usize, hScores: usize, hSizes: usize, k: i32, scratch: usize,
): void {
  for (let q = qFrom; q < qTo; q++) {
    fastScanRows(tables + <usize>q * (<usize>m << 4), load<f32>(scales + (<usize>q << 2)), load<f32>(bias + (<usize>q << 2)), m, codes, from, to, ids, q, hIds, hScores, hSizes, k, scratch);
  }
}

/** Sum of the minima of the table last quantised by quantizeTable (its second result). */
let tableLow: f32 = 0;

/**
 * Quantises m x 16 float32 entries at `src` to bytes at `out` (scratch of m
 * floats at `lows`), as packages/compute/src/fastscan.ts quantizeFastScanTable
 * defines it, step for step in float32: per sub-quantiser its minimum lo_s,
 * one scale a = 255 / (largest span), byte = min(255, trunc((v - lo_s) * a
 * + 0.5)). Returns the score scale 1 / a; tableLow holds the minima's sum.
 */
function quantizeTable(src: usize, m: i32, out: usize, lows: usize): f32 {
  let low: f32 = 0, span: f32 = 0;
  for (let s: usize = 0; s < <usize>m; s++) {
    const p = src + (s << 6);
    const a = v128.load(p), b = v128.load(p, 16), c = v128.load(p, 32), d = v128.load(p, 48);
    const lo4 = f32x4.min(f32x4.min(a, b), f32x4.min(c, d));
    const hi4 = f32x4.max(f32x4.max(a, b), f32x4.max(c, d));
    const lo = min(min(f32x4.extract_lane(lo4, 0), f32x4.extract_lane(lo4, 1)), min(f32x4.extract_lane(lo4, 2), f32x4.extract_lane(lo4, 3)));
    const hi = max(max(f32x4.extract_lane(hi4, 0), f32x4.extract_lane(hi4, 1)), max(f32x4.extract_lane(hi4, 2), f32x4.extract_lane(hi4, 3)));
    store<f32>(lows + (s << 2), lo);
    low += lo;
    span = max(span, hi - lo);
  }
  const scale: f32 = span > 0 ? <f32>255 / span : 1;
  const a = f32x4.splat(scale);
  const half = f32x4.splat(0.5);
  const top = i32x4.splat(255);
  for (let s: usize = 0; s < <usize>m; s++) {
    const p = src + (s << 6);
    const lo = f32x4.splat(load<f32>(lows + (s << 2)));
    const b0 = i32x4.min_u(i32x4.trunc_sat_f32x4_u(f32x4.add(f32x4.mul(f32x4.sub(v128.load(p), lo), a), half)), top);
    const b1 = i32x4.min_u(i32x4.trunc_sat_f32x4_u(f32x4.add(f32x4.mul(f32x4.sub(v128.load(p, 16), lo), a), half)), top);
    const b2 = i32x4.min_u(i32x4.trunc_sat_f32x4_u(f32x4.add(f32x4.mul(f32x4.sub(v128.load(p, 32), lo), a), half)), top);
    const b3 = i32x4.min_u(i32x4.trunc_sat_f32x4_u(f32x4.add(f32x4.mul(f32x4.sub(v128.load(p, 48), lo), a), half)), top);
    v128.store(out + (s << 4), i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(b0, b1), i16x8.narrow_i32x4_u(b2, b3)));
  }
  tableLow = low;
  return <f32>1 / scale;
}

/** Scratch bytes of fastScanListsTopK: a block's lane sums, a byte table, a float table and the minima. */
export function fastScanListsScratch(m: i32): i32 {
  return 192 + (m << 4) + (m << 6) + (m << 2);
}

/**
 * Fast-scan of every probed list of queries [qFrom, qTo), probes [pFrom,
 * pTo) of each: dir holds per (query, probe) i = q * nprobe + p the list's
 * codes and ids addresses, its size (0: skipped) and its list number. Each
 * probe's byte table is quantised here from the float tables (fastscan.ts,
 * FastScanTables): the query's m x 16 floats at `tables`, less per list
 * `terms` when given (2 t - terms_l, l2 residuals), bias + extra[i] (0: none).
 * scratch holds fastScanListsScratch(m) bytes.
 */
export function fastScanListsTopK(
  tables: usize, terms: usize, extra: usize, m: i32, dir: usize, nprobe: i32,
  qFrom: i32, qTo: i32, pFrom: i32, pTo: i32,
  hIds: usize, hScores: usize, hSizes: usize, k: i32, scratch: usize, mask: usize,
): void {
  const size = <usize>m << 4;
  const bytes = scratch + 192;
  const floats = bytes + size;
  const lows = floats + (size << 2);
  for (let q = qFrom; q < qTo; q++) {
    const t = tables + <usize>q * (size << 2);
    let scale: f32 = 0, low: f32 = 0, ready = false;
    for (let p = pFrom; p < pTo; p++) {
      const i = q * nprobe + p;
      const e = dir + <usize>i * 16;
      const members = load<i32>(e, 8);
      if (members <= 0) continue;
      if (terms) {
        // the (query, list) table 2 t - terms_l in float32 (t + t is exact)
        const l = terms + <usize>load<i32>(e, 12) * (size << 2);
        for (let j: usize = 0; j < size << 2; j += 16) {
          const v = v128.load(t + j);
          v128.store(floats + j, f32x4.sub(f32x4.add(v, v), v128.load(l + j)));
        }
        scale = quantizeTable(floats, m, bytes, lows);
        low = tableLow;
      } else if (!ready) {
        // one table per query, quantised at its first probed list
        scale = quantizeTable(t, m, bytes, lows);
        low = tableLow;
        ready = true;
      }
      const add = low + (extra ? load<f32>(extra + (<usize>i << 2)) : <f32>0);
      fastScanRows(bytes, scale, add, m, load<u32>(e), 0, members, load<u32>(e, 4), q, hIds, hScores, hSizes, k, scratch, mask);
    }
  }
}

// ---- fused list scans: a whole scan stage for a block of queries in one call (packages/compute/src/lists.ts) ----
// The host passes a directory of the probed lists: entry e is 8 i32 words at dir + 32 e:
//   codes address, ids address, inverse norms address (0: computed here for cosine), members,
//   first and end index into `members` (the queries probing it, ascending), list number, and for float
//   lists the block layout (blockRows | groupWidth << 16, 0: rows one after another; see "prefix-blocked" below).
// Scores are computed exactly as scanTopK / scanCodedTopK / adcScanTopK compute them, so a fused scan
// gives the per-list calls' results bit for bit.

const ENC_F32: i32 = 2;

/** Queries gathered per pass over a list's blocks: up to 64, fewer for wide prefixes. */
export function listGroupRows(dim: i32): i32 {
  const g = 16384 / (dim + 1);
  return g < 4 ? 4 : g > 64 ? 64 : g;
}

/** Bytes of scratch scanListsTopK needs at prefix `dim`: scores of four queries, a decoded block, row norms, gathered queries and their norms. */
export function listScanScratch(dim: i32, coded: i32, masked: i32): i32 {
  const step = coded ? codedChunkRows(dim) : chunkRows(dim);
  // and with a filter its packed chunk: rows at dim, their ids and norms (packAllowed)
  return (4 * step + (coded ? step * dim : 0) + step + listGroupRows(dim) * (dim + 1) + (masked ? step * (dim + 2) : 0)) * 4 + 64 + BLOCKED_ACCS;
}

/**
 * Scans directory entries [eFrom, eTo) for the queries in [qFrom, qTo) that
 * probe them: each list's blocks are scored against up to listGroupRows
 * gathered queries at a time and kept in heap row = query number (through
 * candidate buffers, bufferPush). mode = metric + 4 * encoding (0 f16, 1 sq8,
 * 2 float32); bStride: elements per member; params: sq8 min then scale;
 * scratch: listScanScratch, then topKBufferBytes(qTo - qFrom, k).
 */
export function scanListsTopK(
  q: usize, qStride: i32, qInv: usize,
  dir: usize, eFrom: i32, eTo: i32, members: usize, qFrom: i32, qTo: i32,
  bStride: i32, dim: i32, mode: i32,
  hIds: usize, hScores: usize, hSizes: usize, k: i32, scratch: usize, params: usize, mask: usize,
): void {
  const metric = mode & 3, encoding = mode >> 2;
  const coded = encoding != ENC_F32;
  const step = coded ? codedChunkRows(dim) : chunkRows(dim);
  const scores = scratch;
  const decoded = scores + (<usize>(4 * step) << 2);
  const norms = decoded + (coded ? <usize>(step * dim) << 2 : 0);
  const group = norms + (<usize>step << 2);
  const most = listGroupRows(dim);
  const groupInv = group + (<usize>(most * dim) << 2);
  const packed = groupInv + (<usize>most << 2);
  const qs = <usize>qStride << 2;
  const rowBytes = <usize>dim << 2;
  const scratchEnd = scratch + <usize>listScanScratch(dim, coded ? 1 : 0, mask ? 1 : 0);
  const accs = scratchEnd - BLOCKED_ACCS; // scoreBlocked's partial sums
  // candidates go to per-row buffers past the scratch, back into the heaps at the end (bufferPush)
  const bufs = buffersOpen(scratchEnd, qFrom, qTo, hIds, hScores, hSizes, k);
  for (let e = eFrom; e < eTo; e++) {
    const entry = dir + (<usize>e << 5);
    const codes = <usize>load<u32>(entry);
    const ids = <usize>load<u32>(entry, 4);
    const bInv = <usize>load<u32>(entry, 8);
    const size = load<i32>(entry, 12);
    const mTo = load<i32>(entry, 20);
    const lay = load<i32>(entry, 28); // block layout (0: rows one after another)
    // blocked lists: chunks of whole 4-row tiles, so a tile never straddles two blocks (blockRows is a multiple of 4)
    const chunk = lay ? step & ~3 : step;
    if (size <= 0) continue;
    // this thread's queries of the list: members are ascending, so a contiguous run
    let a = load<i32>(entry, 16);
    while (a < mTo && load<i32>(members + (<usize>a << 2)) < qFrom) a++;
    let z = a;
    while (z < mTo && load<i32>(members + (<usize>z << 2)) < qTo) z++;
    for (let g0 = a; g0 < z; g0 += most) {
      const n = min(z - g0, most);
      for (let i = 0; i < n; i++) {
        const t = <usize>load<i32>(members + (<usize>(g0 + i) << 2));
        memory.copy(group + <usize>i * rowBytes, q + t * qs, rowBytes);
        if (metric == COSINE) store<f32>(groupInv + (<usize>i << 2), load<f32>(qInv + (t << 2)));
      }
      for (let from = 0; from < size; from += chunk) {
        const to = min(size, from + chunk);
        // a filter: a chunk with masked members is scored on its allowed members alone, packed (packAllowed)
        if (mask) {
          const kept = packAllowed(codes, ids, bInv, from, to, bStride, dim, encoding, params, lay, mask, packed, step, metric == COSINE);
          if (kept < to - from) {
            if (kept > 0) scorePacked(group, n, groupInv, packed, kept, step, dim, metric, scores, members, g0, bufs);
            continue;
          }
        }
        // rows [rFrom, rTo) of `rows` (stride rStride) are this block; inv is indexed like them
        let rows = codes, rFrom = from, rStride = bStride, inv: usize = 0;
        const blocked = lay != 0 && !coded; // float32 blocks are scored in place
        // fewer than four queries on f16/sq8 blocks: each decodes the rows in registers as it scores them (no decoded block)
        if (coded && n < 4 && codedFusable(lay, bStride, dim) && (metric != COSINE || bInv != 0)) {
          for (let u = 0; u < n; u++) {
            const out = scores + (<usize>(u * step) << 2);
            scoreBlockedCoded(group + <usize>u * rowBytes, groupInv, u, codes, from, to, lay, bStride, bInv, dim, metric, encoding, params, out, accs);
            bufferScores(out, from, to, ids, bufs, load<i32>(members + (<usize>(g0 + u) << 2)));
          }
          continue;
        }
        if (coded) {
          if (lay) decodeBlockedRows(codes, from, to, bStride, dim, encoding, params, decoded, lay);
          else decodeRows(codes, from, to, bStride, dim, encoding, params, decoded);
          rows = decoded; rFrom = 0; rStride = dim;
        }
        if (metric == COSINE) {
          if (bInv) inv = coded ? bInv + (<usize>from << 2) : bInv;
          else if (blocked) {
            invNormsBlocked(codes, from, to, lay, bStride, dim, norms);
            inv = norms - (<usize>from << 2);
          } else {
            invNorms(rows + <usize>rFrom * (<usize>rStride << 2), to - from, rStride, dim, norms);
            inv = norms - (<usize>rFrom << 2);
          }
        }
        for (let t = 0; t < n; t += 4) {
          const tEnd = min(n, t + 4);
          // four queries on a blocked list: scores straight to the heaps (scan4Blocked; `scores` holds its thresholds)
          if (blocked && tEnd - t == 4) {
            scan4Blocked(group + <usize>t * rowBytes, rowBytes, groupInv + (<usize>t << 2), members + (<usize>(g0 + t) << 2), codes, from, to, lay, bStride, inv, ids, dim, metric, bufs, scores);
            continue;
          }
          if (blocked) scoreBlocked(group, t, tEnd, dim, groupInv, codes, from, to, lay, bStride, inv, dim, metric, scores, step, accs);
          else scoreBlock(group, t, tEnd, dim, groupInv, rows, rFrom, rFrom + (to - from), rStride, inv, dim, metric, scores, step);
          for (let u = t; u < tEnd; u++) {
            bufferScores(scores + (<usize>((u - t) * step) << 2), from, to, ids, bufs, load<i32>(members + (<usize>(g0 + u) << 2)));
          }
        }
      }
    }
  }
  buffersClose(bufs, qFrom, qTo, hIds, hScores, hSizes);
}

/** ADC of codes [from, to) (m bytes each) on one query's tables `t` plus `add`, into heap row `row`; ids[j] names code j (j when ids is 0). */
function adcRows(t: usize, um: usize, codes: usize, from: i32, to: i32, ids: usize, add: f32, hIds: usize, hScores: usize, hSizes: usize, k: i32, row: i32, mask: usize = 0): void {
  let limit = threshold(hScores, hSizes, k, row);
  if (mask) {
    // a filter: allowed codes alone, each summed in the order of the unfiltered loop (bit-identical scores)
    for (let j = from; j < to; j++) {
      const id = ids ? load<i32>(ids + (<usize>j << 2)) : j;
      if (!maskAllows(mask, id)) continue;
      const c = codes + <usize>j * um;
      let acc: f32 = 0;
      for (let s: usize = 0; s < um; s++) acc += load<f32>(t + (s << 10) + (<usize>load<u8>(c + s) << 2));
      const sc = acc + add;
      if (sc >= limit) {
        heapPush(hIds, hScores, hSizes, k, row, id, sc);
        limit = threshold(hScores, hSizes, k, row);
      }
    }
    return;
  }
  for (let j = from; j < to; j += 4) {
    const n = min(4, to - j);
    const c0 = codes + <usize>j * um;
    let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
    if (n == 4) {
      const c1 = c0 + um, c2 = c1 + um, c3 = c2 + um;
      for (let s: usize = 0; s < um; s++) {
        const ts = t + (s << 10);
        s0 += load<f32>(ts + (<usize>load<u8>(c0 + s) << 2));
        s1 += load<f32>(ts + (<usize>load<u8>(c1 + s) << 2));
        s2 += load<f32>(ts + (<usize>load<u8>(c2 + s) << 2));
        s3 += load<f32>(ts + (<usize>load<u8>(c3 + s) << 2));
      }
    } else {
      for (let u = 0; u < n; u++) {
        const c = c0 + <usize>u * um;
        let acc: f32 = 0;
        for (let s: usize = 0; s < um; s++) acc += load<f32>(t + (s << 10) + (<usize>load<u8>(c + s) << 2));
        if (u == 0) s0 = acc; else if (u == 1) s1 = acc; else s2 = acc;
      }
    }
    for (let u = 0; u < n; u++) {
      const sc = (u == 0 ? s0 : u == 1 ? s1 : u == 2 ? s2 : s3) + add;
      if (sc >= limit) {
        const jj = j + u;
        heapPush(hIds, hScores, hSizes, k, row, ids ? load<i32>(ids + (<usize>jj << 2)) : jj, sc);
        limit = threshold(hScores, hSizes, k, row);
      }
    }
  }
}

/**
 * PQ lookup tables of vector v (dim values): out[s * 256 + c] = score of
 * v's sub-space s against centroid c (codebooks: 256 rows of dim values),
 * four centroids per pass as score() computes them.
 */
function pqTables(v: usize, codebooks: usize, bounds: usize, m: i32, dim: i32, l2: bool, out: usize): void {
  const cs = <usize>dim << 2;
  for (let s = 0; s < m; s++) {
    const from = load<i32>(bounds + (<usize>s << 2));
    const sub = load<i32>(bounds + (<usize>(s + 1) << 2)) - from;
    const vs = v + (<usize>from << 2);
    const cb = codebooks + (<usize>from << 2);
    const o = out + (<usize>(s << 8) << 2);
    for (let c = 0; c < 256; c += 4) tile1x4(vs, cb + <usize>c * cs, cs, sub, l2, o + (<usize>c << 2));
  }
}

/** Scratch bytes pqScanListsTopK needs: the rotated query, a residual and M x 256 tables. */
export function pqScanScratch(dim: i32, m: i32): i32 {
  return (2 * ((dim + 3) & ~3) + m * 256) * 4 + 64;
}

/**
 * PQ/OPQ list scan for queries [qFrom, qTo), probe positions [pFrom, pTo)
 * of each: x (stride xStride) is the query, rotated (y = R x) and turned into
 * tables in the kernel; entries[q * nprobe + p] names the directory entry
 * scanned (-1: none). cfg holds 8 i32 words: dim, m, codebooks, bounds,
 * rotation (0: none), biases (0: none; else f32 per (query, probe) slot,
 * the ip residual terms x . ref the host computed in float64, lists.ts
 * pqListBiases), per-list references for l2 tables (0: one table per
 * query), metric.
 */
export function pqScanListsTopK(
  x: usize, xStride: i32, qFrom: i32, qTo: i32,
  entries: usize, nprobe: i32, pFrom: i32, pTo: i32, dir: usize, cfg: usize,
  hIds: usize, hScores: usize, hSizes: usize, k: i32, scratch: usize, mask: usize,
): void {
  const dim = load<i32>(cfg), m = load<i32>(cfg, 4);
  const codebooks = <usize>load<u32>(cfg, 8), bounds = <usize>load<u32>(cfg, 12);
  const rotation = <usize>load<u32>(cfg, 16), biases = <usize>load<u32>(cfg, 20), listRefs = <usize>load<u32>(cfg, 24);
  const l2 = load<i32>(cfg, 28) == L2;
  const um = <usize>m;
  const padded = <usize>((dim + 3) & ~3) << 2;
  const rotated = scratch, diff = scratch + padded, tables = scratch + 2 * padded;
  const rowBytes = <usize>dim << 2;
  for (let q = qFrom; q < qTo; q++) {
    const xq = x + <usize>q * (<usize>xStride << 2);
    let y = xq;
    if (rotation) {
      for (let i = 0; i < dim; i++) store<f32>(rotated + (<usize>i << 2), pair(xq, rotation + <usize>i * rowBytes, dim, false));
      y = rotated;
    }
    if (!listRefs) pqTables(y, codebooks, bounds, m, dim, l2, tables);
    for (let p = pFrom; p < pTo; p++) {
      const e = load<i32>(entries + (<usize>(q * nprobe + p) << 2));
      if (e < 0) continue;
      const entry = dir + (<usize>e << 5);
      const size = load<i32>(entry, 12);
      if (size <= 0) continue;
      // a filter leaving the list empty: no table, no term (as the reference scans its compacted, empty copy)
      if (mask && !anyAllowed(mask, <usize>load<u32>(entry, 4), size)) continue;
      const list = <usize>load<i32>(entry, 24);
      let add: f32 = 0;
      if (listRefs) {
        // tables on y - ref: the residual the codes encode
        const r = listRefs + list * rowBytes;
        for (let i = 0; i < dim; i++) store<f32>(diff + (<usize>i << 2), load<f32>(y + (<usize>i << 2)) - load<f32>(r + (<usize>i << 2)));
        pqTables(diff, codebooks, bounds, m, dim, l2, tables);
      } else if (biases) {
        add = load<f32>(biases + (<usize>(q * nprobe + p) << 2));
      }
      adcRows(tables, um, <usize>load<u32>(entry), 0, size, <usize>load<u32>(entry, 4), add, hIds, hScores, hSizes, k, q, mask);
    }
  }
}

/**
 * out[r] = 1 / ||row r [:dim]|| exactly as the TypeScript reference computes
 * it (packages/compute/src/reference/kernels.ts, computeInvNorms): squares
 * summed in float64 in order, 1 / sqrt in float64, rounded to float32 (0 for
 * a zero prefix). Eight rows side by side keep the adder busy; each row is
 * summed in the same order as alone. For rows a search gathers (re-rank), so
 * their scores equal those of the same rows kept resident with their norms.
 */
export function invNormsExact(p: usize, rows: i32, stride: i32, dim: i32, out: usize): void {
  const s = <usize>stride << 2;
  let r = 0;
  for (; r + 8 <= rows; r += 8) {
    const p0 = p + <usize>r * s;
    let a0: f64 = 0, a1: f64 = 0, a2: f64 = 0, a3: f64 = 0, a4: f64 = 0, a5: f64 = 0, a6: f64 = 0, a7: f64 = 0;
    for (let i = 0; i < dim; i++) {
      const o = p0 + (<usize>i << 2);
      const x0 = <f64>load<f32>(o), x1 = <f64>load<f32>(o + s), x2 = <f64>load<f32>(o + 2 * s), x3 = <f64>load<f32>(o + 3 * s);
      const x4 = <f64>load<f32>(o + 4 * s), x5 = <f64>load<f32>(o + 5 * s), x6 = <f64>load<f32>(o + 6 * s), x7 = <f64>load<f32>(o + 7 * s);
      a0 += x0 * x0; a1 += x1 * x1; a2 += x2 * x2; a3 += x3 * x3;
      a4 += x4 * x4; a5 += x5 * x5; a6 += x6 * x6; a7 += x7 * x7;
    }
    const w = out + (<usize>r << 2);
    store<f32>(w, a0 > 0 ? <f32>(1.0 / Math.sqrt(a0)) : 0);
    store<f32>(w, a1 > 0 ? <f32>(1.0 / Math.sqrt(a1)) : 0, 4);
    store<f32>(w, a2 > 0 ? <f32>(1.0 / Math.sqrt(a2)) : 0, 8);
    store<f32>(w, a3 > 0 ? <f32>(1.0 / Math.sqrt(a3)) : 0, 12);
    store<f32>(w, a4 > 0 ? <f32>(1.0 / Math.sqrt(a4)) : 0, 16);
    store<f32>(w, a5 > 0 ? <f32>(1.0 / Math.sqrt(a5)) : 0, 20);
    store<f32>(w, a6 > 0 ? <f32>(1.0 / Math.sqrt(a6)) : 0, 24);
    store<f32>(w, a7 > 0 ? <f32>(1.0 / Math.sqrt(a7)) : 0, 28);
  }
  for (; r < rows; r++) {
    const pr = p + <usize>r * s;
    let a: f64 = 0;
    for (let i = 0; i < dim; i++) {
      const x = <f64>load<f32>(pr + (<usize>i << 2));
      a += x * x;
    }
    store<f32>(out + (<usize>r << 2), a > 0 ? <f32>(1.0 / Math.sqrt(a)) : 0);
  }
}

// ---- the prefix-blocked list layout (packages/compute/src/blocked.ts) ----
// A list's members lie in blocks of B rows; inside a block, elements [g w, g w + w) of its rows (group g)
// lie row after row, then group g + 1 (a stride that is not a multiple of w has a narrower last group).
// A scan at prefix dim reads the first ceil(dim / w) groups of each block, each one contiguous run.
// `lay` is a directory entry's word 7: B | w << 16 (0: rows one after another). Each row's products are
// added in the same order as pair() and the tiles add them on rows one after another, so blocked and
// row-major lists score bit-identically.

/** Address of row r's group g in a blocked list at `codes` (stride elements of eb bytes per row). */
@inline function blockedAt(codes: usize, r: i32, g: i32, lay: i32, stride: i32, eb: i32): usize {
  const b = lay & 0xffff, w = lay >>> 16;
  const width = min(w, stride - g * w);
  return codes + <usize>(r / b) * <usize>(b * stride * eb) + <usize>((g * b * w + (r % b) * width) * eb);
}

/** Where row r's full-width groups start: group g lies g * B * w * eb bytes after it (blockedGroup); the kernels advance it instead where they walk rows. */
@inline function blockedRow(codes: usize, r: i32, lay: i32, stride: i32, eb: i32): usize {
  const b = lay & 0xffff;
  return codes + <usize>(r / b) * <usize>(b * stride * eb) + <usize>((r % b) * (lay >>> 16) * eb);
}

/** Row r's group g from its blockedRow address `row` (the narrow last group computed in full). */
@inline function blockedGroup(row: usize, codes: usize, r: i32, g: i32, lay: i32, stride: i32, eb: i32): usize {
  const w = lay >>> 16;
  return (g + 1) * w <= stride ? row + <usize>(g * (lay & 0xffff) * w * eb) : blockedAt(codes, r, g, lay, stride, eb);
}

/** dotTail / l2Tail (sign not applied) over elements [from, dim) of float32 row r of a blocked list. */
function blockedTail(q: usize, codes: usize, r: i32, from: i32, dim: i32, lay: i32, stride: i32, l2: bool, s: f32): f32 {
  const w = lay >>> 16;
  for (let i = from; i < dim; i++) {
    const g = i / w;
    const x = load<f32>(blockedAt(codes, r, g, lay, stride, 4) + (<usize>(i - g * w) << 2));
    const y = load<f32>(q + (<usize>i << 2));
    if (l2) {
      const d = y - x;
      s += d * d;
    } else s += y * x;
  }
  return s;
}

/** pair() of a query and float32 row r of a blocked list. */
function pairBlocked(q: usize, codes: usize, r: i32, dim: i32, lay: i32, stride: i32, l2: bool): f32 {
  const w = lay >>> 16;
  const d4 = dim & ~3;
  const row = blockedRow(codes, r, lay, stride, 4);
  let acc = f32x4.splat(0);
  for (let i0 = 0, g = 0; i0 < d4; i0 += w, g++) {
    const p = blockedGroup(row, codes, r, g, lay, stride, 4);
    const qg = q + (<usize>i0 << 2);
    const n = <usize>min(w, d4 - i0) << 2;
    if (l2) {
      for (let o: usize = 0; o < n; o += 16) {
        const d = f32x4.sub(v128.load(qg + o), v128.load(p + o));
        acc = f32x4.add(acc, f32x4.mul(d, d));
      }
    } else {
      for (let o: usize = 0; o < n; o += 16) acc = f32x4.add(acc, f32x4.mul(v128.load(qg + o), v128.load(p + o)));
    }
  }
  const s = (d4 < dim ? blockedTail(q, codes, r, d4, dim, lay, stride, l2, hsum(acc)) : hsum(acc));
  return l2 ? -s : s;
}

/** Rows a query-alone pass over a blocked list keeps partial sums for (a run inside one block), and their bytes. */
const BLOCKED_SEGMENT: i32 = 64;
const BLOCKED_ACCS: i32 = BLOCKED_SEGMENT * 16;

/**
 * One query against float32 rows j0 .. j0+n-1 of one block (rowAt =
 * blockedRow(j0), j0 a multiple of 4, n <= BLOCKED_SEGMENT): group after
 * group, each a contiguous run, the rows' four-lane sums kept in `accs`
 * between groups, so each row adds its products in the order of pair().
 * Scores to out[0 .. n).
 */
function segment1Blocked(qp: usize, codes: usize, j0: i32, n: i32, rowAt: usize, dim: i32, lay: i32, stride: i32, fullEnd: i32, l2: bool, out: usize, accs: usize): void {
  const w = lay >>> 16;
  const gs = <usize>((lay & 0xffff) * w) << 2;
  const d4 = dim & ~3;
  if (d4 == 0) {
    for (let r = 0; r < n; r++) store<f32>(out + (<usize>r << 2), pairBlocked(qp, codes, j0 + r, dim, lay, stride, l2));
    return;
  }
  const zero = f32x4.splat(0);
  const quads = n & ~3;
  for (let i0 = 0, g = 0; i0 < d4; i0 += w, g++) {
    const first = i0 == 0, last = i0 + w >= d4;
    const narrow = i0 >= fullEnd;
    const base = narrow ? blockedAt(codes, j0, g, lay, stride, 4) : rowAt + <usize>g * gs;
    const rs = narrow ? <usize>(stride - fullEnd) << 2 : <usize>w << 2;
    const len = <usize>(min(i0 + w, d4) - i0) << 2;
    const qg = qp + (<usize>i0 << 2);
    const fast = len == 64 && rs == 64; // a whole group of 16 values
    // the common case (whole groups, dot products, no tail): a row at a time with the query's 16 values held in
    // registers, 1.7x the four-row tile below on cached rows (no query reloads, a small loop body)
    if (fast && !l2 && d4 == dim) {
      const x0 = v128.load(qg), x1 = v128.load(qg, 16), x2 = v128.load(qg, 32), x3 = v128.load(qg, 48);
      const end = base + (<usize>n << 6);
      for (let p = base, ap = accs, o = out; p < end; p += 64, ap += 16, o += 4) {
        let a = first ? zero : v128.load(ap);
        a = f32x4.add(a, f32x4.mul(x0, v128.load(p)));
        a = f32x4.add(a, f32x4.mul(x1, v128.load(p, 16)));
        a = f32x4.add(a, f32x4.mul(x2, v128.load(p, 32)));
        a = f32x4.add(a, f32x4.mul(x3, v128.load(p, 48)));
        if (last) store<f32>(o, hsum(a));
        else v128.store(ap, a);
      }
      continue;
    }
    for (let r = 0; r < quads; r += 4) {
      const ap = accs + (<usize>r << 4);
      let a0 = first ? zero : v128.load(ap), a1 = first ? zero : v128.load(ap, 16);
      let a2 = first ? zero : v128.load(ap, 32), a3 = first ? zero : v128.load(ap, 48);
      const p0 = base + <usize>r * rs;
      if (fast) {
        if (l2) {
          let x = v128.load(qg);
          let d = f32x4.sub(x, v128.load(p0)); a0 = f32x4.add(a0, f32x4.mul(d, d));
          d = f32x4.sub(x, v128.load(p0, 64)); a1 = f32x4.add(a1, f32x4.mul(d, d));
          d = f32x4.sub(x, v128.load(p0, 128)); a2 = f32x4.add(a2, f32x4.mul(d, d));
          d = f32x4.sub(x, v128.load(p0, 192)); a3 = f32x4.add(a3, f32x4.mul(d, d));
          x = v128.load(qg, 16);
          d = f32x4.sub(x, v128.load(p0, 16)); a0 = f32x4.add(a0, f32x4.mul(d, d));
          d = f32x4.sub(x, v128.load(p0, 80)); a1 = f32x4.add(a1, f32x4.mul(d, d));
          d = f32x4.sub(x, v128.load(p0, 144)); a2 = f32x4.add(a2, f32x4.mul(d, d));
          d = f32x4.sub(x, v128.load(p0, 208)); a3 = f32x4.add(a3, f32x4.mul(d, d));
          x = v128.load(qg, 32);
          d = f32x4.sub(x, v128.load(p0, 32)); a0 = f32x4.add(a0, f32x4.mul(d, d));
          d = f32x4.sub(x, v128.load(p0, 96)); a1 = f32x4.add(a1, f32x4.mul(d, d));
          d = f32x4.sub(x, v128.load(p0, 160)); a2 = f32x4.add(a2, f32x4.mul(d, d));
          d = f32x4.sub(x, v128.load(p0, 224)); a3 = f32x4.add(a3, f32x4.mul(d, d));
          x = v128.load(qg, 48);
          d = f32x4.sub(x, v128.load(p0, 48)); a0 = f32x4.add(a0, f32x4.mul(d, d));
          d = f32x4.sub(x, v128.load(p0, 112)); a1 = f32x4.add(a1, f32x4.mul(d, d));
          d = f32x4.sub(x, v128.load(p0, 176)); a2 = f32x4.add(a2, f32x4.mul(d, d));
          d = f32x4.sub(x, v128.load(p0, 240)); a3 = f32x4.add(a3, f32x4.mul(d, d));
        } else {
          let x = v128.load(qg);
          a0 = f32x4.add(a0, f32x4.mul(x, v128.load(p0)));
          a1 = f32x4.add(a1, f32x4.mul(x, v128.load(p0, 64)));
          a2 = f32x4.add(a2, f32x4.mul(x, v128.load(p0, 128)));
          a3 = f32x4.add(a3, f32x4.mul(x, v128.load(p0, 192)));
          x = v128.load(qg, 16);
          a0 = f32x4.add(a0, f32x4.mul(x, v128.load(p0, 16)));
          a1 = f32x4.add(a1, f32x4.mul(x, v128.load(p0, 80)));
          a2 = f32x4.add(a2, f32x4.mul(x, v128.load(p0, 144)));
          a3 = f32x4.add(a3, f32x4.mul(x, v128.load(p0, 208)));
          x = v128.load(qg, 32);
          a0 = f32x4.add(a0, f32x4.mul(x, v128.load(p0, 32)));
          a1 = f32x4.add(a1, f32x4.mul(x, v128.load(p0, 96)));
          a2 = f32x4.add(a2, f32x4.mul(x, v128.load(p0, 160)));
          a3 = f32x4.add(a3, f32x4.mul(x, v128.load(p0, 224)));
          x = v128.load(qg, 48);
          a0 = f32x4.add(a0, f32x4.mul(x, v128.load(p0, 48)));
          a1 = f32x4.add(a1, f32x4.mul(x, v128.load(p0, 112)));
          a2 = f32x4.add(a2, f32x4.mul(x, v128.load(p0, 176)));
          a3 = f32x4.add(a3, f32x4.mul(x, v128.load(p0, 240)));
        }
      } else {
        const p1 = p0 + rs, p2 = p1 + rs, p3 = p2 + rs;
        for (let o: usize = 0; o < len; o += 16) {
          const x = v128.load(qg + o);
          if (l2) {
            let d = f32x4.sub(x, v128.load(p0 + o)); a0 = f32x4.add(a0, f32x4.mul(d, d));
            d = f32x4.sub(x, v128.load(p1 + o)); a1 = f32x4.add(a1, f32x4.mul(d, d));
            d = f32x4.sub(x, v128.load(p2 + o)); a2 = f32x4.add(a2, f32x4.mul(d, d));
            d = f32x4.sub(x, v128.load(p3 + o)); a3 = f32x4.add(a3, f32x4.mul(d, d));
          } else {
            a0 = f32x4.add(a0, f32x4.mul(x, v128.load(p0 + o)));
            a1 = f32x4.add(a1, f32x4.mul(x, v128.load(p1 + o)));
            a2 = f32x4.add(a2, f32x4.mul(x, v128.load(p2 + o)));
            a3 = f32x4.add(a3, f32x4.mul(x, v128.load(p3 + o)));
          }
        }
      }
      if (last) {
        const o = out + (<usize>r << 2);
        const s0 = d4 < dim ? blockedTail(qp, codes, j0 + r, d4, dim, lay, stride, l2, hsum(a0)) : hsum(a0);
        const s1 = d4 < dim ? blockedTail(qp, codes, j0 + r + 1, d4, dim, lay, stride, l2, hsum(a1)) : hsum(a1);
        const s2 = d4 < dim ? blockedTail(qp, codes, j0 + r + 2, d4, dim, lay, stride, l2, hsum(a2)) : hsum(a2);
        const s3 = d4 < dim ? blockedTail(qp, codes, j0 + r + 3, d4, dim, lay, stride, l2, hsum(a3)) : hsum(a3);
        store<f32>(o, l2 ? -s0 : s0);
        store<f32>(o, l2 ? -s1 : s1, 4);
        store<f32>(o, l2 ? -s2 : s2, 8);
        store<f32>(o, l2 ? -s3 : s3, 12);
      } else {
        v128.store(ap, a0);
        v128.store(ap, a1, 16);
        v128.store(ap, a2, 32);
        v128.store(ap, a3, 48);
      }
    }
    for (let r = quads; r < n; r++) {
      const ap = accs + (<usize>r << 4);
      let a = first ? zero : v128.load(ap);
      const p = base + <usize>r * rs;
      for (let o: usize = 0; o < len; o += 16) {
        if (l2) {
          const d = f32x4.sub(v128.load(qg + o), v128.load(p + o));
          a = f32x4.add(a, f32x4.mul(d, d));
        } else a = f32x4.add(a, f32x4.mul(v128.load(qg + o), v128.load(p + o)));
      }
      if (last) {
        const sc = d4 < dim ? blockedTail(qp, codes, j0 + r, d4, dim, lay, stride, l2, hsum(a)) : hsum(a);
        store<f32>(out + (<usize>r << 2), l2 ? -sc : sc);
      } else v128.store(ap, a);
    }
  }
}

/**
 * scoreBlock() over float32 rows [bFrom, bTo) of a blocked list, read in
 * place (bInv indexed by row number), for fewer than four queries (four run
 * scan4Blocked); bFrom is a multiple of 4. A query alone, memory-bound, runs
 * segment1Blocked over the runs of rows inside one block, reading each block
 * group after group (one sequential stream) with the partial sums in `accs`
 * (BLOCKED_ACCS bytes).
 */
function scoreBlocked(
  q: usize, qFrom: i32, qTo: i32, qStride: i32, qInv: usize,
  codes: usize, bFrom: i32, bTo: i32, lay: i32, stride: i32, bInv: usize,
  dim: i32, metric: i32, out: usize, outStride: i32, accs: usize,
): void {
  const l2 = metric == L2;
  const qs = <usize>qStride << 2, os = <usize>outStride << 2;
  // row addresses advance through the blocks (no division per tile)
  const b = lay & 0xffff;
  const blockBytes = <usize>(b * stride) << 2, rowBytes = <usize>(lay >>> 16) << 2;
  const firstBlock = codes + <usize>(bFrom / b) * blockBytes, firstRow = bFrom % b;
  const fullEnd = stride - stride % (lay >>> 16);
  for (let t = qFrom; t < qTo; t++) {
    const qp = q + <usize>t * qs;
    const op = out + <usize>(t - qFrom) * os;
    let j = bFrom;
    let block = firstBlock, ro = firstRow;
    while (j < bTo) {
      const n = min(bTo - j, min(BLOCKED_SEGMENT, b - ro));
      segment1Blocked(qp, codes, j, n, block + <usize>ro * rowBytes, dim, lay, stride, fullEnd, l2, op + (<usize>(j - bFrom) << 2), accs);
      j += n;
      ro += n;
      if (ro == b) {
        ro = 0;
        block += blockBytes;
      }
    }
  }
  if (metric == COSINE) scaleCosine(qInv, qFrom, qTo, bInv, bFrom, bTo, out, os);
}

/**
 * Whether scoreBlockedCoded can score f16/sq8 rows of a blocked list at
 * prefix `dim`: groups 16 values wide, the prefix whole groups, none of them
 * the narrow last group of a stride that is not a multiple of 16.
 */
@inline function codedFusable(lay: i32, stride: i32, dim: i32): bool {
  return lay != 0 && (lay >>> 16) == 16 && (dim & 15) == 0 && dim <= stride - (stride & 15);
}

/** One row's group of 16 decoded values v0..v3 added to its four-lane sum `a` against the query's x0..x3, in pair()'s order. */
@inline function addGroup(a: v128, x0: v128, x1: v128, x2: v128, x3: v128, v0: v128, v1: v128, v2: v128, v3: v128, l2: bool): v128 {
  if (l2) {
    let d = f32x4.sub(x0, v0); a = f32x4.add(a, f32x4.mul(d, d));
    d = f32x4.sub(x1, v1); a = f32x4.add(a, f32x4.mul(d, d));
    d = f32x4.sub(x2, v2); a = f32x4.add(a, f32x4.mul(d, d));
    d = f32x4.sub(x3, v3);
    return f32x4.add(a, f32x4.mul(d, d));
  }
  a = f32x4.add(a, f32x4.mul(x0, v0));
  a = f32x4.add(a, f32x4.mul(x1, v1));
  a = f32x4.add(a, f32x4.mul(x2, v2));
  return f32x4.add(a, f32x4.mul(x3, v3));
}

/**
 * A query alone (at qp; its cosine inverse norm at qInv + 4t) over f16 or
 * sq8 rows [bFrom, bTo) of a blocked list (codedFusable; bFrom a multiple of
 * 4): each row's group of 16 values is decoded in registers exactly as
 * decodeHalves() / decodeBytes() decode it and multiplied at once, adding
 * the products in pair()'s order, so the scores are bit for bit those of
 * decoding the rows and scoring them (scanListsTopK's coded path) without
 * the decoded block's round trip through memory. Group after group over
 * runs of up to BLOCKED_SEGMENT rows of one block, partial sums in `accs`.
 * bInv: the rows' inverse norms by row number (cosine); params: sq8 min then
 * scale. Scores to out[j - bFrom].
 */
function scoreBlockedCoded(qp: usize, qInv: usize, t: i32, codes: usize, bFrom: i32, bTo: i32, lay: i32, stride: i32, bInv: usize, dim: i32, metric: i32, encoding: i32, params: usize, out: usize, accs: usize): void {
  const l2 = metric == L2;
  const half = encoding == ENC_F16;
  const eb: i32 = half ? 2 : 1;
  const b = lay & 0xffff;
  const blockBytes = <usize>(b * stride * eb), rowBytes = <usize>(16 * eb), gs = <usize>(b * 16 * eb);
  const scales = params + (<usize>stride << 2);
  const zero = f32x4.splat(0);
  let j = bFrom;
  let block = codes + <usize>(bFrom / b) * blockBytes, ro = bFrom % b;
  while (j < bTo) {
    const n = min(bTo - j, min(BLOCKED_SEGMENT, b - ro));
    const o = out + (<usize>(j - bFrom) << 2);
    for (let i0 = 0; i0 < dim; i0 += 16) {
      const first = i0 == 0, last = i0 + 16 >= dim;
      const e = <usize>i0 << 2;
      const x0 = v128.load(qp + e), x1 = v128.load(qp + e, 16), x2 = v128.load(qp + e, 32), x3 = v128.load(qp + e, 48);
      const run = block + <usize>(i0 >> 4) * gs + <usize>ro * rowBytes;
      if (half) {
        for (let r = 0; r < n; r++) {
          const p = run + <usize>r * rowBytes;
          const h0 = v128.load(p), h1 = v128.load(p, 16);
          const ap = accs + (<usize>r << 4);
          const v0 = halves4(i32x4.extend_low_i16x8_u(h0)), v1 = halves4(i32x4.extend_high_i16x8_u(h0));
          const v2 = halves4(i32x4.extend_low_i16x8_u(h1)), v3 = halves4(i32x4.extend_high_i16x8_u(h1));
          const a = addGroup(first ? zero : v128.load(ap), x0, x1, x2, x3, v0, v1, v2, v3, l2);
          if (last) {
            const sc = hsum(a);
            store<f32>(o + (<usize>r << 2), l2 ? -sc : sc);
          } else v128.store(ap, a);
        }
      } else {
        const m0 = v128.load(params + e), m1 = v128.load(params + e, 16), m2 = v128.load(params + e, 32), m3 = v128.load(params + e, 48);
        const s0 = v128.load(scales + e), s1 = v128.load(scales + e, 16), s2 = v128.load(scales + e, 32), s3 = v128.load(scales + e, 48);
        for (let r = 0; r < n; r++) {
          const c = v128.load(run + (<usize>r << 4));
          const w0 = i16x8.extend_low_i8x16_u(c), w1 = i16x8.extend_high_i8x16_u(c);
          const v0 = bytes4(i32x4.extend_low_i16x8_u(w0), m0, s0), v1 = bytes4(i32x4.extend_high_i16x8_u(w0), m1, s1);
          const v2 = bytes4(i32x4.extend_low_i16x8_u(w1), m2, s2), v3 = bytes4(i32x4.extend_high_i16x8_u(w1), m3, s3);
          const ap = accs + (<usize>r << 4);
          const a = addGroup(first ? zero : v128.load(ap), x0, x1, x2, x3, v0, v1, v2, v3, l2);
          if (last) {
            const sc = hsum(a);
            store<f32>(o + (<usize>r << 2), l2 ? -sc : sc);
          } else v128.store(ap, a);
        }
      }
    }
    j += n;
    ro += n;
    if (ro == b) {
      ro = 0;
      block += blockBytes;
    }
  }
  if (metric == COSINE) scaleCosine(qInv, t, t + 1, bInv, bFrom, bTo, out, 0);
}

/** invNorms() of float32 rows [from, to) of a blocked list: out[r - from]. */
function invNormsBlocked(codes: usize, from: i32, to: i32, lay: i32, stride: i32, dim: i32, out: usize): void {
  const b = lay & 0xffff, w = lay >>> 16;
  const d4 = dim & ~3;
  const blockBytes = <usize>(b * stride) << 2, rowBytes = <usize>w << 2, gs = <usize>(b * w) << 2;
  const fullEnd = stride - stride % w;
  let block = codes + <usize>(from / b) * blockBytes, ro = from % b;
  for (let r = from; r < to; r++) {
    let acc = f32x4.splat(0);
    let src = block + <usize>ro * rowBytes;
    for (let i0 = 0; i0 < d4; i0 += w, src += gs) {
      const p = i0 >= fullEnd ? blockedAt(codes, r, i0 / w, lay, stride, 4) : src;
      const n = <usize>min(w, d4 - i0) << 2;
      for (let o: usize = 0; o < n; o += 16) {
        const x = v128.load(p + o);
        acc = f32x4.add(acc, f32x4.mul(x, x));
      }
    }
    let s = hsum(acc);
    for (let i = d4; i < dim; i++) {
      const g = i / w;
      const x = load<f32>(blockedAt(codes, r, g, lay, stride, 4) + (<usize>(i - g * w) << 2));
      s += x * x;
    }
    store<f32>(out + (<usize>(r - from) << 2), s > 0 ? <f32>1 / Mathf.sqrt(s) : 0);
    if (++ro == b) {
      ro = 0;
      block += blockBytes;
    }
  }
}

/** decodeRows() of rows [from, to) of a blocked f16 / sq8 list: each group's run decodes like a row of its width. */
function decodeBlockedRows(codes: usize, from: i32, to: i32, stride: i32, dim: i32, encoding: i32, params: usize, out: usize, lay: i32): void {
  const b = lay & 0xffff, w = lay >>> 16, eb = encoding == ENC_F16 ? 2 : 1;
  const blockBytes = <usize>(b * stride * eb), rowBytes = <usize>(w * eb), gs = <usize>(b * w * eb);
  const fullEnd = stride - stride % w;
  const scale = params + (<usize>stride << 2);
  let block = codes + <usize>(from / b) * blockBytes, ro = from % b;
  for (let r = from; r < to; r++) {
    const dst = out + (<usize>((r - from) * dim) << 2);
    let src = block + <usize>ro * rowBytes;
    for (let i0 = 0; i0 < dim; i0 += w, src += gs) {
      const at = i0 >= fullEnd ? blockedAt(codes, r, i0 / w, lay, stride, eb) : src;
      const n = min(w, dim - i0);
      const o = <usize>i0 << 2;
      if (encoding == ENC_F16) decodeHalves(at, n, dst + o);
      else decodeBytes(at, n, params + o, scale + o, dst + o);
    }
    if (++ro == b) {
      ro = 0;
      block += blockBytes;
    }
  }
}

// ---- filters (packages/compute/src/mask.ts): a bitset over the ids a scan reports ----
// `mask` points at the number of 32-bit words, then the words: bit id (word id >>> 5, bit id & 31) set =
// the member reporting id may be scored; ids past the words are not. 0 = no filter. A masked scan scores
// the allowed members alone, as the reference scans their compacted copy, so scores are bit-identical.

/** Whether any of a list's `size` members (ids at `ids`) is allowed. */
function anyAllowed(mask: usize, ids: usize, size: i32): bool {
  for (let j = 0; j < size; j++) if (maskAllows(mask, load<i32>(ids + (<usize>j << 2)))) return true;
  return false;
}

@inline function maskAllows(mask: usize, id: i32): bool {
  const w = <u32>id >>> 5;
  return w < load<u32>(mask) && ((load<u32>(mask + 4 + (<usize>w << 2)) >>> (<u32>id & 31)) & 1) != 0;
}

/**
 * Packs the allowed members of list chunk [from, to) for a masked scanListsTopK:
 * their first `dim` values as float32 rows one after another at `packed`
 * (decoded for f16/sq8, gathered from the blocks of a blocked list), then
 * `step` ids, then `step` cosine inverse norms (copied when the list keeps
 * them, else computed as invNorms computes them). Returns how many are
 * allowed; when all are, nothing is packed (the chunk is scored in place).
 */
function packAllowed(
  codes: usize, ids: usize, bInv: usize, from: i32, to: i32, stride: i32, dim: i32, encoding: i32, params: usize, lay: i32,
  mask: usize, packed: usize, step: i32, cosine: bool,
): i32 {
  let allowed = 0;
  for (let j = from; j < to; j++) if (maskAllows(mask, ids ? load<i32>(ids + (<usize>j << 2)) : j)) allowed++;
  if (allowed == 0 || allowed == to - from) return allowed;
  const packedIds = packed + (<usize>(step * dim) << 2);
  const packedInv = packedIds + (<usize>step << 2);
  const rowBytes = <usize>dim << 2;
  const w = lay >>> 16;
  let n = 0;
  for (let j = from; j < to; j++) {
    const id = ids ? load<i32>(ids + (<usize>j << 2)) : j;
    if (!maskAllows(mask, id)) continue;
    const dst = packed + <usize>n * rowBytes;
    if (encoding != ENC_F32) {
      if (lay) decodeBlockedRows(codes, j, j + 1, stride, dim, encoding, params, dst, lay);
      else decodeRows(codes, j, j + 1, stride, dim, encoding, params, dst);
    } else if (lay) {
      for (let g = 0; g * w < dim; g++) memory.copy(dst + (<usize>(g * w) << 2), blockedAt(codes, j, g, lay, stride, 4), <usize>min(w, dim - g * w) << 2);
    } else {
      memory.copy(dst, codes + (<usize>j * <usize>stride << 2), rowBytes);
    }
    store<i32>(packedIds + (<usize>n << 2), id);
    if (cosine && bInv) store<f32>(packedInv + (<usize>n << 2), load<f32>(bInv + (<usize>j << 2)));
    n++;
  }
  if (cosine && !bInv) invNorms(packed, n, dim, dim, packedInv);
  return n;
}

/** Scores the n gathered queries of a list scan against `kept` packed rows (packAllowed) and pushes them under the packed ids. */
function scorePacked(
  group: usize, n: i32, groupInv: usize, packed: usize, kept: i32, step: i32, dim: i32, metric: i32, scores: usize,
  members: usize, g0: i32, bufs: Buffers,
): void {
  const packedIds = packed + (<usize>(step * dim) << 2);
  const packedInv = packedIds + (<usize>step << 2);
  for (let t = 0; t < n; t += 4) {
    const tEnd = min(n, t + 4);
    scoreBlock(group, t, tEnd, dim, groupInv, packed, 0, kept, dim, packedInv, dim, metric, scores, step);
    for (let u = t; u < tEnd; u++) {
      bufferScores(scores + (<usize>((u - t) * step) << 2), 0, kept, packedIds, bufs, load<i32>(members + (<usize>(g0 + u) << 2)));
    }
  }
}

// ---- re-rank from lists: candidates scored where they lie (packages/compute/src/lists.ts, ListCandidates) ----
// A funnel stage (or a re-rank) from the lists names each candidate by a directory entry (as the fused list
// scans' directory: codes, ids, cosine norms kept at the rescored prefix or 0, ..., block layout) and a member
// position. Its prefix is scored exactly as rescoreTopK scores the same member decoded into a gathered block
// (tile1x4At: pair()'s order; cosine s *= qi * bi, bi the kept norm or invNormsExact of the decoded prefix)
// and pushed under the id its list reports, so no row is read on the host. Float32 members are read in place
// (blocked: each group of the prefix one contiguous run); f16 / sq8 members are decoded into the scratch.

/** Bytes of scratch rescoreListsTopK needs at prefix `dim`: four decoded prefixes, and per tile four addresses, ids and norms. */
export function listRescoreScratch(dim: i32): i32 {
  return (4 * dim + 12) * 4 + 64;
}

/**
 * tile1x4At() of four float32 members of blocked lists, in place: p0..p3 are
 * their blockedRow() addresses, `gs` the bytes between a row's groups (B x w x 4);
 * every group the prefix touches is full-width (listRescoreInPlace).
 */
function tile1x4Blocked(q: usize, p0: usize, p1: usize, p2: usize, p3: usize, gs: usize, w: i32, dim: i32, l2: bool): v128 {
  const d4 = dim & ~3;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  let off: usize = 0;
  for (let i0 = 0; i0 < d4; i0 += w, off += gs) {
    const n = <usize>min(w, d4 - i0) << 2;
    const qg = q + (<usize>i0 << 2);
    if (l2) {
      for (let o: usize = 0; o < n; o += 16) {
        const x = v128.load(qg + o);
        const g = off + o;
        let d = f32x4.sub(x, v128.load(p0 + g)); a0 = f32x4.add(a0, f32x4.mul(d, d));
        d = f32x4.sub(x, v128.load(p1 + g)); a1 = f32x4.add(a1, f32x4.mul(d, d));
        d = f32x4.sub(x, v128.load(p2 + g)); a2 = f32x4.add(a2, f32x4.mul(d, d));
        d = f32x4.sub(x, v128.load(p3 + g)); a3 = f32x4.add(a3, f32x4.mul(d, d));
      }
    } else {
      for (let o: usize = 0; o < n; o += 16) {
        const x = v128.load(qg + o);
        const g = off + o;
        a0 = f32x4.add(a0, f32x4.mul(x, v128.load(p0 + g)));
        a1 = f32x4.add(a1, f32x4.mul(x, v128.load(p1 + g)));
        a2 = f32x4.add(a2, f32x4.mul(x, v128.load(p2 + g)));
        a3 = f32x4.add(a3, f32x4.mul(x, v128.load(p3 + g)));
      }
    }
  }
  let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
  // the scalar tail of pair(), element i of a row at group i / w
  for (let i = d4; i < dim; i++) {
    const g = i / w;
    const o = <usize>g * gs + (<usize>(i - g * w) << 2);
    const y = load<f32>(q + (<usize>i << 2));
    if (l2) {
      let d = y - load<f32>(p0 + o); s0 += d * d;
      d = y - load<f32>(p1 + o); s1 += d * d;
      d = y - load<f32>(p2 + o); s2 += d * d;
      d = y - load<f32>(p3 + o); s3 += d * d;
    } else {
      s0 += y * load<f32>(p0 + o); s1 += y * load<f32>(p1 + o); s2 += y * load<f32>(p2 + o); s3 += y * load<f32>(p3 + o);
    }
  }
  return l2 ? lanes4(-s0, -s1, -s2, -s3) : lanes4(s0, s1, s2, s3);
}

/** invNormsExact() of one float32 member of a blocked list in place (blockedRow address p; full-width groups). */
function invNormBlockedExact(p: usize, gs: usize, w: i32, dim: i32): f32 {
  let a: f64 = 0;
  for (let i = 0; i < dim; i++) {
    const g = i / w;
    const x = <f64>load<f32>(p + <usize>g * gs + (<usize>(i - g * w) << 2));
    a += x * x;
  }
  return a > 0 ? <f32>(1.0 / Math.sqrt(a)) : 0;
}

/**
 * For query t in [0, qRows): its candidates i < candSizes[t], member
 * cPos[t * candK + i] of directory entry cEntries[t * candK + i] (-1: not in
 * this call's memory, skipped), scored at prefix `dim` and merged into heap
 * row t under their lists' ids. mode = metric + 4 * encoding (0 f16, 1 sq8,
 * 2 float32); bStride: elements per member; params: sq8 min then scale;
 * scratch: listRescoreScratch(dim) bytes.
 */
export function rescoreListsTopK(
  q: usize, qRows: i32, qStride: i32, qInv: usize,
  dir: usize, cEntries: usize, cPos: usize, candK: i32, candSizes: usize,
  bStride: i32, dim: i32, mode: i32,
  hIds: usize, hScores: usize, hSizes: usize, k: i32, scratch: usize, params: usize,
): void {
  const metric = mode & 3, encoding = mode >> 2;
  const l2 = metric == L2, cosine = metric == COSINE;
  // every list of a call shares one layout (ListSet.layout)
  const lay = load<i32>(dir, 28);
  const w = lay >>> 16;
  const gs = <usize>((lay & 0xffff) * w) << 2;
  // float32 members in place, unless the prefix reaches a narrow last group (then copied like decoded ones)
  const direct = encoding == ENC_F32 && (lay == 0 || ((dim + w - 1) / w) * w <= bStride);
  const rowBytes = <usize>dim << 2;
  const addrs = scratch + 4 * rowBytes, ids = addrs + 16, invs = ids + 16;
  const qs = <usize>qStride << 2;
  for (let t = 0; t < qRows; t++) {
    const qp = q + <usize>t * qs;
    const qi: f32 = cosine ? load<f32>(qInv + (<usize>t << 2)) : 1;
    const n = load<i32>(candSizes + (<usize>t << 2));
    const at = <usize>(t * candK) << 2;
    let limit = threshold(hScores, hSizes, k, t);
    let i = 0;
    while (i < n) {
      // the next (up to) four candidates of this call's memory
      let m = 0;
      for (; i < n && m < 4; i++) {
        const e = load<i32>(cEntries + at + (<usize>i << 2));
        if (e < 0) continue;
        const pos = load<i32>(cPos + at + (<usize>i << 2));
        const entry = dir + (<usize>e << 5);
        const codes = <usize>load<u32>(entry);
        const kept = <usize>load<u32>(entry, 8);
        const u = <usize>m << 2;
        store<i32>(ids + u, load<i32>(<usize>load<u32>(entry, 4) + (<usize>pos << 2)));
        let p: usize;
        if (direct) {
          p = lay ? blockedRow(codes, pos, lay, bStride, 4) : codes + <usize>pos * (<usize>bStride << 2);
        } else {
          // a decoded (or copied) prefix in scratch slot m
          p = scratch + <usize>m * rowBytes;
          if (encoding != ENC_F32) {
            if (lay) decodeBlockedRows(codes, pos, pos + 1, bStride, dim, encoding, params, p, lay);
            else decodeRows(codes, pos, pos + 1, bStride, dim, encoding, params, p);
          } else {
            for (let i0 = 0; i0 < dim; i0 += w) memory.copy(p + (<usize>i0 << 2), blockedAt(codes, pos, i0 / w, lay, bStride, 4), <usize>min(w, dim - i0) << 2);
          }
        }
        store<u32>(addrs + u, <u32>p);
        if (cosine) {
          let bi: f32;
          if (kept) bi = load<f32>(kept + (<usize>pos << 2));
          else if (direct && lay) bi = invNormBlockedExact(p, gs, w, dim);
          else {
            invNormsExact(p, 1, dim, dim, invs + u);
            bi = load<f32>(invs + u);
          }
          store<f32>(invs + u, bi);
        }
        m++;
      }
      if (m == 0) break;
      // a short tile repeats its first member in the unused lanes (their scores are not pushed)
      const b0 = <usize>load<u32>(addrs);
      const b1 = m > 1 ? <usize>load<u32>(addrs, 4) : b0, b2 = m > 2 ? <usize>load<u32>(addrs, 8) : b0, b3 = m > 3 ? <usize>load<u32>(addrs, 12) : b0;
      const four = direct && lay ? tile1x4Blocked(qp, b0, b1, b2, b3, gs, w, dim, l2) : tile1x4At(qp, b0, b1, b2, b3, dim, l2);
      for (let u = 0; u < m; u++) {
        let s = u == 0 ? f32x4.extract_lane(four, 0) : u == 1 ? f32x4.extract_lane(four, 1) : u == 2 ? f32x4.extract_lane(four, 2) : f32x4.extract_lane(four, 3);
        if (cosine) s *= qi * load<f32>(invs + (<usize>u << 2));
        if (s >= limit) {
          heapPush(hIds, hScores, hSizes, k, t, load<i32>(ids + (<usize>u << 2)), s);
          limit = threshold(hScores, hSizes, k, t);
        }
      }
    }
  }
}

// ---- the batched tile of a blocked list scan: four queries x pairs of rows, scores straight to the heaps ----

/**
 * The four scores [hsum(a), hsum(b), hsum(c), hsum(d)], each added as
 * hsum() adds (l0 + l1) + (l2 + l3), so they equal the scalar sums bit for bit.
 */
@inline function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 2, 4, 6), v128.shuffle<f32>(a, b, 1, 3, 5, 7)); // a0+a1, a2+a3, b0+b1, b2+b3
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 2, 4, 6), v128.shuffle<f32>(c, d, 1, 3, 5, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 2, 4, 6), v128.shuffle<f32>(ab, cd, 1, 3, 5, 7));
}

/**
 * Appends the lanes of `s` (row j's scores for the four heap rows named at
 * `rows`) that reach their row's threshold to the rows' candidate buffers;
 * `limits` holds the four thresholds (updated).
 */
function pushLanes(s: v128, j: i32, ids: usize, rows: usize, limits: usize, bufs: Buffers): void {
  const id = ids ? load<i32>(ids + (<usize>j << 2)) : j;
  for (let u = 0; u < 4; u++) {
    const sc = u == 0 ? f32x4.extract_lane(s, 0) : u == 1 ? f32x4.extract_lane(s, 1) : u == 2 ? f32x4.extract_lane(s, 2) : f32x4.extract_lane(s, 3);
    const at = limits + (<usize>u << 2);
    if (sc >= load<f32>(at)) {
      const t = load<i32>(rows + (<usize>u << 2));
      bufferPush(bufs, t, id, sc);
      store<f32>(at, bufferLimit(bufs, t));
    }
  }
}

/** Adds row r's elements [d4, dim) to lane u of four sums (query u at q0 + u * qs): pair()'s scalar tail, in lanes. */
function tails4(s: v128, q0: usize, qs: usize, codes: usize, r: i32, d4: i32, dim: i32, lay: i32, stride: i32, l2: bool): v128 {
  return lanes4(
    blockedTail(q0, codes, r, d4, dim, lay, stride, l2, f32x4.extract_lane(s, 0)),
    blockedTail(q0 + qs, codes, r, d4, dim, lay, stride, l2, f32x4.extract_lane(s, 1)),
    blockedTail(q0 + 2 * qs, codes, r, d4, dim, lay, stride, l2, f32x4.extract_lane(s, 2)),
    blockedTail(q0 + 3 * qs, codes, r, d4, dim, lay, stride, l2, f32x4.extract_lane(s, 3)),
  );
}

/**
 * The batched tile of scanListsTopK: four gathered queries (q0, q0 + qs, ...;
 * inverse norms at qInv, heap rows at `rows`) against float32 rows
 * [from, to) of a blocked list (from a multiple of 4; bInv indexed by row
 * number, cosine only), every score merged straight into its query's
 * candidate buffer.
 * A pair of rows (one block) runs against the four queries with the eight
 * four-lane sums in registers, group after group, so each loaded vector
 * serves two to four products; the sums are
 * then reduced four at a time in lanes (hsum4), scaled for cosine and
 * compared with the four buffers' thresholds in one step, so a row that none
 * of the queries keeps costs no scalar work and no trip through memory.
 * Each score is pair()'s, so results are bit-identical to scoring rows one
 * after another. `limits`: 16 bytes.
 */
function scan4Blocked(
  q0: usize, qs: usize, qInv: usize, rows: usize,
  codes: usize, from: i32, to: i32, lay: i32, stride: i32, bInv: usize, ids: usize,
  dim: i32, metric: i32, bufs: Buffers, limits: usize,
): void {
  const l2 = metric == L2, cosine = metric == COSINE;
  const b = lay & 0xffff, w = lay >>> 16;
  const d4 = dim & ~3;
  const fullEnd = stride - stride % w;
  const lim = min(d4, fullEnd);
  const gs = <usize>(b * w) << 2, rowBytes = <usize>w << 2, blockBytes = <usize>(b * stride) << 2;
  const q1 = q0 + qs, q2 = q1 + qs, q3 = q2 + qs;
  // the thresholds and query norms stay in memory: the row loop needs every vector register for its sums
  for (let u = 0; u < 4; u++) store<f32>(limits + (<usize>u << 2), bufferLimit(bufs, load<i32>(rows + (<usize>u << 2))));
  let block = codes + <usize>(from / b) * blockBytes, ro = from % b;
  let r = from;
  for (; r + 2 <= to; r += 2) {
    const b0 = block + <usize>ro * rowBytes;
    let a00 = f32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    let p = b0, r0 = q0, r1 = q1, r2 = q2, r3 = q3, i0 = 0;
    if (w == 16) {
      // the general loop below for groups of 16 (FLOAT_BLOCKS), kept as a copy: its constant trip count makes the tile 1.2x
      // faster (without it list-scan-batched ran 0.82x, 0.84x with the general loop in this one's shape; measured interleaved,
      // 2026-12-02). One 4-value step per iteration: unrolled, the compiler hoists every load of a group and spills the sums
      for (; i0 + 16 <= lim; i0 += 16, p += gs, r0 += 64, r1 += 64, r2 += 64, r3 += 64) {
        for (let o: usize = 0; o < 64; o += 16) {
          const x0 = v128.load(p + o), x1 = v128.load(p + o + 64);
          let y = v128.load(r0 + o);
          if (l2) {
            let d = f32x4.sub(y, x0); a00 = f32x4.add(a00, f32x4.mul(d, d));
            d = f32x4.sub(y, x1); a01 = f32x4.add(a01, f32x4.mul(d, d));
            y = v128.load(r1 + o);
            d = f32x4.sub(y, x0); a10 = f32x4.add(a10, f32x4.mul(d, d));
            d = f32x4.sub(y, x1); a11 = f32x4.add(a11, f32x4.mul(d, d));
            y = v128.load(r2 + o);
            d = f32x4.sub(y, x0); a20 = f32x4.add(a20, f32x4.mul(d, d));
            d = f32x4.sub(y, x1); a21 = f32x4.add(a21, f32x4.mul(d, d));
            y = v128.load(r3 + o);
            d = f32x4.sub(y, x0); a30 = f32x4.add(a30, f32x4.mul(d, d));
            d = f32x4.sub(y, x1); a31 = f32x4.add(a31, f32x4.mul(d, d));
          } else {
            a00 = f32x4.add(a00, f32x4.mul(y, x0)); a01 = f32x4.add(a01, f32x4.mul(y, x1));
            y = v128.load(r1 + o);
            a10 = f32x4.add(a10, f32x4.mul(y, x0)); a11 = f32x4.add(a11, f32x4.mul(y, x1));
            y = v128.load(r2 + o);
            a20 = f32x4.add(a20, f32x4.mul(y, x0)); a21 = f32x4.add(a21, f32x4.mul(y, x1));
            y = v128.load(r3 + o);
            a30 = f32x4.add(a30, f32x4.mul(y, x0)); a31 = f32x4.add(a31, f32x4.mul(y, x1));
          }
        }
      }
    }
    // the rest: groups of another width, a partial group, the narrow last group
    while (i0 < d4) {
      const narrow = i0 >= fullEnd;
      const p0 = narrow ? blockedAt(codes, r, i0 / w, lay, stride, 4) : p;
      const p1 = p0 + (narrow ? <usize>(stride - fullEnd) << 2 : rowBytes);
      const n = <usize>(min(i0 + w, d4) - i0) << 2;
      for (let o: usize = 0; o < n; o += 16) {
        const x0 = v128.load(p0 + o), x1 = v128.load(p1 + o);
        let y0 = v128.load(r0 + o), y1 = v128.load(r1 + o), y2 = v128.load(r2 + o), y3 = v128.load(r3 + o);
        if (l2) {
          let d = f32x4.sub(y0, x0); a00 = f32x4.add(a00, f32x4.mul(d, d));
          d = f32x4.sub(y0, x1); a01 = f32x4.add(a01, f32x4.mul(d, d));
          d = f32x4.sub(y1, x0); a10 = f32x4.add(a10, f32x4.mul(d, d));
          d = f32x4.sub(y1, x1); a11 = f32x4.add(a11, f32x4.mul(d, d));
          d = f32x4.sub(y2, x0); a20 = f32x4.add(a20, f32x4.mul(d, d));
          d = f32x4.sub(y2, x1); a21 = f32x4.add(a21, f32x4.mul(d, d));
          d = f32x4.sub(y3, x0); a30 = f32x4.add(a30, f32x4.mul(d, d));
          d = f32x4.sub(y3, x1); a31 = f32x4.add(a31, f32x4.mul(d, d));
        } else {
          a00 = f32x4.add(a00, f32x4.mul(y0, x0)); a01 = f32x4.add(a01, f32x4.mul(y0, x1));
          a10 = f32x4.add(a10, f32x4.mul(y1, x0)); a11 = f32x4.add(a11, f32x4.mul(y1, x1));
          a20 = f32x4.add(a20, f32x4.mul(y2, x0)); a21 = f32x4.add(a21, f32x4.mul(y2, x1));
          a30 = f32x4.add(a30, f32x4.mul(y3, x0)); a31 = f32x4.add(a31, f32x4.mul(y3, x1));
        }
      }
      i0 += w;
      p += gs;
      r0 += rowBytes; r1 += rowBytes; r2 += rowBytes; r3 += rowBytes;
    }
    let s0 = hsum4(a00, a10, a20, a30), s1 = hsum4(a01, a11, a21, a31);
    if (d4 < dim) {
      s0 = tails4(s0, q0, qs, codes, r, d4, dim, lay, stride, l2);
      s1 = tails4(s1, q0, qs, codes, r + 1, d4, dim, lay, stride, l2);
    }
    if (l2) {
      s0 = f32x4.neg(s0);
      s1 = f32x4.neg(s1);
    }
    if (cosine) {
      const qi = v128.load(qInv);
      s0 = f32x4.mul(s0, f32x4.mul(qi, f32x4.splat(load<f32>(bInv + (<usize>r << 2)))));
      s1 = f32x4.mul(s1, f32x4.mul(qi, f32x4.splat(load<f32>(bInv + (<usize>r << 2), 4))));
    }
    if (v128.any_true(f32x4.ge(s0, v128.load(limits)))) pushLanes(s0, r, ids, rows, limits, bufs);
    if (v128.any_true(f32x4.ge(s1, v128.load(limits)))) pushLanes(s1, r + 1, ids, rows, limits, bufs);
    ro += 2;
    if (ro == b) {
      ro = 0;
      block += blockBytes;
    }
  }
  if (r < to) {
    // an odd last row: pair() per query
    let s = lanes4(pairBlocked(q0, codes, r, dim, lay, stride, l2), pairBlocked(q1, codes, r, dim, lay, stride, l2), pairBlocked(q2, codes, r, dim, lay, stride, l2), pairBlocked(q3, codes, r, dim, lay, stride, l2));
    if (cosine) s = f32x4.mul(s, f32x4.mul(v128.load(qInv), f32x4.splat(load<f32>(bInv + (<usize>r << 2)))));
    if (v128.any_true(f32x4.ge(s, v128.load(limits)))) pushLanes(s, r, ids, rows, limits, bufs);
  }
}

// ---- re-rank of a batch in row order: candidates sorted by row, each row read once for all its queries ----

/** Digits of the radix sort of candidates by row (11 bits: the histogram stays in L1). */
const RADIX_BITS: i32 = 11;
const RADIX: i32 = 1 << RADIX_BITS;

/** Bytes of scratch rescoreByRows needs for `pairs` candidates: two arrays of candidate numbers and a histogram. */
export function rescoreByRowsScratch(pairs: i32): i32 {
  return (2 * pairs + RADIX) * 4 + 64;
}

/** tile1x4At() of four (query, row) pairs: lane u scores q_u against b_u exactly as pair() does. */
function tile4Pairs(q0: usize, b0: usize, q1: usize, b1: usize, q2: usize, b2: usize, q3: usize, b3: usize, dim: i32, l2: bool): v128 {
  const d4 = dim & ~3;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  if (l2) {
    for (let i = 0; i < d4; i += 4) {
      const o = <usize>i << 2;
      let d = f32x4.sub(v128.load(q0 + o), v128.load(b0 + o)); a0 = f32x4.add(a0, f32x4.mul(d, d));
      d = f32x4.sub(v128.load(q1 + o), v128.load(b1 + o)); a1 = f32x4.add(a1, f32x4.mul(d, d));
      d = f32x4.sub(v128.load(q2 + o), v128.load(b2 + o)); a2 = f32x4.add(a2, f32x4.mul(d, d));
      d = f32x4.sub(v128.load(q3 + o), v128.load(b3 + o)); a3 = f32x4.add(a3, f32x4.mul(d, d));
    }
    return lanes4(-l2Tail(q0, b0, d4, dim, hsum(a0)), -l2Tail(q1, b1, d4, dim, hsum(a1)), -l2Tail(q2, b2, d4, dim, hsum(a2)), -l2Tail(q3, b3, d4, dim, hsum(a3)));
  }
  for (let i = 0; i < d4; i += 4) {
    const o = <usize>i << 2;
    a0 = f32x4.add(a0, f32x4.mul(v128.load(q0 + o), v128.load(b0 + o)));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(q1 + o), v128.load(b1 + o)));
    a2 = f32x4.add(a2, f32x4.mul(v128.load(q2 + o), v128.load(b2 + o)));
    a3 = f32x4.add(a3, f32x4.mul(v128.load(q3 + o), v128.load(b3 + o)));
  }
  return lanes4(dotTail(q0, b0, d4, dim, hsum(a0)), dotTail(q1, b1, d4, dim, hsum(a1)), dotTail(q2, b2, d4, dim, hsum(a2)), dotTail(q3, b3, d4, dim, hsum(a3)));
}

/**
 * rescoreTopK() of queries [qFrom, qTo) of a batch, heap row = query number:
 * their candidates (query t's rows cand[t * candK + i], i < candSizes[t])
 * are sorted by row (LSD radix sort of the candidate numbers) and scored in
 * that order, four at a time (tile4Pairs). A batch's shortlists share rows
 * and cover much of the base, so the rows stream in address order, each
 * read once for all the queries that want it, instead of each query's
 * shortlist jumping across the base. Each score is rescoreTopK's; a heap
 * gets its candidates in another order, which leaves the same best k (the
 * heaps order by score, then id). scratch: rescoreByRowsScratch(candidates).
 */
export function rescoreByRows(
  q: usize, qFrom: i32, qTo: i32, qStride: i32, qInv: usize,
  b: usize, bStride: i32, bInv: usize,
  cand: usize, candK: i32, candSizes: usize,
  dim: i32, metric: i32,
  hIds: usize, hScores: usize, hSizes: usize, k: i32, scratch: usize,
): void {
  const l2 = metric == L2;
  const qs = <usize>qStride << 2, bs = <usize>bStride << 2;
  const counts = scratch;
  let src = scratch + (<usize>RADIX << 2);
  let n = 0;
  let rows: u32 = 0; // OR of the rows: how many digits the sort needs
  for (let t = qFrom; t < qTo; t++) {
    const size = load<i32>(candSizes + (<usize>t << 2));
    for (let i = 0; i < size; i++) {
      const c = t * candK + i;
      store<i32>(src + (<usize>n << 2), c);
      n++;
      rows |= load<u32>(cand + (<usize>c << 2));
    }
  }
  let dst = src + (<usize>n << 2);
  for (let shift = 0; shift == 0 || (shift < 32 && (rows >>> shift) != 0); shift += RADIX_BITS) {
    memory.fill(counts, 0, <usize>RADIX << 2);
    for (let j = 0; j < n; j++) {
      const at = counts + (<usize>((load<u32>(cand + (<usize>load<i32>(src + (<usize>j << 2)) << 2)) >>> shift) & (RADIX - 1)) << 2);
      store<i32>(at, load<i32>(at) + 1);
    }
    let sum = 0;
    for (let d = 0; d < RADIX; d++) {
      const at = counts + (<usize>d << 2);
      const c = load<i32>(at);
      store<i32>(at, sum);
      sum += c;
    }
    for (let j = 0; j < n; j++) {
      const c = load<i32>(src + (<usize>j << 2));
      const at = counts + (<usize>((load<u32>(cand + (<usize>c << 2)) >>> shift) & (RADIX - 1)) << 2);
      const to = load<i32>(at);
      store<i32>(at, to + 1);
      store<i32>(dst + (<usize>to << 2), c);
    }
    const swap = src;
    src = dst;
    dst = swap;
  }
  for (let j = 0; j < n; j += 4) {
    const m = min(4, n - j);
    const at = src + (<usize>j << 2);
    // a short tail repeats its first candidate in the unused lanes (their scores are not pushed)
    const c0 = load<i32>(at), c1 = m > 1 ? load<i32>(at, 4) : c0, c2 = m > 2 ? load<i32>(at, 8) : c0, c3 = m > 3 ? load<i32>(at, 12) : c0;
    const t0 = c0 / candK, t1 = c1 / candK, t2 = c2 / candK, t3 = c3 / candK;
    const r0 = load<i32>(cand + (<usize>c0 << 2)), r1 = load<i32>(cand + (<usize>c1 << 2)), r2 = load<i32>(cand + (<usize>c2 << 2)), r3 = load<i32>(cand + (<usize>c3 << 2));
    const four = tile4Pairs(q + <usize>t0 * qs, b + <usize>r0 * bs, q + <usize>t1 * qs, b + <usize>r1 * bs, q + <usize>t2 * qs, b + <usize>r2 * bs, q + <usize>t3 * qs, b + <usize>r3 * bs, dim, l2);
    for (let u = 0; u < m; u++) {
      const t = u == 0 ? t0 : u == 1 ? t1 : u == 2 ? t2 : t3;
      const row = u == 0 ? r0 : u == 1 ? r1 : u == 2 ? r2 : r3;
      let s = u == 0 ? f32x4.extract_lane(four, 0) : u == 1 ? f32x4.extract_lane(four, 1) : u == 2 ? f32x4.extract_lane(four, 2) : f32x4.extract_lane(four, 3);
      if (metric == COSINE) s *= load<f32>(qInv + (<usize>t << 2)) * load<f32>(bInv + (<usize>row << 2));
      if (s >= threshold(hScores, hSizes, k, t)) heapPush(hIds, hScores, hSizes, k, t, row, s);
    }
  }
}

// ---- candidate buffers: a list scan's bounded top-k without a heap push per candidate ----
// scanListsTopK appends each candidate that reaches its row's threshold to the row's buffer of
// bufferSlots(k) (score, id) pairs. A full buffer is cut: a threshold T is found by bisection with
// SIMD counts such that at least k and at most k + half the rest of its candidates score >= T, those
// are kept (in order) and T becomes the row's threshold. A candidate below T has k others scoring
// above it, so it cannot be among the row's best k: the rows end with the best k a heap push per
// candidate keeps, ties included (ties at T are all kept; when they alone overflow the window, an
// exact selection in the heaps' order cuts to k). The call opens each row's buffer from its heap and
// closes it back into a heap of its exact best k (any heap order: consumers sort or read the root).
// Rows [qFrom, qTo) of a call: heads (count, threshold) 8 bytes each, then the rows' pairs (a score's
// bits in the low word, the id in the high word), so an append touches one line of pairs.

/** Pairs of a row's buffer: twice k (at least 32: a cut costs a few passes over them), a multiple of 4 (counted four at a time). */
@inline function bufferSlots(k: i32): i32 {
  return (max(2 * k, 32) + 3) & ~3;
}

/** Bytes of the candidate buffers of `rows` heap rows at k that scanListsTopK keeps past its listScanScratch (the host adds them). */
export function topKBufferBytes(rows: i32, k: i32): i32 {
  return rows * (8 + (bufferSlots(k) << 3)) + 64; // and the Buffers struct, two alignments
}

/** A call's buffers: head of row t at heads + 8 t, its pairs at pairs + t * bufferSlots(k) * 8 (both offset by -qFrom rows: they wrap, and only rows >= qFrom are used). */
@unmanaged class Buffers {
  heads: usize;
  pairs: usize;
  k: i32;
}

@inline function pairsOf(bufs: Buffers, t: i32): usize {
  return bufs.pairs + <usize>t * (<usize>bufferSlots(bufs.k) << 3);
}

@inline function bufferLimit(bufs: Buffers, t: i32): f32 {
  return load<f32>(bufs.heads + (<usize>t << 3), 4);
}

/** Lays out the buffers of rows [qFrom, qTo) at `at` (its Buffers struct first) and copies the heap rows in; a full heap's root (its k-th best) is the threshold. */
function buffersOpen(at: usize, qFrom: i32, qTo: i32, hIds: usize, hScores: usize, hSizes: usize, k: i32): Buffers {
  const bufs = changetype<Buffers>((at + 15) & ~(<usize>15));
  const heads = changetype<usize>(bufs) + 16;
  bufs.k = k;
  bufs.heads = heads - (<usize>qFrom << 3);
  bufs.pairs = ((heads + (<usize>(qTo - qFrom) << 3) + 15) & ~(<usize>15)) - <usize>qFrom * (<usize>bufferSlots(k) << 3);
  for (let t = qFrom; t < qTo; t++) {
    const n = load<i32>(hSizes + (<usize>t << 2));
    const sc = hScores + (<usize>t * <usize>k << 2), ids = hIds + (<usize>t * <usize>k << 2);
    const p = pairsOf(bufs, t);
    for (let i = 0; i < n; i++) {
      store<f32>(p + (<usize>i << 3), load<f32>(sc + (<usize>i << 2)));
      store<i32>(p + (<usize>i << 3), load<i32>(ids + (<usize>i << 2)), 4);
    }
    const head = bufs.heads + (<usize>t << 3);
    store<i32>(head, n);
    store<f32>(head, n < k ? -Infinity : load<f32>(sc), 4);
  }
  return bufs;
}

/** How many of n pairs (n a multiple of 4) score >= t. */
@inline function countAtLeast(p: usize, n: i32, t: f32): i32 {
  const tv = f32x4.splat(t);
  let c = i32x4.splat(0);
  for (let i: usize = 0; i < <usize>n << 3; i += 32) {
    const s = v128.shuffle<f32>(v128.load(p + i), v128.load(p + i, 16), 0, 2, 4, 6);
    c = i32x4.sub(c, f32x4.ge(s, tv));
  }
  return i32x4.extract_lane(c, 0) + i32x4.extract_lane(c, 1) + i32x4.extract_lane(c, 2) + i32x4.extract_lane(c, 3);
}

/**
 * Cuts a full buffer (n = bufferSlots(k) pairs at p) to between k and
 * k + (n - k) / 2 of them: returns the count kept and sets the row's threshold.
 */
function bufferCut(head: usize, p: usize, n: i32, k: i32): i32 {
  let lo = v128.shuffle<f32>(v128.load(p), v128.load(p, 16), 0, 2, 4, 6), hi = lo;
  for (let i: usize = 32; i < <usize>n << 3; i += 32) {
    const s = v128.shuffle<f32>(v128.load(p + i), v128.load(p + i, 16), 0, 2, 4, 6);
    lo = f32x4.pmin(lo, s);
    hi = f32x4.pmax(hi, s);
  }
  let low = min(min(f32x4.extract_lane(lo, 0), f32x4.extract_lane(lo, 1)), min(f32x4.extract_lane(lo, 2), f32x4.extract_lane(lo, 3)));
  let high = max(max(f32x4.extract_lane(hi, 0), f32x4.extract_lane(hi, 1)), max(f32x4.extract_lane(hi, 2), f32x4.extract_lane(hi, 3)));
  const most = k + ((n - k) >> 1);
  // count(>= low) = n >= k, count(>= high) >= 1: halve [low, high] keeping count(>= low) >= k
  let kept = n;
  for (let step = 0; step < 32 && kept > most; step++) {
    const mid = low + (high - low) * <f32>0.5;
    if (!(mid > low && mid < high)) break;
    const c = countAtLeast(p, n, mid);
    if (c >= k) {
      low = mid;
      kept = c;
    } else high = mid;
  }
  if (kept > most) {
    // ties (or a range too narrow to halve, infinities) hold more than the window: the exact best k
    selectBest(p, n, k);
    store<f32>(head, load<f32>(p + (<usize>(k - 1) << 3)), 4);
    return k;
  }
  // the kept pairs, in order, without a branch per pair
  let w = p;
  const end = p + (<usize>n << 3);
  for (let r = p; r < end; r += 8) {
    const x = load<u64>(r);
    store<u64>(w, x);
    w += <usize>(reinterpret<f32>(<u32>x) >= low) << 3;
  }
  store<f32>(head, low, 4);
  return kept;
}

/** Whether pair x is ahead of (ps, pid) in the heaps' order (higher score, then lower id), as 0 or 1 (no branch). */
@inline function aheadOf(x: u64, ps: f32, pid: i32): i32 {
  const s = reinterpret<f32>(<u32>x), id = <i32>(x >>> 32);
  return <i32>(s > ps) | (<i32>(s == ps) & <i32>(id < pid));
}

@inline function pairAhead(x: u64, y: u64): i32 {
  return aheadOf(x, reinterpret<f32>(<u32>y), <i32>(y >>> 32));
}

/**
 * Reorders n pairs at p so that the best k come first in the heaps' order,
 * the k-th best at k - 1: quickselect with a median of three and a branch-free
 * partition (every pair is swapped to the boundary, which advances by the
 * comparison: which side a pair falls on is a coin toss a branch would lose).
 */
function selectBest(p: usize, n: i32, k: i32): void {
  const target = p + (<usize>(k - 1) << 3);
  let lo = p, hi = p + (<usize>(n - 1) << 3);
  while (lo < hi) {
    if (hi - lo == 8) {
      // two pairs: in order (the median below needs three distinct places)
      const a = load<u64>(lo), h = load<u64>(hi);
      if (pairAhead(h, a)) {
        store<u64>(lo, h);
        store<u64>(hi, a);
      }
      return;
    }
    const mid = lo + (((hi - lo) >> 4) << 3);
    // the median of the three to hi: the pivot
    let a = load<u64>(lo), m = load<u64>(mid), h = load<u64>(hi);
    if (pairAhead(h, a)) { const x = a; a = h; h = x; }
    if (pairAhead(m, a)) { const x = a; a = m; m = x; }
    if (pairAhead(m, h)) { const x = m; m = h; h = x; }
    store<u64>(lo, a);
    store<u64>(mid, m);
    store<u64>(hi, h);
    const ps = reinterpret<f32>(<u32>h), pid = <i32>(h >>> 32);
    let i = lo;
    for (let j = lo; j < hi; j += 8) {
      const x = load<u64>(j);
      store<u64>(j, load<u64>(i));
      store<u64>(i, x);
      i += <usize>aheadOf(x, ps, pid) << 3;
    }
    store<u64>(hi, load<u64>(i));
    store<u64>(i, h);
    if (i == target) return;
    if (target < i) hi = i - 8;
    else lo = i + 8;
  }
}

/** Appends a candidate that reached row t's threshold; a full buffer is cut (bufferCut). */
function bufferPush(bufs: Buffers, t: i32, id: i32, s: f32): void {
  const head = bufs.heads + (<usize>t << 3);
  let n = load<i32>(head);
  const p = pairsOf(bufs, t);
  store<f32>(p + (<usize>n << 3), s);
  store<i32>(p + (<usize>n << 3), id, 4);
  if (++n == bufferSlots(bufs.k)) n = bufferCut(head, p, n, bufs.k);
  store<i32>(head, n);
}

/** pushScores() into row t's buffer. */
function bufferScores(scores: usize, from: i32, to: i32, ids: usize, bufs: Buffers, t: i32): void {
  let limit = bufferLimit(bufs, t);
  for (let j = from; j < to; j++) {
    const s = load<f32>(scores + (<usize>(j - from) << 2));
    if (s >= limit) {
      bufferPush(bufs, t, ids ? load<i32>(ids + (<usize>j << 2)) : j, s);
      limit = bufferLimit(bufs, t);
    }
  }
}

/** Each row's exact best k (at most) of its buffer back into its heap row, in heap order. */
function buffersClose(bufs: Buffers, qFrom: i32, qTo: i32, hIds: usize, hScores: usize, hSizes: usize): void {
  const k = bufs.k;
  for (let t = qFrom; t < qTo; t++) {
    const p = pairsOf(bufs, t);
    let n = load<i32>(bufs.heads + (<usize>t << 3));
    if (n > k) {
      selectBest(p, n, k);
      n = k;
    }
    const ids = hIds + (<usize>t * <usize>k << 2), sc = hScores + (<usize>t * <usize>k << 2);
    for (let i = 0; i < n; i++) {
      store<f32>(sc + (<usize>i << 2), load<f32>(p + (<usize>i << 3)));
      store<i32>(ids + (<usize>i << 2), load<i32>(p + (<usize>i << 3), 4));
    }
    for (let i = (n >> 1) - 1; i >= 0; i--) heapSiftDown(ids, sc, i, n);
    store<i32>(hSizes + (<usize>t << 2), n);
  }
}

// ---- the re-rank's eight-row tile ----

/** Lanes 4..7 of the last tile1x8At (a function returns one v128; each thread's instance has its own). */
let tile1x8High: v128 = f32x4.splat(0);

/**
 * One query against eight rows anywhere: scores of b0..b3 returned as lanes,
 * of b4..b7 left in tile1x8High, each exactly as pair() computes it. Eight
 * accumulators and the query fill the vector registers. tile1x4At's loop at
 * twice the width, kept beside it: the re-rank reads rows scattered over the
 * base, and eight streams in flight ran rescoreTopK 1.1x to 1.5x faster than
 * four (single queries, 100 of 60,000 x 784 rows; interleaved on a loaded
 * machine, 2026-12-02); scoreBlock's query alone takes eight neighbouring
 * rows (more independent sums per query load); callers of four rows keep tile1x4At.
 */
function tile1x8At(q: usize, b0: usize, b1: usize, b2: usize, b3: usize, b4: usize, b5: usize, b6: usize, b7: usize, dim: i32, l2: bool): v128 {
  const d4 = dim & ~3;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  if (l2) {
    for (let i = 0; i < d4; i += 4) {
      const o = <usize>i << 2;
      const x = v128.load(q + o);
      let d = f32x4.sub(x, v128.load(b0 + o)); a0 = f32x4.add(a0, f32x4.mul(d, d));
      d = f32x4.sub(x, v128.load(b1 + o)); a1 = f32x4.add(a1, f32x4.mul(d, d));
      d = f32x4.sub(x, v128.load(b2 + o)); a2 = f32x4.add(a2, f32x4.mul(d, d));
      d = f32x4.sub(x, v128.load(b3 + o)); a3 = f32x4.add(a3, f32x4.mul(d, d));
      d = f32x4.sub(x, v128.load(b4 + o)); a4 = f32x4.add(a4, f32x4.mul(d, d));
      d = f32x4.sub(x, v128.load(b5 + o)); a5 = f32x4.add(a5, f32x4.mul(d, d));
      d = f32x4.sub(x, v128.load(b6 + o)); a6 = f32x4.add(a6, f32x4.mul(d, d));
      d = f32x4.sub(x, v128.load(b7 + o)); a7 = f32x4.add(a7, f32x4.mul(d, d));
    }
    tile1x8High = lanes4(-l2Tail(q, b4, d4, dim, hsum(a4)), -l2Tail(q, b5, d4, dim, hsum(a5)), -l2Tail(q, b6, d4, dim, hsum(a6)), -l2Tail(q, b7, d4, dim, hsum(a7)));
    return lanes4(-l2Tail(q, b0, d4, dim, hsum(a0)), -l2Tail(q, b1, d4, dim, hsum(a1)), -l2Tail(q, b2, d4, dim, hsum(a2)), -l2Tail(q, b3, d4, dim, hsum(a3)));
  }
  for (let i = 0; i < d4; i += 4) {
    const o = <usize>i << 2;
    const x = v128.load(q + o);
    a0 = f32x4.add(a0, f32x4.mul(x, v128.load(b0 + o)));
    a1 = f32x4.add(a1, f32x4.mul(x, v128.load(b1 + o)));
    a2 = f32x4.add(a2, f32x4.mul(x, v128.load(b2 + o)));
    a3 = f32x4.add(a3, f32x4.mul(x, v128.load(b3 + o)));
    a4 = f32x4.add(a4, f32x4.mul(x, v128.load(b4 + o)));
    a5 = f32x4.add(a5, f32x4.mul(x, v128.load(b5 + o)));
    a6 = f32x4.add(a6, f32x4.mul(x, v128.load(b6 + o)));
    a7 = f32x4.add(a7, f32x4.mul(x, v128.load(b7 + o)));
  }
  tile1x8High = lanes4(dotTail(q, b4, d4, dim, hsum(a4)), dotTail(q, b5, d4, dim, hsum(a5)), dotTail(q, b6, d4, dim, hsum(a6)), dotTail(q, b7, d4, dim, hsum(a7)));
  return lanes4(dotTail(q, b0, d4, dim, hsum(a0)), dotTail(q, b1, d4, dim, hsum(a1)), dotTail(q, b2, d4, dim, hsum(a2)), dotTail(q, b3, d4, dim, hsum(a3)));
}

// ---- re-rank of a batch grouped by row group (an IVF index's lists): a group's rows read once for all its queries ----

/** Bytes of scratch rescoreGrouped needs for `pairs` candidates over `groups` groups and shortlists of candK: the sorted candidates, a run's rows, a histogram. */
export function rescoreGroupedScratch(pairs: i32, groups: i32, candK: i32): i32 {
  return (pairs + candK + groups + 1) * 4 + 64;
}

/**
 * rescoreTopK() of a batch in group order: the candidates of queries
 * [0, qRows) whose row's group (groups[row], an IVF index's list) lies in
 * [gFrom, gTo) are sorted by group (counting sort, stable, so within a group
 * by query) and each query's run of them is scored as rescoreTopK scores a
 * shortlist (rescoreRows), into heap row = query number. A batch's
 * shortlists share rows within lists, so the rows of a group are read from
 * memory once and stay in cache while the group's queries pass (and a
 * query stays in cache through its run), where query order reads every
 * query's candidates afresh. Rows whose group is out of [0, groupCount)
 * count as group 0. Each score is rescoreTopK's; a heap gets its candidates
 * in another order, which leaves the same best k (the heaps order by score,
 * then id). scratch: rescoreGroupedScratch(candidates, gTo - gFrom, candK).
 */
export function rescoreGrouped(
  q: usize, qRows: i32, qStride: i32, qInv: usize,
  b: usize, bStride: i32, bInv: usize,
  cand: usize, candK: i32, candSizes: usize,
  groups: usize, groupCount: i32, gFrom: i32, gTo: i32,
  dim: i32, metric: i32,
  hIds: usize, hScores: usize, hSizes: usize, k: i32, scratch: usize,
): void {
  const span = gTo - gFrom;
  if (span <= 0) return;
  const starts = scratch;
  const runRows = (starts + (<usize>(span + 1) << 2) + 15) & ~15;
  const sorted = (runRows + (<usize>candK << 2) + 15) & ~15;
  memory.fill(starts, 0, <usize>(span + 1) << 2);
  // counts per group (in starts[g + 1]), then their prefix sums: starts[g] = where group g begins
  let n = 0;
  for (let t = 0; t < qRows; t++) {
    const size = load<i32>(candSizes + (<usize>t << 2));
    const at = cand + (<usize>(t * candK) << 2);
    for (let i = 0; i < size; i++) {
      const g = groupOf(groups, groupCount, load<i32>(at + (<usize>i << 2))) - gFrom;
      if (<u32>g >= <u32>span) continue;
      const c = starts + (<usize>(g + 1) << 2);
      store<i32>(c, load<i32>(c) + 1);
      n++;
    }
  }
  for (let g = 1; g <= span; g++) store<i32>(starts + (<usize>g << 2), load<i32>(starts + (<usize>g << 2)) + load<i32>(starts + (<usize>(g - 1) << 2)));
  for (let t = 0; t < qRows; t++) {
    const size = load<i32>(candSizes + (<usize>t << 2));
    const at = cand + (<usize>(t * candK) << 2);
    for (let i = 0; i < size; i++) {
      const g = groupOf(groups, groupCount, load<i32>(at + (<usize>i << 2))) - gFrom;
      if (<u32>g >= <u32>span) continue;
      const c = starts + (<usize>g << 2);
      const to = load<i32>(c);
      store<i32>(c, to + 1);
      store<i32>(sorted + (<usize>to << 2), t * candK + i);
    }
  }
  const qs = <usize>qStride << 2;
  // runs of one query's candidates (within a group, or across two when a group ends and the next begins with the same query)
  for (let j = 0; j < n; ) {
    const first = load<i32>(sorted + (<usize>j << 2));
    const t = first / candK;
    const end = (t + 1) * candK;
    let e = j;
    for (; e < n; e++) {
      const c = load<i32>(sorted + (<usize>e << 2));
      if (c < t * candK || c >= end) break;
      store<i32>(runRows + (<usize>(e - j) << 2), load<i32>(cand + (<usize>c << 2)));
    }
    const qi: f32 = metric == COSINE ? load<f32>(qInv + (<usize>t << 2)) : 1;
    rescoreRows(q + <usize>t * qs, qi, runRows, e - j, b, bStride, bInv, dim, metric, hIds, hScores, hSizes, k, t);
    j = e;
  }
}

/** A row's group for rescoreGrouped: groups[row], or 0 when that is out of [0, groupCount). */
@inline function groupOf(groups: usize, groupCount: i32, row: i32): i32 {
  const g = load<i32>(groups + (<usize>row << 2));
  return <u32>g < <u32>groupCount ? g : 0;
}
