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
  const entryOf = new Int32Array(lists.count).fill(-1);
  const probeEntries = new Int32Array(rows * k).fill(-1);
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
  const byMemory = new Map<number, number[]>();
  for (let e = 0; e < n; e++) {
    const memory = arena.memories.length === 1 ? 0 : arena.memoryOf(codes[e]);
    let group = byMemory.get(memory);
    if (!group) byMemory.set(memory, (group = []));
    group.push(e);
  }
  const groups = [...byMemory].map(([memory, entries]) => ({ memory, entries: Int32Array.from(entries) }));
  return { lists: Int32Array.from(entryLists), sizes: entrySizes, probeEntries, start: new Int32Array(n + 1), members: new Int32Array(0), groups, scanned, codes, ids, norms };
}
