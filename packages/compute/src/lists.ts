import type { Backend } from './backend.js';
import { blockedBytes, checkBlockLayout, readBlockedRow, unblockRows, type BlockLayout } from './blocked.js';
import { codedRows, decodeRows, encodedBytes, type RowEncoding } from './coded.js';
import type { Metric } from './metric.js';
import { computeInvNorms } from './reference/kernels.js';
import { checkPrefix, rowBlock, type RowBlock } from './rows.js';
import { TopK } from './topk.js';
import { maskListSet } from './mask.js';

/**
 * Inverted lists as a backend scans them in one call (scanListsTopK,
 * pqScanListsTopK): per list, its members' rows where they lie (float32,
 * float16 or sq8 values of `stride` elements, or `stride` PQ code bytes),
 * the id reported for each member and, for cosine, the inverse norms of the
 * members' decoded prefixes at a dim when kept (computed by the kernel
 * otherwise).
 */
export interface ListSet {
  readonly encoding: 'f32' | RowEncoding | 'pq';
  /** Lists (probe entries name lists 0..count-1). */
  readonly count: number;
  /** Elements per member (PQ: code bytes M). */
  readonly stride: number;
  /** sq8: min then scale of each element (2 x stride floats). */
  readonly params?: Float32Array;
  /** Float lists in the prefix-blocked layout (blocked.ts); absent: members one after another. */
  readonly layout?: BlockLayout;
  size(list: number): number;
  /** The list's members, member after member (at least size x stride elements, as bytes), or in `layout`'s blocks. */
  codes(list: number): Uint8Array;
  /** The id reported for each member. */
  ids(list: number): Int32Array;
  /** For cosine: 1 / ||decoded member[:dim]|| per member, when kept for that dim. */
  invNorms?(list: number, dim: number): Float32Array | undefined;
  /**
   * The lists behind this set, the same object for every set over them, with
   * a version that changes whenever any list's members, arrays or size do: a
   * backend may keep what it derives from the lists (the CPU backend's
   * directory of their addresses) until then. Absent: nothing is kept.
   */
  readonly source?: { readonly version: number };
}

/**
 * What a PQ/OPQ list scan needs besides the codes (ADC, docs/ARCHITECTURE.md,
 * "Index stages and contracts"). A query vector x (dim values) becomes
 * y = R x (y_i = sum_j rotation[i * dim + j] x_j; y = x without a rotation)
 * and lookup tables T[s][c] = score of y's sub-space s (values bounds[s] ..
 * bounds[s+1]) against centroid c's (inner product, or negated squared
 * distance for l2). A member with codes c_0..c_{M-1} in list l scores
 * bias_l + sum_s T[s][c_s], where with residual `refs` (lists x dim):
 *   metric ip: bias_l = x . refs[l], tables from y;
 *   metric l2: bias_l = 0, tables from y - rotatedRefs[l] (the references in
 *   the rotated space; refs themselves without a rotation).
 */
export interface PqQuantizer {
  readonly dim: number;
  readonly m: number;
  /** 256 rows of dim values: row c holds centroid c of every sub-space side by side. */
  readonly codebooks: Float32Array;
  /** M + 1 sub-space offsets. */
  readonly bounds: Int32Array;
  readonly rotation?: Float32Array;
  readonly refs?: Float32Array;
  /** refs rotated by `rotation` (l2 with both). */
  readonly rotatedRefs?: Float32Array;
}

export const PQ_TABLE = 256;

/**
 * The ip residual biases x . refs[l] of a PQ list scan, per (query, probe)
 * slot (rows x nprobe; 0 for a -1 probe or an empty list): summed in
 * float64 in order and rounded to float32 once, on the host, so every
 * backend adds the same bias to its table sums.
 */
export function pqListBiases(queries: RowBlock, refs: Float32Array, dim: number, lists: ListSet, probes: Int32Array, nprobe: number): Float32Array {
  const rows = queries.rows;
  const out = new Float32Array(rows * nprobe);
  const qo = queries.offset ?? 0;
  for (let q = 0; q < rows; q++) {
    const x = qo + q * queries.stride;
    for (let p = 0; p < nprobe; p++) {
      const l = probes[q * nprobe + p];
      if (l < 0 || lists.size(l) === 0) continue;
      let dot = 0;
      for (let i = 0; i < dim; i++) dot += queries.data[x + i] * refs[l * dim + i];
      out[q * nprobe + p] = dot;
    }
  }
  return out;
}

/** Why list l's codes or ids do not hold its members (what a list scan checks of each list it reads), else undefined. */
export function listShortfall(lists: ListSet, l: number): string | undefined {
  const size = lists.size(l);
  if (size > 0 && lists.codes(l).length < listCodeBytes(lists, size)) return `list ${l} holds ${lists.codes(l).length} bytes for ${size} members of ${lists.stride * listBytesPerElement(lists.encoding)}${lists.layout ? ' in blocks' : ''}`;
  if (size > 0 && lists.ids(l).length < size) return `list ${l} has ${lists.ids(l).length} ids for ${size} members`;
  return undefined;
}

/**
 * Checks a list scan's arguments: queries at dim, probes of rows x nprobe naming lists (or -1), heaps for every query, members inside their codes.
 * `listsChecked`: every list is known to hold its members (listShortfall; a backend's kept directory of them), so only the probe numbers are checked.
 */
export function checkListScan(queries: RowBlock, lists: ListSet, probes: Int32Array, nprobe: number, dim: number, best: TopK, what: string, listsChecked = false): void {
  if (lists.encoding !== 'pq') checkPrefix(queries, dim, `${what} queries`);
  if (!Number.isInteger(nprobe) || nprobe < 0) throw new Error(`${what}: nprobe must be a non-negative integer, got ${nprobe}`);
  if (probes.length < queries.rows * nprobe) throw new Error(`${what}: ${probes.length} probe entries for ${queries.rows} queries x ${nprobe}`);
  if (best.rows < queries.rows) throw new Error(`${what}: ${queries.rows} queries need as many result rows, got ${best.rows}`);
  if (lists.encoding !== 'pq' && dim > lists.stride) throw new Error(`${what}: prefix length ${dim} exceeds row length ${lists.stride}`);
  if (lists.encoding === 'sq8' && (!lists.params || lists.params.length < 2 * lists.stride)) throw new Error(`${what}: sq8 lists need 2 x ${lists.stride} parameters (min, scale)`);
  if (lists.layout) {
    if (lists.encoding === 'pq') throw new Error(`${what}: PQ codes have no block layout`);
    checkBlockLayout(lists.layout);
  }
  for (let i = 0; i < queries.rows * nprobe; i++) {
    const l = probes[i];
    if (l === -1) continue;
    if (!Number.isInteger(l) || l < 0 || l >= lists.count) throw new Error(`${what}: probe ${l} of query ${Math.floor(i / Math.max(1, nprobe))} is not a list (0..${lists.count - 1}) or -1`);
    const shortfall = listsChecked ? undefined : listShortfall(lists, l);
    if (shortfall) throw new Error(`${what}: ${shortfall}`);
  }
}

/** Checks a PQ quantiser against the query block and lists it scans. */
export function checkPqScan(queries: RowBlock, pq: PqQuantizer, lists: ListSet, metric: Metric, what: string): void {
  if (lists.encoding !== 'pq') throw new Error(`${what}: lists hold ${lists.encoding} rows, PQ codes expected`);
  if (metric === 'cosine') throw new Error(`${what}: ADC scores inner products or l2 (normalise cosine queries and pass ip)`);
  checkPrefix(queries, pq.dim, `${what} queries`);
  if (lists.stride !== pq.m) throw new Error(`${what}: lists hold ${lists.stride} code bytes per member, M = ${pq.m}`);
  if (pq.codebooks.length < PQ_TABLE * pq.dim) throw new Error(`${what}: codebooks hold ${pq.codebooks.length} values, 256 x ${pq.dim} needed`);
  if (pq.bounds.length !== pq.m + 1 || pq.bounds[0] !== 0 || pq.bounds[pq.m] !== pq.dim) throw new Error(`${what}: sub-space bounds must be M + 1 = ${pq.m + 1} offsets from 0 to ${pq.dim}`);
  if (pq.rotation && pq.rotation.length < pq.dim * pq.dim) throw new Error(`${what}: rotation holds ${pq.rotation.length} values, ${pq.dim} x ${pq.dim} needed`);
  if (pq.refs && pq.refs.length < lists.count * pq.dim) throw new Error(`${what}: residual references hold ${pq.refs.length} values, ${lists.count} lists x ${pq.dim} needed`);
  if (pq.refs && pq.rotation && metric === 'l2' && (!pq.rotatedRefs || pq.rotatedRefs.length < lists.count * pq.dim)) throw new Error(`${what}: l2 residuals with a rotation need the rotated references (${lists.count} x ${pq.dim})`);
}

/** Bytes the codes of a list of `size` members take (whole blocks in the blocked layout). */
export function listCodeBytes(lists: ListSet, size: number): number {
  const bytes = listBytesPerElement(lists.encoding);
  return lists.layout ? blockedBytes(lists.layout, lists.stride, bytes, size) : size * lists.stride * bytes;
}

/** Bytes one element of a list member takes. */
export function listBytesPerElement(encoding: ListSet['encoding']): number {
  return encoding === 'f32' ? 4 : encoding === 'pq' ? 1 : encodedBytes(encoding);
}

/**
 * Inverts per-query probe lists into per-list query groups (a counting sort
 * on list number), so a scan streams each probed list once for all the
 * queries that probe it. Queries of list l are members[start[l] .. start[l+1]),
 * in ascending order; -1 entries are skipped.
 */
export function groupQueriesByList(probes: Int32Array, rows: number, nprobe: number, listCount: number): { start: Int32Array; members: Int32Array } {
  const start = new Int32Array(listCount + 1);
  for (let i = 0; i < rows * nprobe; i++) if (probes[i] >= 0) start[probes[i] + 1]++;
  for (let l = 0; l < listCount; l++) start[l + 1] += start[l];
  const members = new Int32Array(start[listCount]);
  const fill = start.slice(0, listCount);
  for (let q = 0; q < rows; q++) {
    for (let p = 0; p < nprobe; p++) {
      const l = probes[q * nprobe + p];
      if (l >= 0) members[fill[l]++] = q;
    }
  }
  return { start, members };
}

/**
 * scanListsTopK composed from a backend's per-list ops (scanTopK over float32
 * lists, scanCodedTopK over encoded ones), one call per probed list with the
 * queries that probe it gathered: the contract's definition for the
 * reference backend and how the WebGPU backend runs it for a query too large
 * for its fused pass. Blocked lists (ListSet.layout) are read member by member
 * into rows first (kernels sum a member's values in the same order in either
 * layout). Scores and ids equal a fused scan's up to float rounding.
 */
export async function composedScanListsTopK(backend: Backend, queries: RowBlock, lists: ListSet, probes: Int32Array, nprobe: number, dim: number, metric: Metric, best: TopK, mask?: Uint32Array): Promise<void> {
  checkListScan(queries, lists, probes, nprobe, dim, best, 'list scan');
  // a mask scans each probed list's allowed members alone (mask.ts)
  if (mask) lists = maskListSet(lists, mask);
  if (lists.encoding === 'pq') throw new Error('list scan: PQ codes are scanned by pqScanListsTopK');
  const rows = queries.rows;
  const { start, members } = groupQueriesByList(probes, rows, nprobe, lists.count);
  const queryInv = metric === 'cosine' ? (queries.invNorms ?? computeInvNorms(queries, dim)) : undefined;
  const gathered = new Float32Array(rows * dim);
  const gatheredInv = new Float32Array(rows);
  const qo = queries.offset ?? 0;
  for (let l = 0; l < lists.count; l++) {
    const size = lists.size(l);
    const m = start[l + 1] - start[l];
    if (m === 0 || size === 0) continue;
    const which = members.subarray(start[l], start[l + 1]);
    for (let i = 0; i < m; i++) {
      const from = qo + which[i] * queries.stride;
      gathered.set(queries.data.subarray(from, from + dim), i * dim);
      if (queryInv) gatheredInv[i] = queryInv[which[i]];
    }
    const group = rowBlock(gathered, m, dim, 0, queryInv ? gatheredInv : undefined);
    const codes = lists.layout ? unblockRows(lists.codes(l), lists.layout, lists.stride, listBytesPerElement(lists.encoding), size) : lists.codes(l);
    const inv = metric === 'cosine' ? lists.invNorms?.(l, dim) : undefined;
    if (lists.encoding === 'f32') {
      const values = new Float32Array(codes.buffer, codes.byteOffset, size * lists.stride);
      await backend.scanTopK(group, rowBlock(values, size, lists.stride, 0, inv), dim, metric, best, lists.ids(l), which);
    } else {
      await backend.scanCodedTopK(group, codedRows(lists.encoding, codes, size, lists.stride, lists.params, inv), dim, metric, best, lists.ids(l), which);
    }
  }
}

/**
 * pqScanListsTopK composed from a backend's ops: the rotation and the lookup
 * tables through score(), the residual terms in TypeScript, one adcScanTopK
 * per (query, probed list). The contract's definition for the reference
 * backend, and the WebGPU backend's until it has a fused kernel.
 */
export async function composedPqScanListsTopK(backend: Backend, queries: RowBlock, pq: PqQuantizer, lists: ListSet, probes: Int32Array, nprobe: number, metric: Metric, best: TopK, mask?: Uint32Array): Promise<void> {
  checkListScan(queries, lists, probes, nprobe, pq.dim, best, 'PQ list scan');
  checkPqScan(queries, pq, lists, metric, 'PQ list scan');
  // a mask scans each probed list's allowed members alone (mask.ts): a list with none left builds no table, as an empty one
  if (mask) lists = maskListSet(lists, mask);
  const { dim, m, bounds } = pq;
  const rows = queries.rows;
  if (rows === 0) return;
  const lut: 'ip' | 'l2' = metric === 'l2' ? 'l2' : 'ip';
  const x = new Float32Array(rows * dim);
  const qo = queries.offset ?? 0;
  for (let q = 0; q < rows; q++) x.set(queries.data.subarray(qo + q * queries.stride, qo + q * queries.stride + dim), q * dim);
  let y = x;
  if (pq.rotation) {
    y = new Float32Array(rows * dim);
    await backend.score(rowBlock(x, rows, dim), rowBlock(pq.rotation, dim, dim), dim, 'ip', y);
  }
  const codebook = (s: number) => rowBlock(pq.codebooks, PQ_TABLE, dim, bounds[s]);
  const tablesOf = async (vectors: Float32Array, count: number, out: Float32Array) => {
    const part = new Float32Array(count * PQ_TABLE);
    for (let s = 0; s < m; s++) {
      await backend.score(rowBlock(vectors, count, dim, bounds[s]), codebook(s), bounds[s + 1] - bounds[s], lut, part);
      for (let q = 0; q < count; q++) out.set(part.subarray(q * PQ_TABLE, (q + 1) * PQ_TABLE), (q * m + s) * PQ_TABLE);
    }
    return out;
  };
  const perList = pq.refs !== undefined && lut === 'l2';
  const refsY = perList ? (pq.rotation ? pq.rotatedRefs! : pq.refs!) : undefined;
  const biases = pq.refs && !perList ? pqListBiases(queries, pq.refs, dim, lists, probes, nprobe) : undefined;
  const tables = perList ? new Float32Array(m * PQ_TABLE) : await tablesOf(y, rows, new Float32Array(rows * m * PQ_TABLE));
  const diff = new Float32Array(dim);
  const bias = new Float32Array(1);
  const row = new Int32Array(1);
  for (let q = 0; q < rows; q++) {
    row[0] = q;
    for (let p = 0; p < nprobe; p++) {
      const l = probes[q * nprobe + p];
      if (l < 0) continue;
      const size = lists.size(l);
      if (size === 0) continue;
      let qTables = tables.subarray(q * m * PQ_TABLE, (q + 1) * m * PQ_TABLE);
      bias[0] = biases ? biases[q * nprobe + p] : 0;
      if (refsY) {
        for (let i = 0; i < dim; i++) diff[i] = y[q * dim + i] - refsY[l * dim + i];
        qTables = await tablesOf(diff, 1, tables);
      }
      await backend.adcScanTopK(qTables, 1, m, lists.codes(l), size, best, lists.ids(l), row, bias);
    }
  }
}


/**
 * Candidates named by where they lie in a ListSet (Backend.rescoreListsTopK):
 * query q's are i < sizes[q], member positions[q * k + i] of list
 * lists[q * k + i]. A search builds them from its shortlist of ids with the
 * lists' own id -> (list, position) map, so the rows are read in place.
 */
export interface ListCandidates {
  readonly k: number;
  readonly sizes: Int32Array;
  readonly lists: Int32Array;
  readonly positions: Int32Array;
}

/** Checks a rescoreListsTopK call: float lists read at dim, a candidate and result row per query, every candidate a member. */
export function checkListRescore(queries: RowBlock, lists: ListSet, candidates: ListCandidates, dim: number, best: TopK): void {
  const what = 'list rescore';
  if (lists.encoding === 'pq') throw new Error(`${what}: PQ codes hold no prefixes to rescore (rescore from a re-rank store)`);
  checkPrefix(queries, dim, `${what} queries`);
  if (dim > lists.stride) throw new Error(`${what}: prefix length ${dim} exceeds row length ${lists.stride}`);
  if (lists.encoding === 'sq8' && (!lists.params || lists.params.length < 2 * lists.stride)) throw new Error(`${what}: sq8 lists need 2 x ${lists.stride} parameters (min, scale)`);
  if (lists.layout) checkBlockLayout(lists.layout);
  const { k, sizes } = candidates;
  if (sizes.length < queries.rows || best.rows < queries.rows) throw new Error(`${what}: ${queries.rows} queries need as many candidate and result rows (${sizes.length}, ${best.rows})`);
  if (candidates.lists.length < queries.rows * k || candidates.positions.length < queries.rows * k) throw new Error(`${what}: candidate places hold ${Math.min(candidates.lists.length, candidates.positions.length)} entries for ${queries.rows} queries x ${k}`);
  for (let q = 0; q < queries.rows; q++) {
    if (sizes[q] < 0 || sizes[q] > k) throw new Error(`${what}: query ${q} has ${sizes[q]} candidates, 0..${k} allowed`);
    for (let i = 0; i < sizes[q]; i++) {
      const l = candidates.lists[q * k + i];
      const pos = candidates.positions[q * k + i];
      if (l < 0 || l >= lists.count) throw new Error(`${what}: candidate ${i} of query ${q} names list ${l}, not one of 0..${lists.count - 1}`);
      if (pos < 0 || pos >= lists.size(l)) throw new Error(`${what}: candidate ${i} of query ${q} names position ${pos} of list ${l}, which has ${lists.size(l)} members`);
    }
  }
}

/** Candidate rows a composed list rescore gathers per slice of queries (bounds the copy whatever the batch). */
const RESCORE_GATHER_ROWS = 4096;

/**
 * rescoreListsTopK composed from rescoreTopK: the contract's definition for
 * the reference backend, and the WebGPU backend's host fallback. A slice of
 * queries' candidates is gathered once each, in ascending id order (so ties
 * between gathered rows still break on the lower id), decoded to their first
 * `dim` values (decodeRows' arithmetic), with for cosine each member's norm
 * the list keeps at dim or, when it keeps none, the decoded prefix's
 * (computeInvNorms, float64), then rescored and reported under their ids.
 */
export async function composedRescoreListsTopK(backend: Backend, queries: RowBlock, lists: ListSet, candidates: ListCandidates, dim: number, metric: Metric, best: TopK): Promise<void> {
  checkListRescore(queries, lists, candidates, dim, best);
  const { k, sizes } = candidates;
  const eb = listBytesPerElement(lists.encoding);
  const member = new Uint8Array(lists.stride * eb);
  for (let from = 0; from < queries.rows; ) {
    let to = from;
    let total = 0;
    while (to < queries.rows && (to === from || total + sizes[to] <= RESCORE_GATHER_ROWS)) total += sizes[to++];
    // each distinct member once (by id), ascending
    const found = new Map<number, [number, number]>();
    for (let q = from; q < to; q++) {
      for (let i = 0; i < sizes[q]; i++) {
        const l = candidates.lists[q * k + i], pos = candidates.positions[q * k + i];
        found.set(lists.ids(l)[pos], [l, pos]);
      }
    }
    const ids = Int32Array.from(found.keys()).sort();
    const n = ids.length;
    const rows = new Float32Array(Math.max(1, n) * dim);
    const inv = metric === 'cosine' ? new Float32Array(n) : undefined;
    for (let r = 0; r < n; r++) {
      const [l, pos] = found.get(ids[r])!;
      const codes = lists.codes(l);
      if (lists.layout) readBlockedRow(codes, lists.layout, lists.stride, eb, pos, member, 0);
      else member.set(codes.subarray(pos * lists.stride * eb, (pos + 1) * lists.stride * eb));
      if (lists.encoding === 'f32') rows.set(new Float32Array(member.buffer, 0, dim), r * dim);
      else decodeRows(codedRows(lists.encoding as RowEncoding, member, 1, lists.stride, lists.params), 0, 1, dim, rows.subarray(r * dim, (r + 1) * dim));
      if (inv) inv[r] = lists.invNorms?.(l, dim)?.[pos] ?? computeInvNorms(rowBlock(rows, 1, dim, r * dim), dim)[0];
    }
    // candidates as gathered rows, scored into a slice of heaps, then merged under their ids (the heap order is total)
    const part = to - from;
    const rowOf = new Map<number, number>();
    ids.forEach((id, r) => rowOf.set(id, r));
    const asRows = new TopK(part, k);
    for (let t = 0; t < part; t++) {
      const q = from + t;
      asRows.sizes[t] = sizes[q];
      for (let i = 0; i < sizes[q]; i++) asRows.ids[t * k + i] = rowOf.get(lists.ids(candidates.lists[q * k + i])[candidates.positions[q * k + i]])!;
    }
    const sliceQueries = rowBlock(queries.data, part, queries.stride, (queries.offset ?? 0) + from * queries.stride, queries.invNorms?.subarray(from, to));
    const sliceBest = new TopK(part, best.k);
    if (n > 0) await backend.rescoreTopK(sliceQueries, rowBlock(rows, n, dim, 0, inv), dim, metric, asRows, sliceBest);
    for (let t = 0; t < part; t++) {
      for (let i = 0; i < sliceBest.sizes[t]; i++) best.push(from + t, ids[sliceBest.ids[t * best.k + i]], sliceBest.scores[t * best.k + i]);
    }
    from = to;
  }
}
