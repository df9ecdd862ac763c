import { encodedBytes, type CodedRows } from './coded.js';
import { fastScanBytes, FASTSCAN_BLOCK, type FastScanLists } from './fastscan.js';
import { readBlockedRow } from './blocked.js';
import { listBytesPerElement, type ListSet } from './lists.js';
import type { RowBlock } from './rows.js';

/**
 * Filters inside the scans: a `mask` is a bitset over the ids a scan reports
 * (bit id of word id >>> 5 at position id & 31; ids at or past mask.length * 32
 * are not allowed). A masked scan scores only members whose reported id is
 * allowed, as if the others were not there: its answer equals the unmasked
 * scan of the allowed members alone. The helpers here compact the allowed
 * members of a block or list into fresh arrays, which is how the reference
 * backend defines every masked op (and how a backend without a masked kernel
 * runs one); the CPU kernels skip masked members in place.
 */

/** Whether `mask` allows id. */
export function maskAllows(mask: Uint32Array, id: number): boolean {
  // compared before the shift: id >>> 5 wraps for ids of 2^32 and more (and NaN fails the first test)
  return id >= 0 && id < mask.length * 32 && ((mask[id >>> 5] >>> (id & 31)) & 1) === 1;
}

/** Positions j < rows whose reported id (ids[j], or j) the mask allows; undefined when all are. */
export function allowedRows(mask: Uint32Array, rows: number, ids?: Int32Array): Int32Array | undefined {
  const keep = new Int32Array(rows);
  let n = 0;
  for (let j = 0; j < rows; j++) if (maskAllows(mask, ids ? ids[j] : j)) keep[n++] = j;
  return n === rows ? undefined : keep.subarray(0, n);
}

/** The ids reported for `keep` (ids[j], or j). */
function keptIds(keep: Int32Array, ids?: Int32Array): Int32Array {
  return ids ? Int32Array.from(keep, (j) => ids[j]) : Int32Array.from(keep);
}

function keptNorms(keep: Int32Array, inv?: Float32Array): Float32Array | undefined {
  return inv && Float32Array.from(keep, (j) => inv[j]);
}

/** The allowed rows of a float32 block (their first `dim` values), their ids and norms; undefined when every row is allowed. */
export function maskRows(mask: Uint32Array, base: RowBlock, dim: number, ids?: Int32Array): { base: RowBlock; ids: Int32Array } | undefined {
  const keep = allowedRows(mask, base.rows, ids);
  if (!keep) return undefined;
  const data = new Float32Array(Math.max(1, keep.length * dim));
  const o = base.offset ?? 0;
  for (let i = 0; i < keep.length; i++) data.set(base.data.subarray(o + keep[i] * base.stride, o + keep[i] * base.stride + dim), i * dim);
  const inv = keptNorms(keep, base.invNorms);
  return { base: { data, rows: keep.length, stride: dim, offset: 0, ...(inv ? { invNorms: inv } : {}) }, ids: keptIds(keep, ids) };
}

/** The allowed rows of an encoded block (whole rows), their ids and norms; undefined when every row is allowed. */
export function maskCoded(mask: Uint32Array, base: CodedRows, ids?: Int32Array): { base: CodedRows; ids: Int32Array } | undefined {
  const keep = allowedRows(mask, base.rows, ids);
  if (!keep) return undefined;
  const rowBytes = base.stride * encodedBytes(base.encoding);
  const codes = new Uint8Array(Math.max(2, keep.length * rowBytes));
  for (let i = 0; i < keep.length; i++) codes.set(base.codes.subarray(keep[i] * rowBytes, (keep[i] + 1) * rowBytes), i * rowBytes);
  const inv = keptNorms(keep, base.invNorms);
  return { base: { ...base, codes, rows: keep.length, ...(inv ? { invNorms: inv } : {}) }, ids: keptIds(keep, ids) };
}

/** The allowed codes of `rows` PQ codes of m bytes, and their ids; undefined when every code is allowed. */
export function maskCodes(mask: Uint32Array, codes: Uint8Array, rows: number, m: number, ids?: Int32Array): { codes: Uint8Array; rows: number; ids: Int32Array } | undefined {
  const keep = allowedRows(mask, rows, ids);
  if (!keep) return undefined;
  const out = new Uint8Array(Math.max(1, keep.length * m));
  for (let i = 0; i < keep.length; i++) out.set(codes.subarray(keep[i] * m, (keep[i] + 1) * m), i * m);
  return { codes: out, rows: keep.length, ids: keptIds(keep, ids) };
}

/** The allowed members of `rows` fast-scan members (block layout, fastscan.ts) repacked, and their ids; undefined when every member is allowed. */
export function maskFastScanCodes(mask: Uint32Array, codes: Uint8Array, rows: number, m: number, ids?: Int32Array): { codes: Uint8Array; rows: number; ids: Int32Array } | undefined {
  const keep = allowedRows(mask, rows, ids);
  if (!keep) return undefined;
  const out = new Uint8Array(Math.max(16 * m, fastScanBytes(m, keep.length)));
  // nibble j of a block's sub-quantiser bytes: position (pos & 15) of byte, high nibble for lanes 16-31
  for (let i = 0; i < keep.length; i++) {
    const from = keep[i];
    const src = Math.floor(from / FASTSCAN_BLOCK) * 16 * m + (from & 15);
    const srcShift = from & 16 ? 4 : 0;
    const dst = Math.floor(i / FASTSCAN_BLOCK) * 16 * m + (i & 15);
    const dstShift = i & 16 ? 4 : 0;
    for (let s = 0; s < m; s++) out[dst + 16 * s] |= ((codes[src + 16 * s] >> srcShift) & 15) << dstShift;
  }
  return { codes: out, rows: keep.length, ids: keptIds(keep, ids) };
}

/**
 * A ListSet of the allowed members of each list (compacted on first use,
 * once per list): what a masked list scan scans, member after member
 * (`stride` elements each) whatever the lists' layout.
 */
export function maskListSet(lists: ListSet, mask: Uint32Array): ListSet {
  const bytes = lists.stride * listBytesPerElement(lists.encoding);
  const made = new Map<number, { keep?: Int32Array; codes: Uint8Array; ids: Int32Array }>();
  const list = (l: number) => {
    let got = made.get(l);
    if (!got) {
      const size = lists.size(l);
      const ids = lists.ids(l);
      const keep = size > 0 ? allowedRows(mask, size, ids) : undefined;
      // blocked lists (blocked.ts) are compacted too, so the view is always member after member
      const all = !keep && lists.layout && size > 0 ? Int32Array.from({ length: size }, (_, j) => j) : undefined;
      const rows = keep ?? all;
      if (!rows) got = { codes: lists.codes(l), ids };
      else {
        // float32 members stay 4-byte aligned: a fresh buffer
        const codes = new Uint8Array(Math.max(4, rows.length * bytes));
        const src = lists.codes(l);
        const layout = lists.layout;
        const elementBytes = listBytesPerElement(lists.encoding);
        for (let i = 0; i < rows.length; i++) {
          if (layout) readBlockedRow(src, layout, lists.stride, elementBytes, rows[i], codes, i * bytes);
          else codes.set(src.subarray(rows[i] * bytes, (rows[i] + 1) * bytes), i * bytes);
        }
        got = keep ? { keep, codes, ids: keptIds(keep, ids) } : { codes, ids };
      }
      made.set(l, got);
    }
    return got;
  };
  // no `layout`: members one after another
  const view: ListSet = {
    encoding: lists.encoding,
    count: lists.count,
    stride: lists.stride,
    ...(lists.params ? { params: lists.params } : {}),
    size: (l) => {
      const got = list(l);
      return got.keep ? got.keep.length : lists.size(l);
    },
    codes: (l) => list(l).codes,
    ids: (l) => list(l).ids,
  };
  if (lists.invNorms) {
    const inv = lists.invNorms.bind(lists);
    (view as { invNorms?: ListSet['invNorms'] }).invNorms = (l, dim) => {
      const got = list(l);
      return got.keep ? keptNorms(got.keep, inv(l, dim)) : inv(l, dim);
    };
  }
  return view;
}

/** FastScanLists of the allowed members of each list, repacked in the block layout (once per list). */
export function maskFastScanLists(lists: FastScanLists, mask: Uint32Array, m: number): FastScanLists {
  const made = new Map<number, { codes: Uint8Array; rows: number; ids: Int32Array }>();
  const list = (l: number) => {
    let got = made.get(l);
    if (!got) {
      const size = lists.size(l);
      got = (size > 0 ? maskFastScanCodes(mask, lists.codes(l), size, m, lists.ids(l)) : undefined) ?? { codes: lists.codes(l), rows: size, ids: lists.ids(l) };
      made.set(l, got);
    }
    return got;
  };
  return { count: lists.count, size: (l) => list(l).rows, codes: (l) => list(l).codes, ids: (l) => list(l).ids };
}

/** Members of list `l` (ids `ids`, `size` of them) the mask allows. */
export function allowedCount(mask: Uint32Array, ids: Int32Array, size: number): number {
  let n = 0;
  for (let j = 0; j < size; j++) if (maskAllows(mask, ids[j])) n++;
  return n;
}

/** Throws unless `mask` is a Uint32Array (an op's optional mask argument). */
export function checkMask(mask: unknown, what: string): asserts mask is Uint32Array | undefined {
  if (mask !== undefined && !(mask instanceof Uint32Array)) throw new Error(`${what}: mask must be a Uint32Array bitset, got ${(mask as object)?.constructor?.name ?? typeof mask}`);
}
