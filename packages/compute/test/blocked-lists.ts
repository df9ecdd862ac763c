import { afterAll, beforeAll } from 'vitest';
import {
  blockedBytes,
  codedInvNorms,
  codedRows,
  computeInvNorms,
  floatToHalf,
  listBytesPerElement,
  rowBlock,
  WasmSimdBackend,
  writeBlockedRow,
  type ArrayArena,
  type BlockLayout,
  type ListSet,
  type WasmSimdBackendOptions,
} from '../src/index.js';
import { randomMatrix } from './naive.js';

// The list tests' fixtures (list-scan, blocked, blocked-tile, list-rescore and
// the WebGPU list tests): random inverted lists of any encoding, in an arena
// or plain arrays, members one after another or prefix-blocked; probes with
// -1 entries; the CPU backends they run on.

export interface ListsOptions {
  encoding: ListSet['encoding'];
  seed: number;
  /** Elements per member (PQ: code bytes M). */
  stride: number;
  /** Members per list (empty lists included). */
  sizes: readonly number[];
  /** Cosine norms of the decoded members kept at this prefix only (none kept without: the kernels compute them). */
  keptDim?: number;
  /** Float members in this layout's blocks (blocked.ts); one after another without. */
  layout?: BlockLayout;
  /** Bytes allocated before each list's codes and ids: with small memories, spreads them over several. */
  filler?: number;
}

/** sq8 min then scale of `stride` elements. */
export function sq8Params(stride: number): Float32Array {
  return Float32Array.from({ length: 2 * stride }, (_, j) => (j < stride ? -0.5 - (j % 5) * 0.1 : 1 / 255 + (j % 3) * 0.001));
}

/**
 * Random lists (list l's values from seed + 31 l, so two calls differing in
 * layout hold the same members) in `arena`, or plain arrays without one: f32
 * values, float16 bits, sq8 or PQ code bytes. Ids interleave between lists
 * (member j of list l is j x lists + l), so ties across lists break on id.
 */
export function randomLists(arena: ArrayArena | undefined, o: ListsOptions): ListSet {
  const { encoding, stride, sizes, layout, filler = 0 } = o;
  const count = sizes.length;
  const alloc = {
    uint8: (n: number) => (arena ? arena.uint8(n) : new Uint8Array(n)),
    int32: (n: number) => (arena ? arena.int32(n) : new Int32Array(n)),
    float32: (n: number) => (arena ? arena.float32(n) : new Float32Array(n)),
  };
  const params = encoding === 'sq8' ? sq8Params(stride) : undefined;
  const bytesPer = listBytesPerElement(encoding);
  const codes: Uint8Array[] = [];
  const ids: Int32Array[] = [];
  const norms: Float32Array[] = [];
  sizes.forEach((size, l) => {
    const values = randomMatrix(size, stride, o.seed + 31 * l);
    const bytes =
      encoding === 'f32' ? new Uint8Array(values.buffer) : encoding === 'f16' ? new Uint8Array(Uint16Array.from(values, (v) => floatToHalf(v * 3)).buffer) : Uint8Array.from(values, (v) => Math.floor((v + 0.5) * 255.99));
    if (filler) alloc.uint8(filler);
    const held = alloc.uint8(layout ? blockedBytes(layout, stride, bytesPer, size) : bytes.length);
    if (layout) for (let r = 0; r < size; r++) writeBlockedRow(held, layout, stride, bytesPer, r, bytes, r * stride * bytesPer);
    else held.set(bytes);
    codes.push(held);
    if (filler) alloc.uint8(filler);
    const id = alloc.int32(size);
    id.set(Int32Array.from({ length: size }, (_, j) => j * count + l));
    ids.push(id);
    if (o.keptDim !== undefined && encoding !== 'pq') {
      const inv = alloc.float32(size);
      inv.set(encoding === 'f32' ? computeInvNorms(rowBlock(values, size, stride), o.keptDim) : codedInvNorms(codedRows(encoding, bytes, size, stride, params), o.keptDim));
      norms.push(inv);
    }
  });
  const set: ListSet = { encoding, count, stride, ...(params ? { params } : {}), ...(layout ? { layout } : {}), size: (l) => sizes[l], codes: (l) => codes[l], ids: (l) => ids[l] };
  return norms.length > 0 ? { ...set, invNorms: (l, d) => (d === o.keptDim ? norms[l] : undefined) } : set;
}

/**
 * rows x nprobe distinct lists of `count` per query (nprobe <= count), with
 * -1 entries (a query probing fewer lists) at the end and in between;
 * `first`, when given, is query 0's first probe (a list the test needs probed).
 */
export function randomProbes(rows: number, nprobe: number, seed: number, count: number, first?: number): Int32Array {
  if (nprobe > count) throw new Error(`randomProbes: ${nprobe} distinct probes of ${count} lists`);
  const probes = new Int32Array(rows * nprobe);
  let s = seed;
  for (let q = 0; q < rows; q++) {
    const order = Array.from({ length: count }, (_, i) => i);
    for (let i = count - 1; i > 0; i--) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const j = s % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    if (q === 0 && first !== undefined) {
      const at = order.indexOf(first);
      [order[0], order[at]] = [order[at], order[0]];
    }
    const used = q % 3 === 0 ? nprobe : Math.max(0, nprobe - 1 - (q % 4));
    for (let p = 0; p < nprobe; p++) probes[q * nprobe + p] = p < used && !(q % 5 === 1 && p === 1) ? order[p] : -1;
  }
  return probes;
}

/** Filler a `spread` backend's lists take (randomLists' filler): with its 1 MiB memories, a list's codes, ids and norms land in several. */
export const SPREAD_FILLER = 150_000;

/**
 * The CPU backends a list test file runs on (with `options`), made before
 * its tests and disposed after: one thread; two threads with every call split however
 * small; and two threads over 1 MiB memories (lists made with
 * SPREAD_FILLER spread over several, so calls copy what they read elsewhere).
 */
export function cpuBackends(options: WasmSimdBackendOptions = {}): { one: WasmSimdBackend; split: WasmSimdBackend; spread: WasmSimdBackend } {
  const made = {} as { one: WasmSimdBackend; split: WasmSimdBackend; spread: WasmSimdBackend };
  beforeAll(async () => {
    made.one = await WasmSimdBackend.create({ ...options, threads: 1, maxMemoryBytes: 2 ** 32 });
    made.split = await WasmSimdBackend.create({ ...options, threads: 2, parallelMinWork: 1, maxMemoryBytes: 2 ** 32 });
    made.spread = await WasmSimdBackend.create({ ...options, threads: 2, parallelMinWork: 1, maxMemoryBytes: 1 << 20 });
  });
  afterAll(async () => {
    await made.one?.dispose();
    await made.split?.dispose();
    await made.spread?.dispose();
  });
  return made;
}

// The blocked-layout tests' lists: stride 40 (groups of 16, 16 and a narrower 8), sizes around a block of 32.

export const stride = 40;
export const sizes = [0, 1, 5, 31, 32, 33, 3, 64, 0, 9, 130, 2, 17, 71];
export const keptDim = 17;

/** The same random lists twice, one member after another and in `layout`'s blocks; norms kept at keptDim only. */
export function makeLists(arena: ArrayArena, encoding: 'f32' | 'f16' | 'sq8', layout: BlockLayout, seed: number, filler = 0): { rows: ListSet; blocked: ListSet } {
  const options: ListsOptions = { encoding, seed, stride, sizes, keptDim, filler };
  return { rows: randomLists(arena, options), blocked: randomLists(arena, { ...options, layout }) };
}

/** Probes of the blocked tests' lists (randomProbes). */
export function makeProbes(rows: number, nprobe: number, seed: number): Int32Array {
  return randomProbes(rows, nprobe, seed, sizes.length);
}
