import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fork, type ChildProcess } from 'node:child_process';
import type { Backend } from '@adanns/compute';
import { AdannsIndex, formatSpec, loadIndex, type Budget, type Plan, type SearchParams } from '@adanns/core';
import { discardArtefacts, publishArtefact, readArtefact, writeArtefact } from './artefacts.js';
import type { BuildJob, BuildMessage } from './build-worker.js';
import { invalid, StoreError } from './errors.js';
import { probeEnvironment } from './probe.js';
import { checkId, PointStore, type Payload, type Point, type PointId } from './points.js';
import type { CollectionSchema } from './schema.js';

export interface CollectionOptions {
  backend: Backend;
  /** Backend name and threads for build processes (they create their own). */
  backendName: string;
  threads?: number;
  /** Start a build by itself once an unindexed collection holds this many points (0 = never; default 10,000). */
  autoBuildAt?: number;
  /** Advise a rebuild when the collection has grown (or shrunk) by this factor since training (default 2). */
  rebuildFactor?: number;
  /** Rebuild by itself when advised (default false). */
  autoRebuild?: boolean;
  /** Time bound of the calibration that follows each build (default 30 s). */
  calibrationSeconds?: number;
  /** Largest payload, as JSON bytes (default 64 KiB). */
  maxPayloadBytes?: number;
  seed?: number;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
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
  withPayload?: boolean;
}

export interface Hit {
  id: PointId;
  score: number;
  payload?: Payload;
}

export interface SearchAnswer {
  results: Hit[][];
  params: SearchParams | null;
  mflops: number;
  expectedRecall: number | null;
  budgetMet: boolean | null;
  tookMs: number;
}

export type IndexState = 'none' | 'building' | 'ready';

export interface CollectionStats {
  name: string;
  dim: number;
  metric: string;
  dims: number[];
  count: number;
  sequence: number;
  index: {
    state: IndexState;
    progress: number | null;
    stage: string | null;
    spec: string | null;
    /** Change sequence the trained index was built from. */
    sequence: number | null;
    trainedCount: number | null;
    rebuildAdvised: boolean;
    lastError: string | null;
  };
}

/** Copies a vector given as an array or typed array, checking its length and that every value is finite. */
export function toVector(value: unknown, dim: number, what: string): Float32Array {
  const ok = Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView));
  if (!ok) throw invalid(`${what}: vector must be an array of ${dim} numbers`);
  const source = value as ArrayLike<unknown>;
  if (source.length !== dim) throw invalid(`${what}: vector has ${source.length} values, the collection has dimension ${dim}`);
  const out = new Float32Array(dim);
  for (let i = 0; i < dim; i++) {
    const x = source[i];
    if (typeof x !== 'number' || !Number.isFinite(x)) throw invalid(`${what}: vector[${i}] is ${JSON.stringify(x) ?? String(x)}, not a finite number`);
    out[i] = x;
    if (!Number.isFinite(out[i])) throw invalid(`${what}: vector[${i}] is ${x}, outside the float32 range`);
  }
  return out;
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
  private trainedSequence: number | null = null;
  private trainedCount: number | null = null;
  private building: { worker: ChildProcess; stage: string; progress: number; done: Promise<void> } | undefined;
  private lastError: string | null = null;
  /** Timings of the last build swapped in. */
  lastBuild: { seconds: number; trainAndFillSeconds: number; calibrationSeconds: number } | undefined;
  private writes: Promise<unknown> = Promise.resolve();
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
    probeEnvironment(join(dir, 'points'));
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

  private log(level: 'info' | 'warn' | 'error', message: string): void {
    this.options.log?.(level, `collection ${this.schema.name}: ${message}`);
  }

  private async recover(): Promise<void> {
    mkdirSync(this.artefactDir, { recursive: true });
    let rebuild = false;
    try {
      const artefact = readArtefact(this.options.backend, this.artefactDir);
      if (artefact) {
        const touched = this.points.changedSince(artefact.sequence);
        if (artefact.sequence > this.points.sequence || touched === undefined) {
          artefact.index.release();
          throw new Error(`artefact covers sequence ${artefact.sequence}, the change log cannot bring it to ${this.points.sequence}`);
        }
        await this.applyChanges(artefact.index, touched);
        this.adopt(artefact.index, artefact.sequence);
      }
    } catch (e) {
      this.log('warn', `index artefact not used, rebuilding it: ${(e as Error).message}`);
      discardArtefacts(this.artefactDir);
      rebuild = true;
    }
    if (!this.trained) this.index = await this.exactIndex();
    if (rebuild && this.points.count > 0) this.startBuild();
  }

  private adopt(index: AdannsIndex, sequence: number): void {
    this.index = index;
    this.trained = true;
    this.spec = formatSpec(index.spec);
    this.trainedSequence = sequence;
    this.trainedCount = index.size;
  }

  /** An exact index over every stored point (undefined while there are none). */
  private async exactIndex(): Promise<AdannsIndex | undefined> {
    const snapshot = this.points.snapshot();
    const n = snapshot.iids.length;
    if (n === 0) return undefined;
    return AdannsIndex.build(this.options.backend, 'flat', snapshot.data, n, this.schema.dim, { metric: this.schema.metric, ids: snapshot.iids });
  }

  /** Brings an index to the stored state of the given internal ids (upserted: current vector; deleted: gone). */
  private async applyChanges(index: AdannsIndex, touched: Iterable<number>): Promise<void> {
    const present: number[] = [];
    const vectors: Float32Array[] = [];
    const deleted: number[] = [];
    for (const iid of touched) {
      const vector = this.points.vectorOf(iid);
      if (vector) {
        present.push(iid);
        vectors.push(vector);
      } else deleted.push(iid);
    }
    index.remove(deleted);
    await this.replace(index, present, vectors);
  }

  /** Puts these vectors into the index under these internal ids, replacing what it held under them. */
  private async replace(index: AdannsIndex, iids: number[], vectors: Float32Array[]): Promise<void> {
    index.remove(iids.filter((iid) => index.has(iid)));
    if (iids.length === 0) return;
    const dim = this.schema.dim;
    const data = new Float32Array(iids.length * dim);
    vectors.forEach((v, i) => data.set(v, i * dim));
    await index.add(iids, data, iids.length);
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
    if (!Array.isArray(input) || input.length === 0) throw invalid('points must be a non-empty array');
    const max = this.options.maxPayloadBytes ?? 65536;
    const byId = new Map<PointId, Point>();
    input.forEach((p, i) => {
      if (p === null || typeof p !== 'object') throw invalid(`points[${i}] must be an object with id and vector`);
      const id = checkId(p.id);
      const vector = toVector(p.vector, this.schema.dim, `points[${i}]`);
      let payload: Payload | undefined;
      if (p.payload !== undefined && p.payload !== null) {
        if (typeof p.payload !== 'object' || Array.isArray(p.payload) || ArrayBuffer.isView(p.payload)) throw invalid(`points[${i}].payload must be an object`);
        let json: string;
        try {
          json = JSON.stringify(p.payload);
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

  /** Upserts a batch; resolves once it is durable and searchable. */
  async upsert(input: readonly PointInput[]): Promise<{ sequence: number; upserted: number }> {
    this.checkOpen();
    const batch = this.validateBatch(input);
    const result = await this.serial(async () => {
      const { sequence, iids } = await this.points.upsert(batch);
      if (!this.index) this.index = await this.exactIndex();
      else await this.replace(this.index, Array.from(iids), batch.map((p) => p.vector));
      return { sequence, upserted: batch.length };
    });
    this.maybeBuild();
    return result;
  }

  /** Deletes the given ids (unknown ones are ignored); resolves once durable. */
  async delete(ids: readonly unknown[]): Promise<{ sequence: number; deleted: number }> {
    this.checkOpen();
    if (!Array.isArray(ids) || ids.length === 0) throw invalid('ids must be a non-empty array');
    const checked = ids.map(checkId);
    return this.serial(async () => {
      const { sequence, iids } = await this.points.delete(checked);
      this.index?.remove(iids);
      return { sequence, deleted: iids.length };
    });
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
    const dim = this.schema.dim;
    if (!Array.isArray(queries) || queries.length === 0) throw invalid('give a query vector or a non-empty array of them');
    const rows = queries.length;
    const data = new Float32Array(rows * dim);
    queries.forEach((q, i) => data.set(toVector(q, dim, rows === 1 ? 'query' : `vectors[${i}]`), i * dim));
    if (!Number.isInteger(request.k) || request.k < 1) throw invalid(`k must be a positive integer, got ${JSON.stringify(request.k)}`);
    const index = this.index;
    if (!index || index.size === 0) {
      return { results: queries.map(() => []), params: null, mflops: 0, expectedRecall: null, budgetMet: null, tookMs: performance.now() - started };
    }
    this.inflight++;
    try {
      const k = Math.min(request.k, index.size);
      // the request's choices are checked first (a 400 when wrong); the search itself then runs unguarded
      let plan: Plan | undefined;
      let params: Partial<SearchParams> | undefined;
      try {
        if (request.budget && index.calibration) plan = index.plan(request.budget, k, { strict: request.strict ?? false });
        // before training the search is exact: params for the coming index do not apply yet
        else if (this.trained && request.params) {
          params = request.params;
          index.resolveParams(k, params);
        }
      } catch (e) {
        throw invalid((e as Error).message);
      }
      const result = await index.search(data, rows, k, plan?.params ?? params);
      let budgetMet: boolean | null = plan ? plan.budgetMet : null;
      const mflops = result.mflops.reduce((a, b) => a + b, 0) / rows;
      const tookMs = performance.now() - started;
      // an exact (untrained) index meets any budget but a tighter MFLOP or latency one
      if (request.budget && !index.calibration) {
        const b = request.budget;
        budgetMet = 'mflops' in b ? mflops <= b.mflops : 'latencyMs' in b ? tookMs <= b.latencyMs : true;
      }
      const results: Hit[][] = [];
      for (let q = 0; q < rows; q++) {
        const hits: Hit[] = [];
        for (let i = 0; i < result.counts[q]; i++) {
          const externalId = this.points.externalId(result.ids[q * k + i]);
          if (externalId === undefined) continue; // deleted while this search ran
          const hit: Hit = { id: externalId, score: result.scores[q * k + i] };
          if (request.withPayload) {
            const payload = this.points.payloadOf(externalId);
            if (payload) hit.payload = payload;
          }
          hits.push(hit);
        }
        results.push(hits);
      }
      const expectedRecall = plan ? plan.expectedRecall : this.trained ? result.expectedRecall : 1;
      return { results, params: this.trained ? result.params : null, mflops, expectedRecall, budgetMet, tookMs: performance.now() - started };
    } finally {
      this.inflight--;
      this.releaseRetired();
    }
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

  private maybeBuild(): void {
    if (this.building || this.closed) return;
    const at = this.options.autoBuildAt ?? 10_000;
    if (!this.trained && at > 0 && this.points.count >= at) this.startBuild();
    else if (this.trained && this.options.autoRebuild && this.rebuildAdvised) this.startBuild();
  }

  /** Starts a background build (or rebuild); refused while one runs. Resolves when it has been swapped in or has failed. */
  build(): Promise<void> {
    this.checkOpen();
    if (this.building) throw new StoreError('conflict', `collection ${this.schema.name} is already building its index`);
    if (this.points.count === 0) throw invalid(`collection ${this.schema.name} has no points to index`);
    return this.startBuild();
  }

  private startBuild(): Promise<void> {
    const job: BuildJob = {
      lmdbPath: join(this.dir, 'points'),
      artefactDir: this.artefactDir,
      spec: this.schema.index ?? null,
      dims: this.schema.dims,
      metric: this.schema.metric,
      backend: this.options.backendName,
      seed: this.options.seed ?? 42,
      calibrationSeconds: this.options.calibrationSeconds ?? 30,
      ...(this.options.threads === undefined ? {} : { threads: this.options.threads }),
    };
    const worker = fork(fileURLToPath(new URL('../dist/build-worker.js', import.meta.url)), [JSON.stringify(job)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: [] });
    let stderr = '';
    worker.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    this.log('info', 'index build started');
    const started = performance.now();
    const done = new Promise<void>((resolve) => {
      let finished = false;
      let result = false;
      const finish = (error?: string) => {
        if (finished) return;
        finished = true;
        if (error) {
          this.lastError = error;
          this.log('error', `index build failed: ${error}`);
        }
        this.building = undefined;
        if (worker.exitCode === null) worker.kill('SIGKILL');
        resolve();
      };
      worker.on('message', (m: BuildMessage) => {
        if (m.type === 'progress' && this.building) {
          this.building.stage = m.stage;
          this.building.progress = m.total > 0 ? m.done / m.total : 0;
        } else if (m.type === 'failed') finish(m.message);
        else if (m.type === 'done') {
          result = true;
          this.swapIn(m.name, m.sequence)
            .then(() => {
              this.lastError = null;
              this.lastBuild = { seconds: (performance.now() - started) / 1000, trainAndFillSeconds: m.buildSeconds, calibrationSeconds: m.calibrationSeconds };
              this.log('info', `index ${m.spec} over ${m.count} points ready in ${this.lastBuild.seconds.toFixed(1)} s (train and fill ${m.buildSeconds.toFixed(1)} s, calibration ${m.calibrationSeconds.toFixed(1)} s)`);
              finish();
            })
            .catch((e: Error) => finish(e.message));
        }
      });
      worker.on('error', (e) => finish(e.message));
      worker.on('exit', (code, signal) => {
        if (!result) finish(`build process exited (${signal ?? `code ${code}`}) without a result${stderr ? `: ${stderr.trim().split('\n').pop()}` : ''}`);
      });
    });
    this.building = { worker, stage: 'starting', progress: 0, done };
    return done;
  }

  /** Loads a finished artefact, replays the changes made since its snapshot and swaps it in, all within one write turn. */
  private swapIn(name: string, sequence: number): Promise<void> {
    return this.serial(async () => {
      if (this.closed) return;
      const index = loadIndex(this.options.backend, join(this.artefactDir, name));
      const touched = this.points.changedSince(sequence);
      if (!touched) throw new Error(`change log was pruned past ${sequence} during the build`);
      await this.applyChanges(index, touched);
      publishArtefact(this.artefactDir, name);
      await this.points.pruneChanges(sequence);
      const old = this.index;
      this.adopt(index, sequence);
      this.retire(old);
    });
  }

  /** Waits for a running build, if any. */
  async whenBuilt(): Promise<void> {
    await this.building?.done;
  }

  stats(): CollectionStats {
    const state: IndexState = this.building ? 'building' : this.trained ? 'ready' : 'none';
    return {
      name: this.schema.name,
      dim: this.schema.dim,
      metric: this.schema.metric,
      dims: this.schema.dims,
      count: this.points.count,
      sequence: this.points.sequence,
      index: {
        state,
        progress: this.building ? this.building.progress : null,
        stage: this.building ? this.building.stage : null,
        spec: this.spec,
        sequence: this.trainedSequence,
        trainedCount: this.trainedCount,
        rebuildAdvised: this.rebuildAdvised,
        lastError: this.lastError,
      },
    };
  }

  /** The calibrated recall/MFLOPs frontier of the trained index (empty before training). */
  frontier(): { params: SearchParams; recall: number; mflops: number }[] {
    if (!this.trained || !this.index?.calibration) return [];
    return this.index.frontier().map((p) => ({ params: p.params, recall: p.recall, mflops: p.mflops }));
  }

  /**
   * Stops a running build, waits for writes, checkpoints the trained index
   * (so the next start replays nothing) and closes LMDB.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
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
        publishArtefact(this.artefactDir, writeArtefact(this.index, this.artefactDir, sequence));
        await this.points.pruneChanges(sequence);
      } catch (e) {
        this.log('warn', `checkpoint on close failed (the change log still covers it): ${(e as Error).message}`);
      }
    }
    await this.points.close();
  }
}
