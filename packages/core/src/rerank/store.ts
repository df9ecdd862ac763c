import { closeSync, fstatSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readSync, renameSync, rmdirSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { computeInvNorms, heapArena, readHalves, writeHalves, rowBlock, type ArrayArena, type Metric, type RowBlock } from '@adanns/compute';
import type { HeldArray } from '../codecs/codec.js';
import { grow } from '../index/growable.js';
import { readArrayFile, writeArrayFile } from '../persist/binary-file.js';

/**
 * Where an index keeps the vectors its re-rank stage (and exact ground truth)
 * reads, by slot: `dim` float32 values per slot, in the raw input space when
 * dim is the full dimension, else the index space's prefix. Implementations:
 * float32 rows in a file read by row (disk), resident float32 or float16, or
 * one a caller supplies (a collection reads its LMDB; packages/store).
 */
export interface RerankStore {
  readonly dim: number;
  /** 'disk', 'f32', 'f16', or the supplier's name. */
  readonly storage: string;
  /** Stores slot's vector: `dim` values of `data` from `offset`. */
  write(slot: number, data: Float32Array, offset: number): void;
  /** Gathers the vectors of `slots` into out (slots.length x dim, row-major). */
  read(slots: ArrayLike<number>, out: Float32Array): void | Promise<void>;
  /** The rows in place (slot = row) with cosine inverse norms at dim, when resident as float32 (rescored without a gather). */
  inPlace?(): RowBlock;
  /** Arrays held in memory. */
  arrays(): HeldArray[];
  /** Bytes kept on disk. */
  diskBytes(): number;
  /** Writes the vectors of slots [0, slotCount) into an index directory; returns the manifest entry. */
  save(dir: string, slotCount: number): RerankManifest;
  /** Shrinks resident arrays to the slots written (they grow by doubling), after a bulk of writes. */
  trim?(): void;
  /** Called by the index that uses the store, with its slot-to-id map (a store keyed by ids needs it). */
  bind?(idOf: (slot: number) => number): void;
  release(): void;
}

export interface RerankManifest {
  storage: string;
  dim: number;
  /** File in the index directory holding the rows. */
  file?: string;
}

const DISK_FILE = 'rerank.f32';

/** Resident float32 rows in the backend's arena (kernels rescore them in place), with cosine norms. */
export class MemoryF32Store implements RerankStore {
  readonly storage = 'f32';
  private rows: Float32Array = new Float32Array(0);
  private inv: Float32Array = new Float32Array(0);
  private count = 0;

  constructor(
    readonly dim: number,
    private readonly metric: Metric,
    private readonly arena: ArrayArena = heapArena,
  ) {}

  write(slot: number, data: Float32Array, offset: number): void {
    const d = this.dim;
    this.rows = grow(this.rows, (slot + 1) * d, this.arena);
    this.rows.set(data.subarray(offset, offset + d), slot * d);
    if (this.metric === 'cosine') {
      this.inv = grow(this.inv, slot + 1, this.arena);
      computeInvNorms(rowBlock(this.rows, 1, d, slot * d), d, this.inv.subarray(slot, slot + 1));
      this.arena.touched(this.inv);
    }
    this.arena.touched(this.rows);
    this.count = Math.max(this.count, slot + 1);
  }

  read(slots: ArrayLike<number>, out: Float32Array): void {
    const d = this.dim;
    for (let i = 0; i < slots.length; i++) out.set(this.rows.subarray(slots[i] * d, (slots[i] + 1) * d), i * d);
  }

  inPlace(): RowBlock {
    return rowBlock(this.rows, this.count, this.dim, 0, this.metric === 'cosine' ? this.inv : undefined);
  }

  trim(): void {
    const exact = (array: Float32Array, length: number): Float32Array => {
      if (array.length <= length) return array;
      const next = this.arena.float32(length);
      next.set(array.subarray(0, length));
      this.arena.release(array);
      return next;
    };
    this.rows = exact(this.rows, this.count * this.dim);
    if (this.metric === 'cosine') this.inv = exact(this.inv, this.count);
  }

  arrays(): HeldArray[] {
    return [{ kind: 'rerank', array: this.rows, arena: true }, { kind: 'rerank', array: this.inv, arena: true }];
  }

  diskBytes(): number {
    return 0;
  }

  save(dir: string, slotCount: number): RerankManifest {
    writeArrayFile(join(dir, 'rerank-f32.bin'), this.rows.subarray(0, slotCount * this.dim), [slotCount, this.dim]);
    return { storage: this.storage, dim: this.dim, file: 'rerank-f32.bin' };
  }

  static load(dir: string, dim: number, slotCount: number, metric: Metric, arena: ArrayArena): MemoryF32Store {
    const rows = readArrayFile(join(dir, 'rerank-f32.bin'), 'f32', [slotCount, dim]).array;
    const store = new MemoryF32Store(dim, metric, arena);
    for (let s = 0; s < slotCount; s++) store.write(s, rows, s * dim);
    store.trim();
    return store;
  }

  release(): void {
    this.arena.release(this.rows);
    this.arena.release(this.inv);
    this.rows = new Float32Array(0);
    this.inv = new Float32Array(0);
    this.count = 0;
  }
}

/** Resident float16 rows (half of float32; relative error below 2^-11 per value), decoded on read. */
export class MemoryF16Store implements RerankStore {
  readonly storage = 'f16';
  private halves = new Uint8Array(0);
  private count = 0;

  constructor(readonly dim: number) {}

  write(slot: number, data: Float32Array, offset: number): void {
    const d = this.dim;
    this.halves = grow(this.halves, (slot + 1) * d * 2);
    writeHalves(data, offset, d, this.halves, slot * d * 2);
    this.count = Math.max(this.count, slot + 1);
  }

  read(slots: ArrayLike<number>, out: Float32Array): void {
    const d = this.dim;
    for (let i = 0; i < slots.length; i++) readHalves(this.halves, slots[i] * d * 2, d, out, i * d);
  }

  trim(): void {
    if (this.halves.length > this.count * this.dim * 2) this.halves = this.halves.slice(0, this.count * this.dim * 2);
  }

  arrays(): HeldArray[] {
    return [{ kind: 'rerank', array: this.halves, arena: false }];
  }

  diskBytes(): number {
    return 0;
  }

  save(dir: string, slotCount: number): RerankManifest {
    writeArrayFile(join(dir, 'rerank-f16.bin'), this.halves.subarray(0, slotCount * this.dim * 2), [slotCount, this.dim * 2]);
    return { storage: this.storage, dim: this.dim, file: 'rerank-f16.bin' };
  }

  static load(dir: string, dim: number, slotCount: number): MemoryF16Store {
    const store = new MemoryF16Store(dim);
    store.halves = readArrayFile(join(dir, 'rerank-f16.bin'), 'u8', [slotCount, dim * 2]).array;
    store.count = slotCount;
    return store;
  }

  release(): void {
    this.halves = new Uint8Array(0);
  }
}

/** Rows per buffered write when appending consecutive slots. */
const WRITE_BUFFER_BYTES = 1 << 20;

/**
 * float32 rows in a file (row = slot, no header), read by row with
 * positioned reads, so the vectors stay out of the arena and the heap: only
 * the page cache holds them. A fresh store writes as vectors are added to a
 * temporary file beside `path` (a streaming build points it into the output
 * directory) that saving renames to `path`, or to an anonymous temporary file
 * (unlinked at once; gone when the process ends). A store opened on a saved
 * index, or saved in place, never writes that file again: later writes stay
 * in memory (counted as resident) until the index is saved again, so a saved
 * index is never changed under a reader, nor by a new build into its
 * directory before that build is saved.
 */
export class DiskF32Store implements RerankStore {
  readonly storage = 'disk';
  private readonly rowBytes: number;
  private rows: number;
  /** Consecutive rows waiting to be written (allocated while a run of appends lasts). */
  private pending = Buffer.alloc(0);
  private pendingFrom = 0;
  private pendingRows = 0;
  private readonly overlay = new Map<number, Float32Array>();
  private closed = false;

  private constructor(
    readonly dim: number,
    private readonly fd: number,
    /** The file's path, or undefined for an anonymous one. */
    private path: string | undefined,
    /** Whether writes may go to the file (false for a saved index's file). */
    private writable: boolean,
    rows: number,
    /** The name `path` (a temporary file) takes when saved into its directory. */
    private readonly target?: string,
  ) {
    this.rowBytes = dim * 4;
    this.rows = rows;
  }

  /** Rows a buffered write holds. */
  private get bufferRows(): number {
    return Math.max(1, Math.floor(WRITE_BUFFER_BYTES / this.rowBytes));
  }

  /** A new, empty store writing to `path` (created or truncated), or to an anonymous temporary file. */
  static create(dim: number, path?: string): DiskF32Store {
    if (path !== undefined) {
      // not `path` itself: a saved index there (maybe being served) keeps its rows until this one is saved;
      // one fixed name, so the next build truncates what a crashed one left rather than leaving another copy
      mkdirSync(dirname(path), { recursive: true });
      const building = `${path}.building`;
      return new DiskF32Store(dim, openSync(building, 'w+'), building, true, 0, path);
    }
    const dir = mkdtempSync(join(tmpdir(), 'adanns-rerank-'));
    const file = join(dir, DISK_FILE);
    const fd = openSync(file, 'w+');
    unlinkSync(file);
    rmdirSync(dir);
    return new DiskF32Store(dim, fd, undefined, true, 0);
  }

  /** The rows file of a saved index (read only: see the class comment). */
  static open(dir: string, dim: number, slotCount: number): DiskF32Store {
    const path = join(dir, DISK_FILE);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new Error(`${path}: cannot open the re-rank vectors (${(e as Error).message})`);
    }
    const size = fstatSync(fd).size;
    if (size !== slotCount * dim * 4) {
      closeSync(fd);
      throw new Error(`${path}: holds ${size} bytes, ${slotCount} rows x ${dim} float32 = ${slotCount * dim * 4} expected (truncated or foreign file)`);
    }
    return new DiskF32Store(dim, fd, path, false, slotCount);
  }

  write(slot: number, data: Float32Array, offset: number): void {
    const values = data.subarray(offset, offset + this.dim);
    if (!this.writable) {
      this.overlay.set(slot, values.slice());
      this.rows = Math.max(this.rows, slot + 1);
      return;
    }
    // consecutive slots (a build's appends) go out in large writes
    if (this.pendingRows > 0 && (slot !== this.pendingFrom + this.pendingRows || this.pendingRows === this.bufferRows)) this.flush();
    if (this.pendingRows === 0) {
      this.pendingFrom = slot;
      if (this.pending.length === 0) this.pending = Buffer.allocUnsafe(this.bufferRows * this.rowBytes);
    }
    Buffer.from(values.buffer, values.byteOffset, this.rowBytes).copy(this.pending, this.pendingRows * this.rowBytes);
    this.pendingRows++;
    this.rows = Math.max(this.rows, slot + 1);
  }

  /** Writes out the buffered rows (and frees the buffer) once a bulk of adds is done. */
  trim(): void {
    this.flush();
  }

  private flush(): void {
    if (this.pendingRows === 0) return;
    const bytes = this.pendingRows * this.rowBytes;
    let done = 0;
    while (done < bytes) done += writeSync(this.fd, this.pending, done, bytes - done, this.pendingFrom * this.rowBytes + done);
    this.pendingRows = 0;
    this.pending = Buffer.alloc(0);
  }

  /** Reads rows with one positioned read per run of consecutive slots (ascending slots, as the re-rank stage asks, make runs of adjacent rows). */
  read(slots: ArrayLike<number>, out: Float32Array): void {
    this.flush();
    const bytes = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    const changed = this.overlay.size > 0 ? this.overlay : undefined;
    for (let i = 0; i < slots.length; ) {
      const slot = slots[i];
      const row = changed?.get(slot);
      if (row) {
        out.set(row, i * this.dim);
        i++;
        continue;
      }
      let run = 1;
      while (i + run < slots.length && slots[i + run] === slot + run && !changed?.has(slot + run)) run++;
      const want = run * this.rowBytes;
      let got = 0;
      while (got < want) {
        const n = readSync(this.fd, bytes, i * this.rowBytes + got, want - got, slot * this.rowBytes + got);
        if (n === 0) throw new Error(`re-rank vectors${this.path ? ` (${this.path})` : ''}: slot ${slot + Math.floor(got / this.rowBytes)} is past the end of the file`);
        got += n;
      }
      i += run;
    }
  }

  arrays(): HeldArray[] {
    const out: HeldArray[] = [{ kind: 'rerank', array: new Uint8Array(this.pending.buffer, this.pending.byteOffset, this.pending.length), arena: false }];
    for (const values of this.overlay.values()) out.push({ kind: 'rerank', array: values, arena: false });
    return out;
  }

  diskBytes(): number {
    this.flush();
    return fstatSync(this.fd).size;
  }

  save(dir: string, slotCount: number): RerankManifest {
    this.flush();
    const target = join(dir, DISK_FILE);
    const bytes = slotCount * this.rowBytes;
    if (this.target !== undefined && resolve(this.target) === resolve(target) && this.writable && this.overlay.size === 0 && fstatSync(this.fd).size <= bytes) {
      // trailing slots freed before they were written leave the file short of the size load checks
      if (fstatSync(this.fd).size < bytes) writeSync(this.fd, Buffer.alloc(1), 0, 1, bytes - 1);
      fsyncSync(this.fd);
      renameSync(this.path!, target);
      // the file is the saved index's now: later writes go to the overlay
      this.path = target;
      this.writable = false;
      return { storage: this.storage, dim: this.dim, file: DISK_FILE };
    }
    // copy the rows (and any changed ones) into the directory: temp file, fsync, rename
    const tmp = `${target}.tmp-${process.pid}`;
    const out = openSync(tmp, 'w');
    try {
      const chunk = Buffer.alloc(Math.max(this.rowBytes, Math.floor((8 << 20) / this.rowBytes) * this.rowBytes));
      for (let at = 0; at < bytes; ) {
        const n = Math.min(chunk.length, bytes - at);
        const got = readSync(this.fd, chunk, 0, n, at);
        if (got === 0) break; // slots never written (freed at the end) stay zero
        writeSync(out, chunk, 0, got, at);
        at += got;
      }
      for (const [slot, values] of this.overlay) if (slot < slotCount) writeSync(out, Buffer.from(values.buffer, values.byteOffset, this.rowBytes), 0, this.rowBytes, slot * this.rowBytes);
      // a file shorter than slotCount rows (trailing free slots) is padded to the size load checks
      if (fstatSync(out).size < bytes) writeSync(out, Buffer.alloc(1), 0, 1, bytes - 1);
      fsyncSync(out);
    } finally {
      closeSync(out);
    }
    renameSync(tmp, target);
    return { storage: this.storage, dim: this.dim, file: DISK_FILE };
  }

  release(): void {
    if (this.closed) return;
    this.closed = true;
    this.overlay.clear();
    this.pendingRows = 0;
    closeSync(this.fd);
    // a build's file never saved into its directory
    if (this.writable && this.path !== undefined) rmSync(this.path, { force: true });
  }
}

/**
 * Re-rank vectors someone else keeps, read by the index's ids (a collection
 * reads them from its LMDB, zero-copy, instead of the index keeping a copy).
 * Writes are ignored: the owner stores every vector before adding it. An
 * index saved with one records storage "external" and must be loaded with a
 * supplier again (loadIndex's rerankStore option).
 */
export class ExternalRerankStore implements RerankStore {
  readonly storage = 'external';
  private idOf: ((slot: number) => number) | undefined;
  private ids = new Float64Array(0);

  constructor(
    readonly dim: number,
    /** Reads the vectors of `ids` (first `dim` values each) into out, row-major. */
    private readonly readIds: (ids: Float64Array, out: Float32Array) => void | Promise<void>,
  ) {}

  bind(idOf: (slot: number) => number): void {
    this.idOf = idOf;
  }

  write(): void {}

  read(slots: ArrayLike<number>, out: Float32Array): void | Promise<void> {
    if (!this.idOf) throw new Error('external re-rank store: not bound to an index');
    if (this.ids.length < slots.length) this.ids = new Float64Array(slots.length);
    for (let i = 0; i < slots.length; i++) this.ids[i] = this.idOf(slots[i]);
    return this.readIds(this.ids.subarray(0, slots.length), out);
  }

  arrays(): HeldArray[] {
    return [];
  }

  diskBytes(): number {
    return 0;
  }

  save(): RerankManifest {
    return { storage: this.storage, dim: this.dim };
  }

  release(): void {}
}

/** A new store for a spec's re-rank storage. */
export function createRerankStore(storage: string, dim: number, metric: Metric, arena: ArrayArena, path?: string): RerankStore {
  if (storage === 'f32') return new MemoryF32Store(dim, metric, arena);
  if (storage === 'f16') return new MemoryF16Store(dim);
  if (storage === 'disk') return DiskF32Store.create(dim, path);
  throw new Error(`unknown re-rank storage "${storage}" (expected disk, f32 or f16)`);
}

/** The store a saved index recorded. */
export function loadRerankStore(dir: string, manifest: RerankManifest, slotCount: number, metric: Metric, arena: ArrayArena): RerankStore {
  if (manifest.storage === 'f32') return MemoryF32Store.load(dir, manifest.dim, slotCount, metric, arena);
  if (manifest.storage === 'f16') return MemoryF16Store.load(dir, manifest.dim, slotCount);
  if (manifest.storage === 'disk') return DiskF32Store.open(dir, manifest.dim, slotCount);
  if (manifest.storage === 'external') throw new Error(`${dir}: its re-rank vectors are kept outside the index (by a collection's LMDB); load it with a re-rank store supplier`);
  throw new Error(`${dir}: unknown re-rank storage "${manifest.storage}"`);
}
