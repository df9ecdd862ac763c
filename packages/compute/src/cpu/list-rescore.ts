import { blockLayoutWord } from '../blocked.js';
import { listShortfall, type ListCandidates, type ListSet } from '../lists.js';
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

/** A directory of every list of a set (entry l = list l, as writeDirectory writes entries), in the memory holding the lists. */
export interface ListDirectory {
  memory: number;
  /** The directory's words in that memory (address: its byteOffset). */
  view: Int32Array;
}

interface Kept {
  version: number;
  /** Whether the directory was built at this version. */
  built: boolean;
  /** Until then, the entries (lists or candidate places) calls at this version planned themselves. */
  planned: number;
  /** undefined: not built, or the lists do not all lie in one memory of the arena or one is short of its members (no directory). */
  directory: ListDirectory | undefined;
}

/**
 * The list directories rescoreListsTopK reads, kept per set source
 * (ListSet.source) and cosine norms prefix while the source's version holds,
 * so a call plans nothing: its candidates name lists, which are entries.
 * After a list change calls plan their own lists (get answers undefined)
 * until, at one version, they have planned as many entries as the set has
 * lists: a build writes an entry per list, so it is made once planning per
 * call would have cost as much (rent or buy). Under steady ingest (a change
 * every few calls, each planning a few lists) nothing is built; a stable set
 * gets its directory after count / (lists per call) calls. Given back when
 * the source is collected.
 */
export class ListDirectories {
  private readonly kept = new WeakMap<object, Map<number, Kept>>();
  private readonly released = new FinalizationRegistry<Map<number, Kept>>((byDim) => {
    for (const { directory } of byDim.values()) if (directory) this.free(directory);
  });

  private buildCount = 0;

  constructor(private readonly arena: WasmArena) {}

  /** Full directory builds so far (tests: a churning source must not cause one per call). */
  get builds(): number {
    return this.buildCount;
  }

  /**
   * The directory of `lists` with kept norms at `normsDim` (0: none), or
   * undefined when the set has no source, it is not built yet at the source's
   * version (see above; `planned`: the entries this call plans without it),
   * or its lists lie in several memories or outside the arena, or one does
   * not hold its members (listShortfall).
   */
  get(lists: ListSet, normsDim: number, planned: number): ListDirectory | undefined {
    const source = lists.source;
    if (!source) return undefined;
    let byDim = this.kept.get(source);
    if (!byDim) {
      this.kept.set(source, (byDim = new Map()));
      this.released.register(source, byDim);
    }
    let kept = byDim.get(normsDim);
    if (kept?.version !== source.version) {
      // the old directory is stale: free it now, a new one waits until planning has cost as much
      if (kept?.directory) this.free(kept.directory);
      byDim.set(normsDim, (kept = { version: source.version, built: false, planned: 0, directory: undefined }));
    }
    if (kept.built) return kept.directory;
    kept.planned += planned;
    if (kept.planned < lists.count) return undefined;
    kept.built = true;
    this.buildCount++;
    return (kept.directory = this.build(lists, normsDim));
  }

  /** The directory get() would return once built, without counting toward building one: every list in it holds its members (listShortfall). */
  built(lists: ListSet, normsDim: number): ListDirectory | undefined {
    const source = lists.source;
    const kept = source && this.kept.get(source)?.get(normsDim);
    return kept && kept.built && kept.version === source.version ? kept.directory : undefined;
  }

  private build(lists: ListSet, normsDim: number): ListDirectory | undefined {
    const count = lists.count;
    const arrays: (ArrayBufferView | undefined)[] = new Array(3 * count);
    let memory = -1;
    for (let l = 0; l < count; l++) {
      if (lists.size(l) === 0) continue;
      // a list short of its members is read by planned calls, which check the lists they read (checkListScan)
      if (listShortfall(lists, l) !== undefined) return undefined;
      arrays[3 * l] = lists.codes(l);
      arrays[3 * l + 1] = lists.ids(l);
      arrays[3 * l + 2] = normsDim > 0 ? lists.invNorms?.(l, normsDim) : undefined;
      if (memory < 0) memory = this.arena.memoryOf(arrays[3 * l]!);
      if (memory < 0) return undefined;
    }
    if (memory < 0) memory = 0; // every list empty
    const m = this.arena.memories[memory];
    const address = (array: ArrayBufferView | undefined) => (array ? m.addressOf(array) : 0);
    for (const array of arrays) if (address(array) === undefined) return undefined;
    const at = m.allocate(count * ENTRY_BYTES, undefined, false);
    if (at === undefined) return undefined;
    const view = new Int32Array(m.buffer(), at, count * (ENTRY_BYTES / 4));
    const layout = blockLayoutWord(lists.layout);
    for (let l = 0; l < count; l++) {
      const w = l * (ENTRY_BYTES / 4);
      view[w] = address(arrays[3 * l])!;
      view[w + 1] = address(arrays[3 * l + 1])!;
      view[w + 2] = address(arrays[3 * l + 2])!;
      view[w + 3] = lists.size(l);
      view[w + 4] = 0;
      view[w + 5] = 0;
      view[w + 6] = l;
      view[w + 7] = layout;
    }
    return { memory, view };
  }

  private free(directory: ListDirectory): void {
    this.arena.memories[directory.memory].releaseAddress(directory.view.byteOffset);
  }
}

/** Bytes of a directory entry (kernels/cpu/simd.ts, "fused list scans"). */
const ENTRY_BYTES = 32;
