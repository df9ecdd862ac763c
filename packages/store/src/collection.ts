import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, sep } from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
import { packageScript, type Backend } from '@adanns/compute';
import { AdannsIndex, calibrationLevels, formatSpec, raiseToK, type FilteredPlan, isAllowed, isAutoSpec, judgeBudget, judgeFilteredBudget, listSizeDrift, loadIndex, maskedSlots, parseSpec, saveCalibration, type AllowedIds, type Budget, type PreparedFilter, type Plan, type SearchParams, type SearchResult } from '@adanns/core';
import type { CalibrationStats, CollectionStats as WireCollectionStats, CountReply, FrontierPoint, SpecParts, SpectrumPoint, Hit, IndexBytes, IndexState, PayloadIndexInfo, PlannedCost, SearchReply } from '@adanns/wire';
import { calibrationQueriesPath, clearBuildRequest, discardArtefacts, pendingBuild, publishArtefact, readArtefact, requestBuild, writeArtefact, writeCalibrationQueries } from './artefacts.js';
import { collectionRerankStore } from './rerank.js';
import { applyChanges, replaceVectors } from './catch-up.js';
import type { BuildJob, BuildMessage } from './build-worker.js';
import { invalid, StoreError, tooLarge } from './errors.js';
import { checkFilter, evaluateFilter, type FilterAnswer } from './filter.js';
import { checkPayloadIndex } from './payload-index.js';
import { probeEnvironment } from './probe.js';
import { decodeQuantiser, encodeQuantiser, quantiserOf, quantiserPath, setQuantiserFile } from './quantiser.js';
import { checkId, hasLoneSurrogate, PointStore, type Payload, type Point, type PointId } from './points.js';
import { indexProblem, type CollectionSchema } from './schema.js';
import { searchSlices } from './slices.js';
import { checkVectorForMetric, indexRowsInPlace, showValue, toVector, writeVector } from './vectors.js';
import { plannedQueryMflops } from './work.js';

export { toVector } from './vectors.js';

/** Where the store logs: pino's call shape (a pino or Fastify logger fits), fields first. */
export interface StoreLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface CollectionOptions {
  backend: Backend;
  /** Backend name and threads for build processes (they create their own). */
  backendName: string;
  threads?: number;
  /** Start a build by itself once an unindexed collection holds this many points (0 = never; default 10,000). */
  autoBuildAt?: number;
  /**
   * An automatic build or rebuild waits until no write has come for this long
   * (ms, default 3,000), so it does not start in the middle of an import and
   * train on part of it.
   */
  autoBuildQuietMs?: number;
  /** Advise a rebuild when the collection has grown (or shrunk) by this factor since training (default 2). */
  rebuildFactor?: number;
  /** Rebuild by itself when advised (default true). */
  autoRebuild?: boolean;
  /** Time bound of the calibration that follows each build (default 30 s). */
  calibrationSeconds?: number;
  /**
   * Re-calibrate (in the background, no rebuild) once the list-size shares
   * have moved this far from calibration's, in total variation distance
   * (default 0.2; 0 = never). Checked after writes, started once they are quiet.
   */
  recalibrateDrift?: number;
  /** Largest payload, as JSON bytes (default 64 KiB). */
  maxPayloadBytes?: number;
  seed?: number;
  /** Build, recovery and failure events go here, each with the collection's name. */
  logger?: StoreLogger;
}

export interface PointInput {
  id: unknown;
  vector: unknown;
  payload?: unknown;
}

export interface SearchRequest {
  k: number;
  params?: Partial<SearchParams>;
  budget?: Budget;
  /** Refuse a budget the calibration says cannot be met (default: serve the closest). */
  strict?: boolean;
  /**
   * Plan a budget's recall at this k (at most k) while answering k hits: a
   * cluster shard's share of a merged top k, whose global top k lies about
   * k / shards deep in each shard (docs/ARCHITECTURE.md, "Cluster"). Default k.
   */
  planK?: number;
  withPayload?: boolean;
  /** Bounds on one request's work and answer (none when absent). */
  limits?: SearchLimits;
  /** Stops the search at its next slice (the client went away). */
  signal?: AbortSignal;
  /** Only points passing this filter (the filter language, @adanns/wire parseFilter) are returned. */
  filter?: unknown;
}

export interface SearchLimits {
  /** Most planned MFLOPs for the whole batch (too_large beyond). */
  maxMflops?: number;
  /** Most planned MFLOPs of one query vector, the smallest slice there is. */
  maxQueryMflops?: number;
  /** Most hits (query vectors x k) one answer may hold. */
  maxHits?: number;
  /** Most payload bytes (as JSON) one answer may carry. */
  maxPayloadBytes?: number;
  /**
   * Target milliseconds per slice: a batch runs as slices of query vectors,
   * one slice per event-loop turn (process-wide), so other requests are
   * answered between them. The first slice is sized from the planned
   * MFLOPs, later ones from the time the previous one took. Absent: one slice.
   */
  sliceMs?: number;
}

/**
 * Payloads are stored as their JSON form; what JSON would silently change
 * (a MessagePack Map, Set, typed array, NaN or Infinity, a lone surrogate
 * that UTF-8 turns into U+FFFD) is refused instead.
 */
function payloadReplacer(key: string, value: unknown): unknown {
  const at = key ? `the value of ${JSON.stringify(key)}` : 'a value';
  if (hasLoneSurrogate(key)) throw new Error(`the key ${JSON.stringify(key)} holds a lone UTF-16 surrogate`);
  if (typeof value === 'string' && hasLoneSurrogate(value)) throw new Error(`${at} holds a lone UTF-16 surrogate`);
  if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`${at} is ${value}, which JSON cannot represent`);
  if (value instanceof Map || value instanceof Set || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) throw new Error(`${at} is ${showValue(value)}; payloads hold JSON values (objects, arrays, strings, numbers, booleans, null)`);
  return value;
}

/** Query values checked and copied per event-loop turn. */
const CHECK_VALUES_PER_TURN = 262_144;
/** Planned MFLOPs of a batch's first slice, before its timing sizes the next ones. */
const FIRST_SLICE_MFLOPS = 2;
/** Hits mapped to external ids (an LMDB read each) per event-loop turn. */
const MAP_HITS_PER_TURN = 4096;

// The answer and stats are the HTTP API's reply types (@adanns/wire), so the
// service returns them as they are (docs/ARCHITECTURE.md, "Wire types").
// index.sequence: the change sequence the trained index was built from.
export type { Hit, IndexState } from '@adanns/wire';
export type SearchAnswer = SearchReply;
export type CollectionStats = Omit<WireCollectionStats, 'frontier' | 'frontierK' | 'specParts' | 'spectrum'>;

/** Options of Collection.build (a cluster shard's build request). */
export interface BuildRequest {
  /**
   * A shared quantiser (Collection.sharedQuantiser of another shard): this
   * build and every later one here train only their codecs on its PCA and
   * centroids; null forgets a quantiser given before (the build trains its own).
   */
  quantiser?: Uint8Array | null;
  /** Vectors the index is for when more than this collection holds (a cluster collection's total): spec `auto` sizes its lists by it. */
  countHint?: number;
  /** Called with the quantiser (sharedQuantiser's form) as soon as the build trained it, before filling and calibrating. */
  onQuantiser?: (blob: Uint8Array) => void;
}

/** Options of a write that comes from an external log (packages/cluster). */
export interface WriteOptions {
  /** The log message's sequence, stored with the write in one transaction (Collection.logSequence). */
  logSequence?: number;
}

/** The meta key of the last external log sequence applied. */
const LOG_SEQUENCE = 'log-sequence';

function logMeta(options: WriteOptions): Record<string, unknown> | undefined {
  return options.logSequence === undefined ? undefined : { [LOG_SEQUENCE]: options.logSequence };
}

/**
 * Validates a batch of points for a collection of this schema before anything
 * is written: a bad point rejects the whole batch; duplicate ids: the last one
 * wins. Exported so a cluster node that holds no replica of a shard checks a
 * write exactly as the replicas that apply it will (packages/cluster).
 */
export function validatePoints(schema: CollectionSchema, input: readonly PointInput[], max: number): Point[] {
  if (!Array.isArray(input) || input.length === 0) throw invalid('points must be a non-empty array');
  const byId = new Map<PointId, Point>();
  const halfLists = schema.index !== undefined && !isAutoSpec(schema.index) && parseSpec(schema.index, schema.dim).scan.codec === 'f16';
  input.forEach((p, i) => {
    if (p === null || typeof p !== 'object') throw invalid(`points[${i}] must be an object with id and vector`);
    const id = checkId(p.id);
    const vector = toVector(p.vector, schema.dim, `points[${i}]`);
    checkVectorForMetric(vector, schema.metric, `points[${i}]`, 0, vector.length, halfLists);
    let payload: Payload | undefined;
    if (p.payload !== undefined && p.payload !== null) {
      if (typeof p.payload !== 'object' || Array.isArray(p.payload) || ArrayBuffer.isView(p.payload)) throw invalid(`points[${i}].payload must be an object`);
      let json: string;
      try {
        json = JSON.stringify(p.payload, payloadReplacer);
      } catch (e) {
        throw invalid(`points[${i}].payload is not JSON-representable: ${(e as Error).message}`);
      }
      const bytes = Buffer.byteLength(json);
      if (bytes > max) throw new StoreError('too_large', `points[${i}].payload is ${bytes} bytes as JSON, the limit is ${max}`);
      // stored as its JSON form, so every client reads back what a JSON client would
      payload = JSON.parse(json) as Payload;
    }
    byId.delete(id); // re-insert so the batch keeps the order of last occurrences
    byId.set(id, payload ? { id, vector, payload } : { id, vector });
  });
  return [...byId.values()];
}

/**
 * One collection: points in LMDB (the system of record), and in memory the
 * index searches run on. Until a trained index exists it is an exact (flat)
 * index over every point. Builds run in a child process on a snapshot; the result is
 * loaded, brought up to date from the change log and swapped in while
 * searches go on. Writes are serialised per collection so LMDB order and
 * index order agree.
 */
export class Collection {
  private index: AdannsIndex | undefined;
  private trained = false;
  private spec: string | null = null;
  /** Why `auto` chose the live index's spec (null for a spec given). */
  private specReason: string | null = null;
  private trainedSequence: number | null = null;
  private trainedCount: number | null = null;
  private building: { worker: ChildProcess; stage: string; progress: number; done: Promise<void> } | undefined;
  /** The artefact the live index was loaded from (what a re-calibration loads and brings up to date). */
  private artefactName: string | null = null;
  /** A re-calibration of the live index, running in a child process. */
  private calibrating: { worker: ChildProcess; progress: number; done: Promise<void> } | undefined;
  private calibrationError: string | null = null;
  /** The artefact whose last re-calibration failed: drift does not retry it (a new build or an explicit request does). */
  private calibrationFailedFor: string | null = null;
  private lastError: string | null = null;
  /** Why this collection has no index and searches exactly, once a build found it too small. */
  private exactReason: string | null = null;
  /** When the last write came, and the timer that looks again once writes have been quiet (automatic builds). */
  private lastWrite = 0;
  private quietTimer: NodeJS.Timeout | undefined;
  /**
   * What an answer takes beyond its index searches (checking the queries,
   * waiting for slice turns, mapping hits), in ms, averaged over recent
   * answers: latency budgets are planned on what remains of them.
   */
  private overheadMs = 0;
  /** Timings of the last build swapped in. */
  lastBuild: { seconds: number; trainAndFillSeconds: number; calibrationSeconds: number } | undefined;
  private writes: Promise<unknown> = Promise.resolve();
  /** Payload index builds and drops running in the background, by field. */
  private payloadJobs = new Map<string, { progress: number; stop: boolean; done: Promise<void> }>();
  private inflight = 0;
  private retired: AdannsIndex[] = [];
  private closed = false;

  private constructor(
    private readonly dir: string,
    readonly schema: CollectionSchema,
    private readonly points: PointStore,
    private readonly options: CollectionOptions,
  ) {}

  /** Opens a collection directory: loads its artefact (or rebuilds it) and replays the changes after it. */
  static async open(dir: string, options: CollectionOptions): Promise<Collection> {
    await probeEnvironment(join(dir, 'points'));
    const { store, schema } = PointStore.open(join(dir, 'points'));
    const collection = new Collection(dir, schema, store, options);
    try {
      await collection.recover();
    } catch (e) {
      await store.close();
      throw e;
    }
    return collection;
  }

  private get artefactDir(): string {
    return join(this.dir, 'index');
  }

  /** Indexes re-rank from the collection's LMDB (zero-copy gets) rather than a copy of their own. */
  private readonly rerankStore = collectionRerankStore((iids, dim, out) => {
    this.points.readVectors(iids, dim, out);
    // re-ranked in the index's form (unit rows for cosine), as the build read them
    indexRowsInPlace(out, iids.length, dim, this.schema.metric);
  });

  private log(level: keyof StoreLogger, message: string, fields: object = {}): void {
    this.options.logger?.[level]({ collection: this.schema.name, ...fields }, `collection ${this.schema.name}: ${message}`);
  }

  private async recover(): Promise<void> {
    mkdirSync(this.artefactDir, { recursive: true });
    let rebuild = false;
    try {
      const artefact = readArtefact(this.options.backend, this.artefactDir, { rerankStore: this.rerankStore });
      if (artefact) {
        const touched = this.points.changedSince(artefact.sequence);
        if (artefact.sequence > this.points.sequence || touched === undefined) {
          artefact.index.release();
          throw new Error(`artefact covers sequence ${artefact.sequence}, the change log cannot bring it to ${this.points.sequence}`);
        }
        await this.applyChanges(artefact.index, touched);
        this.adopt(artefact.index, artefact.sequence, artefact.trainedCount);
        this.artefactName = artefact.name;
        this.log('info', `recovered: index ${this.spec} from sequence ${artefact.sequence}, ${touched.size} changes replayed`, { sequence: this.points.sequence, replayed: touched.size, count: this.points.count });
      }
    } catch (e) {
      this.log('warn', `index artefact not used, rebuilding it: ${(e as Error).message}`, { err: (e as Error).message });
      discardArtefacts(this.artefactDir);
      rebuild = true;
    }
    // payload index builds and drops a crash or a stop interrupted go on; failed builds are retried
    for (const [field, decl] of Object.entries(this.points.payloadIndexes())) {
      if (decl.state === 'failed') await this.points.declarePayloadIndex(field, decl.type, 'building');
      if (decl.state === 'building' || decl.state === 'failed') this.buildPayloadIndex(field);
      else if (decl.state === 'dropping') this.dropPayloadEntries(field);
    }
    if (!this.trained) {
      this.index = await this.exactIndex();
      this.log('info', `opened without a trained index: ${this.points.count} points, searched exactly`, { count: this.points.count });
    }
    // a build a crash or a stop interrupted starts again
    const pending = pendingBuild(this.artefactDir);
    if (pending !== undefined && this.points.count > 0) this.log('info', `a build was interrupted (${pending}): starting it again`, { reason: pending });
    if (pending !== undefined && this.points.count === 0) clearBuildRequest(this.artefactDir);
    if ((rebuild || pending !== undefined) && this.points.count > 0) this.buildIfBigEnough(pending === undefined ? 'the artefact was missing or unusable' : pending.startsWith('resumed') ? pending : `resumed after a restart: ${pending}`);
  }

  /** `trainedCount`: the points the index was trained on (not counting the changes replayed into it since). */
  private adopt(index: AdannsIndex, sequence: number, trainedCount: number): void {
    this.index = index;
    this.trained = true;
    this.spec = formatSpec(index.spec);
    this.specReason = index.choice?.reason ?? null;
    this.trainedSequence = sequence;
    this.trainedCount = trainedCount;
    this.exactReason = null;
  }

  /** An exact index over every stored point (undefined while there are none). */
  private async exactIndex(): Promise<AdannsIndex | undefined> {
    const snapshot = this.points.snapshot();
    const n = snapshot.iids.length;
    if (n === 0) return undefined;
    const data = indexRowsInPlace(snapshot.data, n, this.schema.dim, this.schema.metric);
    return AdannsIndex.build(this.options.backend, 'flat', data, n, this.schema.dim, { metric: this.schema.metric, ids: snapshot.iids });
  }

  /** Brings an index to the stored state of the given internal ids (upserted: current vector; deleted: gone). */
  private applyChanges(index: AdannsIndex, touched: Iterable<number>): Promise<void> {
    return applyChanges(index, this.points, touched, this.schema.dim, this.schema.metric);
  }

  /** Puts these vectors into the index under these internal ids, replacing what it held under them. */
  private replace(index: AdannsIndex, iids: number[], vectors: Float32Array[]): Promise<void> {
    return replaceVectors(index, iids, vectors, this.schema.dim, this.schema.metric);
  }

  /** Runs write steps one batch at a time. */
  private serial<T>(step: () => Promise<T>): Promise<T> {
    const run = this.writes.then(step, step);
    this.writes = run.catch(() => undefined);
    return run;
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreError('unavailable', `collection ${this.schema.name} is closed`);
  }

  /** Validates a batch before anything is written: a bad point rejects the whole batch. Duplicate ids: the last one wins. */
  private validateBatch(input: readonly PointInput[]): Point[] {
    return validatePoints(this.schema, input, this.options.maxPayloadBytes ?? 65536);
  }

  /** Upserts a batch; resolves once it is durable and searchable. */
  async upsert(input: readonly PointInput[], options: WriteOptions = {}): Promise<{ sequence: number; upserted: number }> {
    this.checkOpen();
    const batch = this.validateBatch(input);
    const result = await this.serial(async () => {
      const { sequence, iids } = await this.points.upsert(batch, logMeta(options));
      if (!this.index) this.index = await this.exactIndex();
      else await this.replace(this.index, Array.from(iids), batch.map((p) => p.vector));
      return { sequence, upserted: batch.length };
    });
    this.lastWrite = performance.now();
    this.maybeBuild();
    return result;
  }

  /** Deletes the given ids (unknown ones are ignored); resolves once durable. */
  async delete(ids: readonly unknown[], options: WriteOptions = {}): Promise<{ sequence: number; deleted: number }> {
    this.checkOpen();
    if (!Array.isArray(ids) || ids.length === 0) throw invalid('ids must be a non-empty array');
    const checked = ids.map(checkId);
    const result = await this.serial(() => this.deleteIds(checked, options));
    // shrinking to half of what the index was trained on rebuilds it, as doubling does; lists that drift re-calibrate
    this.maybeBuild();
    return result;
  }

  /** Within a write turn: deletes these ids from LMDB (durably) and from the index. */
  private async deleteIds(ids: readonly PointId[], options: WriteOptions = {}): Promise<{ sequence: number; deleted: number }> {
    const { sequence, iids } = await this.points.delete(ids, logMeta(options));
    this.index?.remove(iids);
    this.lastWrite = performance.now();
    return { sequence, deleted: iids.length };
  }

  /**
   * Deletes every point a filter matches, in one durable transaction; the
   * filter is evaluated within the same write turn, so no write slips between.
   * With `limit`, a filter matching more points than that deletes nothing and
   * is refused (too_large): `{}` matches every point.
   */
  async deleteByFilter(filter: unknown, options: { limit?: number } & WriteOptions = {}): Promise<{ sequence: number; deleted: number }> {
    this.checkOpen();
    const node = checkFilter(filter);
    const result = await this.serial(async () => {
      const { allowed } = await evaluateFilter(this.points, node);
      if (options.limit !== undefined && allowed.count > options.limit) {
        throw tooLarge(`the filter matches ${allowed.count} points, more than the ${options.limit} one delete may remove unless it asks for all of them ("all": true); nothing was deleted`);
      }
      const ids: PointId[] = [];
      for (const iid of maskedSlots({ mask: allowed.bits, count: allowed.count })) {
        const id = this.points.externalId(iid);
        if (id !== undefined) ids.push(id);
      }
      return this.deleteIds(ids, options);
    });
    this.maybeBuild();
    return result;
  }

  /**
   * The sequence of the last message of an external log (a cluster shard's
   * JetStream stream) applied to this collection: written in the same LMDB
   * transaction as the points it carried (WriteOptions.logSequence), so after
   * a crash it says exactly where to resume. 0 when none was applied.
   */
  get logSequence(): number {
    return this.points.metaValue<number>(LOG_SEQUENCE) ?? 0;
  }

  /**
   * The saved artefact of the live trained index (its directory, the change
   * sequence it covers and the points it was trained on), or null before one
   * is saved: what a cluster replica publishes for the others to load.
   */
  currentArtefact(): { path: string; name: string; sequence: number; trainedCount: number } | null {
    if (!this.trained || !this.artefactName || this.trainedSequence === null) return null;
    return { path: join(this.artefactDir, this.artefactName), name: this.artefactName, sequence: this.trainedSequence, trainedCount: this.trainedCount ?? 0 };
  }

  /**
   * Installs an index artefact trained elsewhere on the same points (a
   * cluster replica of the same shard, which applied the same log: same
   * internal ids and change sequences): `files` (relative path -> bytes) are
   * written as a new artefact, which is loaded, brought up to date from the
   * change log and swapped in, as a build's result is. Refused while a build
   * runs, and until this collection has reached the artefact's sequence.
   */
  async installArtefact(files: ReadonlyMap<string, Uint8Array>, sequence: number, trainedCount: number): Promise<void> {
    this.checkOpen();
    if (this.building) throw new StoreError('conflict', `collection ${this.schema.name} is building its own index`);
    if (this.points.sequence < sequence) throw new StoreError('unavailable', `collection ${this.schema.name} is at change ${this.points.sequence}, the artefact covers ${sequence}: apply the log that far first`, 1);
    const name = `index-${sequence}-${Date.now().toString(36)}`;
    const tmp = join(this.artefactDir, `${name}.tmp`);
    rmSync(tmp, { recursive: true, force: true });
    for (const [path, bytes] of files) {
      const target = join(tmp, path);
      // the paths come from another node: nothing may land outside the artefact's directory
      if (!target.startsWith(tmp + sep) || path.includes('..')) throw invalid(`artefact file ${JSON.stringify(path)} is outside the artefact`);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, bytes);
    }
    renameSync(tmp, join(this.artefactDir, name));
    await this.swapIn(name, sequence, trainedCount);
    this.log('info', `installed an index artefact trained elsewhere, covering change ${sequence}`, { sequence, trainedCount });
  }

  /**
   * Writes a copy of this collection into the empty directory `dir`, as
   * Store.restore takes it: its LMDB (points, payloads, change log and the
   * applied log sequence, one consistent read) and the live index artefact
   * with its shared quantiser, taken between two writes. What a cluster
   * replica publishes so that its shard's log can be trimmed: a replica
   * behind the trimmed part starts from this copy instead.
   */
  async snapshot(dir: string): Promise<{ logSequence: number; sequence: number }> {
    this.checkOpen();
    return this.serial(async () => {
      mkdirSync(join(dir, 'points'), { recursive: true });
      await this.points.backup(join(dir, 'points'));
      const index = join(dir, 'index');
      mkdirSync(index, { recursive: true });
      const live = this.currentArtefact();
      if (live) {
        cpSync(live.path, join(index, live.name), { recursive: true });
        publishArtefact(index, live.name);
      }
      for (const path of [quantiserPath(this.artefactDir), calibrationQueriesPath(this.artefactDir)]) if (path && existsSync(path)) cpSync(path, join(index, basename(path)));
      return { logSequence: this.logSequence, sequence: this.points.sequence };
    });
  }

  /** Records a log message that changes no point (or one refused as invalid) as applied, durably and in order. */
  markLogApplied(logSequence: number): Promise<void> {
    this.checkOpen();
    return this.serial(() => this.points.putMeta(logMeta({ logSequence })!));
  }

  /** How many points a filter matches (all points without one). */
  async countPoints(filter?: unknown): Promise<CountReply> {
    this.checkOpen();
    if (filter === undefined) return { count: this.points.count, note: null };
    const { allowed, note } = await evaluateFilter(this.points, checkFilter(filter));
    return { count: allowed.count, note };
  }

  /**
   * Creates a payload index on a field and builds it over the existing points
   * in the background (state building; conditions on the field read payloads
   * until it is ready). The same type again is a no-op, or retries a failed
   * build; another type is a conflict.
   */
  async createPayloadIndex(field: unknown, type: unknown): Promise<PayloadIndexInfo> {
    this.checkOpen();
    const checked = checkPayloadIndex(field, type);
    await this.serial(async () => {
      const existing = this.points.payloadIndexes()[checked.field];
      if (existing?.state === 'dropping') throw new StoreError('conflict', `the payload index on ${JSON.stringify(checked.field)} is being dropped; create it again once it is gone`);
      if (existing && existing.type !== checked.type) throw new StoreError('conflict', `${JSON.stringify(checked.field)} already has a ${existing.type} payload index; drop it first to index it as ${checked.type}`);
      if (existing && existing.state !== 'failed') return;
      await this.points.declarePayloadIndex(checked.field, checked.type, this.points.count === 0 ? 'ready' : 'building');
      if (this.points.count > 0) this.buildPayloadIndex(checked.field);
    });
    return this.payloadIndexInfo().find((i) => i.field === checked.field)!;
  }

  /** Drops a payload index (its entries are removed in the background; state dropping until then). */
  async dropPayloadIndex(field: unknown): Promise<void> {
    this.checkOpen();
    const { field: name } = checkPayloadIndex(field, 'keyword');
    // a build in progress stops first (a drop in progress just goes on)
    const running = this.payloadJobs.get(name);
    if (running && this.points.payloadIndexes()[name]?.state === 'building') {
      running.stop = true;
      await running.done;
    }
    await this.serial(async () => {
      const existing = this.points.payloadIndexes()[name];
      if (!existing) throw new StoreError('not_found', `collection ${this.schema.name} has no payload index on ${JSON.stringify(name)}`);
      if (existing.state === 'dropping') return;
      await this.points.declarePayloadIndex(name, existing.type, 'dropping');
      this.dropPayloadEntries(name);
    });
  }

  /** Differences between the payload indexes and the payloads (empty when they agree): for tests and the crash soak. */
  checkPayloadIndexes(): string[] {
    return this.points.checkPayloadIndexes();
  }

  /** Waits for the payload index builds and drops running now. */
  async whenPayloadIndexed(): Promise<void> {
    while (this.payloadJobs.size > 0) await Promise.all([...this.payloadJobs.values()].map((j) => j.done));
  }

  /** Runs a payload index job in chunks, one transaction each, yielding between them; `failed` records an error that stopped it. */
  private payloadJob(field: string, step: (job: { progress: number; stop: boolean }) => Promise<boolean>, what: string, failed?: (message: string) => Promise<void>): void {
    const job = { progress: 0, stop: false, done: Promise.resolve() };
    // in the map before it starts: a job that ends at once still removes itself
    this.payloadJobs.set(field, job);
    job.done = (async () => {
      try {
        while (!this.closed && !job.stop && (await step(job))) await new Promise((resolve) => setImmediate(resolve));
      } catch (e) {
        const message = (e as Error).message;
        if (!this.closed) this.log('error', `payload index ${what} on ${field} failed: ${message}`, { field, err: message });
        // recorded, so stats and clients waiting for the index see it rather than "building" forever
        if (!this.closed && failed) await failed(message).catch((f: Error) => this.log('error', `payload index ${what} on ${field}: its failure was not recorded: ${f.message}`, { field, err: f.message }));
      } finally {
        if (this.payloadJobs.get(field) === job) this.payloadJobs.delete(field);
      }
    })();
  }

  private buildPayloadIndex(field: string): void {
    let after: PointId | undefined;
    let done = 0;
    const started = performance.now();
    this.payloadJob(
      field,
      async (job) => {
        const chunk = await this.points.indexPayloadChunk(field, after, PAYLOAD_INDEX_CHUNK);
        done += chunk.done;
        job.progress = Math.min(1, done / Math.max(1, this.points.count));
        if (chunk.last !== undefined) {
          after = chunk.last;
          return true;
        }
        // the declaration is still ours (a drop stops the job before it changes it)
        const decl = this.points.payloadIndexes()[field];
        if (decl?.state === 'building' && !job.stop && !this.closed) {
          await this.points.declarePayloadIndex(field, decl.type, 'ready');
          this.log('info', `payload index on ${field} (${decl.type}) built over ${done} points in ${((performance.now() - started) / 1000).toFixed(1)} s`, { field, type: decl.type, points: done });
        }
        return false;
      },
      'build',
      async (message) => {
        const decl = this.points.payloadIndexes()[field];
        if (decl?.state === 'building') await this.points.declarePayloadIndex(field, decl.type, 'failed', message);
      },
    );
  }

  private dropPayloadEntries(field: string): void {
    this.payloadJob(field, async () => (await this.points.dropPayloadChunk(field, PAYLOAD_INDEX_CHUNK * 4)) > 0, 'drop');
  }

  private payloadIndexInfo(): PayloadIndexInfo[] {
    return Object.entries(this.points.payloadIndexes())
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([field, decl]) => ({ field, type: decl.type, state: decl.state, progress: decl.state === 'ready' ? 1 : (this.payloadJobs.get(field)?.progress ?? 0), error: decl.state === 'failed' ? (decl.error ?? 'unknown error') : null }));
  }

  get(id: unknown): { id: PointId; vector: number[]; payload?: Payload } | undefined {
    this.checkOpen();
    const checked = checkId(id);
    const point = this.points.get(checked);
    if (!point) return undefined;
    return { id: checked, vector: Array.from(point.vector), ...(point.payload ? { payload: point.payload } : {}) };
  }

  get count(): number {
    return this.points.count;
  }

  async search(queries: readonly unknown[], request: SearchRequest): Promise<SearchAnswer> {
    this.checkOpen();
    const started = performance.now();
    const { dim, metric } = this.schema;
    if (!Array.isArray(queries) || queries.length === 0) throw invalid('give a query vector or a non-empty array of them');
    const rows = queries.length;
    if (!Number.isInteger(request.k) || request.k < 1) throw invalid(`k must be a positive integer, got ${showValue(request.k)}`);
    const filterNode = request.filter === undefined ? undefined : checkFilter(request.filter);
    const limits = request.limits ?? {};
    if (limits.maxHits !== undefined && rows * request.k > limits.maxHits) {
      throw tooLarge(`${rows} query vectors x k = ${request.k} is ${rows * request.k} hits, the limit is ${limits.maxHits}: send fewer query vectors or ask for a smaller k`);
    }
    // checked and copied a bounded number of values per event-loop turn when sliced (10,000 x 768 values take ~50 ms)
    const data = new Float32Array(rows * dim);
    const rowsPerTurn = limits.sliceMs ? Math.max(1, Math.floor(CHECK_VALUES_PER_TURN / dim)) : rows;
    for (let from = 0; from < rows; from += rowsPerTurn) {
      const check = () => {
        for (let i = from; i < Math.min(rows, from + rowsPerTurn); i++) {
          const what = rows === 1 ? 'query' : `vectors[${i}]`;
          writeVector(queries[i], dim, what, data, i * dim);
          checkVectorForMetric(data, metric, what, i * dim, dim);
          indexRowsInPlace(data.subarray(i * dim, (i + 1) * dim), 1, dim, metric);
        }
      };
      if (rowsPerTurn < rows) await searchSlices.run(async () => check());
      else check();
    }
    // the decoded vectors (up to 10,000 small arrays) are copied: let them go while the search runs
    queries = [];
    const index = this.index;
    if (!index || index.size === 0) {
      return { results: Array.from({ length: rows }, () => []), params: null, mflops: 0, expectedRecall: null, budgetMet: null, planned: null, note: 'the collection is empty', tookMs: performance.now() - started };
    }
    this.inflight++;
    try {
      const k = Math.min(request.k, index.size);
      // the request's choices are checked first (a 400 when wrong); the search itself then runs unguarded
      let plan: Plan | undefined;
      let indexBudget: Budget | undefined;
      let params: Partial<SearchParams> | undefined;
      let resolved: SearchParams;
      // the k the plan is made (and its recall budget judged) at: a cluster plans each shard at ceil(k / shards)
      let planK = k;
      try {
        if (request.budget && index.calibration) {
          const b = request.budget;
          indexBudget = 'latencyMs' in b ? { latencyMs: Math.max(1e-6, b.latencyMs - this.overheadMs) } : b;
          // under a filter the budget is planned for the filter once it is evaluated (planFiltered does the strict check)
          planK = request.planK === undefined ? k : Math.min(k, request.planK);
          if (!Number.isInteger(planK) || planK < 1) throw new Error(`planK must be a positive integer, got ${showValue(request.planK)}`);
          plan = index.plan(indexBudget, planK, { strict: filterNode ? false : (request.strict ?? false), rows });
          // planned at a smaller k: the shortlist (and funnel keeps) still serve k
          if (planK < k) plan = { ...plan, params: raiseToK(plan.params, k) };
        }
        // before training the search is exact: params for the coming index do not apply yet
        else if (this.trained && request.params) params = request.params;
        resolved = index.resolveParams(k, plan?.params ?? params);
      } catch (e) {
        throw invalid((e as Error).message);
      }
      // the filter (validated, and the request with it, before any work) is evaluated once per request into a
      // bitset over internal ids, and prepared once against the index's slots: every slice searches with it
      let filtered: FilterAnswer | undefined;
      let prepared: PreparedFilter | undefined;
      let filterPlan: FilteredPlan | undefined;
      let perQuery: number;
      if (filterNode) {
        filtered = await evaluateFilter(this.points, filterNode, { signal: request.signal });
        if (filtered.allowed.count === 0) {
          const note = ['no point matches the filter', ...(filtered.note ? [filtered.note] : [])].join('; ');
          return { results: Array.from({ length: rows }, () => []), params: null, mflops: 0, expectedRecall: null, budgetMet: null, planned: null, note, tookMs: performance.now() - started };
        }
        prepared = index.prepareFilter(filtered.allowed);
        // a budget under a filter: the plan (exact scan of the matches or probing, and its params) priced for this filter
        if (plan) {
          try {
            filterPlan = index.planFiltered(indexBudget!, k, prepared, { strict: request.strict ?? false, rows });
          } catch (e) {
            throw invalid((e as Error).message);
          }
        }
        // limits and the first slice on the filtered plan's worst case: probing until enough matches may read many more lists
        perQuery = index.priceFilter(k, filterPlan?.params ?? plan?.params ?? params, prepared, filterPlan && filterPlan.plan !== 'scan' ? filterPlan.plan : undefined).mflopsMax;
      } else perQuery = plannedQueryMflops(index, resolved);
      const cheaper = this.trained
        ? `lower nprobe, shortlist or rerankDim (or ask for a smaller budget)${filtered ? ', or a more selective filter (or one that matches more: it probes lists until enough matches are seen)' : ''}`
        : `build the index (until then every query scans all ${index.size} points)`;
      if (limits.maxQueryMflops !== undefined && perQuery > limits.maxQueryMflops) {
        throw tooLarge(`one query of this search plans ${perQuery.toPrecision(4)} MFLOPs, the limit per query is ${limits.maxQueryMflops}: ${cheaper}`);
      }
      if (limits.maxMflops !== undefined && perQuery * rows > limits.maxMflops) {
        throw tooLarge(`this search plans ${(perQuery * rows).toPrecision(4)} MFLOPs (${rows} query vectors x ${perQuery.toPrecision(4)}), the limit is ${limits.maxMflops}: send fewer query vectors, or ${cheaper}`);
      }
      let sliceRows = limits.sliceMs ? Math.max(1, Math.floor(FIRST_SLICE_MFLOPS / perQuery)) : rows;
      const ids = new Float64Array(rows * k);
      const scores = new Float32Array(rows * k);
      const counts = new Int32Array(rows);
      let mflopsSum = 0;
      let maxMflops = 0;
      let searchMs = 0;
      let last: SearchResult | undefined;
      for (let from = 0, to = 0; from < rows; from = to) {
        to = Math.min(rows, from + sliceRows);
        let ms = 0;
        const part = await searchSlices.run(async () => {
          // dropped or closed while this batch waited for its turn, or nobody waits for the answer
          this.checkOpen();
          if (request.signal?.aborted) throw new StoreError('unavailable', 'search cancelled: the client went away');
          const t = performance.now();
          const answer = await index.search(data.subarray(from * dim, to * dim), to - from, k, filterPlan?.params ?? plan?.params ?? params, prepared ? { filter: prepared, ...(filterPlan && filterPlan.plan !== 'scan' ? { filterPlan: filterPlan.plan } : {}) } : {});
          ms = performance.now() - t;
          searchMs += ms;
          return answer;
        });
        // the next slice aims at sliceMs by this one's time per query (at most doubling)
        if (limits.sliceMs) sliceRows = Math.max(1, Math.min(2 * sliceRows, Math.floor(((to - from) * limits.sliceMs) / Math.max(ms, 0.05))));
        if (filtered) checkHonoured(part, filtered.allowed);
        ids.set(part.ids, from * k);
        scores.set(part.scores, from * k);
        counts.set(part.counts, from);
        for (const m of part.mflops) {
          mflopsSum += m;
          maxMflops = Math.max(maxMflops, m);
        }
        last = part;
      }
      const mflops = mflopsSum / rows;
      const results = await this.mapHits(ids, scores, counts, k, request.withPayload ?? false, limits.maxPayloadBytes);
      // under a filter the calibration (unfiltered queries) does not apply: the index says what the recall is worth
      const expectedRecall = filterPlan ? filterPlan.expectedRecall : last?.filter && this.trained ? last.expectedRecall : plan ? plan.expectedRecall : this.trained ? last!.expectedRecall : 1;
      const tookMs = performance.now() - started;
      this.overheadMs = this.overheadMs === 0 ? tookMs - searchMs : 0.8 * this.overheadMs + 0.2 * (tookMs - searchMs);
      // budgetMet describes this answer: judged on what it measured (an exact search's recall is 1 at any k)
      let budgetMet: boolean | null = null;
      let planned: PlannedCost | null = null;
      const notes: string[] = [];
      if (filtered?.note) notes.push(filtered.note);
      // how the index ran the filter (exact scan of the matches, or probing until enough) and what its recall is worth
      if (last?.filter) notes.push(`filter matches ${filtered!.allowed.count} points: ${last.filter.note}`);
      if (!this.trained) notes.push(`exact search over all ${index.size} points: ${this.exactReason ?? 'no index has been built yet'}`);
      if (request.budget) {
        const calibration = plan ? index.calibration! : undefined;
        // recall is judged at the k it was planned at (the calibrated k a shard's plan reads), MFLOPs and latency on what ran
        let verdict = judgeBudget(request.budget, { k: planK, maxMflops, tookMs }, calibration ? { lowerBound: plan!.recallLowerBound, calibratedK: plan!.calibratedK ?? calibration.k, estimate: plan!.recallNote } : { lowerBound: this.trained ? null : 1, calibratedK: null });
        // under a filter: recall judged on the filtered plan's lower bound, MFLOPs and latency on what ran
        if (filterPlan && last?.filter) verdict = judgeFilteredBudget(request.budget, { k, maxMflops, tookMs }, filterPlan, last.filter);
        if (filterPlan) notes.push(filterPlan.note);
        budgetMet = verdict.met;
        if (verdict.note) notes.push(verdict.note);
        // k: the calibrated k the recall comes from (the nearest above an uncalibrated one, when there is one)
        // under a filter: what the filtered plan predicted (latency null when the filtered calibration timed nothing for it)
        if (filterPlan) planned = { mflops: filterPlan.expectedMflops, recall: filterPlan.expectedRecall, latencyMs: filterPlan.expectedLatencyMs === null ? null : filterPlan.expectedLatencyMs + this.overheadMs, k };
        else if (plan) planned = { mflops: plan.expectedMflops, recall: plan.expectedRecall, latencyMs: plan.expectedLatencyMs + this.overheadMs, k: plan.recallFrom?.at(-1) ?? calibration!.k };
        else if (!this.trained) planned = { mflops: perQuery, recall: 1, latencyMs: null, k: null };
      }
      return { results, params: this.trained ? last!.params : null, mflops, expectedRecall, budgetMet, planned, note: notes.length > 0 ? notes.join('; ') : null, tookMs };
    } finally {
      this.inflight--;
      this.releaseRetired();
    }
  }

  /** Internal ids to external ids (and payloads), a bounded number per event-loop turn. */
  private async mapHits(ids: Float64Array, scores: Float32Array, counts: Int32Array, k: number, withPayload: boolean, maxPayloadBytes: number | undefined): Promise<Hit[][]> {
    const results: Hit[][] = [];
    let payloadBytes = 0;
    const rowsPerTurn = Math.max(1, Math.floor(MAP_HITS_PER_TURN / k));
    for (let from = 0; from < counts.length; from += rowsPerTurn) {
      await searchSlices.run(async () => {
        this.checkOpen();
        for (let q = from; q < Math.min(counts.length, from + rowsPerTurn); q++) {
          const hits: Hit[] = [];
          for (let i = 0; i < counts[q]; i++) {
            const externalId = this.points.externalId(ids[q * k + i]);
            if (externalId === undefined) continue; // deleted while this search ran
            const hit: Hit = { id: externalId, score: scores[q * k + i] };
            if (withPayload) {
              const payload = this.points.payloadOf(externalId);
              if (payload) {
                hit.payload = payload;
                if (maxPayloadBytes !== undefined && (payloadBytes += JSON.stringify(payload).length) > maxPayloadBytes) {
                  throw tooLarge(`the payloads of this answer exceed ${maxPayloadBytes} bytes: ask for a smaller k, fewer query vectors, or no payloads`);
                }
              }
            }
            hits.push(hit);
          }
          results.push(hits);
        }
      });
    }
    return results;
  }

  private releaseRetired(): void {
    if (this.inflight > 0) return;
    for (const index of this.retired) index.release();
    this.retired = [];
  }

  private retire(index: AdannsIndex | undefined): void {
    if (!index) return;
    this.retired.push(index);
    this.releaseRetired();
  }

  private get rebuildAdvised(): boolean {
    if (!this.trainedCount) return false;
    const factor = this.options.rebuildFactor ?? 2;
    const count = this.points.count;
    return count >= this.trainedCount * factor || count * factor <= this.trainedCount;
  }

  /** Why an automatic build or rebuild is due now, if one is. */
  private autoBuildReason(): string | undefined {
    const at = this.options.autoBuildAt ?? 10_000;
    if (!this.trained && at > 0 && this.points.count >= at) return `${this.points.count} points reached the automatic build threshold ${at}`;
    if (this.trained && (this.options.autoRebuild ?? true) && this.rebuildAdvised) return `the collection went from ${this.trainedCount} points at training to ${this.points.count}`;
    return undefined;
  }

  /** Starts an automatic build once it is due and writes have been quiet for autoBuildQuietMs; until then looks again after each quiet spell. */
  private maybeBuild(): void {
    if (this.building || this.closed) return;
    const build = this.autoBuildReason();
    if (build && indexProblem(this.schema, this.points.count)) return;
    const reason = build ?? this.recalibrationReason();
    if (!reason) return;
    const quiet = this.options.autoBuildQuietMs ?? 3000;
    const waited = performance.now() - this.lastWrite;
    if (waited >= quiet) {
      if (build) this.startBuild(build);
      else void this.startCalibration(reason);
      return;
    }
    if (this.quietTimer) return;
    this.quietTimer = setTimeout(() => {
      this.quietTimer = undefined;
      this.maybeBuild();
    }, quiet - waited + 1);
    this.quietTimer.unref(); // a pending automatic build keeps no process alive
  }

  /**
   * Starts a background build (or rebuild); refused while one runs. Resolves
   * when it has been swapped in or has failed. A collection too small for an
   * index keeps searching exactly and says why (stats: state "exact").
   */
  build(options: BuildRequest = {}): Promise<void> {
    this.checkOpen();
    if (this.building) throw new StoreError('conflict', `collection ${this.schema.name} is already building its index`);
    if (this.points.count === 0) throw invalid(`collection ${this.schema.name} has no points to index`);
    if (options.quantiser) decodeQuantiser(options.quantiser, this.schema.dim, this.schema.metric);
    if (options.quantiser !== undefined) setQuantiserFile(this.artefactDir, options.quantiser);
    return this.buildIfBigEnough('requested', options.countHint, options.onQuantiser);
  }

  /**
   * The live index's PCA and coarse centroids with its spec (quantiser.ts),
   * for the other shards of a cluster collection to build on; null before
   * training or when the index has neither stage.
   */
  sharedQuantiser(): Uint8Array | null {
    const q = this.trained && this.index ? quantiserOf(this.index) : null;
    return q && encodeQuantiser(q);
  }

  private buildIfBigEnough(reason: string, countHint?: number, onQuantiser?: (blob: Uint8Array) => void): Promise<void> {
    const problem = indexProblem(this.schema, this.points.count);
    if (!problem) return this.startBuild(reason, countHint, onQuantiser);
    clearBuildRequest(this.artefactDir);
    this.exactReason = problem;
    this.log('info', `no index built (${reason}): ${problem}`, { reason, count: this.points.count });
    return Promise.resolve();
  }

  private startBuild(reason: string, countHint?: number, onQuantiser?: (blob: Uint8Array) => void): Promise<void> {
    clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
    this.exactReason = null;
    // the build calibrates the index it makes: a re-calibration of the old one is moot
    void this.stopCalibration();
    // on disk first: a build that a crash or a stop interrupts starts again on open
    requestBuild(this.artefactDir, reason);
    const job: BuildJob = {
      lmdbPath: join(this.dir, 'points'),
      artefactDir: this.artefactDir,
      spec: this.schema.index ?? null,
      dims: this.schema.dims,
      metric: this.schema.metric,
      backend: this.options.backendName,
      seed: this.options.seed ?? 42,
      ...this.calibrationJob(),
      ...(this.options.threads === undefined ? {} : { threads: this.options.threads }),
      // a shared quantiser given once (cluster shards) serves every later build here too
      ...(existsSync(quantiserPath(this.artefactDir)) ? { quantiser: quantiserPath(this.artefactDir) } : {}),
      ...(countHint ? { countHint } : {}),
      ...(onQuantiser ? { exportQuantiser: join(this.artefactDir, 'quantiser.trained') } : {}),
    };
    const { worker, stderr } = forkWorker(job);
    const rebuild = this.trained;
    this.log('info', `index ${rebuild ? 're' : ''}build started (${reason}) over ${this.points.count} points`, { rebuild, reason, count: this.points.count, pid: worker.pid });
    const started = performance.now();
    const done = new Promise<void>((resolve) => {
      let finished = false;
      let result = false;
      const finish = (error?: string) => {
        if (finished) return;
        finished = true;
        if (error) {
          this.lastError = error;
          this.log('error', `index ${rebuild ? 're' : ''}build failed: ${error}`, { rebuild, err: error });
        }
        // done or failed for good; a build stopped by close stays requested and resumes on the next open
        if (!this.closed) clearBuildRequest(this.artefactDir);
        this.building = undefined;
        if (worker.exitCode === null) worker.kill('SIGKILL');
        resolve();
      };
      worker.on('message', (m: BuildMessage) => {
        if (m.type === 'progress' && this.building) {
          // one info line per stage; every progress message at debug
          if (m.stage !== this.building.stage) this.log('info', `index build stage ${m.stage}`, { stage: m.stage, total: m.total });
          else this.log('debug', `index build stage ${m.stage}: ${m.done}/${m.total}`, { stage: m.stage, done: m.done, total: m.total });
          this.building.stage = m.stage;
          this.building.progress = m.total > 0 ? m.done / m.total : 0;
        } else if (m.type === 'quantiser') {
          try {
            onQuantiser?.(readFileSync(m.path));
          } catch (e) {
            this.log('warn', `the trained quantiser could not be read: ${(e as Error).message}`);
          }
        } else if (m.type === 'failed') finish(m.message);
        else if (m.type === 'done') {
          result = true;
          this.swapIn(m.name, m.sequence, m.count)
            .then(() => {
              this.lastError = null;
              this.lastBuild = { seconds: (performance.now() - started) / 1000, trainAndFillSeconds: m.buildSeconds, calibrationSeconds: m.calibrationSeconds };
              this.log('info', `index ${m.spec} over ${m.count} points ${rebuild ? 'rebuilt and swapped in' : 'ready'} in ${this.lastBuild.seconds.toFixed(1)} s (train and fill ${m.buildSeconds.toFixed(1)} s, calibration ${m.calibrationSeconds.toFixed(1)} s)${this.specReason ? `; auto chose it: ${this.specReason}` : ''}`, {
                rebuild,
                spec: m.spec,
                specReason: this.specReason,
                count: m.count,
                sequence: m.sequence,
                seconds: this.lastBuild.seconds,
              });
              finish();
            })
            .catch((e: Error) => finish(e.message));
        }
      });
      worker.on('error', (e) => finish(e.message));
      worker.on('exit', (code, signal) => {
        if (!result) finish(`build process exited (${signal ?? `code ${code}`}) without a result${stderr() ? `: ${stderr().trim().split('\n').pop()}` : ''}`);
      });
    });
    this.building = { worker, stage: 'starting', progress: 0, done };
    return done;
  }

  /** Loads a finished artefact, replays the changes made since its snapshot and swaps it in, all within one write turn. */
  private swapIn(name: string, sequence: number, trainedCount: number): Promise<void> {
    return this.serial(async () => {
      if (this.closed) return;
      const index = loadIndex(this.options.backend, join(this.artefactDir, name), { rerankStore: this.rerankStore });
      const touched = this.points.changedSince(sequence);
      if (!touched) throw new Error(`change log was pruned past ${sequence} during the build`);
      await this.applyChanges(index, touched);
      publishArtefact(this.artefactDir, name);
      await this.points.pruneChanges(sequence);
      const old = this.index;
      this.adopt(index, sequence, trainedCount);
      this.artefactName = name;
      this.retire(old);
    });
  }

  /** The calibration part of a build or re-calibration job: the collection's ks, the time bound, the user's queries if given. */
  private calibrationJob(): Pick<BuildJob, 'calibrationSeconds' | 'calibrationKs' | 'calibrationQueries'> {
    const queries = calibrationQueriesPath(this.artefactDir);
    return {
      calibrationSeconds: this.options.calibrationSeconds ?? 30,
      ...(this.schema.calibrationK ? { calibrationKs: this.schema.calibrationK } : {}),
      ...(queries ? { calibrationQueries: queries } : {}),
    };
  }

  /** How far the live index's list-size shares have moved since its calibration (listSizeDrift; null before training). */
  private calibrationDrift(): number | null {
    const stats = this.trained ? this.index?.calibration?.probeStats : undefined;
    return stats ? listSizeDrift(stats.listSizes, this.index!.listSizes()) : null;
  }

  /** Why the live index is due a re-calibration, if it is. */
  private recalibrationReason(): string | undefined {
    const threshold = this.options.recalibrateDrift ?? 0.2;
    if (!this.trained || this.calibrating || threshold <= 0) return undefined;
    // it would fail the same way again, starting a doomed process every quiet spell
    if (this.calibrationFailedFor !== null && this.calibrationFailedFor === this.artefactName) return undefined;
    const drift = this.calibrationDrift();
    if (drift === null || drift <= threshold) return undefined;
    return `the list sizes drifted ${drift.toFixed(3)} (total variation of their shares) from calibration's, past ${threshold}`;
  }

  /**
   * Re-calibrates the live index in the background, on these query vectors
   * (kept: later builds and re-calibrations use them too) or on the index's
   * held-out points. Refused before an index is trained and while a build or
   * a calibration runs; resolves when the calibration is adopted or failed.
   */
  calibrate(queries?: readonly unknown[]): Promise<void> {
    this.checkOpen();
    if (this.building) throw new StoreError('conflict', `collection ${this.schema.name} is building its index, which calibrates it; calibrate once it is ready`);
    if (this.calibrating) throw new StoreError('conflict', `collection ${this.schema.name} is already calibrating its index`);
    if (!this.trained) throw invalid(`collection ${this.schema.name} has no trained index to calibrate (${this.exactReason ?? 'build it first: POST .../index'})`);
    // the calibration process loads the saved index; one not saved yet cannot be calibrated there
    if (!this.artefactName) throw new StoreError('conflict', `collection ${this.schema.name} has no saved index artefact to calibrate yet; retry once its index is saved, or rebuild it: POST .../index`);
    if (queries !== undefined) {
      const { dim, metric } = this.schema;
      if (!Array.isArray(queries) || queries.length < 2 || queries.length > MAX_CALIBRATION_QUERIES) throw invalid(`give 2 to ${MAX_CALIBRATION_QUERIES} query vectors to calibrate on, got ${Array.isArray(queries) ? queries.length : showValue(queries)}`);
      const data = new Float32Array(queries.length * dim);
      queries.forEach((q, i) => {
        writeVector(q, dim, `vectors[${i}]`, data, i * dim);
        checkVectorForMetric(data, metric, `vectors[${i}]`, i * dim, dim);
      });
      // kept in the index's form (unit rows for cosine), as searches see them
      writeCalibrationQueries(this.artefactDir, indexRowsInPlace(data, queries.length, dim, metric), queries.length, dim);
    }
    return this.startCalibration(queries ? `${queries.length} query vectors given` : 'requested');
  }

  private startCalibration(reason: string): Promise<void> {
    clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
    const artefact = this.artefactName;
    if (!artefact) return Promise.resolve(); // nothing saved to load (calibrate() refuses this with a conflict)
    const job: BuildJob = {
      lmdbPath: join(this.dir, 'points'),
      artefactDir: this.artefactDir,
      spec: null,
      dims: this.schema.dims,
      metric: this.schema.metric,
      backend: this.options.backendName,
      seed: this.options.seed ?? 42,
      ...this.calibrationJob(),
      recalibrate: { artefact },
      ...(this.options.threads === undefined ? {} : { threads: this.options.threads }),
    };
    const { worker, stderr } = forkWorker(job);
    this.calibrationError = null;
    this.calibrationFailedFor = null;
    this.log('info', `re-calibration started (${reason})`, { reason, pid: worker.pid });
    const started = performance.now();
    const done = new Promise<void>((resolve) => {
      let finished = false;
      const finish = (error?: string) => {
        if (finished) return;
        finished = true;
        if (error) {
          this.calibrationError = error;
          this.calibrationFailedFor = artefact;
          this.log('error', `re-calibration failed: ${error}`, { err: error });
        }
        this.calibrating = undefined;
        if (worker.exitCode === null) worker.kill('SIGKILL');
        resolve();
      };
      worker.on('message', (m: BuildMessage) => {
        if (m.type === 'progress' && this.calibrating) this.calibrating.progress = m.total > 0 ? m.done / m.total : 0;
        else if (m.type === 'failed') finish(m.message);
        else if (m.type === 'calibrated') {
          // adopted only by the index it was made for (a build may have swapped another in meanwhile)
          if (this.closed || !this.trained || !this.index || this.artefactName !== m.artefact) return finish('the live index changed while it was re-calibrated');
          this.index.calibration = m.calibration;
          this.index.latencyScale = 1;
          try {
            saveCalibration(join(this.artefactDir, m.artefact), m.calibration);
          } catch (e) {
            this.log('warn', `re-calibration adopted but not saved (the next checkpoint saves it): ${(e as Error).message}`, { err: (e as Error).message });
          }
          const seconds = (performance.now() - started) / 1000;
          this.log('info', `re-calibrated at k = ${calibrationLevels(m.calibration).map((l) => l.k).join(', ')} on ${m.calibration.queries} ${m.calibration.source ?? ''} queries in ${seconds.toFixed(1)} s`, { seconds, queries: m.calibration.queries, source: m.calibration.source });
          finish();
        }
      });
      worker.on('error', (e) => finish(e.message));
      worker.on('exit', (code, signal) => finish(`calibration process exited (${signal ?? `code ${code}`}) without a result${stderr() ? `: ${stderr().trim().split('\n').pop()}` : ''}`));
    });
    this.calibrating = { worker, progress: 0, done };
    return done;
  }

  /** Stops a running re-calibration (a build supersedes it; close). */
  private stopCalibration(): Promise<void> {
    const running = this.calibrating;
    if (!running) return Promise.resolve();
    const { worker } = running;
    if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
    return running.done;
  }

  /** What stats report of the live index's calibration (null before training). */
  private calibrationStats(): CalibrationStats | null {
    const c = this.trained ? this.index?.calibration : undefined;
    if (!c) return null;
    return {
      ks: calibrationLevels(c).map((l) => l.k),
      queries: c.queries,
      source: c.source ?? null,
      complete: c.complete,
      drift: this.calibrationDrift(),
      running: this.calibrating !== undefined,
      progress: this.calibrating ? this.calibrating.progress : null,
      lastError: this.calibrationError,
    };
  }

  /** Waits for a running re-calibration, if any. */
  async whenCalibrated(): Promise<void> {
    await this.calibrating?.done;
  }

  /** Waits for a running build, if any. */
  async whenBuilt(): Promise<void> {
    await this.building?.done;
  }

  stats(): CollectionStats {
    const state: IndexState = this.building ? 'building' : this.trained ? 'ready' : this.exactReason ? 'exact' : 'none';
    const quietFor = `once writes have been quiet for ${(this.options.autoBuildQuietMs ?? 3000) / 1000} s`;
    const waiting = this.quietTimer && !this.building ? (this.autoBuildReason() ? `an automatic ${this.trained ? 're' : ''}build starts ${quietFor}` : `a re-calibration starts ${quietFor}`) : null;
    return {
      name: this.schema.name,
      dim: this.schema.dim,
      metric: this.schema.metric,
      dims: this.schema.dims,
      count: this.points.count,
      sequence: this.points.sequence,
      payloadIndexes: this.payloadIndexInfo(),
      index: {
        state,
        note: this.exactReason ?? waiting,
        progress: this.building ? this.building.progress : null,
        stage: this.building ? this.building.stage : null,
        spec: this.spec,
        specReason: this.specReason,
        sequence: this.trainedSequence,
        trainedCount: this.trainedCount,
        rebuildAdvised: this.rebuildAdvised,
        lastError: this.lastError,
        bytes: this.indexBytes(),
        calibration: this.calibrationStats(),
      },
    };
  }

  /** The trained index's bytes by kind (null before training). */
  private indexBytes(): IndexBytes | null {
    if (!this.trained || !this.index) return null;
    const { lists, codes, norms, ids, centroids, rotation, codebooks, rerank, rerankDisk, resident, vectors } = this.index.sizes();
    return { lists, codes, norms, ids, centroids, rotation, codebooks, rerank, rerankDisk, resident, residentPerVector: vectors > 0 ? Number((resident / vectors).toFixed(2)) : 0 };
  }

  /** The calibrated recall/MFLOPs frontier of the trained index (empty before training), with each point's calibrated latency. */
  frontier(): FrontierPoint[] {
    if (!this.trained || !this.index?.calibration) return [];
    return this.index.frontier().map((p) => ({ params: p.params, recall: p.recall, mflops: p.mflops, latencyMs: p.latencyMs }));
  }

  /** The k whose recall the frontier shows (null before calibration). */
  frontierK(): number | null {
    return this.trained && this.index?.calibration ? this.index.calibration.k : null;
  }

  /** The trained index's spec by stage (null before training). */
  specParts(): SpecParts | null {
    return this.trained && this.index ? structuredClone(this.index.spec) : null;
  }

  /**
   * The trained index's PCA spectrum: the share of variance at each prefix of
   * the ladder and at 64 evenly spaced prefixes (a smooth curve whatever the
   * dimension, without sending one number per dimension); null without PCA.
   */
  spectrum(): SpectrumPoint[] | null {
    if (!this.trained || !this.index) return null;
    const dim = this.schema.dim;
    const prefixes = new Set(this.schema.dims.filter((d) => d >= 1 && d <= dim));
    for (let i = 1; i <= 64; i++) prefixes.add(Math.max(1, Math.round((dim * i) / 64)));
    return this.index.varianceShare([...prefixes].sort((a, b) => a - b)) ?? null;
  }

  /**
   * Stops a running build, waits for writes, checkpoints the trained index
   * (so the next start replays nothing) and closes LMDB.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.quietTimer);
    await this.stopCalibration();
    // payload index jobs stop at their next chunk (state stays on disk: they go on at the next open)
    await Promise.all([...this.payloadJobs.values()].map((j) => j.done));
    if (this.building) {
      const { worker } = this.building;
      if (worker.exitCode === null && worker.signalCode === null) {
        const gone = new Promise((resolve) => worker.once('exit', resolve));
        worker.kill('SIGKILL');
        await gone;
      }
    }
    await this.writes;
    if (this.trained && this.index && this.trainedSequence !== this.points.sequence) {
      try {
        const sequence = this.points.sequence;
        publishArtefact(this.artefactDir, writeArtefact(this.index, this.artefactDir, sequence, this.trainedCount ?? this.index.size));
        await this.points.pruneChanges(sequence);
      } catch (e) {
        this.log('warn', `checkpoint on close failed (the change log still covers it): ${(e as Error).message}`, { err: (e as Error).message });
      }
    }
    await this.points.close();
  }
}

/** Points indexed per transaction by a payload index build (entries removed per transaction by a drop: 4x). */
const PAYLOAD_INDEX_CHUNK = 2048;

/** A filtered answer holds only allowed ids: anything else is a bug below the store, answered as one (500), never served. */
function checkHonoured(result: SearchResult, allowed: AllowedIds): void {
  for (let q = 0; q < result.counts.length; q++) {
    for (let i = 0; i < result.counts[q]; i++) {
      const id = result.ids[q * result.k + i];
      if (!isAllowed(allowed, id)) throw new Error(`the index returned internal id ${id}, which the filter does not allow: its filtered search is missing or wrong`);
    }
  }
}

/** Most query vectors one POST .../calibrate may give. */
const MAX_CALIBRATION_QUERIES = 10_000;

/** Starts a build or re-calibration process (build-worker.ts); `stderr()` is the tail of what it wrote there. */
function forkWorker(job: BuildJob): { worker: ChildProcess; stderr: () => string } {
  const script = packageScript(import.meta.url, './build-worker');
  const worker = fork(script.path, [JSON.stringify(job)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: script.execArgv });
  let stderr = '';
  worker.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  return { worker, stderr: () => stderr };
}
