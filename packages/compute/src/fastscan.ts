import type { TopK } from './topk.js';
import { maskFastScanLists } from './mask.js';

/**
 * 4-bit fast-scan PQ codes (FAISS's FastScan idea; docs/ARCHITECTURE.md,
 * "Index stages and contracts"): 16 centroids per sub-quantiser, so a
 * sub-quantiser's lookup table of one query is 16 bytes (8-bit quantised) and
 * fits one v128, where `i8x16.swizzle` looks up 16 codes at once.
 *
 * Packed layout: members in blocks of FASTSCAN_BLOCK = 32 positions. Block b
 * holds 16 bytes per sub-quantiser s, at b * 16 * m + 16 * s; byte j of them
 * holds position 32 b + j in its low nibble and position 32 b + 16 + j in its
 * high nibble. One v128 load thus gives the codes of 32 members for one
 * sub-quantiser: `& 0x0f` selects the first 16, `>> 4` the other 16 (FAISS
 * packs two sub-quantisers of 32 members per 256-bit AVX2 register; with
 * 128-bit registers one sub-quantiser per register is the same idea with no
 * lane permutation). A member's nibbles stay at fixed places, so appends and
 * removals (the last member moves into the hole) work in place, and the
 * nibbles of positions past the list's size are kept zero.
 *
 * A member's code outside the block layout (encode output, saved index) is
 * ceil(m / 2) bytes: sub-quantiser s in byte s >> 1, low nibble when s is even.
 */
export const FASTSCAN_BLOCK = 32;
/** Centroids per sub-quantiser (4-bit codes). */
export const FASTSCAN_CENTROIDS = 16;

/** Bytes of one member's code outside the block layout. */
export function fastScanCodeBytes(m: number): number {
  return (m + 1) >> 1;
}

/** Bytes `rows` members occupy in the block layout (whole blocks). */
export function fastScanBytes(m: number, rows: number): number {
  return Math.ceil(rows / FASTSCAN_BLOCK) * 16 * m;
}

/** Byte of the block layout holding position `pos`'s nibble for sub-quantiser s, and the nibble's shift (0 or 4). */
function place(m: number, pos: number, s: number): [number, number] {
  const lane = pos & 31;
  return [(pos >> 5) * 16 * m + 16 * s + (lane & 15), lane & 16 ? 4 : 0];
}

/** The 4-bit code of position `pos` for sub-quantiser s in the block layout. */
export function fastScanNibble(packed: Uint8Array, m: number, pos: number, s: number): number {
  const [at, shift] = place(m, pos, s);
  return (packed[at] >> shift) & 15;
}

/** Writes one member's code (ceil(m/2) bytes of `code` from `offset`) at position `pos` of the block layout. */
export function packFastScan(packed: Uint8Array, m: number, pos: number, code: Uint8Array, offset: number): void {
  for (let s = 0; s < m; s++) {
    const [at, shift] = place(m, pos, s);
    const nibble = (code[offset + (s >> 1)] >> (s & 1 ? 4 : 0)) & 15;
    packed[at] = (packed[at] & (0xf0 >> shift)) | (nibble << shift);
  }
}

/** Reads the code of position `pos` of the block layout into `out` from `offset` (ceil(m/2) bytes). */
export function unpackFastScan(packed: Uint8Array, m: number, pos: number, out: Uint8Array, offset: number): void {
  out.fill(0, offset, offset + fastScanCodeBytes(m));
  for (let s = 0; s < m; s++) out[offset + (s >> 1)] |= fastScanNibble(packed, m, pos, s) << (s & 1 ? 4 : 0);
}

/** Moves position `from`'s nibbles to position `to` and zeroes those of `from` (a removal's hole filled by the last member). */
export function moveFastScan(packed: Uint8Array, m: number, from: number, to: number): void {
  for (let s = 0; s < m; s++) {
    const [src, ss] = place(m, from, s);
    const [dst, ds] = place(m, to, s);
    const nibble = (packed[src] >> ss) & 15;
    packed[src] &= 0xf0 >> ss;
    packed[dst] = (packed[dst] & (0xf0 >> ds)) | (nibble << ds);
  }
}

/**
 * Integer table sums above which the kernels stop accumulating in 16 bits: a
 * sum of at most 256 entries of at most 255 fits, so sub-quantisers are
 * accumulated in runs of 256 and widened between runs.
 */
export const FASTSCAN_RUN = 256;

/** Checks the arguments of a fastScanTopK call (the reference and every backend throw the same messages). */
export function checkFastScan(
  tables: Uint8Array,
  queries: number,
  m: number,
  codes: Uint8Array,
  rows: number,
  scales: Float32Array,
  bias: Float32Array,
  best: TopK,
  baseIds?: Int32Array,
  queryRows?: Int32Array,
): void {
  if (!Number.isInteger(m) || m < 1) throw new Error(`fast scan: m must be a positive integer, got ${m}`);
  if (!Number.isInteger(queries) || queries < 0 || !Number.isInteger(rows) || rows < 0) throw new Error(`fast scan: ${queries} queries and ${rows} rows must be non-negative integers`);
  if (tables.length < queries * m * 16) throw new Error(`fast scan tables hold ${tables.length} bytes, ${queries} queries x ${m} x 16 needed`);
  if (codes.length < fastScanBytes(m, rows)) throw new Error(`fast scan codes hold ${codes.length} bytes, ${rows} rows in blocks of 32 x ${m} sub-quantisers need ${fastScanBytes(m, rows)}`);
  if (scales.length < queries || bias.length < queries) throw new Error(`fast scan: ${Math.min(scales.length, bias.length)} scales or biases for ${queries} queries`);
  if (baseIds && baseIds.length < rows) throw new Error(`fast scan: ${baseIds.length} ids for ${rows} codes`);
  if (queryRows) {
    if (queryRows.length < queries) throw new Error(`fast scan: ${queryRows.length} query rows for ${queries} queries`);
    for (let q = 0; q < queries; q++) if (queryRows[q] < 0 || queryRows[q] >= best.rows) throw new Error(`fast scan: query row ${queryRows[q]} is outside the ${best.rows} rows of the top-k`);
  } else if (queries > best.rows) throw new Error(`fast scan: ${queries} queries for a top-k of ${best.rows} rows`);
}

/**
 * The score of integer table sum `sum` for a query with `scale` and `bias`
 * (float32 arithmetic, multiply then add, as every backend computes it).
 */
export function fastScanScore(sum: number, scale: number, bias: number): number {
  return Math.fround(Math.fround(sum * scale) + bias);
}

/** The lists a fastScanListsTopK call reads: per list its size, its codes in the block layout and the ids reported for its members. */
export interface FastScanLists {
  readonly count: number;
  size(list: number): number;
  codes(list: number): Uint8Array;
  ids(list: number): Int32Array;
}

/**
 * The float tables a fastScanListsTopK call quantises to bytes, per probe
 * (query q, probe p; i = q * nprobe + p), before it scans the probed list:
 *   - `query`: m x 16 float32 entries per query (sub-quantiser s, centroid c);
 *   - `listTerms` (l2 residual codes): m x 16 per list; the probe's table is
 *     then 2 query[q] - listTerms[l] (float32), else query[q] itself;
 *   - `extra` (optional, one float32 per probe): added to the probe's bias
 *     (residual terms: x . ref for ip, -||x - ref||^2 for l2).
 * quantizeFastScanTable defines the bytes, scale and bias.
 */
export interface FastScanTables {
  readonly query: Float32Array;
  readonly listTerms?: Float32Array;
  readonly extra?: Float32Array;
}

/**
 * Quantises m x 16 float32 entries (values from `at`) to bytes at out[outAt]
 * as FAISS does: each sub-quantiser's minimum lo_s is subtracted and all share
 * one scale a = 255 / (largest span). Defined in float32 arithmetic, each
 * step rounded, so the CPU kernel (kernels/cpu/simd.ts, quantizeTable)
 * gives the same bytes: byte = min(255, trunc(fround(fround(fround(v - lo_s)
 * * a) + 0.5))). A byte sum S then scores fround(fround(S * scale) + bias)
 * (fastScanScore) with scale = fround(1 / a) and bias = fround(low + extra),
 * low the float32 sum of the minima in order of s. The error per entry is at
 * most half a step, span / 510. A constant table (a zero query) has a = 1
 * and all bytes 0. Returns [scale, low].
 */
export function quantizeFastScanTable(values: Float32Array, at: number, m: number, out: Uint8Array, outAt: number): [number, number] {
  const f = Math.fround;
  let low = 0, span = 0;
  for (let s = 0; s < m; s++) {
    let lo = values[at + s * 16], hi = lo;
    for (let c = 1; c < 16; c++) {
      lo = Math.min(lo, values[at + s * 16 + c]);
      hi = Math.max(hi, values[at + s * 16 + c]);
    }
    low = f(low + lo);
    span = Math.max(span, f(hi - lo));
  }
  const a = span > 0 ? f(255 / span) : 1;
  // each sub-quantiser's minimum found again rather than kept: no allocation per (query, list) table
  for (let s = 0; s < m; s++) {
    let lo = values[at + s * 16];
    for (let c = 1; c < 16; c++) lo = Math.min(lo, values[at + s * 16 + c]);
    for (let c = 0; c < 16; c++) out[outAt + s * 16 + c] = Math.min(255, Math.trunc(f(f(f(values[at + s * 16 + c] - lo) * a) + 0.5)));
  }
  return [f(1 / a), low];
}

/** Probe i's float table into out[0 .. 16m): the query's, or 2 query - listTerms[l] (float32) for l2 residual lists. */
export function fastScanProbeTable(tables: FastScanTables, m: number, q: number, l: number, out: Float32Array): void {
  const size = m * 16;
  const { query, listTerms } = tables;
  if (!listTerms) {
    out.set(query.subarray(q * size, (q + 1) * size));
    return;
  }
  for (let e = 0; e < size; e++) out[e] = Math.fround(2 * query[q * size + e] - listTerms[l * size + e]);
}

/** Checks the arguments of a fastScanListsTopK call. */
export function checkFastScanLists(tables: FastScanTables, m: number, lists: FastScanLists, probes: Int32Array, queries: number, nprobe: number, best: TopK): void {
  if (!Number.isInteger(m) || m < 1) throw new Error(`fast scan: m must be a positive integer, got ${m}`);
  if (!Number.isInteger(queries) || queries < 0 || !Number.isInteger(nprobe) || nprobe < 0) throw new Error(`fast scan: ${queries} queries and nprobe ${nprobe} must be non-negative integers`);
  if (queries > best.rows) throw new Error(`fast scan: ${queries} queries for a top-k of ${best.rows} rows`);
  const entries = queries * nprobe;
  if (probes.length < entries) throw new Error(`fast scan: ${probes.length} probes for ${queries} queries x nprobe ${nprobe}`);
  const { query, listTerms, extra } = tables;
  if (query.length < queries * m * 16) throw new Error(`fast scan tables hold ${query.length} floats, ${queries} queries x ${m} x 16 needed`);
  if (listTerms && listTerms.length < lists.count * m * 16) throw new Error(`fast scan list terms hold ${listTerms.length} floats, ${lists.count} lists x ${m} x 16 needed`);
  if (extra && extra.length < entries) throw new Error(`fast scan: ${extra.length} probe biases for ${entries} probes`);
  for (let i = 0; i < entries; i++) {
    const l = probes[i];
    if (l < -1 || l >= lists.count || !Number.isInteger(l)) throw new Error(`fast scan: probe ${i} names list ${l}, not one of the ${lists.count} lists (or -1)`);
    if (l >= 0 && lists.codes(l).length < fastScanBytes(m, lists.size(l))) throw new Error(`fast scan: list ${l} holds ${lists.codes(l).length} code bytes, ${lists.size(l)} members need ${fastScanBytes(m, lists.size(l))}`);
    if (l >= 0 && lists.ids(l).length < lists.size(l)) throw new Error(`fast scan: list ${l} has ${lists.ids(l).length} ids for ${lists.size(l)} members`);
  }
}

/**
 * fastScanListsTopK as one fastScanTopK per (query, probed list), each
 * probe's table quantised on the host (quantizeFastScanTable): its
 * definition, and how the reference and WebGPU backends run it.
 */
export async function composedFastScanListsTopK(
  backend: { fastScanTopK: (tables: Uint8Array, queries: number, m: number, codes: Uint8Array, rows: number, scales: Float32Array, bias: Float32Array, best: TopK, baseIds?: Int32Array, queryRows?: Int32Array) => Promise<void> },
  tables: FastScanTables,
  m: number,
  lists: FastScanLists,
  probes: Int32Array,
  queries: number,
  nprobe: number,
  best: TopK,
  mask?: Uint32Array,
): Promise<void> {
  checkFastScanLists(tables, m, lists, probes, queries, nprobe, best);
  // a mask scans each probed list's allowed members alone, repacked (mask.ts)
  if (mask) lists = maskFastScanLists(lists, mask, m);
  const row = new Int32Array(1);
  const values = new Float32Array(m * 16);
  const bytes = new Uint8Array(m * 16);
  const scale = new Float32Array(1);
  const bias = new Float32Array(1);
  for (let q = 0; q < queries; q++) {
    row[0] = q;
    for (let p = 0; p < nprobe; p++) {
      const i = q * nprobe + p;
      const l = probes[i];
      if (l < 0 || lists.size(l) === 0) continue;
      fastScanProbeTable(tables, m, q, l, values);
      const [s, low] = quantizeFastScanTable(values, 0, m, bytes, 0);
      scale[0] = s;
      bias[0] = low + (tables.extra?.[i] ?? 0);
      await backend.fastScanTopK(bytes, 1, m, lists.codes(l), lists.size(l), scale, bias, best, lists.ids(l), row);
    }
  }
}
