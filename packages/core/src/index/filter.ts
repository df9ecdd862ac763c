/**
 * Filters for search: the set of ids a search may return, as a bitset over
 * the ids given to AdannsIndex.add (dense internal ids, so a flat bitset is
 * small and every membership test is one load and a shift).
 */

import { maskAllows } from '@adanns/compute';

/**
 * Bit i of `bits` (word i >>> 5, bit i & 31) set = the vector added under id i
 * may be returned; `count` = the number of set bits. Ids at or beyond
 * bits.length * 32 are not allowed.
 */
export interface AllowedIds {
  readonly bits: Uint32Array;
  readonly count: number;
}

/** Largest id a bitset can name (ids are dense internal ids, far below this). */
const MAX_FILTER_ID = 2 ** 32 - 1;

/** Set bits in one 32-bit word. */
export function popcount32(word: number): number {
  let v = word - ((word >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Set bits in a bitset. */
export function countBits(bits: Uint32Array): number {
  let n = 0;
  for (let w = 0; w < bits.length; w++) if (bits[w] !== 0) n += popcount32(bits[w]);
  return n;
}

/** The AllowedIds of a list of ids (duplicates count once). */
export function allowedIdsOf(ids: Iterable<number>): AllowedIds {
  const list: number[] = [];
  let max = -1;
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id > MAX_FILTER_ID) {
      throw new RangeError(`filter id ${id} is not an integer in [0, ${MAX_FILTER_ID}]`);
    }
    list.push(id);
    if (id > max) max = id;
  }
  // Math.floor, not (max + 32) >>> 5: that wraps to 0 words for max >= 2^32 - 32
  const bits = new Uint32Array(Math.floor(max / 32) + 1);
  for (const id of list) bits[id >>> 5] |= 1 << (id & 31);
  return { bits, count: countBits(bits) };
}

/** Whether `id` is allowed by `filter` (the scans' own test, compute's maskAllows, on its bits). */
export function isAllowed(filter: AllowedIds, id: number): boolean {
  return maskAllows(filter.bits, id);
}

/**
 * Throws a clear error unless `filter` has the AllowedIds shape and its count
 * matches its bits (a wrong count would mislead the selectivity-aware plan).
 */
export function checkAllowedIds(filter: unknown, what = 'filter'): asserts filter is AllowedIds {
  if (typeof filter !== 'object' || filter === null) {
    throw new TypeError(`${what} must be an object { bits: Uint32Array, count: number }, got ${filter === null ? 'null' : typeof filter}`);
  }
  const { bits, count } = filter as { bits?: unknown; count?: unknown };
  if (!(bits instanceof Uint32Array)) {
    throw new TypeError(`${what}.bits must be a Uint32Array, got ${bits === null ? 'null' : (bits as object)?.constructor?.name ?? typeof bits}`);
  }
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) {
    throw new TypeError(`${what}.count must be a non-negative integer, got ${String(count)}`);
  }
  const actual = countBits(bits);
  if (actual !== count) throw new RangeError(`${what}.count is ${count} but ${what}.bits has ${actual} set bits`);
}
