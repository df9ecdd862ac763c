import { blockLayoutWord } from '../blocked.js';
import { groupQueriesByList, listCodeBytes, type ListSet } from '../lists.js';
import { Stage, type Space } from './staging.js';
import type { WasmArena } from './wasm-memory.js';

/** Words per directory entry (kernels/cpu/simd.ts, "fused list scans"). */
const ENTRY_WORDS = 8;

/**
 * The probed lists of one fused scan call: each distinct non-empty list
 * probed is an entry (first-seen order); the queries probing it are
 * members[start[e] .. start[e+1]), ascending; probeEntries maps each probe
 * slot to its entry (-1 for a -1 probe or an empty list). Entries are grouped
 * by the memory holding their members, since a kernel call reads one memory.
 */
export interface ListScanPlan {
  lists: Int32Array;
  sizes: Int32Array;
  probeEntries: Int32Array;
  start: Int32Array;
  members: Int32Array;
  /** Entries by memory (-1: lists outside the arena, staged), each in entry order. */
  groups: { memory: number; entries: Int32Array }[];
  /** Members scanned over all probes (the call's work is this times the cost per member). */
  scanned: number;
  /** Per entry: its members' codes, ids and (cosine at the scanned prefix, when kept) inverse norms. */
  codes: Uint8Array[];
  ids: Int32Array[];
  norms: (Float32Array | undefined)[];
}

/** The call's entries and groups; `normsDim` > 0 fetches the lists' kept cosine norms at that prefix. */
export function planListScan(arena: WasmArena, lists: ListSet, probes: Int32Array, rows: number, nprobe: number, normsDim = 0): ListScanPlan {
  const entryOf = new Map<number, number>();
  const entryLists: number[] = [];
  const entrySizes: number[] = [];
  const probeEntries = new Int32Array(rows * nprobe);
  let scanned = 0;
  for (let i = 0; i < rows * nprobe; i++) {
    const l = probes[i];
    let e = l >= 0 ? entryOf.get(l) : -1;
    if (e === undefined) {
      const size = lists.size(l);
      e = size > 0 ? entryLists.length : -1;
      entryOf.set(l, e);
      if (e >= 0) {
        entryLists.push(l);
        entrySizes.push(size);
      }
    }
    probeEntries[i] = e;
    if (e >= 0) scanned += entrySizes[e];
  }
  const n = entryLists.length;
  // each entry's queries, ascending (entries number the lists of this call)
  const { start, members } = groupQueriesByList(probeEntries, rows, nprobe, n);
  const codes = entryLists.map((l) => lists.codes(l));
  const ids = entryLists.map((l) => lists.ids(l));
  const norms = entryLists.map((l) => (normsDim > 0 ? lists.invNorms?.(l, normsDim) : undefined));
  const byMemory = new Map<number, number[]>();
  for (let e = 0; e < n; e++) {
    const memory = arena.memoryOf(codes[e]);
    let group = byMemory.get(memory);
    if (!group) byMemory.set(memory, (group = []));
    group.push(e);
  }
  const groups = [...byMemory].map(([memory, entries]) => ({ memory, entries: Int32Array.from(entries) }));
  return { lists: Int32Array.from(entryLists), sizes: Int32Array.from(entrySizes), probeEntries, start, members, groups, scanned, codes, ids, norms };
}

/** The arrays a group's entries read (the operands a Space is bound to): codes, ids and kept norms. */
export function groupArrays(plan: ListScanPlan, entries: Int32Array): ArrayBufferView[] {
  const out: ArrayBufferView[] = [];
  for (const e of entries) {
    out.push(plan.codes[e], plan.ids[e]);
    const inv = plan.norms[e];
    if (inv) out.push(inv);
  }
  return out;
}

/** Staging bytes a group's directory may take besides its operands' copies: entries and each copy's alignment. */
export function directoryBytes(entries: number): number {
  return entries * (ENTRY_WORDS * 4 + 3 * 64) + 64;
}

/**
 * Writes a group's directory into the call's memory (Stage.Codes) and
 * returns its address: per entry its codes, ids and norms where they lie,
 * or copies (Stage.Base) of those that live in another memory, and the
 * lists' block layout (blockLayoutWord; 0 for members one after another).
 */
export function writeDirectory(s: Space, lists: ListSet, plan: ListScanPlan, entries: Int32Array): number {
  const n = entries.length;
  const dir = s.region(Stage.Codes, n * ENTRY_WORDS * 4);
  const layout = blockLayoutWord(lists.layout);
  const arrays: (ArrayBufferView | undefined)[] = [];
  const lengths: number[] = [];
  let foreign = 0;
  for (const e of entries) {
    const size = plan.sizes[e];
    for (const [array, bytes] of [[plan.codes[e], listCodeBytes(lists, size)], [plan.ids[e], size * 4], [plan.norms[e], size * 4]] as const) {
      arrays.push(array);
      lengths.push(bytes);
      if (array && s.memory.addressOf(array) === undefined) foreign += Math.ceil(bytes / 16) * 16;
    }
  }
  let at = foreign > 0 ? s.region(Stage.Base, foreign) : 0;
  const place = (array: ArrayBufferView | undefined, bytes: number): number => {
    if (!array) return 0;
    const address = s.memory.addressOf(array);
    if (address !== undefined) return address;
    s.copyTo(array, bytes, at);
    const copied = at;
    at += Math.ceil(bytes / 16) * 16;
    return copied;
  };
  for (let i = 0; i < n; i++) {
    const e = entries[i];
    const codes = place(arrays[3 * i], lengths[3 * i]);
    const ids = place(arrays[3 * i + 1], lengths[3 * i + 1]);
    const norms = place(arrays[3 * i + 2], lengths[3 * i + 2]);
    const words = s.words();
    const w = (dir >>> 2) + i * ENTRY_WORDS;
    words[w] = codes;
    words[w + 1] = ids;
    words[w + 2] = norms;
    words[w + 3] = plan.sizes[e];
    words[w + 4] = plan.start[e];
    words[w + 5] = plan.start[e + 1];
    words[w + 6] = plan.lists[e];
    words[w + 7] = layout;
  }
  return dir;
}

/** Each probe slot's directory index within a group (-1 outside it): the plan's own map when the group holds every entry. */
export function groupProbeEntries(plan: ListScanPlan, entries: Int32Array): Int32Array {
  if (entries.length === plan.lists.length) return plan.probeEntries;
  const local = new Int32Array(plan.lists.length).fill(-1);
  entries.forEach((e, i) => (local[e] = i));
  return plan.probeEntries.map((e) => (e >= 0 ? local[e] : -1));
}
