/**
 * The fault tests' client side: plain HTTP against the nodes of a local
 * cluster (what any client sees), a steady search + ingest load, and the
 * checks that read every acknowledged write back from every replica.
 */
import { shardOf } from '@adanns/cluster';

export type PointId = number;

/** A node's answer; `status` 0 when there was no answer at all (refused, reset, timed out). */
export interface Reply<T = unknown> {
  status: number;
  body: T;
  error?: string;
}

export async function call<T = unknown>(url: string, method: string, path: string, body?: unknown, timeoutMs = 15_000): Promise<Reply<T>> {
  try {
    const res = await fetch(url + path, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    const parsed = text ? (JSON.parse(text) as T) : (undefined as T);
    return res.ok ? { status: res.status, body: parsed } : { status: res.status, body: parsed, error: (parsed as { message?: string })?.message ?? text };
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code;
    return { status: 0, body: undefined as T, error: cause ?? (e as Error).message };
  }
}

/** Like call, but a failure is an exception naming the request. */
export async function must<T = unknown>(url: string, method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
  const r = await call<T>(url, method, path, body, timeoutMs);
  if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${url}${path}: ${r.status || 'no answer'} ${r.error ?? ''}`);
  return r.body;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The vector of point `id` as written by its `version`-th write: distinct per
 * (id, version) and already float32, so a read-back compares exactly.
 */
export function pointVector(id: number, version: number, dim: number): number[] {
  const v = new Array<number>(dim);
  for (let j = 0; j < dim; j++) v[j] = Math.fround(Math.sin(id * 12.9898 + j * 78.233 + version * 37.719) * 10);
  return v;
}

/** What the writers had acknowledged: the live version of each point, and the points deleted. */
export class Model {
  readonly live = new Map<PointId, number>();
  readonly deleted = new Set<PointId>();
  acknowledgedWrites = 0;

  upserted(ids: PointId[], version: number): void {
    for (const id of ids) {
      this.live.set(id, version);
      this.deleted.delete(id);
    }
    this.acknowledgedWrites++;
  }

  removed(ids: PointId[]): void {
    for (const id of ids) {
      this.live.delete(id);
      this.deleted.add(id);
    }
    this.acknowledgedWrites++;
  }
}

export interface ClusterView {
  nodeId: string;
  nodes: { id: string; url: string; alive: boolean }[];
  collections: { name: string; shards: { shard: number; lastSeq: number; replicas: { node: string; appliedSeq: number; state: string }[] }[] }[];
}

export async function clusterView(url: string): Promise<ClusterView> {
  return must<ClusterView>(url, 'GET', '/v1/cluster', undefined, 5000);
}

/** The replicas (node ids) of each shard of `collection`. */
export async function replicaNodes(url: string, collection: string): Promise<string[][]> {
  const view = await clusterView(url);
  const c = view.collections.find((x) => x.name === collection);
  if (!c) throw new Error(`collection ${collection} is not in ${url}/v1/cluster`);
  return c.shards.map((s) => s.replicas.map((r) => r.node));
}

/**
 * Waits until every replica of `collection` serves and has applied its shard's
 * log to the end (as seen through `url`); returns the ms it took.
 */
export async function waitCaughtUp(url: string, collection: string, timeoutMs: number, nodes?: string[]): Promise<number> {
  const started = performance.now();
  let last = '';
  while (performance.now() - started < timeoutMs) {
    const view = await call<ClusterView>(url, 'GET', '/v1/cluster', undefined, 5000);
    const c = view.body?.collections.find((x) => x.name === collection);
    if (c) {
      const lagging = c.shards.flatMap((s) =>
        s.replicas.filter((r) => (!nodes || nodes.includes(r.node)) && (r.state !== 'serving' || r.appliedSeq < s.lastSeq)).map((r) => `shard ${s.shard} on ${r.node}: ${r.state}, ${r.appliedSeq}/${s.lastSeq}`),
      );
      if (lagging.length === 0) return performance.now() - started;
      last = lagging.join('; ');
    } else last = view.error ?? 'collection not listed yet';
    await sleep(100);
  }
  throw new Error(`replicas of ${collection} did not catch up within ${timeoutMs} ms: ${last}`);
}

export interface Verdict {
  /** Acknowledged live points some replica lacks (or holds at an older version), counted once per point. */
  writesMissing: number;
  /** Acknowledged deletes some replica still answers for, counted once per point. */
  deletesResurrected: number;
  /** Point reads made (point x replica). */
  reads: number;
  /** The first few problems, for the log. */
  examples: string[];
}

/**
 * Reads every point of the model back from every replica of its shard: a
 * live point at its acknowledged version (payload `v` and the vector), a
 * deleted one absent. `?local=true` asks a node to answer from its own
 * replica instead of routing (agreed with the node side).
 */
export async function verify(cluster: { nodes: { id: string; url: string }[] }, collection: string, model: Model, concurrency = 8): Promise<Verdict> {
  const shards = await replicaNodes(cluster.nodes[0].url, collection);
  const urlOf = new Map(cluster.nodes.map((n) => [n.id, n.url]));
  const missing = new Set<PointId>();
  const resurrected = new Set<PointId>();
  const examples: string[] = [];
  const note = (text: string) => {
    if (examples.length < 5) examples.push(text);
  };
  const jobs: { id: PointId; node: string; version: number | undefined }[] = [];
  for (const [id, version] of model.live) for (const node of shards[shardOf(id, shards.length)]) jobs.push({ id, node, version });
  for (const id of model.deleted) for (const node of shards[shardOf(id, shards.length)]) jobs.push({ id, node, version: undefined });
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const { id, node, version } = jobs[next++];
      const r = await call<{ vector: number[]; payload?: { v?: number } }>(urlOf.get(node)!, 'GET', `/v1/collections/${collection}/points/${id}?local=true`);
      if (version === undefined) {
        if (r.status !== 404) {
          resurrected.add(id);
          note(`deleted point ${id} answered ${r.status} on ${node}`);
        }
        continue;
      }
      if (r.status !== 200) {
        missing.add(id);
        note(`point ${id} (v${version}) answered ${r.status || r.error} on ${node}`);
        continue;
      }
      const expected = pointVector(id, version, r.body.vector.length);
      if (r.body.payload?.v !== version || r.body.vector.some((x, j) => x !== expected[j])) {
        missing.add(id);
        note(`point ${id} on ${node} is at version ${r.body.payload?.v}, acknowledged ${version}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { writesMissing: missing.size, deletesResurrected: resurrected.size, reads: jobs.length, examples };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

export interface LoadOptions {
  collection: string;
  dim: number;
  /** The nodes clients send to (the ones a scenario does not kill: a process killed mid-request cannot answer it). */
  targets: () => string[];
  /** Concurrent searchers. */
  searchers: number;
  /** Points per upsert batch; every `deleteEvery`-th write deletes some acknowledged points instead. */
  batch: number;
  deleteEvery: number;
  /** First point id the writer uses (scenarios share a collection only with themselves). */
  firstId?: number;
  /** Pause between writes in ms (keeps the log growing at a steady pace on 2 cores). */
  writePauseMs?: number;
  /** How long a write is retried (same request id) before it counts as failed. */
  writeRetryMs?: number;
}

export interface LoadStats {
  searchesSent: number;
  searchesFailed: number;
  /** Searches whose answer says a shard was retried on another replica. */
  searchesRetried: number;
  searchP50Ms: number;
  searchP99Ms: number;
  searchMaxMs: number;
  writesAcknowledged: number;
  /** Write attempts that failed and were sent again with the same request id. */
  writeRetries: number;
  /** Writes still unacknowledged after writeRetryMs. */
  writesFailed: number;
  /** Longest time from a write's first attempt to its acknowledgement. */
  writeMaxMs: number;
  failures: string[];
}

/**
 * A steady load until stop(): `searchers` searches in flight at all times,
 * and one writer sending upsert batches of new points (and now and then a
 * delete of acknowledged ones), each retried with its request id until
 * acknowledged, so JetStream's deduplication is exercised by every fault.
 */
export class Load {
  readonly model = new Model();
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private readonly latencies: number[] = [];
  private readonly stats = { searchesSent: 0, searchesFailed: 0, searchesRetried: 0, writeRetries: 0, writesFailed: 0, writeMaxMs: 0 };
  private readonly failures: string[] = [];
  private rr = 0;
  private nextId: number;
  private writes = 0;

  constructor(private readonly o: LoadOptions) {
    this.nextId = o.firstId ?? 0;
  }

  start(): this {
    for (let i = 0; i < this.o.searchers; i++) this.loops.push(this.searchLoop(i));
    this.loops.push(this.writeLoop());
    return this;
  }

  private target(): string {
    const t = this.o.targets();
    return t[this.rr++ % t.length];
  }

  private fail(what: string): void {
    if (this.failures.length < 10) this.failures.push(what);
  }

  private async searchLoop(seed: number): Promise<void> {
    let q = seed;
    while (this.running) {
      // query near a point written already (or anywhere before the first ack)
      const ids = this.nextId - (this.o.firstId ?? 0);
      const vector = pointVector((this.o.firstId ?? 0) + (ids > 0 ? (q++ * 7919) % ids : 0), 1, this.o.dim);
      const url = this.target();
      const started = performance.now();
      const r = await call<{ shards?: { retried?: boolean }[] }>(url, 'POST', `/v1/collections/${this.o.collection}/search`, { vector, k: 10 });
      this.stats.searchesSent++;
      if (r.status === 200) {
        this.latencies.push(performance.now() - started);
        if (r.body.shards?.some((s) => s.retried)) this.stats.searchesRetried++;
      } else {
        this.stats.searchesFailed++;
        this.fail(`search on ${url}: ${r.status || 'no answer'} ${r.error ?? ''}`);
      }
    }
  }

  /** Sends one write until acknowledged (same requestId every time); false if it never was within writeRetryMs. */
  private async write(path: string, method: string, body: Record<string, unknown>, requestId: string): Promise<boolean> {
    const first = performance.now();
    const retryMs = this.o.writeRetryMs ?? 30_000;
    for (;;) {
      const url = this.target();
      const r = await call(url, method, path, { ...body, requestId });
      if (r.status === 200) {
        this.stats.writeMaxMs = Math.max(this.stats.writeMaxMs, performance.now() - first);
        return true;
      }
      if (r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429) {
        // the request itself is wrong: retrying cannot help, and the scenario is broken
        this.fail(`write ${requestId} refused by ${url}: ${r.status} ${r.error}`);
        this.stats.writesFailed++;
        return false;
      }
      if (performance.now() - first > retryMs) {
        this.fail(`write ${requestId} not acknowledged within ${retryMs} ms: last ${r.status || 'no answer'} ${r.error ?? ''}`);
        this.stats.writesFailed++;
        return false;
      }
      this.stats.writeRetries++;
      await sleep(100);
    }
  }

  private async writeLoop(): Promise<void> {
    const path = `/v1/collections/${this.o.collection}/points`;
    while (this.running) {
      const n = ++this.writes;
      const requestId = `${this.o.collection}-load-${n}`;
      if (n % this.o.deleteEvery === 0 && this.model.live.size > this.o.batch) {
        // delete a few acknowledged points, spread over the ids written so far
        const live = [...this.model.live.keys()];
        const ids = Array.from(new Set(Array.from({ length: Math.max(1, this.o.batch >> 2) }, (_, i) => live[(n * 31 + i * 97) % live.length])));
        if (await this.write(path, 'DELETE', { ids }, requestId)) this.model.removed(ids);
      } else {
        const ids = Array.from({ length: this.o.batch }, (_, i) => this.nextId + i);
        this.nextId += this.o.batch;
        const points = ids.map((id) => ({ id, vector: pointVector(id, 1, this.o.dim), payload: { v: 1 } }));
        if (await this.write(path, 'POST', { points }, requestId)) this.model.upserted(ids, 1);
      }
      if (this.o.writePauseMs) await sleep(this.o.writePauseMs);
    }
  }

  async stop(): Promise<LoadStats> {
    this.running = false;
    await Promise.all(this.loops);
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const round = (x: number) => Math.round(x * 10) / 10;
    return {
      searchesSent: this.stats.searchesSent,
      searchesFailed: this.stats.searchesFailed,
      searchesRetried: this.stats.searchesRetried,
      searchP50Ms: round(percentile(sorted, 0.5)),
      searchP99Ms: round(percentile(sorted, 0.99)),
      searchMaxMs: round(sorted.at(-1) ?? 0),
      writesAcknowledged: this.model.acknowledgedWrites,
      writeRetries: this.stats.writeRetries,
      writesFailed: this.stats.writesFailed,
      writeMaxMs: Math.round(this.stats.writeMaxMs),
      failures: this.failures,
    };
  }
}
