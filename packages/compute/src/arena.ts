/** Typed arrays a backend may hand out from memory its kernels read in place. */
export type ArenaArray = Float32Array | Int32Array | Uint8Array;

/**
 * Where long-lived index arrays (inverted lists, stored vectors) are
 * allocated. The WebAssembly backend hands out views of its own memory, so
 * scans read lists where they lie instead of copying them in per call; the
 * plain backend uses the JavaScript heap; the WebGPU backend keeps copies on
 * the device. Arrays from an arena are zeroed, must be given back with
 * release() when replaced, and after an in-place write the owner calls
 * touched() so a device copy is refreshed. An arena may refuse a request
 * (the CPU one: an array larger than one WebAssembly memory, or no memory
 * left) with an error naming the bytes asked and in use; it never hands
 * out an array its backend would have to copy on every call instead.
 */
export interface ArrayArena {
  float32(length: number): Float32Array;
  int32(length: number): Int32Array;
  uint8(length: number): Uint8Array;
  /**
   * Optional: a float32 array whose contents are unspecified, for a buffer
   * the caller overwrites whole before reading (a gather), so reused memory
   * is not zeroed first. Released like any other.
   */
  scratchFloat32?(length: number): Float32Array;
  release(array: ArenaArray): void;
  touched(array: ArenaArray): void;
}

export const heapArena: ArrayArena = {
  float32: (length) => new Float32Array(length),
  int32: (length) => new Int32Array(length),
  uint8: (length) => new Uint8Array(length),
  release: () => {},
  touched: () => {},
};

/** A zeroed array of the same type as `like` from the arena. */
export function allocateLike<T extends ArenaArray>(arena: ArrayArena, like: T, length: number): T {
  if (like instanceof Float32Array) return arena.float32(length) as T;
  if (like instanceof Int32Array) return arena.int32(length) as T;
  return arena.uint8(length) as T;
}
