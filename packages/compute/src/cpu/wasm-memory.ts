import type { ArenaArray, ArrayArena } from '../arena.js';

const PAGE = 65536;
/** wasm32 addresses 4 GiB; the maximum is reserved address space, not memory. */
const MAX_PAGES = 65536;
const ALIGN = 64;

/**
 * The shared WebAssembly memory every kernel instance (main thread and
 * workers) runs on, with a first-fit allocator (free blocks kept sorted and
 * coalesced). Growing a shared memory never detaches earlier views, so arrays
 * handed out stay valid. When the 4 GiB address space is exhausted the arena
 * falls back to the JavaScript heap and the backend copies such arrays in per
 * call: slower, never wrong.
 */
export class WasmMemory implements ArrayArena {
  readonly memory: WebAssembly.Memory;
  private top = ALIGN; // address 0 stays unused so 0 can mean "none" in kernel arguments
  private readonly free: { start: number; size: number }[] = [];
  private readonly sizes = new Map<number, number>();
  private readonly buffers = new WeakSet<ArrayBufferLike>();

  constructor(initialPages = 256) {
    this.memory = new WebAssembly.Memory({ initial: initialPages, maximum: MAX_PAGES, shared: true });
    this.buffers.add(this.memory.buffer);
  }

  get bytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** Byte address of an array's first element if it lives in this memory. */
  addressOf(array: ArrayBufferView): number | undefined {
    return this.buffers.has(array.buffer) ? array.byteOffset : undefined;
  }

  /** Allocates `bytes` (aligned); undefined when the address space is exhausted. */
  allocate(bytes: number): number | undefined {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    for (let i = 0; i < this.free.length; i++) {
      const block = this.free[i];
      if (block.size < size) continue;
      const start = block.start;
      if (block.size === size) this.free.splice(i, 1);
      else {
        block.start += size;
        block.size -= size;
      }
      return this.record(start, size);
    }
    const start = this.top;
    if (start + size > this.bytes) {
      const pages = Math.ceil((start + size - this.bytes) / PAGE);
      // grow by at least a quarter so a run of appends does not grow page by page
      const ahead = Math.min(MAX_PAGES - this.bytes / PAGE, Math.ceil(this.bytes / PAGE / 4));
      try {
        this.memory.grow(Math.max(pages, ahead));
      } catch {
        try {
          this.memory.grow(pages);
        } catch {
          return undefined;
        }
      }
      this.buffers.add(this.memory.buffer);
    }
    this.top = start + size;
    return this.record(start, size);
  }

  private record(start: number, size: number): number {
    this.sizes.set(start, size);
    new Uint8Array(this.memory.buffer, start, size).fill(0);
    return start;
  }

  /** Returns a block from allocate() to the free list, merging neighbours. */
  releaseAddress(start: number): void {
    const size = this.sizes.get(start);
    if (size === undefined) throw new Error(`wasm memory: address ${start} was not allocated`);
    this.sizes.delete(start);
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

  float32(length: number): Float32Array {
    const at = this.allocate(length * 4);
    return at === undefined ? new Float32Array(length) : new Float32Array(this.memory.buffer, at, length);
  }

  int32(length: number): Int32Array {
    const at = this.allocate(length * 4);
    return at === undefined ? new Int32Array(length) : new Int32Array(this.memory.buffer, at, length);
  }

  uint8(length: number): Uint8Array {
    const at = this.allocate(length);
    return at === undefined ? new Uint8Array(length) : new Uint8Array(this.memory.buffer, at, length);
  }

  /** The kernels read this memory directly: nothing to refresh. */
  touched(): void {}

  release(array: ArenaArray): void {
    const at = this.addressOf(array);
    if (at !== undefined) this.releaseAddress(at);
  }
}
