import { allocateLike, heapArena, type ArrayArena } from '@adanns/compute';

/**
 * Typed arrays that grow by doubling, for lists and slot maps that take
 * appends after training. Arrays the kernels read live in the backend's arena
 * (the old array is released to it); Float64Array stays on the heap.
 */
export function grow<T extends Float32Array | Int32Array | Float64Array | Uint8Array>(array: T, needed: number, arena: ArrayArena = heapArena): T {
  if (needed <= array.length) return array;
  let capacity = Math.max(16, array.length);
  while (capacity < needed) capacity *= 2;
  if (array instanceof Float64Array) {
    const next = new Float64Array(capacity) as T;
    next.set(array);
    return next;
  }
  const next = allocateLike(arena, array, capacity) as T;
  next.set(array);
  arena.release(array as Float32Array | Int32Array | Uint8Array);
  return next;
}

/** A copy of `array` in the arena. */
export function toArena(arena: ArrayArena, array: Float32Array): Float32Array {
  const copy = arena.float32(array.length);
  copy.set(array);
  return copy;
}
