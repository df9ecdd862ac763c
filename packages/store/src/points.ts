import { open, type Database, type RootDatabase, type Transaction } from 'lmdb';
import type { Payload, PointId } from '@adanns/wire';
import { invalid, StoreError } from './errors.js';
import { indexKeys, type IndexKey, type PayloadIndexDecl, type PayloadIndexType } from './payload-index.js';
import type { CollectionSchema } from './schema.js';
import { showValue } from './vectors.js';

/** A point id: a non-negative safe integer or a non-empty string (1 and "1" are different points); wire types (docs/ARCHITECTURE.md, "Wire types"). */
export type { PointId, Payload };

export interface Point {
  id: PointId;
  vector: Float32Array;
  payload?: Payload;
}

/** A read transaction: one consistent snapshot of the LMDB, held across event-loop turns until `done()`. */
export type ReadSnapshot = Transaction;

/** One stored point's record; `iid` is the dense internal id the index uses. */
interface PointRecord {
  iid: number;
  payload?: Payload;
}

export const MAX_ID_LENGTH = 256;

/** A UTF-16 surrogate without its pair: UTF-8 (LMDB's keys and values, JSON on the wire) cannot carry it. */
const LONE_SURROGATE = /\p{Cs}/u;

export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

export function checkId(id: unknown): PointId {
  // -0 is the integer 0 (JSON writes both as 0)
  if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return id === 0 ? 0 : id;
  if (typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH) {
    // stored as UTF-8 it would come back with U+FFFD in its place, an id nobody could use again
    if (hasLoneSurrogate(id)) throw invalid(`point id ${JSON.stringify(id)} holds a lone UTF-16 surrogate, which UTF-8 cannot represent`);
    return id;
  }
  throw invalid(`point id must be a non-negative integer or a string of 1-${MAX_ID_LENGTH} characters, got ${showValue(id)}`);
}

/**
 * The system of record for one collection, in its own LMDB environment:
 * points by id (internal id and payload), vectors by internal id (raw
 * float32), external ids by internal id, and a change log (sequence ->
 * internal ids touched) that index artefacts are replayed from. Every batch
 * is one transaction and resolves only once LMDB has flushed it to disk.
 */
export class PointStore {
  private constructor(
    private readonly root: RootDatabase,
    private readonly points: Database<PointRecord, PointId>,
    private readonly vectors: Database<Buffer, number>,
    private readonly externalIds: Database<PointId, number>,
    private readonly changes: Database<number[], number>,
    private readonly meta: Database<unknown, string>,
    /** Payload indexes of every field (payload-index.ts); written in the same transaction as the points. */
    private readonly payloadIndex: Database<number, IndexKey>,
    readonly dim: number,
  ) {
    this.declared = (meta.get('payload-indexes') as Record<string, PayloadIndexDecl> | undefined) ?? {};
    for (const iid of externalIds.getKeys()) this.setLive(iid, true);
  }

  /** Declared payload indexes, field -> type and state (kept in meta, mirrored here). */
  private declared: Record<string, PayloadIndexDecl>;
  /**
   * Bit per internal id, set while a point is stored under it: what a filter
   * may allow (deleted points never), kept in memory so a filter's `must_not`
   * or `is_empty` need not walk every id in LMDB.
   */
  private live = new Uint32Array(0);

  private setLive(iid: number, on: boolean): void {
    const word = iid >>> 5;
    if (word >= this.live.length) {
      if (!on) return;
      const grown = new Uint32Array(Math.max(word + 1, this.live.length * 2, 32));
      grown.set(this.live);
      this.live = grown;
    }
    if (on) this.live[word] |= 1 << (iid & 31);
    else this.live[word] &= ~(1 << (iid & 31));
  }

  /** The live internal ids as a bitset of `words` words (a copy). */
  liveBits(words: number): Uint32Array {
    const out = new Uint32Array(words);
    out.set(this.live.subarray(0, Math.min(words, this.live.length)));
    return out;
  }

  /** One past the largest internal id ever given (bitsets over iids are this long). */
  get iidBound(): number {
    return (this.meta.get('next-iid') as number | undefined) ?? 0;
  }

  /** Opens (or creates, with `schema`) the environment at `path`. */
  static open(path: string, schema?: CollectionSchema, readOnly = false): { store: PointStore; schema: CollectionSchema } {
    const root = open({ path, maxDbs: 8, readOnly });
    try {
      const meta = root.openDB<unknown, string>('meta', {});
      let stored = meta.get('schema') as CollectionSchema | undefined;
      if (!stored) {
        if (!schema) throw new StoreError('not_found', `${path} holds no collection schema`);
        meta.putSync('schema', schema);
        stored = schema;
      }
      const store = new PointStore(
        root,
        root.openDB<PointRecord, PointId>('points', {}),
        root.openDB<Buffer, number>('vectors', { encoding: 'binary' }),
        root.openDB<PointId, number>('external-ids', {}),
        root.openDB<number[], number>('changes', {}),
        meta,
        root.openDB<number, IndexKey>('payload-index', {}),
        stored.dim,
      );
      return { store, schema: stored };
    } catch (e) {
      root.close();
      throw e;
    }
  }

  get sequence(): number {
    return (this.meta.get('sequence') as number | undefined) ?? 0;
  }

  get count(): number {
    return this.points.getCount();
  }

  /**
   * Upserts a batch (ids already checked and unique, vectors of the right
   * dimension) in one durable transaction. Returns the batch's sequence and
   * the internal id of each point.
   */
  async upsert(batch: readonly Point[], meta?: Record<string, unknown>): Promise<{ sequence: number; iids: Int32Array }> {
    const iids = new Int32Array(batch.length);
    const sequence = await this.root.transaction(() => {
      this.putMetaIn(meta);
      let next = (this.meta.get('next-iid') as number | undefined) ?? 0;
      batch.forEach((p, i) => {
        const existing = this.points.get(p.id);
        const iid = existing ? existing.iid : next++;
        iids[i] = iid;
        this.reindex(iid, existing?.payload, p.payload);
        this.points.put(p.id, p.payload === undefined ? { iid } : { iid, payload: p.payload });
        this.vectors.put(iid, Buffer.from(p.vector.buffer, p.vector.byteOffset, p.vector.byteLength));
        this.externalIds.put(iid, p.id);
      });
      this.meta.put('next-iid', next);
      return this.logChange(Array.from(iids));
    });
    for (const iid of iids) this.setLive(iid, true);
    await this.root.flushed;
    return { sequence, iids };
  }

  /** Deletes the ids that exist, in one durable transaction; returns the internal ids removed. */
  async delete(ids: readonly PointId[], meta?: Record<string, unknown>): Promise<{ sequence: number; iids: number[] }> {
    const removed: number[] = [];
    let sequence: number;
    try {
      sequence = await this.root.transaction(() => {
        this.putMetaIn(meta);
        for (const id of ids) {
          const existing = this.points.get(id);
          if (!existing) continue;
          removed.push(existing.iid);
          this.reindex(existing.iid, existing.payload, undefined);
          this.points.remove(id);
          this.vectors.remove(existing.iid);
          this.externalIds.remove(existing.iid);
          // not live from before the commit (upserts: from after it), so a live point is always in a
          // filter's read snapshot (readSnapshot) and a point being deleted never passes a filter
          this.setLive(existing.iid, false);
        }
        return removed.length > 0 ? this.logChange(removed) : this.sequence;
      });
    } catch (e) {
      for (const iid of removed) this.setLive(iid, true);
      throw e;
    }
    await this.root.flushed;
    return { sequence, iids: removed };
  }

  /** Within a write transaction: these extra meta entries (a cluster's applied log sequence) commit with the write. */
  private putMetaIn(meta: Record<string, unknown> | undefined): void {
    if (meta) for (const [key, value] of Object.entries(meta)) this.meta.put(key, value);
  }

  /** A meta entry written with putMeta or a write's `meta`. */
  metaValue<T>(key: string): T | undefined {
    return this.meta.get(key) as T | undefined;
  }

  /** Writes meta entries in one durable transaction. */
  async putMeta(meta: Record<string, unknown>): Promise<void> {
    await this.root.transaction(() => this.putMetaIn(meta));
    await this.root.flushed;
  }

  /** Within a write transaction: moves a point's payload index entries from its old payload's keys to its new one's. */
  private reindex(iid: number, before: Payload | undefined, after: Payload | undefined): void {
    for (const [field, decl] of Object.entries(this.declared)) {
      if (decl.state === 'dropping') continue;
      const old = indexKeys(field, decl.type, before, iid);
      const now = indexKeys(field, decl.type, after, iid);
      const keep = new Set(now.map((k) => JSON.stringify(k)));
      for (const key of old) if (!keep.delete(JSON.stringify(key))) this.payloadIndex.remove(key);
      for (const key of now) if (keep.has(JSON.stringify(key))) this.payloadIndex.put(key, 1);
    }
  }

  /** Declared payload indexes. */
  payloadIndexes(): Record<string, PayloadIndexDecl> {
    return { ...this.declared };
  }

  /**
   * Declares (or changes the state of) a payload index, durably; upserts and
   * deletes keep a declared index current from then on (a failed one too, so
   * that a retried build, which is idempotent, finds them in place).
   */
  async declarePayloadIndex(field: string, type: PayloadIndexType, state: PayloadIndexDecl['state'], error?: string): Promise<void> {
    await this.root.transaction(() => {
      const declared = { ...((this.meta.get('payload-indexes') as Record<string, PayloadIndexDecl> | undefined) ?? {}), [field]: { type, state, ...(error === undefined ? {} : { error }) } };
      this.meta.put('payload-indexes', declared);
      this.declared = declared;
    });
    await this.root.flushed;
  }

  /**
   * Indexes up to `n` points after `after` (in id order) for a payload index
   * being built, in one transaction; returns the last id done (undefined at
   * the end) and how many were done. Idempotent: a build interrupted by a
   * crash starts again from the first point.
   */
  async indexPayloadChunk(field: string, after: PointId | undefined, n: number): Promise<{ last: PointId | undefined; done: number }> {
    return this.root.transaction(() => {
      const decl = this.declared[field];
      if (!decl || decl.state !== 'building') return { last: undefined, done: 0 };
      let last: PointId | undefined;
      let done = 0;
      for (const { key, value } of this.points.getRange(after === undefined ? {} : { start: after })) {
        if (after !== undefined && key === after) continue;
        if (done === n) return { last, done };
        for (const k of indexKeys(field, decl.type, value.payload, value.iid)) this.payloadIndex.put(k, 1);
        last = key;
        done++;
      }
      return { last: undefined, done };
    });
  }

  /** Removes up to `n` entries of a payload index being dropped; once none is left, its declaration. Returns the entries removed. */
  async dropPayloadChunk(field: string, n: number): Promise<number> {
    const removed = await this.root.transaction(() => {
      let count = 0;
      for (const key of this.payloadIndex.getKeys({ start: [field] as unknown as IndexKey })) {
        if (key[0] !== field || count === n) break;
        this.payloadIndex.remove(key);
        count++;
      }
      if (count === 0) {
        const declared = { ...((this.meta.get('payload-indexes') as Record<string, PayloadIndexDecl> | undefined) ?? {}) };
        delete declared[field];
        this.meta.put('payload-indexes', declared);
        this.declared = declared;
      }
      return count;
    });
    await this.root.flushed;
    return removed;
  }

  /**
   * A read transaction over the current state, with the live bitset of the
   * same moment (both taken in one synchronous step): what a filter is
   * evaluated against, across event-loop turns. Call `snapshot.done()`.
   */
  readSnapshot(): { snapshot: ReadSnapshot; live: Uint32Array; words: number } {
    const snapshot = this.root.useReadTransaction();
    const words = (((this.meta.get('next-iid', { transaction: snapshot }) as number | undefined) ?? 0) + 31) >>> 5;
    return { snapshot, live: this.liveBits(words), words };
  }

  /**
   * Visits the payload index keys of `field` with tag `tag` (1: indexed
   * values, from `from` on; 0: points to check from their payloads) in key
   * order until `visit` returns false, within `read.snapshot`, at most
   * `read.max` keys: returns the last key visited when it stopped there
   * (pass it as `read.after` to go on), else undefined.
   */
  scanPayloadIndex(
    field: string,
    tag: 0 | 1,
    from: string | number | boolean | undefined,
    visit: (value: string | number | boolean, iid: number) => boolean | void,
    read: { snapshot?: ReadSnapshot; after?: IndexKey; max?: number } = {},
  ): IndexKey | undefined {
    const { after, max = Infinity } = read;
    const start = after ?? ((from === undefined ? [field, tag] : [field, tag, from]) as unknown as IndexKey);
    let n = 0;
    let last: IndexKey | undefined;
    for (const key of this.payloadIndex.getKeys({ start, ...(read.snapshot ? { transaction: read.snapshot } : {}) })) {
      if (after && sameKey(key, after)) continue;
      if (key[0] !== field || key[1] !== tag) break;
      if (n++ === max) return last;
      last = key;
      const go = key[1] === 1 ? visit(key[2], key[3]) : visit(0, key[2]);
      if (go === false) break;
    }
    return undefined;
  }

  /** Every point's internal id, id and payload, in id order after `after`, until `visit` returns false (within `snapshot` when given). */
  forEachPoint(visit: (iid: number, id: PointId, payload: Payload | undefined) => boolean | void, after?: PointId, snapshot?: ReadSnapshot): void {
    for (const { key, value } of this.points.getRange({ ...(after === undefined ? {} : { start: after }), ...(snapshot ? { transaction: snapshot } : {}) })) {
      if (after !== undefined && key === after) continue;
      if (visit(value.iid, key, value.payload) === false) break;
    }
  }

  /** The id and payload of the point stored under an internal id (within `snapshot` when given). */
  pointOfIid(iid: number, snapshot?: ReadSnapshot): { id: PointId; payload: Payload | undefined } | undefined {
    const read = snapshot ? { transaction: snapshot } : undefined;
    const id = this.externalIds.get(iid, read);
    if (id === undefined) return undefined;
    const record = this.points.get(id, read);
    return record ? { id, payload: record.payload } : undefined;
  }

  /** A stored point's internal id (within `snapshot` when given). */
  iidOf(id: PointId, snapshot?: ReadSnapshot): number | undefined {
    return this.points.get(id, snapshot ? { transaction: snapshot } : undefined)?.iid;
  }

  /**
   * Differences between the stored payload indexes and what the payloads say
   * they should hold (empty when they agree): for tests and the crash soak.
   */
  checkPayloadIndexes(): string[] {
    const problems: string[] = [];
    for (const [field, decl] of Object.entries(this.declared)) {
      if (decl.state !== 'ready') continue;
      const want = new Set<string>();
      for (const { value } of this.points.getRange()) for (const k of indexKeys(field, decl.type, value.payload, value.iid)) want.add(JSON.stringify(k));
      for (const key of this.payloadIndex.getKeys({ start: [field] as unknown as IndexKey })) {
        if (key[0] !== field) break;
        if (!want.delete(JSON.stringify(key))) problems.push(`${field}: stale entry ${JSON.stringify(key)}`);
      }
      for (const k of want) problems.push(`${field}: missing entry ${k}`);
    }
    return problems;
  }

  private logChange(iids: number[]): number {
    const sequence = this.sequence + 1;
    this.changes.put(sequence, iids);
    this.meta.put('sequence', sequence);
    return sequence;
  }

  get(id: PointId): { iid: number; vector: Float32Array; payload?: Payload } | undefined {
    const record = this.points.get(id);
    if (!record) return undefined;
    const vector = this.vectorOf(record.iid);
    if (!vector) throw new Error(`point ${JSON.stringify(id)} has no stored vector`);
    return { iid: record.iid, vector, ...(record.payload ? { payload: record.payload } : {}) };
  }

  vectorOf(iid: number): Float32Array | undefined {
    const bytes = this.vectors.get(iid);
    if (!bytes) return undefined;
    if (bytes.length !== this.dim * 4) throw new Error(`stored vector ${iid} has ${bytes.length} bytes, expected ${this.dim * 4}`);
    // copy: LMDB may hand out a shared or unaligned buffer
    return new Float32Array(Uint8Array.from(bytes).buffer);
  }

  /**
   * The first `dim` values of the vectors of `iids` into out (row-major),
   * read with LMDB's zero-copy gets (the bytes are copied once, into out):
   * what an index re-ranks with, so it keeps no copy of its own.
   */
  readVectors(iids: ArrayLike<number>, dim: number, out: Float32Array): void {
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    for (let i = 0; i < iids.length; i++) {
      const stored = this.vectors.getBinaryFast(iids[i]);
      if (!stored) throw new Error(`no stored vector for internal id ${iids[i]}`);
      if (stored.length !== this.dim * 4) throw new Error(`stored vector ${iids[i]} has ${stored.length} bytes, expected ${this.dim * 4}`);
      bytes.set(stored.subarray(0, dim * 4), i * dim * 4);
    }
  }

  externalId(iid: number): PointId | undefined {
    return this.externalIds.get(iid);
  }

  payloadOf(id: PointId): Payload | undefined {
    return this.points.get(id)?.payload;
  }

  /**
   * Every stored vector as one snapshot: the sequence it reflects, internal
   * ids, and the vectors row after row.
   */
  snapshot(): { sequence: number; iids: Float64Array; data: Float32Array } {
    const txn = this.root.useReadTransaction();
    try {
      const sequence = (this.meta.get('sequence', { transaction: txn }) as number | undefined) ?? 0;
      const count = this.vectors.getCount({ transaction: txn });
      const iids = new Float64Array(count);
      const data = new Float32Array(count * this.dim);
      let i = 0;
      for (const { key, value } of this.vectors.getRange({ transaction: txn })) {
        if (value.length !== this.dim * 4) throw new Error(`stored vector ${key} has ${value.length} bytes, expected ${this.dim * 4}`);
        iids[i] = key;
        data.set(new Float32Array(Uint8Array.from(value).buffer), i * this.dim);
        i++;
      }
      return { sequence, iids: iids.subarray(0, i), data: data.subarray(0, i * this.dim) };
    } finally {
      txn.done();
    }
  }

  /** Internal ids touched after `sequence` (upserted or deleted), or undefined if the log no longer reaches back that far. */
  changedSince(sequence: number): Set<number> | undefined {
    const oldest = this.meta.get('pruned-through') as number | undefined;
    if (oldest !== undefined && sequence < oldest) return undefined;
    const touched = new Set<number>();
    for (const { value } of this.changes.getRange({ start: sequence + 1 })) for (const iid of value) touched.add(iid);
    return touched;
  }

  /** Drops change records up to `sequence` (an artefact covering them is saved). */
  async pruneChanges(sequence: number): Promise<void> {
    await this.root.transaction(() => {
      for (const key of this.changes.getKeys({ end: sequence + 1 })) this.changes.remove(key);
      this.meta.put('pruned-through', Math.max(sequence, (this.meta.get('pruned-through') as number | undefined) ?? 0));
    });
    await this.root.flushed;
  }

  /** A consistent copy of the whole environment (one read transaction) as `dir`/data.mdb; `dir` must exist. */
  backup(dir: string): Promise<void> {
    return this.root.backup(dir, false);
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}

function sameKey(a: IndexKey, b: IndexKey): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
