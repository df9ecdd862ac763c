import type { HeldArray } from '../codecs/codec.js';
import { grow } from './growable.js';

/**
 * The slot store: every vector an index holds has a dense slot number (lists,
 * re-rank store and kernels refer to slots); this maps slots to external ids
 * and back, and reuses freed slots.
 */
export class SlotStore {
  private ids: Float64Array;
  private used: number;
  private readonly idToSlot = new Map<number, number>();
  private readonly freeSlots: number[] = [];
  /** Whether every slot in use holds the id equal to its number and none is free (a build with ids 0..n-1, nothing removed). */
  private identity: boolean;
  /** Changes to the slot map so far (allocate, free, clear): a prepared filter's slot mask is valid while it stays. */
  private changes = 0;

  /** `slotIds`: id of each slot, NaN for a free one. */
  constructor(slotIds = new Float64Array(0), count = slotIds.length) {
    this.ids = slotIds;
    this.used = count;
    this.identity = true;
    for (let s = 0; s < count; s++) {
      if (slotIds[s] !== s) this.identity = false;
      const id = slotIds[s];
      if (Number.isNaN(id)) {
        this.freeSlots.push(s);
        continue;
      }
      if (this.idToSlot.has(id)) throw new Error(`index holds id ${id} twice`);
      this.idToSlot.set(id, s);
    }
  }

  /** Live vectors. */
  get size(): number {
    return this.idToSlot.size;
  }

  /** Slots in use or free below the highest one ever used. */
  get slotCount(): number {
    return this.used;
  }

  get hasFree(): boolean {
    return this.freeSlots.length > 0;
  }

  has(id: number): boolean {
    return this.idToSlot.has(id);
  }

  slotOf(id: number): number | undefined {
    return this.idToSlot.get(id);
  }

  idOf(slot: number): number {
    return this.ids[slot];
  }

  /** Whether slot s holds a live id (not freed since a search read it). */
  isLive(slot: number): boolean {
    return slot >= 0 && slot < this.used && !Number.isNaN(this.ids[slot]);
  }

  /** Counts every change to the slot map (what a cached slot mask checks). */
  get version(): number {
    return this.changes;
  }

  /** A slot for a new id: a freed one, else the next. */
  allocate(id: number): number {
    const slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.used++;
    this.changes++;
    if (slot !== id) this.identity = false;
    this.ids = grow(this.ids, slot + 1);
    this.ids[slot] = id;
    this.idToSlot.set(id, slot);
    return slot;
  }

  /** Frees an id's slot; returns it, or undefined when the id is absent. */
  free(id: number): number | undefined {
    const slot = this.idToSlot.get(id);
    if (slot === undefined) return undefined;
    this.idToSlot.delete(id);
    this.identity = false;
    this.changes++;
    this.ids[slot] = NaN;
    this.freeSlots.push(slot);
    return slot;
  }

  /** Whether slot s holds id s for every slot in use, with no slot free: then an id bitset is a slot bitset. */
  get isIdentity(): boolean {
    return this.identity;
  }

  /** Live slots, ascending. */
  liveSlots(): Int32Array {
    return Int32Array.from(this.idToSlot.values()).sort();
  }

  /** id of each slot (NaN = free), for saving. */
  slotIds(): Float64Array {
    return this.ids.subarray(0, this.used);
  }

  /** Shrinks the id array to the slots in use (it grows by doubling). */
  trim(): void {
    if (this.ids.length > this.used) this.ids = this.ids.slice(0, this.used);
  }

  arrays(): HeldArray[] {
    return [{ kind: 'ids', array: this.ids, arena: false }];
  }

  clear(): void {
    this.idToSlot.clear();
    this.freeSlots.length = 0;
    this.ids = new Float64Array(0);
    this.used = 0;
    this.identity = true;
    this.changes++;
  }
}
