import type { ArenaArray, ArrayArena } from '../arena.js';

const PAGE = 65536;
/** wasm32 addresses 4 GiB; the maximum is reserved address space, not memory. */
export const MAX_PAGES = 65536;
const ALIGN = 64;
/** Staging room kept free in every memory for the copies a kernel call makes (see WasmArena). */
const MAX_STAGING_RESERVE = 64 << 20;

/**
 * One shared WebAssembly memory with a first-fit allocator (free blocks kept
 * sorted and coalesced). Growing a shared memory never detaches earlier views,
 * so arrays handed out stay valid. `maxPages` caps how far it grows.
 */
export class WasmMemory {
  readonly memory: WebAssembly.Memory;
  private top = ALIGN; // address 0 stays unused so 0 can mean "none" in kernel arguments
  /** Bytes at or above this address were never handed out, so they are still zero. */
  private clean = ALIGN;
  private used = 0;
  private readonly free: { start: number; size: number }[] = [];
  private readonly sizes = new Map<number, number>();
  private readonly buffers = new WeakSet<ArrayBufferLike>();

  constructor(
    initialPages = 256,
    readonly maxPages = MAX_PAGES,
  ) {
    if (!Number.isInteger(maxPages) || maxPages < 1 || maxPages > MAX_PAGES) throw new Error(`wasm memory: maximum of ${maxPages} pages is not between 1 and ${MAX_PAGES}`);
    this.memory = new WebAssembly.Memory({ initial: Math.min(initialPages, maxPages), maximum: maxPages, shared: true });
  }

  /** Bytes the memory spans now. */
  get bytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** Bytes it may grow to. */
  get capacity(): number {
    return this.maxPages * PAGE;
  }

  /** Bytes handed out and not yet released. */
  get inUse(): number {
    return this.used;
  }

  /**
   * The memory's current buffer, remembered as this memory's. V8 hands out a
   * new SharedArrayBuffer object not only when this memory grows but also
   * when another shared memory does, so views must be made on this buffer
   * for addressOf() to know them.
   */
  buffer(): ArrayBufferLike {
    const buffer = this.memory.buffer;
    this.buffers.add(buffer);
    return buffer;
  }

  /** Byte address of an array's first element if it lives in this memory (a view made on buffer()). */
  addressOf(array: ArrayBufferView): number | undefined {
    return this.buffers.has(array.buffer) ? array.byteOffset : undefined;
  }

  /**
   * Allocates `bytes` (aligned) ending at or below address `limit`; undefined
   * when that does not fit (the memory cannot grow far enough). Blocks are
   * zeroed unless `zero` is false (staging, which is always written first).
   */
  allocate(bytes: number, limit = this.capacity, zero = true): number | undefined {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    for (let i = 0; i < this.free.length; i++) {
      const block = this.free[i];
      if (block.size < size) continue;
      const start = block.start;
      if (start + size > limit) break; // blocks are sorted: later ones end higher
      if (block.size === size) this.free.splice(i, 1);
      else {
        block.start += size;
        block.size -= size;
      }
      return this.record(start, size, zero);
    }
    const start = this.top;
    if (start + size > Math.min(limit, this.capacity)) return undefined;
    if (start + size > this.bytes) {
      const pages = Math.ceil((start + size - this.bytes) / PAGE);
      // grow by at least a quarter so a run of appends does not grow page by page
      const ahead = Math.min(this.maxPages - this.bytes / PAGE, Math.ceil(this.bytes / PAGE / 4));
      try {
        this.memory.grow(Math.max(pages, ahead));
      } catch {
        try {
          this.memory.grow(pages);
        } catch {
          return undefined;
        }
      }
    }
    this.top = start + size;
    return this.record(start, size, zero);
  }

  private record(start: number, size: number, zero: boolean): number {
    this.sizes.set(start, size);
    this.used += size;
    // fresh pages are zero already: only reused bytes are cleared (and so not touched into residence)
    if (zero && start < this.clean) new Uint8Array(this.memory.buffer, start, Math.min(size, this.clean - start)).fill(0);
    this.clean = Math.max(this.clean, start + size);
    return start;
  }

  /** Bytes of a block from allocate() (its request rounded up). */
  sizeOf(start: number): number {
    const size = this.sizes.get(start);
    if (size === undefined) throw new Error(`wasm memory: address ${start} was not allocated`);
    return size;
  }

  /** Returns a block from allocate() to the free list, merging neighbours. */
  releaseAddress(start: number): void {
    const size = this.sizes.get(start);
    if (size === undefined) throw new Error(`wasm memory: address ${start} was not allocated`);
    this.sizes.delete(start);
    this.used -= size;
    let i = 0;
    while (i < this.free.length && this.free[i].start < start) i++;
    this.free.splice(i, 0, { start, size });
    if (i + 1 < this.free.length && start + size === this.free[i + 1].start) {
      this.free[i].size += this.free[i + 1].size;
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1].start + this.free[i - 1].size === start) {
      this.free[i - 1].size += this.free[i].size;
      this.free.splice(i, 1);
      i--;
    }
    const last = this.free[this.free.length - 1];
    if (last && last.start + last.size === this.top) {
      this.top = last.start;
      this.free.pop();
    }
  }
}

export interface WasmArenaOptions {
  /**
   * Most bytes one WebAssembly memory holds (a multiple of 64 KiB, at most
   * 4 GiB, the default); default ADANNS_WASM_MEMORY_BYTES. Tests force it
   * small so that a small index spans several memories.
   */
  maxMemoryBytes?: number;
  /** Most memories the arena opens (default: as many as the engine grants). */
  maxMemories?: number;
}

/** Where an arena array lives: memory number and byte address in it. */
export interface WasmLocation {
  memory: number;
  address: number;
}

/** The per-memory cap from an option or ADANNS_WASM_MEMORY_BYTES, checked. */
function memoryPages(bytes: number | undefined): number {
  const env = process.env.ADANNS_WASM_MEMORY_BYTES;
  const value = bytes ?? (env !== undefined && env !== '' ? Number(env) : MAX_PAGES * PAGE);
  const what = bytes === undefined ? `ADANNS_WASM_MEMORY_BYTES "${env}"` : `maxMemoryBytes ${bytes}`;
  if (!Number.isInteger(value) || value < PAGE || value > MAX_PAGES * PAGE || value % PAGE !== 0) {
    throw new Error(`${what} must be a multiple of 65536 between 65536 and 4294967296 (4 GiB, one wasm32 memory)`);
  }
  return value / PAGE;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/**
 * The CPU backend's arena: shared WebAssembly memories that every kernel
 * instance (main thread and workers) runs on. An array lives wholly in one
 * memory; when no memory has room for a request a new memory is opened, so
 * an index may exceed one wasm32 memory's 4 GiB (memory64 does not help on
 * Node 20: docs/ARCHITECTURE.md, "Kernels"). Each memory keeps a staging reserve that
 * arena arrays do not use: the room a kernel call running on that memory
 * needs for copies of operands that live elsewhere (queries, heaps, ids).
 * When no further memory can be opened the request fails with an error
 * naming the bytes asked and in use; arrays never fall back to the heap.
 */
export class WasmArena implements ArrayArena {
  readonly memories: WasmMemory[] = [];
  readonly memoryPages: number;
  readonly maxMemories: number;
  /** Bytes of each memory kept for per-call staging. */
  readonly stagingReserve: number;

  constructor(options: WasmArenaOptions = {}) {
    this.memoryPages = memoryPages(options.maxMemoryBytes);
    this.maxMemories = options.maxMemories ?? Infinity;
    if (!(this.maxMemories >= 1)) throw new Error(`maxMemories must be at least 1, got ${options.maxMemories}`);
    // small memories (tests) keep half for staging, since a call's copies do not shrink with the memory
    this.stagingReserve = Math.min(MAX_STAGING_RESERVE, (this.memoryPages * PAGE) / 2);
    this.open();
  }

  /** Most bytes one memory holds. */
  get memoryBytes(): number {
    return this.memoryPages * PAGE;
  }

  /** Largest single array the arena hands out. */
  get maxArrayBytes(): number {
    return this.memoryBytes - this.stagingReserve - ALIGN;
  }

  /** Bytes handed out over all memories (arrays and staging). */
  get inUse(): number {
    return this.memories.reduce((sum, m) => sum + m.inUse, 0);
  }

  /** Whether another memory may be opened. */
  get canOpen(): boolean {
    return this.memories.length < this.maxMemories;
  }

  /** Opens one more memory; undefined when the limit is reached or the engine refuses (address space or memory exhausted). */
  open(): WasmMemory | undefined {
    if (!this.canOpen) return undefined;
    let memory: WasmMemory;
    try {
      memory = new WasmMemory(Math.min(256, this.memoryPages), this.memoryPages);
    } catch (e) {
      if (this.memories.length === 0) throw e;
      return undefined;
    }
    this.memories.push(memory);
    return memory;
  }

  /** Number of the memory an array lives in; -1 outside the arena. */
  memoryOf(array: ArrayBufferView): number {
    for (let i = 0; i < this.memories.length; i++) if (this.memories[i].addressOf(array) !== undefined) return i;
    return -1;
  }

  /** The memory an array lives in and its address there; undefined for arrays outside the arena. */
  locate(array: ArrayBufferView): WasmLocation | undefined {
    for (let i = 0; i < this.memories.length; i++) {
      const address = this.memories[i].addressOf(array);
      if (address !== undefined) return { memory: i, address };
    }
    return undefined;
  }

  /** Allocates an array's bytes in the first memory with room, opening a new memory when none has; `zero` false leaves reused bytes as they were. */
  allocate(bytes: number, zero = true): WasmLocation {
    if (bytes > this.maxArrayBytes) {
      throw new Error(
        `WebAssembly arena: an array of ${bytes} bytes does not fit in one memory (at most ${this.maxArrayBytes} bytes: ` +
          `${this.memoryBytes} per memory less ${this.stagingReserve} kept for per-call staging); split it into smaller arrays`,
      );
    }
    const limit = this.memoryBytes - this.stagingReserve;
    for (let i = 0; i < this.memories.length; i++) {
      const address = this.memories[i].allocate(bytes, limit, zero);
      if (address !== undefined) return { memory: i, address };
    }
    const fresh = this.open();
    const address = fresh?.allocate(bytes, limit, zero);
    if (fresh && address !== undefined) return { memory: this.memories.length - 1, address };
    throw new Error(
      `out of WebAssembly memory: asked for ${bytes} bytes (${mib(bytes)}); ${this.memories.length} ${this.memories.length === 1 ? 'memory' : 'memories'} of at most ${mib(this.memoryBytes)} ` +
        `hold ${this.inUse} bytes (${mib(this.inUse)}) in use, and ${this.canOpen ? 'the engine refused another memory' : `the limit is ${this.maxMemories} memories`}`,
    );
  }

  float32(length: number): Float32Array {
    const at = this.allocate(length * 4);
    return new Float32Array(this.memories[at.memory].buffer(), at.address, length);
  }

  scratchFloat32(length: number): Float32Array {
    const at = this.allocate(length * 4, false);
    return new Float32Array(this.memories[at.memory].buffer(), at.address, length);
  }

  int32(length: number): Int32Array {
    const at = this.allocate(length * 4);
    return new Int32Array(this.memories[at.memory].buffer(), at.address, length);
  }

  uint8(length: number): Uint8Array {
    const at = this.allocate(length);
    return new Uint8Array(this.memories[at.memory].buffer(), at.address, length);
  }

  /** The kernels read these memories directly: nothing to refresh. */
  touched(): void {}

  release(array: ArenaArray): void {
    const at = this.locate(array);
    if (at) this.memories[at.memory].releaseAddress(at.address);
  }
}
