import type { Metric } from '../metric.js';
import type { RowBlock } from '../rows.js';
import type { TopK } from '../topk.js';
import { instantiateKernels, type SimdKernels } from './kernels.js';
import type { WasmArena, WasmMemory } from './wasm-memory.js';

/** Staging regions: operands that do not live in a call's memory are copied here per call. */
export const Stage = {
  Queries: 0,
  Base: 1,
  QueryNorms: 2,
  BaseNorms: 3,
  Ids: 4,
  HeapIds: 5,
  HeapScores: 6,
  HeapSizes: 7,
  Out: 8,
  Labels: 9,
  Tables: 10,
  Codes: 11,
  Bias: 12,
  CandidateSizes: 13,
  Counts: 14,
  /** Per-thread regions start here: heap ids, heap scores, heap sizes and kernel scratch of thread t. */
  Threads: 15,
} as const;
const PER_THREAD = 4;

/** Something a kernel call reads or writes: rows (with their inverse norms) or any typed array. */
export type Operand = RowBlock | ArrayBufferView | undefined;

/** Bytes of the rows a block spans at its full stride. */
function blockBytes(block: RowBlock): number {
  return block.rows > 0 ? block.rows * block.stride * 4 : 0;
}

/**
 * One arena memory as the place a kernel call runs: the main thread's kernel
 * instance on it, and a staging slab in it. Every address a call passes to a
 * kernel comes from one Space: operands that live in its memory are read in
 * place, others are copied into regions carved from the slab. The slab is
 * sized for the call before anything is copied (begin()), so a call either
 * gets all its room or none and goes elsewhere; it is kept for later calls.
 * Copies change no value, so results do not depend on where arrays lie.
 */
export class Space {
  private slab: { at: number; bytes: number } | undefined;
  /** Bytes of the slab handed out in the current call. */
  private used = 0;
  /** The current call's regions by stage: address, bytes, and the call that made each (plain arrays: this runs on every call). */
  private readonly regionAt: number[] = [];
  private readonly regionBytes: number[] = [];
  private readonly regionCall: number[] = [];
  private call = 0;
  /** Blocks beyond the slab (only when a call asks more than it reserved), given back at the next call. */
  private readonly overflow: number[] = [];
  private f32: Float32Array = new Float32Array(0);
  private i32: Int32Array = new Int32Array(0);
  private u8: Uint8Array = new Uint8Array(0);

  constructor(
    /** The memory's number in the arena (what pool threads are told to run on). */
    readonly index: number,
    readonly memory: WasmMemory,
    readonly kernels: SimdKernels,
  ) {}

  /** Bytes the staging slab holds (free for the next call's copies). */
  get stagingBytes(): number {
    return this.slab?.bytes ?? 0;
  }

  /**
   * Starts a call that copies at most `bytes` into this memory: makes the
   * slab at least that large. False, with nothing handed out, when the
   * memory has no such room.
   */
  begin(bytes: number): boolean {
    for (const at of this.overflow) this.memory.releaseAddress(at);
    this.overflow.length = 0;
    this.call++;
    this.used = 0;
    // kept while large enough and not far too large (one huge call must not hold its room from the arena)
    if (this.slab && this.slab.bytes >= bytes && this.slab.bytes <= Math.max(4 * bytes, 16 << 20)) return true;
    // grown by at least half (64 KiB at first), so a run of growing calls reallocates rarely
    const size = Math.max(bytes, this.slab && this.slab.bytes < bytes ? Math.floor(1.5 * this.slab.bytes) : 0, 1 << 16);
    const allocate = () => this.memory.allocate(size, undefined, false) ?? this.memory.allocate(bytes, undefined, false);
    let at = allocate();
    if (this.slab) {
      this.memory.releaseAddress(this.slab.at);
      this.slab = undefined;
      // no room beside the old slab: its own room, joined with free neighbours, may do
      at ??= allocate();
    }
    if (at === undefined) return false;
    this.slab = { at, bytes: this.memory.sizeOf(at) };
    return true;
  }

  /** Address of the current call's staging region for `stage`, at least `bytes`. */
  region(stage: number, bytes: number): number {
    if (this.regionCall[stage] === this.call && this.regionBytes[stage] >= bytes) return this.regionAt[stage];
    const size = Math.ceil(bytes / 64) * 64;
    let at: number | undefined;
    if (this.slab && this.used + size <= this.slab.bytes) {
      at = this.slab.at + this.used;
      this.used += size;
    } else {
      at = this.memory.allocate(size, undefined, false);
      if (at === undefined) {
        throw new Error(
          `out of WebAssembly memory staging ${bytes} bytes in memory ${this.index} (${this.memory.inUse} of ${this.memory.capacity} bytes in use): ` +
            'pass fewer queries or rows per call, or allow larger memories (maxMemoryBytes)',
        );
      }
      this.overflow.push(at);
    }
    this.regionAt[stage] = at;
    this.regionBytes[stage] = size;
    this.regionCall[stage] = this.call;
    return at;
  }

  /** Kernel scratch of thread t, at least `bytes`. */
  scratch(t: number, bytes: number): number {
    return this.region(Stage.Threads + PER_THREAD * t + 3, bytes);
  }

  /** Views of the whole memory, renewed when it has grown. */
  private views(): void {
    const buffer = this.memory.memory.buffer;
    if (this.f32.buffer === buffer) return;
    this.f32 = new Float32Array(buffer);
    this.i32 = new Int32Array(buffer);
    this.u8 = new Uint8Array(buffer);
  }

  /** The memory as int32 words (renewed when it has grown): for directories the host writes for a kernel. */
  words(): Int32Array {
    this.views();
    return this.i32;
  }

  /** Copies the first `bytes` of an array to address `at` of this memory. */
  copyTo(array: ArrayBufferView, bytes: number, at: number): void {
    this.views();
    this.u8.set(new Uint8Array(array.buffer, array.byteOffset, bytes), at);
  }

  /** Address of a block's first row, staging a copy of its rows when it lives elsewhere. */
  rows(block: RowBlock, dim: number, stage: number): number {
    const offset = block.offset ?? 0;
    const at = this.memory.addressOf(block.data);
    if (at !== undefined) return at + offset * 4;
    const length = (block.rows - 1) * block.stride + dim;
    const to = this.region(stage, length * 4);
    this.views();
    this.f32.set(block.data.subarray(offset, offset + length), to >>> 2);
    return to;
  }

  /** Address of the first `length` elements of any typed array, staging a copy (of its bytes) when it lives elsewhere. */
  array(array: ArrayBufferView & { BYTES_PER_ELEMENT: number }, length: number, stage: number): number {
    const at = this.memory.addressOf(array);
    if (at !== undefined) return at;
    const bytes = length * array.BYTES_PER_ELEMENT;
    const to = this.region(stage, bytes);
    this.views();
    this.u8.set(new Uint8Array(array.buffer, array.byteOffset, bytes), to);
    return to;
  }

  /** Cosine inverse norms at `dim` (supplied, or computed by the kernel from the rows at `rows`); 0 for other metrics. */
  norms(block: RowBlock, rows: number, dim: number, metric: Metric, stage: number): number {
    if (metric !== 'cosine') return 0;
    if (block.invNorms) {
      if (block.invNorms.length < block.rows) throw new Error(`invNorms has ${block.invNorms.length} entries for ${block.rows} rows`);
      return this.array(block.invNorms, block.rows, stage);
    }
    const out = this.region(stage, block.rows * 4);
    this.kernels.invNorms(rows, block.rows, block.stride, dim, out);
    return out;
  }

  /** Cosine inverse norms at `dim` of a block, supplied or computed as the reference computes them (float64 sums: invNormsExact); 0 for other metrics. */
  exactNorms(block: RowBlock, rows: number, dim: number, metric: Metric, stage: number): number {
    if (metric !== 'cosine' || block.invNorms) return this.norms(block, rows, dim, metric, stage);
    const out = this.region(stage, block.rows * 4);
    this.kernels.invNormsExact(rows, block.rows, block.stride, dim, out);
    return out;
  }

  /** Where a kernel writes `length` values of `array`: in place, or a staging region to copyOut() afterwards. */
  output(array: Float32Array | Int32Array, length: number, stage: number): number {
    return this.memory.addressOf(array) ?? this.region(stage, length * 4);
  }

  copyOut(array: Float32Array | Int32Array, from: number, length: number): void {
    if (this.memory.addressOf(array) !== undefined) return;
    this.views();
    if (array instanceof Float32Array) array.set(this.f32.subarray(from >>> 2, (from >>> 2) + length));
    else array.set(this.i32.subarray(from >>> 2, (from >>> 2) + length));
  }

  /** Zeroed staging of `length` floats (Float32) or ints, e.g. sums a kernel accumulates into. */
  zeroed(stage: number, length: number): number {
    const at = this.region(stage, length * 4);
    this.views();
    this.i32.fill(0, at >>> 2, (at >>> 2) + length);
    return at;
  }

  /** Copies the heaps of the call's rows (queryRows, or 0..rows-1) into staging: [ids, scores, sizes] addresses. */
  gatherHeaps(best: TopK, rows: number, queryRows: Int32Array | undefined): [number, number, number] {
    const k = best.k;
    const heaps: [number, number, number] = [this.region(Stage.HeapIds, rows * k * 4), this.region(Stage.HeapScores, rows * k * 4), this.region(Stage.HeapSizes, rows * 4)];
    this.views();
    for (let t = 0; t < rows; t++) {
      const row = queryRows ? queryRows[t] : t;
      const size = best.sizes[row];
      // a fresh heap (most calls) copies nothing: no views made
      if (size > 0) {
        this.i32.set(best.ids.subarray(row * k, row * k + size), (heaps[0] >>> 2) + t * k);
        this.f32.set(best.scores.subarray(row * k, row * k + size), (heaps[1] >>> 2) + t * k);
      }
      this.i32[(heaps[2] >>> 2) + t] = size;
    }
    return heaps;
  }

  scatterHeaps(best: TopK, rows: number, queryRows: Int32Array | undefined, heaps: [number, number, number]): void {
    const k = best.k;
    this.views();
    for (let t = 0; t < rows; t++) {
      const row = queryRows ? queryRows[t] : t;
      const size = this.i32[(heaps[2] >>> 2) + t];
      best.ids.set(this.i32.subarray((heaps[0] >>> 2) + t * k, (heaps[0] >>> 2) + t * k + size), row * k);
      best.scores.set(this.f32.subarray((heaps[1] >>> 2) + t * k, (heaps[1] >>> 2) + t * k + size), row * k);
      best.sizes[row] = size;
    }
  }

  /** Thread t's own heaps when a call is split by base rows; emptied unless `reset` is false. */
  privateHeaps(t: number, rows: number, k: number, reset = true): [number, number, number] {
    const base = Stage.Threads + PER_THREAD * t;
    const heaps: [number, number, number] = [this.region(base, rows * k * 4), this.region(base + 1, rows * k * 4), this.region(base + 2, rows * 4)];
    if (reset) {
      this.views();
      this.i32.fill(0, heaps[2] >>> 2, (heaps[2] >>> 2) + rows);
    }
    return heaps;
  }

  /** Pushes every entry of a thread's heaps into `best` (the heap order is total, so merge order does not matter). */
  mergeHeaps(best: TopK, rows: number, queryRows: Int32Array | undefined, heaps: [number, number, number]): void {
    const k = best.k;
    this.views();
    for (let t = 0; t < rows; t++) {
      const row = queryRows ? queryRows[t] : t;
      const size = this.i32[(heaps[2] >>> 2) + t];
      for (let i = 0; i < size; i++) best.push(row, this.i32[(heaps[0] >>> 2) + t * k + i], this.f32[(heaps[1] >>> 2) + t * k + i]);
    }
  }
}

/**
 * The Spaces of an arena's memories (made when a call first runs on one),
 * and the choice of where a call runs.
 */
export class Spaces {
  private readonly spaces: Space[] = [];

  constructor(
    private readonly arena: WasmArena,
    private readonly module: WebAssembly.Module,
    /** Threads a call may use: per-thread regions bound the slack for region alignment. */
    private readonly threads: number,
  ) {}

  at(index: number): Space {
    return (this.spaces[index] ??= new Space(index, this.arena.memories[index], instantiateKernels(this.module, this.arena.memories[index].memory)));
  }

  /**
   * Where a call over `operands` runs, with staging room for copies of the
   * operands that live elsewhere plus `extra` bytes it always stages (heaps,
   * scratch): the memory holding most of their bytes (the list, codes or base
   * a scan reads in place) that has that room; else the memory with the most
   * room; else a new memory. Fails, before anything is copied, only when no
   * memory has room and no new one can be opened.
   */
  bind(operands: readonly Operand[], extra = 0): Space {
    const memories = this.arena.memories;
    if (this.held.length < memories.length) this.held = new Float64Array(2 * memories.length);
    const held = this.held.fill(0, 0, memories.length);
    // every region is rounded up to 64 bytes
    this.total = extra + 64 * (Stage.Threads + PER_THREAD * this.threads);
    for (const operand of operands) {
      if (!operand) continue;
      if (ArrayBuffer.isView(operand)) this.count(operand, operand.byteLength);
      else {
        this.count(operand.data, blockBytes(operand));
        if (operand.invNorms) this.count(operand.invNorms, operand.rows * 4);
        else this.total += operand.rows * 4; // cosine norms the kernel computes into staging
      }
    }
    const total = this.total;
    let most = 0;
    for (let i = 0; i < memories.length; i++) most = Math.max(most, held[i]);
    // the holders of the call's bytes, most first
    for (;;) {
      let best = -1;
      for (let i = 0; i < memories.length; i++) if (held[i] > 0 && (best < 0 || held[i] > held[best])) best = i;
      if (best < 0) break;
      if (this.at(best).begin(total - held[best])) return this.at(best);
      held[best] = -1; // tried
    }
    let roomiest = 0;
    for (let i = 1; i < memories.length; i++) if (this.room(i) > this.room(roomiest)) roomiest = i;
    if (held[roomiest] === 0 && this.at(roomiest).begin(total)) return this.at(roomiest);
    // nothing in place has room: a new memory takes copies of everything (if they can fit one)
    if (total <= this.arena.memoryBytes && this.arena.open()) {
      const fresh = this.at(memories.length - 1);
      if (fresh.begin(total)) return fresh;
    }
    throw new Error(
      `out of WebAssembly memory: a kernel call needs ${total - most} bytes of staging and no memory has room ` +
        `(${memories.length} ${memories.length === 1 ? 'memory' : 'memories'} of at most ${this.arena.memoryBytes} bytes hold ${this.arena.inUse} bytes in use): ` +
        'pass fewer queries or rows per call',
    );
  }

  /** Bytes of the call so far and, per memory, the bytes of it that memory holds (reused between calls). */
  private total = 0;
  private held = new Float64Array(4);

  private count(view: ArrayBufferView, bytes: number): void {
    this.total += bytes;
    const memory = this.arena.memoryOf(view);
    if (memory >= 0) this.held[memory] += bytes;
  }

  /** Bytes a call's copies may take in memory i: what is free, plus the staging slab it would reuse. */
  private room(i: number): number {
    const memory = this.arena.memories[i];
    return memory.capacity - memory.inUse + (this.spaces[i]?.stagingBytes ?? 0);
  }
}
