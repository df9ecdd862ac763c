import { computeInvNorms, heapArena, rowBlock, type ArrayArena, type RowBlock } from '@adanns/compute';
import { grow } from './growable.js';

/**
 * Inverted lists, each list contiguous (list-major) so a scan streams one
 * block per probed list. A list stores, per member, its slot number, the
 * first `dim` values of its (transformed) vector (dim may be 0), its
 * `codeBytes` PQ code bytes (may be 0), and for cosine the inverse norm of
 * each prefix in `normDims`, so a scan at those prefixes does not recompute
 * them. Without IVF the index is one list. The arrays live in the backend's
 * arena, so its kernels scan them in place.
 */
export class InvertedLists {
  private data: Float32Array[];
  private codes: Uint8Array[];
  private slots: Int32Array[];
  private sizes: Int32Array;
  private norms: Map<number, Float32Array[]>;
  /** list and position of each slot (-1 = not in any list). */
  private slotList = new Int32Array(0);
  private slotPos = new Int32Array(0);
  /** Slots below this have a meaningful slotList entry. */
  private slotListFilled = 0;

  constructor(
    readonly count: number,
    readonly dim: number,
    readonly normDims: readonly number[],
    readonly codeBytes = 0,
    private readonly arena: ArrayArena = heapArena,
  ) {
    this.data = Array.from({ length: count }, () => new Float32Array(0));
    this.codes = Array.from({ length: count }, () => new Uint8Array(0));
    this.slots = Array.from({ length: count }, () => new Int32Array(0));
    this.sizes = new Int32Array(count);
    this.norms = new Map(normDims.map((d) => [d, Array.from({ length: count }, () => new Float32Array(0))]));
  }

  size(list: number): number {
    return this.sizes[list];
  }

  get total(): number {
    let t = 0;
    for (let l = 0; l < this.count; l++) t += this.sizes[l];
    return t;
  }

  /** Adds a member: the first `dim` values of `vector` from `vectorOffset`, and `codeBytes` bytes of `code` from `codeOffset`. */
  append(list: number, slot: number, vector: Float32Array, vectorOffset = 0, code?: Uint8Array, codeOffset = 0): void {
    const dim = this.dim;
    const pos = this.sizes[list];
    this.data[list] = grow(this.data[list], (pos + 1) * dim, this.arena);
    this.data[list].set(vector.subarray(vectorOffset, vectorOffset + dim), pos * dim);
    if (this.codeBytes > 0) {
      if (!code) throw new Error('inverted lists: a member needs its code');
      const b = this.codeBytes;
      this.codes[list] = grow(this.codes[list], (pos + 1) * b, this.arena);
      this.codes[list].set(code.subarray(codeOffset, codeOffset + b), pos * b);
    }
    this.slots[list] = grow(this.slots[list], pos + 1, this.arena);
    this.slots[list][pos] = slot;
    for (const [d, perList] of this.norms) {
      perList[list] = grow(perList[list], pos + 1, this.arena);
      computeInvNorms(rowBlock(this.data[list], 1, dim, pos * dim), d, perList[list].subarray(pos, pos + 1));
    }
    this.sizes[list] = pos + 1;
    this.touchList(list);
    this.slotList = grow(this.slotList, slot + 1);
    this.slotPos = grow(this.slotPos, slot + 1);
    this.slotList.fill(-1, this.slotListFilled, slot + 1);
    this.slotListFilled = Math.max(this.slotListFilled, slot + 1);
    this.slotList[slot] = list;
    this.slotPos[slot] = pos;
  }

  /** Removes a slot from its list (the list's last member moves into its place). Returns false if absent. */
  remove(slot: number): boolean {
    if (slot >= this.slotListFilled || this.slotList[slot] < 0) return false;
    const list = this.slotList[slot];
    const pos = this.slotPos[slot];
    const last = this.sizes[list] - 1;
    const dim = this.dim;
    if (pos !== last) {
      const moved = this.slots[list][last];
      this.data[list].copyWithin(pos * dim, last * dim, (last + 1) * dim);
      const b = this.codeBytes;
      this.codes[list].copyWithin(pos * b, last * b, (last + 1) * b);
      this.slots[list][pos] = moved;
      for (const perList of this.norms.values()) perList[list][pos] = perList[list][last];
      this.slotPos[moved] = pos;
    }
    this.sizes[list] = last;
    this.slotList[slot] = -1;
    this.touchList(list);
    return true;
  }

  /** Tells the arena a list's arrays were written in place (a device copy must be refreshed). */
  private touchList(list: number): void {
    this.arena.touched(this.data[list]);
    this.arena.touched(this.codes[list]);
    this.arena.touched(this.slots[list]);
    for (const perList of this.norms.values()) this.arena.touched(perList[list]);
  }

  /** The members of a list as a row block; for cosine at a stored norm dim it carries the inverse norms. */
  block(list: number, normDim?: number): RowBlock {
    const inv = normDim === undefined ? undefined : this.norms.get(normDim)?.[list];
    return rowBlock(this.data[list], this.sizes[list], this.dim, 0, inv);
  }

  /** The members' codes, list position after list position (size x codeBytes). */
  listCodes(list: number): Uint8Array {
    return this.codes[list].subarray(0, this.sizes[list] * this.codeBytes);
  }

  listSlots(list: number): Int32Array {
    return this.slots[list].subarray(0, this.sizes[list]);
  }

  /** The stored prefix of a slot's vector: (buffer, offset), or undefined if the slot is in no list. */
  locate(slot: number): { data: Float32Array; offset: number } | undefined {
    if (slot >= this.slotListFilled || this.slotList[slot] < 0) return undefined;
    return { data: this.data[this.slotList[slot]], offset: this.slotPos[slot] * this.dim };
  }

  hasNorms(dim: number): boolean {
    return this.norms.has(dim);
  }

  /** Flat copies for saving: list sizes, member slots and stored prefixes, list after list. */
  export(): { sizes: Int32Array; slots: Int32Array; data: Float32Array; codes: Uint8Array } {
    const total = this.total;
    const slots = new Int32Array(total);
    const data = new Float32Array(total * this.dim);
    const codes = new Uint8Array(total * this.codeBytes);
    let at = 0;
    for (let l = 0; l < this.count; l++) {
      const n = this.sizes[l];
      slots.set(this.slots[l].subarray(0, n), at);
      data.set(this.data[l].subarray(0, n * this.dim), at * this.dim);
      codes.set(this.listCodes(l), at * this.codeBytes);
      at += n;
    }
    return { sizes: this.sizes.slice(), slots, data, codes };
  }

  /** Gives every list's arrays back to the arena; the lists are empty afterwards. */
  release(): void {
    const all = [...this.data, ...this.codes, ...this.slots, ...[...this.norms.values()].flat()];
    for (const array of all) this.arena.release(array);
    this.data.fill(new Float32Array(0));
    this.codes.fill(new Uint8Array(0));
    this.slots.fill(new Int32Array(0));
    for (const perList of this.norms.values()) perList.fill(new Float32Array(0));
    this.sizes.fill(0);
    this.slotList.fill(-1);
  }

  static import(
    dim: number,
    normDims: readonly number[],
    codeBytes: number,
    sizes: Int32Array,
    slots: Int32Array,
    data: Float32Array,
    codes: Uint8Array,
    arena: ArrayArena = heapArena,
  ): InvertedLists {
    const lists = new InvertedLists(sizes.length, dim, normDims, codeBytes, arena);
    if (data.length !== slots.length * dim || codes.length !== slots.length * codeBytes) throw new Error('inverted list data does not match the stored members');
    let at = 0;
    for (let l = 0; l < sizes.length; l++) {
      if (sizes[l] < 0 || at + sizes[l] > slots.length) throw new Error(`inverted list ${l} overruns the stored members`);
      for (let i = 0; i < sizes[l]; i++, at++) lists.append(l, slots[at], data, at * dim, codes, at * codeBytes);
    }
    if (at !== slots.length) throw new Error('inverted list sizes do not match the stored members');
    return lists;
  }
}
