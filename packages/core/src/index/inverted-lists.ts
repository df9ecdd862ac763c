import { allocateLike, heapArena, type ArrayArena, type BlockLayout, type ListCandidates, type ListSet, type RowGroups, type TopK } from '@adanns/compute';
import type { HeldArray } from '../codecs/codec.js';
import { grow } from './growable.js';

/**
 * How a list's member codes lie in its code array when they are not simply
 * one after another: 4-bit fast-scan codes interleave 32 members per block
 * (codecs/fastscan.ts), float lists lie in prefix blocks (codecs/float-codec.ts). A member's code keeps fixed places given its
 * position, so an append writes at the list's end and a removal moves the
 * last member into the hole, in place, as with the default layout. Codes in
 * and out of the lists (encode, export, import, saved files) are codeBytes
 * per member, one after another.
 */
export interface CodeLayout {
  /** Bytes a list of `members` members occupies. */
  bytes(members: number): number;
  /** Writes a member's code (codeBytes bytes of `code` from `offset`) at position `pos`. */
  write(codes: Uint8Array, pos: number, code: Uint8Array, offset: number): void;
  /** Reads position `pos`'s code into `out` from `offset` (codeBytes bytes). */
  read(codes: Uint8Array, pos: number, out: Uint8Array, offset: number): void;
  /** Moves position `from`'s code to position `to`. */
  move(codes: Uint8Array, from: number, to: number): void;
  /** The prefix-blocked addressing of float lists, which the backend's list scans are told (ListSet.layout). */
  readonly blocks?: BlockLayout;
}

/**
 * Inverted lists, each list contiguous (list-major) so a scan streams one
 * block per probed list. A list stores, per member, its slot number, its
 * `codeBytes` code bytes (whatever the list codec writes: float32, float16 or
 * sq8 prefixes, PQ codes) and, for cosine, the inverse norm of the decoded
 * prefix at each dim in `normDims`, so a scan at those prefixes does not
 * recompute them. Without IVF the index is one list. The arrays live in the
 * backend's arena, so its kernels scan them in place.
 */
export class InvertedLists {
  private codeArrays: Uint8Array[];
  private slotArrays: Int32Array[];
  private sizes: Int32Array;
  private norms: Map<number, Float32Array[]>;
  /** list and position of each slot (-1 = not in any list). */
  private slotList = new Int32Array(0);
  private slotPos = new Int32Array(0);
  /** Slots below this have a meaningful slotList entry. */
  private slotListFilled = 0;
  /**
   * Per list, the views codes(), slots() and invNorms() last handed out, kept
   * until the list changes: a scan asks for each probed list's views several
   * times per call, and a view on the arena's shared memory costs about as
   * much to make as scanning a few small members.
   */
  private codeViews: (Uint8Array | undefined)[] = [];
  private slotViews: (Int32Array | undefined)[] = [];
  private normViews = new Map<number, (Float32Array | undefined)[]>();
  /** Changes of any list so far (ListSet.source: what a backend keeps about the lists is valid while it holds). */
  private changes = 0;

  constructor(
    readonly count: number,
    readonly codeBytes: number,
    readonly normDims: readonly number[],
    private readonly arena: ArrayArena = heapArena,
    /** What the members' bytes are, for the size breakdown. */
    readonly kind: 'lists' | 'codes' = 'codes',
    /** Where member codes lie in a list's array (default: codeBytes per member, one after another). */
    readonly layout?: CodeLayout,
  ) {
    this.codeArrays = Array.from({ length: count }, () => new Uint8Array(0));
    this.slotArrays = Array.from({ length: count }, () => new Int32Array(0));
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

  /**
   * Adds a member: `codeBytes` bytes of `codes` from `codeOffset`, and for
   * each of normDims (in order) its inverse norm from `invNorms` at `normOffset`.
   */
  append(list: number, slot: number, codes: Uint8Array, codeOffset: number, invNorms?: Float32Array, normOffset = 0): void {
    const pos = this.sizes[list];
    const b = this.codeBytes;
    this.codeArrays[list] = grow(this.codeArrays[list], this.layout ? this.layout.bytes(pos + 1) : (pos + 1) * b, this.arena);
    if (this.layout) this.layout.write(this.codeArrays[list], pos, codes, codeOffset);
    else this.codeArrays[list].set(codes.subarray(codeOffset, codeOffset + b), pos * b);
    this.slotArrays[list] = grow(this.slotArrays[list], pos + 1, this.arena);
    this.slotArrays[list][pos] = slot;
    let n = 0;
    for (const perList of this.norms.values()) {
      if (!invNorms) throw new Error('inverted lists: a member needs its inverse norms');
      perList[list] = grow(perList[list], pos + 1, this.arena);
      perList[list][pos] = invNorms[normOffset + n++];
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
    if (pos !== last) {
      const moved = this.slotArrays[list][last];
      const b = this.codeBytes;
      if (this.layout) this.layout.move(this.codeArrays[list], last, pos);
      else this.codeArrays[list].copyWithin(pos * b, last * b, (last + 1) * b);
      this.slotArrays[list][pos] = moved;
      for (const perList of this.norms.values()) perList[list][pos] = perList[list][last];
      this.slotPos[moved] = pos;
    } else if (this.layout) {
      // a layout's positions past the size stay zero (fast-scan blocks: the kernel scans whole blocks); move zeroes its source
      this.layout.write(this.codeArrays[list], pos, new Uint8Array(this.codeBytes), 0);
    }
    this.sizes[list] = last;
    this.slotList[slot] = -1;
    this.touchList(list);
    return true;
  }

  /** Tells the arena a list's arrays were written in place (a device copy must be refreshed); its views are made again. */
  private touchList(list: number): void {
    this.forgetViews(list);
    this.arena.touched(this.codeArrays[list]);
    this.arena.touched(this.slotArrays[list]);
    for (const perList of this.norms.values()) this.arena.touched(perList[list]);
  }

  /** Counts list changes: every change of a list's members, arrays or size comes through forgetViews. */
  get version(): number {
    return this.changes;
  }

  /** Drops a list's kept views (every list's without one): its arrays or size changed. */
  private forgetViews(list?: number): void {
    this.changes++;
    const all = [this.codeViews, this.slotViews, ...this.normViews.values()];
    for (const views of all) {
      if (list === undefined) views.length = 0;
      else views[list] = undefined;
    }
  }

  /** The members' codes, list position after list position (size x codeBytes), or in the lists' layout when they have one. */
  codes(list: number): Uint8Array {
    return (this.codeViews[list] ??= this.codeArrays[list].subarray(0, this.layout ? this.layout.bytes(this.sizes[list]) : this.sizes[list] * this.codeBytes));
  }

  slots(list: number): Int32Array {
    return (this.slotViews[list] ??= this.slotArrays[list].subarray(0, this.sizes[list]));
  }

  /** Inverse norms of a list's members at a stored norm dim (undefined when not kept). */
  invNorms(list: number, dim: number): Float32Array | undefined {
    const perList = this.norms.get(dim);
    if (!perList) return undefined;
    let views = this.normViews.get(dim);
    if (!views) this.normViews.set(dim, (views = []));
    return (views[list] ??= perList[list].subarray(0, this.sizes[list]));
  }

  hasNorms(dim: number): boolean {
    return this.norms.has(dim);
  }

  /**
   * The lists as a backend's fused scans read them (Backend.scanListsTopK,
   * pqScanListsTopK): members of `stride` elements encoded as `encoding`,
   * reported by slot, with the cosine norms kept per prefix.
   */
  scanSet(encoding: ListSet['encoding'], stride: number, params?: Float32Array): ListSet {
    return {
      encoding,
      count: this.count,
      stride,
      ...(params ? { params } : {}),
      ...(this.layout?.blocks ? { layout: this.layout.blocks } : {}),
      size: (list) => this.sizes[list],
      codes: (list) => this.codes(list),
      ids: (list) => this.slots(list),
      invNorms: (list, dim) => this.invNorms(list, dim),
      source: this,
    };
  }

  /** The list a slot lies in, -1 if none. */
  listOf(slot: number): number {
    return slot < this.slotListFilled ? this.slotList[slot] : -1;
  }

  /** Each slot's list as row groups of the slots (Backend.rescoreTopK: a batch re-ranked list by list); -1 or past the end: in no list. */
  rowGroups(): RowGroups {
    return { of: this.slotList, count: this.count };
  }

  /** A slot's code: (bytes, offset), or undefined if the slot is in no list. With a layout, a copy of the code (offset 0). */
  locate(slot: number): { codes: Uint8Array; offset: number } | undefined {
    if (slot >= this.slotListFilled || this.slotList[slot] < 0) return undefined;
    if (this.layout) {
      const code = new Uint8Array(this.codeBytes);
      this.layout.read(this.codeArrays[this.slotList[slot]], this.slotPos[slot], code, 0);
      return { codes: code, offset: 0 };
    }
    return { codes: this.codeArrays[this.slotList[slot]], offset: this.slotPos[slot] * this.codeBytes };
  }

  /**
   * Where a shortlist's slots lie, as Backend.rescoreListsTopK takes its
   * candidates (row q of the shortlist, in its order); a slot in no list, or
   * not `live`, is left out (removed since the scan found it).
   */
  places(shortlist: TopK, live?: (slot: number) => boolean): ListCandidates {
    const { rows, k } = shortlist;
    const lists = new Int32Array(rows * k);
    const positions = new Int32Array(rows * k);
    const sizes = new Int32Array(rows);
    for (let q = 0; q < rows; q++) {
      let n = 0;
      for (let i = 0; i < shortlist.sizes[q]; i++) {
        const slot = shortlist.ids[q * k + i];
        if (slot >= this.slotListFilled || this.slotList[slot] < 0 || (live && !live(slot))) continue;
        lists[q * k + n] = this.slotList[slot];
        positions[q * k + n++] = this.slotPos[slot];
      }
      sizes[q] = n;
    }
    return { k, sizes, lists, positions };
  }

  /** A slot's kept cosine inverse norm at prefix `dim` (one of normDims), or undefined if the slot is in no list or the norm is not kept. */
  invNormOf(slot: number, dim: number): number | undefined {
    if (slot >= this.slotListFilled || this.slotList[slot] < 0) return undefined;
    return this.norms.get(dim)?.[this.slotList[slot]][this.slotPos[slot]];
  }

  /** Every array the lists hold (capacity included: that is what they occupy). */
  arrays(): HeldArray[] {
    const out: HeldArray[] = [];
    for (let l = 0; l < this.count; l++) {
      out.push({ kind: this.kind, array: this.codeArrays[l], arena: true }, { kind: 'ids', array: this.slotArrays[l], arena: true });
      for (const perList of this.norms.values()) out.push({ kind: 'norms', array: perList[l], arena: true });
    }
    out.push({ kind: 'ids', array: this.slotList, arena: false }, { kind: 'ids', array: this.slotPos, arena: false }, { kind: 'ids', array: this.sizes, arena: false });
    return out;
  }

  /** Flat copies for saving: list sizes, member slots and codes, list after list. */
  export(): { sizes: Int32Array; slots: Int32Array; codes: Uint8Array } {
    const total = this.total;
    const slots = new Int32Array(total);
    const codes = new Uint8Array(total * this.codeBytes);
    let at = 0;
    for (let l = 0; l < this.count; l++) {
      slots.set(this.slots(l), at);
      if (this.layout) for (let i = 0; i < this.sizes[l]; i++) this.layout.read(this.codeArrays[l], i, codes, (at + i) * this.codeBytes);
      else codes.set(this.codes(l), at * this.codeBytes);
      at += this.sizes[l];
    }
    return { sizes: this.sizes.slice(), slots, codes };
  }

  /**
   * Shrinks every array to what its list holds (appends grow them by
   * doubling, a third more on average): call it when a bulk of adds is done.
   * Later adds grow them again.
   */
  trim(): void {
    const exact = <T extends Uint8Array | Int32Array | Float32Array>(array: T, length: number): T => {
      if (array.length === length) return array;
      const next = allocateLike(this.arena, array, length);
      next.set(array.subarray(0, length));
      this.arena.release(array);
      return next;
    };
    for (let l = 0; l < this.count; l++) {
      const n = this.sizes[l];
      this.codeArrays[l] = exact(this.codeArrays[l], this.layout ? this.layout.bytes(n) : n * this.codeBytes);
      this.slotArrays[l] = exact(this.slotArrays[l], n);
      for (const perList of this.norms.values()) perList[l] = exact(perList[l], n);
    }
    this.forgetViews();
    this.slotList = this.slotList.slice(0, this.slotListFilled);
    this.slotPos = this.slotPos.slice(0, this.slotListFilled);
  }

  /** Gives every list's arrays back to the arena; the lists are empty afterwards. */
  release(): void {
    const all = [...this.codeArrays, ...this.slotArrays, ...[...this.norms.values()].flat()];
    for (const array of all) this.arena.release(array);
    this.codeArrays.fill(new Uint8Array(0));
    this.slotArrays.fill(new Int32Array(0));
    for (const perList of this.norms.values()) perList.fill(new Float32Array(0));
    this.forgetViews();
    this.sizes.fill(0);
    this.slotList.fill(-1);
  }

  /**
   * Lists from saved members: `sizes` per list, then slots and codes list
   * after list; `normsOf(codes, rows)` gives the members' inverse norms
   * (rows x normDims.length) when normDims is not empty.
   */
  static import(
    codeBytes: number,
    normDims: readonly number[],
    sizes: Int32Array,
    slots: Int32Array,
    codes: Uint8Array,
    normsOf: ((codes: Uint8Array, rows: number) => Float32Array) | undefined,
    arena: ArrayArena = heapArena,
    kind: 'lists' | 'codes' = 'codes',
    layout?: CodeLayout,
  ): InvertedLists {
    const lists = new InvertedLists(sizes.length, codeBytes, normDims, arena, kind, layout);
    if (codes.length !== slots.length * codeBytes) throw new Error('inverted list codes do not match the stored members');
    let at = 0;
    try {
      for (let l = 0; l < sizes.length; l++) {
        if (sizes[l] < 0 || at + sizes[l] > slots.length) throw new Error(`inverted list ${l} overruns the stored members`);
        const listCodes = codes.subarray(at * codeBytes, (at + sizes[l]) * codeBytes);
        const norms = normDims.length > 0 && normsOf ? normsOf(listCodes, sizes[l]) : undefined;
        for (let i = 0; i < sizes[l]; i++, at++) lists.append(l, slots[at], codes, at * codeBytes, norms, i * normDims.length);
      }
      if (at !== slots.length) throw new Error('inverted list sizes do not match the stored members');
    } catch (e) {
      lists.release(); // the lists already filled go back to the arena
      throw e;
    }
    lists.trim();
    return lists;
  }
}
