import type { ListCandidates, ListSet } from '../lists.js';
import type { ListScanPlan } from './list-scan.js';
import type { WasmArena } from './wasm-memory.js';

/**
 * The lists a rescoreListsTopK call reads, as a list scan's plan (so its
 * directory is written the same way, writeDirectory): each distinct list of
 * the candidates is an entry (first-seen order) and probeEntries maps each
 * candidate place (q * candidates.k + i) to its entry, -1 past a query's
 * candidates. No query groups: the kernel walks each query's candidates.
 * A single query's shortlist names a handful of lists, so this stays a
 * few typed-array passes (no maps), cheap next to the rows it reads.
 */
export function planListRescore(arena: WasmArena, lists: ListSet, candidates: ListCandidates, rows: number, normsDim: number): ListScanPlan {
  const { k, sizes } = candidates;
  // per call scratch, reused (a single query's call is a few microseconds: allocations showed in its profile);
  // the plan is consumed before the caller yields, so calls never share it
  if (entryScratch.length < lists.count) entryScratch = new Int32Array(lists.count).fill(-1);
  const entryOf = entryScratch;
  if (placeScratch.length < rows * k) placeScratch = new Int32Array(rows * k);
  const probeEntries = placeScratch.subarray(0, rows * k).fill(-1);
  const entryLists: number[] = [];
  let scanned = 0;
  for (let q = 0; q < rows; q++) {
    for (let i = q * k, end = q * k + sizes[q]; i < end; i++) {
      const l = candidates.lists[i];
      let e = entryOf[l];
      if (e < 0) e = entryOf[l] = entryLists.push(l) - 1;
      probeEntries[i] = e;
    }
    scanned += sizes[q];
  }
  const n = entryLists.length;
  for (const l of entryLists) entryOf[l] = -1;
  const entrySizes = new Int32Array(n);
  const codes: Uint8Array[] = new Array(n);
  const ids: Int32Array[] = new Array(n);
  const norms: (Float32Array | undefined)[] = new Array(n);
  for (let e = 0; e < n; e++) {
    const l = entryLists[e];
    entrySizes[e] = lists.size(l);
    codes[e] = lists.codes(l);
    ids[e] = lists.ids(l);
    norms[e] = normsDim > 0 ? lists.invNorms?.(l, normsDim) : undefined;
  }
  // entries by the memory holding their codes (one group in all but indexes past one memory)
  if (arena.memories.length === 1) return plan(entryLists, entrySizes, probeEntries, [{ memory: 0, entries: Int32Array.from(entryLists, (_, e) => e) }], scanned, codes, ids, norms);
  const byMemory = new Map<number, number[]>();
  for (let e = 0; e < n; e++) {
    const memory = arena.memories.length === 1 ? 0 : arena.memoryOf(codes[e]);
    let group = byMemory.get(memory);
    if (!group) byMemory.set(memory, (group = []));
    group.push(e);
  }
  const groups = [...byMemory].map(([memory, entries]) => ({ memory, entries: Int32Array.from(entries) }));
  return plan(entryLists, entrySizes, probeEntries, groups, scanned, codes, ids, norms);
}

/** Each list's entry during planListRescore (-1: none yet), reset after each call; each candidate place's entry. */
let entryScratch = new Int32Array(0);
let placeScratch = new Int32Array(0);

function plan(entryLists: number[], sizes: Int32Array, probeEntries: Int32Array, groups: ListScanPlan['groups'], scanned: number, codes: Uint8Array[], ids: Int32Array[], norms: (Float32Array | undefined)[]): ListScanPlan {
  // no query groups: start (directory words 4 and 5) is all zero, members empty
  return { lists: Int32Array.from(entryLists), sizes, probeEntries, start: new Int32Array(entryLists.length + 1), members: new Int32Array(0), groups, scanned, codes, ids, norms };
}
