import { rowBlock, TopK, type Backend, type ListSet, type Metric, type RowBlock, type RowGroups } from '@adanns/compute';
import type { ListCodec } from '../codecs/codec.js';
import type { InvertedLists } from '../index/inverted-lists.js';
import type { RerankStore } from '../rerank/store.js';

/**
 * Where a gathering re-rank reads rows by slot: a re-rank store, or the
 * lists' decoded prefixes (listRows), which may also give the rows' kept
 * cosine inverse norms at the rescored prefix (else the backend computes them).
 */
export type RowSource = Pick<RerankStore, 'dim' | 'read'> & { readInvNorms?(slots: ArrayLike<number>, out: Float32Array): void };

/**
 * The lists as a row source at prefix `dim` (<= d_s; decoding codecs): each
 * slot's code decoded to its first `dim` values. Decoding an f16/sq8 value is
 * one multiply-add in the cost model (cost.ts), done here on the host and
 * reported through Backend.tally; float32 values are copied. Cosine norms the
 * lists keep at `dim` (their dims ladder) come with the rows.
 */
export function listRows(backend: Backend, lists: InvertedLists, codec: ListCodec, dim: number): RowSource {
  const decode = codec.decode;
  if (!decode) throw new Error(`a ${codec.spec.codec} list codec keeps codes, not prefixes: its lists cannot be re-ranked from`);
  const bytes = codec.codeBytes;
  return {
    dim,
    read(slots, out) {
      for (let i = 0; i < slots.length; i++) {
        const at = lists.locate(slots[i]);
        if (!at) throw new Error(`funnel: slot ${slots[i]} is in no list`);
        decode.call(codec, at.codes.subarray(at.offset, at.offset + bytes), 1, dim, out.subarray(i * dim, (i + 1) * dim));
      }
      if (codec.flopsPerValue > 1) backend.tally?.((codec.flopsPerValue - 1) * slots.length * dim);
    },
    ...(lists.hasNorms(dim)
      ? {
          readInvNorms(slots: ArrayLike<number>, out: Float32Array) {
            for (let i = 0; i < slots.length; i++) out[i] = lists.invNormOf(slots[i], dim)!;
          },
        }
      : {}),
  };
}

/**
 * A funnel stage from the lists (decoding codecs): each query's candidates
 * located in the lists (InvertedLists.places; a candidate removed since the
 * scan is dropped) and rescored where they lie at prefix `dim` in one backend
 * call (Backend.rescoreListsTopK), keeping the best k. Decoding f16/sq8
 * values and the cosine norms the lists do not keep at dim are the op's work
 * (cost.ts prices both); the scores are those rerankGathered gives from
 * listRows, ties on the lower slot alike.
 */
export async function rerankFromLists(backend: Backend, queries: RowBlock, shortlist: TopK, lists: InvertedLists, set: ListSet, dim: number, metric: Metric, k: number, live?: (slot: number) => boolean): Promise<TopK> {
  const final = new TopK(queries.rows, k);
  await backend.rescoreListsTopK(queries, set, lists.places(shortlist, live), dim, metric, final);
  return final;
}

/**
 * A re-rank store as a row source: its rows, and for cosine the inverse
 * norms a resident float32 store keeps (so a scan of gathered rows does not
 * recompute them).
 */
export function storeRows(store: RerankStore): RowSource {
  const inv = store.inPlace?.().invNorms;
  return {
    dim: store.dim,
    read: (slots, out) => store.read(slots, out),
    ...(inv
      ? {
          readInvNorms(slots: ArrayLike<number>, out: Float32Array) {
            for (let i = 0; i < slots.length; i++) out[i] = inv[slots[i]];
          },
        }
      : {}),
  };
}

/** Gathered re-rank rows per batch slice: bounds the buffer (16 MiB of 1024-d rows) whatever the batch. */
const GATHER_ROWS = 4096;

/**
 * Stage 4 from a re-rank store: exact scores of each query's shortlist at
 * `rerankDim` (a prefix of the store's rows), keeping the best k. The
 * shortlists of a slice of queries are gathered with one read of the store
 * (their slots once each, ascending, so a disk store reads in file order and
 * coalesces adjacent rows) and rescored in one backend call. The gathered
 * rows are numbered in slot order, so ties still break on the lower slot.
 * `live`: whether a slot still holds a vector; a candidate removed from the
 * index since the scan found it (a backend that yields lets a remove run
 * between stages) is dropped, not read.
 */
export async function rerankGathered(
  backend: Backend,
  queries: RowBlock,
  shortlist: TopK,
  store: RowSource,
  rerankDim: number,
  metric: Metric,
  k: number,
  live?: (slot: number) => boolean,
): Promise<TopK> {
  const rows = queries.rows;
  const final = new TopK(rows, k);
  for (let from = 0; from < rows; ) {
    // a slice of queries whose shortlists fit the gather bound (at least one query)
    let to = from;
    let members = 0;
    while (to < rows && (to === from || members + shortlist.sizes[to] <= GATHER_ROWS)) members += shortlist.sizes[to++];
    const all = new Int32Array(members);
    for (let q = from, at = 0; q < to; q++) {
      all.set(shortlist.ids.subarray(q * shortlist.k, q * shortlist.k + shortlist.sizes[q]), at);
      at += shortlist.sizes[q];
    }
    all.sort();
    let n = 0;
    for (let i = 0; i < all.length; i++) if ((i === 0 || all[i] !== all[i - 1]) && (!live || live(all[i]))) all[n++] = all[i];
    const slots = all.subarray(0, n);
    // in the backend's arena, so the rescore reads the rows where the store put them (read whole: no zeroing needed)
    const length = Math.max(1, n * store.dim);
    const gathered = backend.arena.scratchFloat32?.(length) ?? backend.arena.float32(length);
    try {
      await rescoreSlice(backend, queries, shortlist, store, rerankDim, metric, k, final, from, to, slots, gathered);
    } finally {
      backend.arena.release(gathered);
    }
    from = to;
  }
  return final;
}

/** Reads one slice's rows into `gathered` (slots ascending, once each) and rescores the slice's shortlists into rows [from, to) of `final`. */
async function rescoreSlice(
  backend: Backend,
  queries: RowBlock,
  shortlist: TopK,
  store: RowSource,
  rerankDim: number,
  metric: Metric,
  k: number,
  final: TopK,
  from: number,
  to: number,
  slots: Int32Array,
  gathered: Float32Array,
): Promise<void> {
  const part = to - from;
  const n = slots.length;
  const d = store.dim;
  if (n > 0) await store.read(slots, gathered.subarray(0, n * d));
  backend.arena.touched(gathered);
  // candidates as rows of the gathered block (a candidate not gathered, removed since the scan, is dropped)
  const candidates = new TopK(part, shortlist.k);
  for (let t = 0; t < part; t++) {
    const q = from + t;
    let size = 0;
    for (let i = 0; i < shortlist.sizes[q]; i++) {
      const slot = shortlist.ids[q * shortlist.k + i];
      const row = rowOf(slots, slot);
      if (slots[row] === slot) candidates.ids[t * shortlist.k + size++] = row;
    }
    candidates.sizes[t] = size;
  }
  const best = new TopK(part, k);
  const sliceQueries = rowBlock(queries.data, part, queries.stride, (queries.offset ?? 0) + from * queries.stride, queries.invNorms?.subarray(from, to));
  // no norms given: the backend computes cosine norms as a resident store computes them (Backend.rescoreTopK), so every store scores bit-identically;
  // the lists' kept norms at the rescored prefix (a funnel stage reading them) are given
  let invNorms: Float32Array | undefined;
  if (metric === 'cosine' && store.readInvNorms && rerankDim === d) store.readInvNorms(slots, (invNorms = new Float32Array(n)));
  await backend.rescoreTopK(sliceQueries, rowBlock(gathered, n, d, 0, invNorms), rerankDim, metric, candidates, best);
  for (let t = 0; t < part; t++) {
    const size = best.sizes[t];
    const q = from + t;
    final.sizes[q] = size;
    for (let i = 0; i < size; i++) final.ids[q * k + i] = slots[best.ids[t * k + i]];
    final.scores.set(best.scores.subarray(t * k, t * k + size), q * k);
  }
}

/** Position of `slot` in ascending `slots` (where it would be when absent: check slots[position]). */
function rowOf(slots: Int32Array, slot: number): number {
  let lo = 0;
  let hi = slots.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (slots[mid] < slot) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Stage 4 over resident float32 rows (slot = row): exact scores of each
 * query's shortlist, read in place by the backend, keeping the best k
 * (candidates removed since the scan dropped, as rerankGathered does).
 * `groups`: the slots' lists (InvertedLists.rowGroups), so a batch may be
 * rescored list by list (Backend.rescoreTopK); the answer is the same.
 */
export async function rerankStored(backend: Backend, queries: RowBlock, shortlist: TopK, stored: RowBlock, metric: Metric, k: number, live?: (slot: number) => boolean, groups?: RowGroups): Promise<TopK> {
  const final = new TopK(queries.rows, k);
  const grouped = groups && groups.of.length >= stored.rows ? groups : undefined;
  await backend.rescoreTopK(queries, stored, stored.stride, metric, live ? liveCandidates(shortlist, live) : shortlist, final, grouped);
  return final;
}

/** The candidates still live (rerankGathered's `live`): the shortlist itself when all are, else a compacted copy. */
function liveCandidates(shortlist: TopK, live: (slot: number) => boolean): TopK {
  const k = shortlist.k;
  let all = true;
  for (let q = 0; q < shortlist.rows && all; q++) for (let i = 0; i < shortlist.sizes[q] && all; i++) all = live(shortlist.ids[q * k + i]);
  if (all) return shortlist;
  const out = new TopK(shortlist.rows, k);
  for (let q = 0; q < shortlist.rows; q++) {
    let n = 0;
    for (let i = 0; i < shortlist.sizes[q]; i++) {
      const slot = shortlist.ids[q * k + i];
      if (!live(slot)) continue;
      out.ids[q * k + n] = slot;
      out.scores[q * k + n++] = shortlist.scores[q * k + i];
    }
    out.sizes[q] = n;
  }
  return out;
}
