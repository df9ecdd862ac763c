import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, DiscardPolicy, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, KvWatchInclude, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { packArtefact, unpackArtefact } from './artefacts.js';
import { checkId, checkName, checkPayloadIndex, DEFAULT_CALIBRATION_KS, decodeQuantiser, makeSchema, StoreError, validatePoints, type Collection, type CollectionSchema, type Hit, type PayloadIndexType, type PointId, type SearchAnswer, type SearchRequest, type Store, type StoreLogger } from '@adanns/store';
import { chunkDeletes, chunkUpserts, decodeToken, encodeEntry, encodeToken, type LogEntry } from './log.js';
import { ARTEFACT_BUCKET, artefactObject, buildKey, checkNodeId, collectionKey, indexKey, logSubject, MAX_CLUSTER_NAME, MAX_REPLICAS, MAX_SHARDS, META_BUCKET, nodeKey, quantiserClaimKey, quantiserKey, replicaKey, replicaName, shardOf, snapshotKey, streamName } from './names.js';
import { Replica, type ReplicaState } from './replica.js';

export interface ClusterOptions {
  /** nats-server URLs (any of the cluster's servers; the client learns the others). */
  servers: string[];
  nodeId: string;
  /** The local store holding this node's replicas (one local collection per shard replica). */
  store: Store;
  logger?: StoreLogger;
  /** A lease lasts this long unless renewed (default 15,000 ms: longer than a JetStream leader election). */
  leaseMs?: number;
  /** Heartbeats and lease renewals this often (default 1,000 ms). */
  heartbeatMs?: number;
  /**
   * A replica whose node's lease expired is taken over by another node only
   * after this long (default 30,000 ms): a node that restarts in time gets its
   * own replica back and replays only what it missed, not the whole log.
   */
  takeoverMs?: number;
  /** Copies of each shard's log in the nats cluster (default 3 when the server is clustered, else 1). */
  logReplicas?: number;
  /** JetStream's duplicate window: a write's message id is remembered this long (default 120,000 ms). */
  duplicateWindowMs?: number;
  /** Key sent on calls to other nodes (their admin key: nodes of one cluster share keys). */
  apiKey?: string;
  maxPayloadBytes?: number;
  /**
   * One coarse quantiser (PCA and IVF centroids) per build request, trained
   * by one replica and used by every shard (default true); false: each
   * shard trains its own (what the recall-parity test compares against).
   */
  shareQuantiser?: boolean;
  /**
   * Request a build (through the logs, as POST .../index does) once a
   * collection without an index holds this many points over all its shards
   * (0 = never; default 0). The local store's own automatic builds are off in
   * cluster mode: they would train each replica on its own.
   */
  autoBuildAt?: number;
  /** Request a rebuild once the collection grew or shrank by this factor since its shards were trained (0 = never; default 0). */
  rebuildFactor?: number;
  /** An automatic build waits until the collection's size has not changed for this long (default 3,000 ms). */
  autoBuildQuietMs?: number;
}

/** A cluster collection's descriptor: KEY collections.<name> of the meta bucket. */
export interface ClusterCollection {
  name: string;
  /** Random per creation: a collection dropped and created again is another one. */
  uid: string;
  shards: number;
  replicas: number;
  schema: CollectionSchema;
  payloadIndexes: Record<string, PayloadIndexType>;
  logReplicas: number;
  createdAt: string;
}

/** KEY nodes.<id>: a node's heartbeat. */
interface NodeRecord {
  id: string;
  url: string;
  startedAt: string;
  heartbeatAt: number;
}

/** KEY replicas.<collection>.<shard>.<replica>: who serves this replica slot, under a lease. */
interface SlotRecord {
  node: string;
  expiresAt: number;
  appliedSeq: number;
  state: ReplicaState;
  /** The replica's points, its index (what automatic builds decide on: autoBuildReason). */
  count?: number;
  index?: { state: string; trainedCount: number | null };
}

/**
 * Why a collection should build (or rebuild) its index now, from its shards'
 * newest replica records (one per shard, undefined where none reported yet),
 * or undefined. Builds go through the logs, so that every shard builds at
 * the same point and on one quantiser.
 */
export function autoBuildReason(shards: readonly (Pick<SlotRecord, 'count' | 'index'> | undefined)[], autoBuildAt: number, rebuildFactor: number): string | undefined {
  if (shards.some((r) => r?.count === undefined || r.index === undefined)) return undefined;
  const records = shards as Required<Pick<SlotRecord, 'count' | 'index'>>[];
  if (records.some((r) => r.index.state === 'building')) return undefined;
  const total = records.reduce((s, r) => s + r.count, 0);
  const trained = records.map((r) => r.index.trainedCount);
  if (trained.every((t) => t === null)) return autoBuildAt > 0 && total >= autoBuildAt ? `${total} points reached the automatic build threshold ${autoBuildAt}` : undefined;
  if (rebuildFactor <= 0 || trained.some((t) => t === null)) return undefined;
  const was = trained.reduce<number>((s, t) => s + t!, 0);
  return total >= was * rebuildFactor || total * rebuildFactor <= was ? `the collection went from ${was} points at training to ${total}` : undefined;
}

/** KEY index.<collection>.<shard>: the newest index artefact published for a shard. */
export interface ArtefactRecord {
  /** The object (bucket adanns-artefacts) holding it. */
  object: string;
  /** The replica's change sequence the artefact covers: replicas of a shard apply the same log, so theirs agree. */
  sequence: number;
  /** The shard log's sequence the publishing replica had applied when it published (at least what the artefact covers). */
  logSequence: number;
  trainedCount: number;
  spec: string | null;
  node: string;
  publishedAt: string;
}

/** KEY quantiser.<collection>: the coarse quantiser the shards' builds for request `build` share. */
export interface QuantiserRecord {
  /** The build request's id (LogEntry build.id). */
  build: string;
  /** The object (bucket adanns-artefacts) holding it (@adanns/store encodeQuantiser); null when training it failed. */
  object: string | null;
  /** The spec it was trained for (resolved: `auto` chose it for the whole collection). */
  spec: string | null;
  /** Why there is none (the other shards then train their own). */
  failed?: string;
  node: string;
  shard: number;
  publishedAt: string;
}

/** KEY snapshot.<collection>.<shard>: the newest copy of a replica of the shard (Collection.snapshot), published with its index artefact. */
export interface SnapshotRecord {
  /** The object (bucket adanns-artefacts) holding it (packArtefact of the snapshot directory). */
  object: string;
  /** The shard log's sequence it covers: the log is trimmed up to it once every replica applied that far. */
  logSequence: number;
  node: string;
  publishedAt: string;
}

/** The meta bucket calls writeSnapshotRecord makes. */
export type SnapshotKv = Pick<KV, 'get' | 'create' | 'update'>;

/**
 * Writes a shard's snapshot record by compare-and-set, never lowering its
 * logSequence: the publisher of the higher one may already have trimmed the
 * log up to it, and a replica behind that trim restores from the record (a
 * lower one would leave it a gap no snapshot covers). A revision conflict
 * (another publisher wrote in between) is retried on the record read again.
 * Answers the revision and value the key holds afterwards, whether `record`
 * was written, and the record it replaced.
 */
export async function writeSnapshotRecord(kv: SnapshotKv, key: string, record: SnapshotRecord, attempts = 5): Promise<{ written: boolean; revision: number; value: Uint8Array; replaced: SnapshotRecord | undefined }> {
  const value = Buffer.from(JSON.stringify(record));
  for (let attempt = 1; ; attempt++) {
    const entry = await kv.get(key);
    const current = entry?.operation === 'PUT' ? entry.json<SnapshotRecord>() : undefined;
    if (entry && current && current.logSequence >= record.logSequence) return { written: false, revision: entry.revision, value: entry.value, replaced: undefined };
    try {
      const revision = entry ? await kv.update(key, value, entry.revision) : await kv.create(key, value);
      return { written: true, revision, value, replaced: current };
    } catch (e) {
      if (attempt >= attempts || !/wrong last sequence|key exists/i.test((e as Error).message)) throw e;
    }
  }
}

interface Slot {
  record: SlotRecord | undefined;
  revision: number;
}

export interface ClusterSearchOptions {
  /** A write token: the search waits (within its deadline) until the replicas it reads applied that write. */
  after?: string;
  /** The whole request's deadline, in ms (default 10,000). */
  timeoutMs?: number;
}

export interface ShardReport {
  shard: number;
  node: string;
  tookMs: number;
  /** Replicas tried before this one answered (failed or timed out). */
  retried: number;
}

export type ClusterSearchAnswer = SearchAnswer & { shards: ShardReport[] };

const DEFAULT_SEARCH_TIMEOUT_MS = 10_000;

/**
 * The ks a replica calibrates at: the collection's (default 1, 10, 100) and,
 * with several shards, each one's share ceil(k / shards), which is what a
 * budget at k is planned at on each shard (ClusterNode.search).
 */
export function replicaCalibrationKs(c: Pick<ClusterCollection, 'shards' | 'schema'>): number[] {
  const ks = c.schema.calibrationK ?? DEFAULT_CALIBRATION_KS;
  const all = [...new Set([...ks, ...(c.shards > 1 ? ks.map((k) => Math.ceil(k / c.shards)) : [])])].sort((a, b) => a - b);
  // the schema allows 8: the collection's own first, then the largest shares
  return all.length <= 8 ? all : [...new Set([...ks, ...all.filter((k) => !ks.includes(k)).reverse()])].slice(0, 8).sort((a, b) => a - b);
}
/** The whole meta bucket is read again this often (ms), besides the watch. */
const FULL_READ_MS = 30_000;
/** A shard none of whose replicas answered is tried again this long (within the request's deadline) before a search answers 503. */
const ROUTE_RETRY_MS = 3000;
/** Pause between such rounds. */
const ROUTE_PAUSE_MS = 100;
/** A shard's trainer waits this long for shard 0's to claim the shared quantiser before it claims it itself. */
const QUANTISER_WAIT_MS = 600_000;
/** How long a write keeps publishing a message the log has not acknowledged before it answers 503. */
const PUBLISH_RETRY_MS = 15_000;
/** Room left in a log message for headers and the entry's framing. */
const MESSAGE_HEADROOM = 16 * 1024;

/**
 * A node of an adanns cluster (docs/ARCHITECTURE.md, "Cluster"). Metadata in
 * a JetStream KV bucket (collections, node heartbeats, replica leases), one
 * stream per shard as its log, replicas as durable consumers applying the log
 * to local LMDB collections. Any node takes writes (published to the shards'
 * logs, answered once JetStream acknowledged them) and searches (scattered to
 * one live replica per shard, local or over HTTP, merged).
 */
export class ClusterNode {
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;
  private kv: KV | undefined;
  private objects: ObjectStore | undefined;
  private url = '';
  private readonly startedAt = new Date().toISOString();
  private timer: NodeJS.Timeout | undefined;
  /** The meta bucket's changes as they happen (one ordered consumer, not a listing per heartbeat). */
  private watcher: Awaited<ReturnType<KV['watch']>> | undefined;
  /** Revision of each key as last seen, so a late watch event never undoes a newer read. */
  private readonly revisions = new Map<string, number>();
  private lastFullRead = 0;
  /** Local replicas whose lease ran out unrenewed (logged once). */
  private readonly lapsed = new Set<string>();
  private ticking: Promise<void> | undefined;
  private closed = false;
  /** Views of the meta bucket, refreshed every heartbeat. */
  private collections = new Map<string, ClusterCollection>();
  private nodes = new Map<string, NodeRecord>();
  private slots = new Map<string, Slot>();
  private artefacts = new Map<string, { record: ArtefactRecord; revision: number }>();
  private snapshots = new Map<string, SnapshotRecord>();
  /** Log sequence each shard's log was trimmed to by this node (by snapshot key). */
  private readonly trimmed = new Map<string, number>();
  /** Each collection's shard sizes as last seen, since when, and whether a build was requested at that size (autoBuild). */
  private readonly sizes = new Map<string, { size: string; since: number; requested: boolean }>();
  /** Replicas (local names) being restored from a snapshot now. */
  private readonly restoring = new Set<string>();
  /** Slow work the heartbeat started and does not wait for (restores, automatic build requests); close waits for it. */
  private readonly background = new Set<Promise<unknown>>();
  /** Shared quantisers, by collection. */
  private quantisers = new Map<string, QuantiserRecord>();
  /** Replicas (local names) publishing or installing an artefact now. */
  private readonly sharing = new Set<string>();
  /** Replicas this node runs, by local name. */
  private readonly replicas = new Map<string, Replica>();
  private logReplicas = 1;
  private maxMessageBytes = 1024 * 1024 - MESSAGE_HEADROOM;
  readonly nodeId: string;
  private readonly leaseMs: number;
  private readonly heartbeatMs: number;
  private readonly takeoverMs: number;

  constructor(private readonly options: ClusterOptions) {
    this.nodeId = checkNodeId(options.nodeId);
    this.leaseMs = options.leaseMs ?? 15_000;
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    this.takeoverMs = options.takeoverMs ?? 30_000;
    if (options.servers.length === 0) throw new Error('give at least one nats server URL');
  }

  private log(level: keyof StoreLogger, message: string, fields: object = {}): void {
    this.options.logger?.[level]({ node: this.nodeId, ...fields }, `cluster node ${this.nodeId}: ${message}`);
  }

  /** Connects to NATS, announces this node (reachable at `url` by the others) and starts claiming replicas. */
  async start(url: string): Promise<void> {
    this.url = url;
    this.nc = await connect({ servers: this.options.servers, name: `adanns-${this.nodeId}`, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    this.js = jetstream(this.nc, { timeout: 10_000 });
    this.jsm = await jetstreamManager(this.nc, { timeout: 10_000 });
    // three copies where the server is part of a nats cluster (the issue's 3 servers), else the one there is
    this.logReplicas = this.options.logReplicas ?? (this.nc.info?.cluster ? 3 : 1);
    if (this.nc.info?.max_payload) this.maxMessageBytes = this.nc.info.max_payload - MESSAGE_HEADROOM;
    this.kv = await new Kvm(this.nc).create(META_BUCKET, { history: 1, replicas: this.logReplicas });
    this.objects = await new Objm(this.nc).create(ARTEFACT_BUCKET, { replicas: this.logReplicas, storage: StorageType.File });
    await this.options.store.opened;
    // watch first, then read everything: an update between the two arrives by the watch (revisions order them)
    this.watcher = await this.kv.watch({ key: '>', include: KvWatchInclude.UpdatesOnly });
    void (async () => {
      for await (const e of this.watcher!) this.apply(e.key, e.operation, e.revision, e.operation === 'PUT' ? e.value : undefined);
    })().catch((e: Error) => this.log('warn', `watching the meta bucket stopped: ${e.message}`));
    await this.readAll(this.kv);
    await this.tick();
    this.timer = setInterval(() => {
      if (this.ticking) return;
      const t = Date.now();
      this.ticking = this.tick().finally(() => {
        this.ticking = undefined;
        // renewals wait for the heartbeat: a slow one (the meta bucket electing a leader) lets leases lapse in others' views
        if (Date.now() - t > 3 * this.heartbeatMs) this.log('warn', `a heartbeat took ${Date.now() - t} ms`);
      });
    }, this.heartbeatMs);
    this.log('info', `joined the cluster at ${this.options.servers.join(',')} as ${url}; shard logs keep ${this.logReplicas} copies`, { url, logReplicas: this.logReplicas });
  }

  /** Stops heartbeats and replicas and disconnects; leases run out by themselves (another node takes over after takeoverMs). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.watcher?.stop();
    await this.ticking;
    await Promise.allSettled([...this.background]);
    await Promise.all([...this.replicas.values()].map((r) => r.stop('lost')));
    this.replicas.clear();
    await this.nc?.drain().catch(() => undefined);
  }

  private ready(): { js: JetStreamClient; jsm: JetStreamManager; kv: KV } {
    if (this.closed) throw new StoreError('unavailable', 'this cluster node is shutting down');
    if (!this.js || !this.jsm || !this.kv) throw new StoreError('unavailable', 'this cluster node is still joining the cluster; retry shortly', 1);
    return { js: this.js, jsm: this.jsm, kv: this.kv };
  }

  // ---- metadata and leases ------------------------------------------------

  /** One heartbeat: refresh the views of the meta bucket, renew or claim leases, start or stop replicas. */
  private async tick(): Promise<void> {
    if (this.closed) return;
    try {
      const { kv } = this.ready();
      const now = Date.now();
      await kv.put(nodeKey(this.nodeId), JSON.stringify({ id: this.nodeId, url: this.url, startedAt: this.startedAt, heartbeatAt: now } satisfies NodeRecord));
      // the watch keeps the view current; a full read now and then is the safety net
      if (now - this.lastFullRead > FULL_READ_MS) await this.readAll(kv);
      await this.manageReplicas(kv);
      this.shareArtefacts(kv);
      await this.trimLogs();
      await this.autoBuild();
    } catch (e) {
      if (!this.closed) this.log('warn', `heartbeat failed: ${(e as Error).message}`, { err: (e as Error).message });
    }
    // a lease that ran out because no renewal reached the bucket keeps serving (Replica.serving): said once per lapse
    for (const [local, r] of this.replicas) {
      const lapsed = r.state === 'serving' && Date.now() >= r.leaseUntil;
      if (lapsed && !this.lapsed.has(local)) this.log('warn', `lease on ${r.collectionName}/${r.shard} ran out unrenewed (meta bucket unreachable): still serving it, as no other node took it`);
      if (lapsed) this.lapsed.add(local);
      else this.lapsed.delete(local);
    }
  }

  /** Reads every key of the meta bucket into the view. */
  private async readAll(kv: KV): Promise<void> {
    const keys: string[] = [];
    for await (const key of await kv.keys()) keys.push(key);
    const entries = await Promise.all(keys.map((key) => kv.get(key)));
    for (const entry of entries) if (entry) this.apply(entry.key, entry.operation, entry.revision, entry.operation === 'PUT' ? entry.value : undefined);
    this.lastFullRead = Date.now();
  }

  /** One key's new state (from the watch, a read, or this node's own write), unless the view already has a newer one. */
  private apply(key: string, operation: string, revision: number, value: Uint8Array | undefined): void {
    if (revision <= (this.revisions.get(key) ?? 0)) return;
    this.revisions.set(key, revision);
    const json = <T>(): T | undefined => (operation === 'PUT' && value ? (JSON.parse(Buffer.from(value).toString('utf8')) as T) : undefined);
    const set = <T>(map: Map<string, T>, k: string, v: T | undefined) => (v === undefined ? map.delete(k) : map.set(k, v));
    if (key.startsWith('collections.')) {
      const name = key.slice('collections.'.length);
      const next = json<ClusterCollection>();
      // dropped, or created again (a new uid): what this node kept for the name belonged to the old collection
      if (!next || next.uid !== this.collections.get(name)?.uid) this.forget(name, revision);
      set(this.collections, name, next);
    }
    else if (key.startsWith('nodes.')) set(this.nodes, key.slice('nodes.'.length), json<NodeRecord>());
    else if (key.startsWith('replicas.')) {
      const record = json<SlotRecord>();
      set(this.slots, key, record && { record, revision });
    } else if (key.startsWith('snapshot.')) set(this.snapshots, key, json<SnapshotRecord>());
    else if (key.startsWith('quantiser.')) set(this.quantisers, key.slice('quantiser.'.length), json<QuantiserRecord>());
    else if (key.startsWith('index.')) {
      const record = json<ArtefactRecord>();
      set(this.artefacts, key, record && { record, revision });
    }
  }

  /** Drops the per-name state of a collection that is gone (`revision`: its descriptor's change that said so). */
  private forget(name: string, revision: number): void {
    this.sizes.delete(name);
    for (const key of this.trimmed.keys()) if (key.startsWith(`snapshot.${name}.`)) this.trimmed.delete(key);
    // a quantiser record written after the change is the new collection's (a full read applies keys in any order)
    if ((this.revisions.get(quantiserKey(name)) ?? 0) < revision) this.quantisers.delete(name);
  }

  private alive(node: string, now = Date.now()): boolean {
    const record = this.nodes.get(node);
    return record !== undefined && now - record.heartbeatAt < this.leaseMs;
  }

  /**
   * Renews this node's leases (compare-and-set on the slot's revision: a slot
   * someone else took is lost and its replica stops), claims free slots while
   * it holds no more than the least loaded live node, and drops replicas of
   * collections that are gone.
   */
  private async manageReplicas(kv: KV): Promise<void> {
    const now = Date.now();
    const held = new Set<string>();
    const load = new Map<string, number>();
    for (const [, slot] of this.slots) if (slot.record && slot.record.expiresAt > now) load.set(slot.record.node, (load.get(slot.record.node) ?? 0) + 1);
    const liveLoads = [...this.nodes.keys()].filter((n) => this.alive(n, now)).map((n) => load.get(n) ?? 0);
    let mine = load.get(this.nodeId) ?? 0;
    for (const c of this.collections.values()) {
      for (let shard = 0; shard < c.shards; shard++) {
        const local = replicaName(c.name, shard);
        const keys = Array.from({ length: c.replicas }, (_, r) => replicaKey(c.name, shard, r));
        const ownKey = keys.find((k) => this.slots.get(k)?.record?.node === this.nodeId);
        if (ownKey) {
          const slot = this.slots.get(ownKey)!;
          // none while it is restored from the shard's snapshot: the lease is renewed as catching up, at nothing applied
          const replica = await this.ensureReplica(c, shard);
          const index = replica?.collection.stats().index;
          const record: SlotRecord = replica
            ? { node: this.nodeId, expiresAt: now + this.leaseMs, appliedSeq: replica.appliedSeq, state: replica.state === 'lost' ? 'catching-up' : replica.state, count: replica.collection.count, index: { state: index!.state, trainedCount: index!.trainedCount } }
            : { node: this.nodeId, expiresAt: now + this.leaseMs, appliedSeq: 0, state: 'catching-up' };
          try {
            const value = JSON.stringify(record);
            this.apply(ownKey, 'PUT', await kv.update(ownKey, value, slot.revision), Buffer.from(value));
            if (replica) replica.leaseUntil = now + this.leaseMs;
            held.add(local);
          } catch (e) {
            if (/wrong last sequence/i.test((e as Error).message)) {
              // a stale revision (an earlier renewal whose answer was lost) or a real takeover: the key says which
              const entry = await kv.get(ownKey).catch(() => null);
              if (entry) this.apply(entry.key, entry.operation, entry.revision, entry.operation === 'PUT' ? entry.value : undefined);
              if (entry?.operation === 'PUT' && entry.json<SlotRecord>().node === this.nodeId) {
                held.add(local);
                // still ours: renew on the revision read (silently skipping the renewal let the lease lapse in
                // every view); a get answered by a lagging server fails again, and the next heartbeat retries
                try {
                  const value = JSON.stringify(record);
                  this.apply(ownKey, 'PUT', await kv.update(ownKey, value, entry.revision), Buffer.from(value));
                  if (replica) replica.leaseUntil = now + this.leaseMs;
                } catch (again) {
                  this.log('warn', `lease on ${c.name}/${shard} not renewed (${(again as Error).message} after a stale revision); still ours, still serving`);
                }
              } else this.log('warn', `lease on ${c.name}/${shard} was taken by another node: not serving it`);
            } else {
              // the bucket did not answer (a nats server is failing over): no evidence another node took
              // the replica, so it keeps applying the log and serving (Replica.serving)
              held.add(local);
              this.log('warn', `lease on ${c.name}/${shard} not renewed (${(e as Error).message}); it runs out in ${Math.max(0, (replica?.leaseUntil ?? now) - Date.now())} ms in the others' views, still serving`);
            }
          }
          continue;
        }
        // claim at most one slot per heartbeat, and only while no live node holds fewer
        if (mine > Math.min(...liveLoads, Infinity)) continue;
        for (const key of keys) {
          const slot = this.slots.get(key);
          const r = slot?.record;
          const free = !r || (r.expiresAt <= now && (r.node === this.nodeId || now - r.expiresAt >= this.takeoverMs || !this.nodes.has(r.node)));
          if (!free) continue;
          const record: SlotRecord = { node: this.nodeId, expiresAt: now + this.leaseMs, appliedSeq: 0, state: 'catching-up' };
          try {
            const value = JSON.stringify(record);
            this.apply(key, 'PUT', slot ? await kv.update(key, value, slot.revision) : await kv.create(key, value), Buffer.from(value));
            const replica = await this.ensureReplica(c, shard);
            if (replica) replica.leaseUntil = now + this.leaseMs;
            held.add(local);
            mine++;
            this.log('info', `claimed replica ${key.split('.').slice(1).join('/')} (${replica ? `applied ${replica.appliedSeq}` : 'restoring it from the snapshot'})`);
          } catch {
            // another node claimed it first (compare-and-set failed)
          }
          break;
        }
      }
    }
    // replicas not held any more stop; those of dropped collections are deleted
    for (const [local, replica] of this.replicas) {
      if (held.has(local)) continue;
      this.replicas.delete(local);
      await replica.stop('lost');
    }
    for (const name of this.options.store.names()) {
      const owner = name.replace(/--s\d+$/, '');
      if (owner !== name && !this.collections.has(owner) && !this.replicas.has(name)) {
        await this.options.store.drop(name).catch((e: Error) => this.log('warn', `dropping the replica ${name} of a dropped collection failed: ${e.message}`));
      }
    }
  }

  /** The replica of the shard, started here if need be; undefined while it is restored from the shard's snapshot (in the background). */
  private async ensureReplica(c: ClusterCollection, shard: number): Promise<Replica | undefined> {
    const local = replicaName(c.name, shard);
    if (this.restoring.has(local)) return undefined;
    const running = this.replicas.get(local);
    // the log was trimmed past it while it was away: it starts again from the shard's snapshot
    if (running?.behindLog) {
      this.replicas.delete(local);
      await running.stop('catching-up');
    } else if (running) return running;
    const store = this.options.store;
    const { js, jsm } = this.ready();
    let collection: Collection | undefined;
    const { first_seq: first, last_seq: last } = (await jsm.streams.info(streamName(c.name, shard))).state;
    if (store.names().includes(local)) {
      collection = store.get(local);
      // ahead of its log: local data of an earlier collection of this name (dropped and created again while this node was away)
      if (collection.logSequence > last) {
        this.log('warn', `local replica ${local} applied up to ${collection.logSequence} but its log ends at ${last}: it belongs to an earlier collection; starting it again empty`);
        await store.drop(local);
        collection = undefined;
      }
    }
    if ((collection?.logSequence ?? 0) + 1 < first) {
      // downloading and restoring a snapshot outlasts a heartbeat: the node's other leases must not wait for it. The
      // next heartbeat after it starts the replica on the restored copy (restoring guards against a second start)
      this.inBackground(this.restoreReplica(c, shard, collection, first), `restoring ${local} from its snapshot failed`);
      return undefined;
    }
    if (!collection) {
      const { dim, metric, dims, index } = c.schema;
      collection = await store.create(local, { dim, metric, dims, ...(index ? { index } : {}), calibrationK: replicaCalibrationKs(c), payloadIndexes: c.payloadIndexes });
    }
    const replica = new Replica(c.name, shard, collection, this.nodeId, js, jsm, this.options.logger, (r, seq, id) => this.buildRequested(c, r, seq, id));
    this.replicas.set(local, replica);
    replica.start();
    return replica;
  }

  // ---- index artefacts ----------------------------------------------------

  /**
   * A build request reached this replica in the log: the first replica of
   * the shard to claim it (KV create of builds.<c>.<shard>.<seq>) trains; the
   * others load what it publishes (shareArtefacts). With more than one shard
   * (and shareQuantiser), the trainers build on the collection's quantiser
   * for this request: the first of them to claim it trains it (its whole
   * index, on its shard: hash sharding makes a shard a uniform sample of the
   * collection) and publishes its PCA and centroids; the others wait for it.
   */
  private buildRequested(c: ClusterCollection, replica: Replica, seq: number, id: string | undefined): void {
    const kv = this.kv;
    if (!kv) return;
    const shared = c.shards > 1 && id !== undefined && (this.options.shareQuantiser ?? true);
    void kv
      .create(buildKey(c.name, replica.shard, seq), JSON.stringify({ node: this.nodeId, at: new Date().toISOString() }))
      .then(
        async () => {
          let quantiser: Uint8Array | 'train' | null = null;
          if (shared) {
            try {
              quantiser = await this.quantiserFor(kv, c, replica, id);
            } catch (e) {
              this.log('warn', `the shared quantiser of ${c.name} for build ${id} is not at hand (${(e as Error).message}): shard ${replica.shard} trains its own`);
            }
          }
          // the quantiser is published as soon as it is trained: the other shards build beside the rest of this build
          let published = false;
          const onQuantiser = (blob: Uint8Array) => {
            published = true;
            void this.publishQuantiser(kv, c, replica, id!, blob).catch((e: Error) => this.log('warn', `the shared quantiser of ${c.name} was not published: ${e.message}`));
          };
          this.log('info', `training the index of ${c.name}/${replica.shard} for the build request at ${seq}${quantiser === 'train' ? ' and the quantiser its shards share' : quantiser ? ' on the shared quantiser' : ''}`);
          try {
            // the collection's size: `auto` sizes the shared lists for all shards, not this one
            await replica.collection.build({ quantiser: quantiser === 'train' ? null : quantiser, ...(shared ? { countHint: replica.collection.count * c.shards } : {}), ...(quantiser === 'train' ? { onQuantiser } : {}) });
          } catch (e) {
            this.log('warn', `index build of ${c.name}/${replica.shard} not started: ${(e as Error).message}`);
          }
          if (quantiser === 'train' && !published) await this.publishQuantiser(kv, c, replica, id!, null).catch((e: Error) => this.log('warn', `no shared quantiser of ${c.name} was published: ${e.message}`));
          this.shareArtefacts(kv);
        },
        () => this.log('debug', `the build request at ${seq} of ${c.name}/${replica.shard} is another replica's to train`),
      );
  }

  /**
   * The shared quantiser for build request `id`: its bytes once published,
   * 'train' when this replica claimed training it, null when its trainer
   * could not train one. Shard 0's trainer claims it (one shard, so the
   * quantiser does not depend on which shard got there first); a claim whose
   * node is no longer alive is taken over by any shard's trainer, and one
   * that nobody made within QUANTISER_WAIT_MS (shard 0 unassigned) too.
   */
  private async quantiserFor(kv: KV, c: ClusterCollection, replica: Replica, id: string): Promise<Uint8Array | 'train' | null> {
    const claimKey = quantiserClaimKey(c.name, id);
    const claim = JSON.stringify({ node: this.nodeId, shard: replica.shard, at: new Date().toISOString() });
    const claimFrom = replica.shard === 0 ? 0 : Date.now() + QUANTISER_WAIT_MS;
    // a trainer that restarted mid-build resumes it but publishes nothing: its claim looks held for good
    const giveUp = Date.now() + 2 * QUANTISER_WAIT_MS;
    for (;;) {
      if (this.closed || replica.state === 'lost') throw new Error('the replica stopped');
      if (Date.now() > giveUp) throw new Error(`none was published within ${(2 * QUANTISER_WAIT_MS) / 60_000} minutes`);
      const record = this.quantisers.get(c.name);
      if (record?.build === id) {
        if (!record.object) return null;
        const blob = await this.objects?.getBlob(record.object);
        if (!blob) throw new Error(`object ${record.object} is gone`);
        return blob;
      }
      try {
        if (Date.now() < claimFrom) throw new Error('shard 0 trains it');
        await kv.create(claimKey, claim);
        return 'train';
      } catch {
        // claimed: by a node that is gone, it is taken over (compare-and-set: one taker)
        const entry = await kv.get(claimKey).catch(() => null);
        const holder = entry?.operation === 'PUT' ? entry.json<{ node: string }>().node : undefined;
        if (entry && holder !== undefined && holder !== this.nodeId && !this.alive(holder)) {
          const took = await kv.update(claimKey, claim, entry.revision).then(() => true, () => false);
          if (took) {
            this.log('info', `node ${holder} claimed training the shared quantiser of ${c.name} and is gone: training it here`);
            return 'train';
          }
        }
      }
      await new Promise((resolve) => setTimeout(resolve, this.heartbeatMs));
    }
  }

  /** Publishes the quantiser this replica's build trained for request `id` (null: it trained none, the other shards train their own). */
  private async publishQuantiser(kv: KV, c: ClusterCollection, replica: Replica, id: string, blob: Uint8Array | null): Promise<void> {
    const base = { build: id, node: this.nodeId, shard: replica.shard, publishedAt: new Date().toISOString() };
    let record: QuantiserRecord;
    if (blob && this.objects) {
      const object = `${c.name}/${c.uid}/quantiser-${id}`;
      await this.objects.putBlob({ name: object, description: `coarse quantiser of ${c.name} for build ${id}` }, blob);
      record = { ...base, object, spec: decodeQuantiser(blob, c.schema.dim, c.schema.metric).spec };
    } else {
      const index = replica.collection.stats().index;
      const why = index.state === 'ready' ? 'the index has neither a PCA nor an IVF stage' : (index.lastError ?? index.note ?? 'the build produced no index');
      record = { ...base, object: null, spec: null, failed: why };
    }
    const before = this.quantisers.get(c.name)?.object;
    const value = JSON.stringify(record);
    this.apply(quantiserKey(c.name), 'PUT', await kv.put(quantiserKey(c.name), value), Buffer.from(value));
    if (before && before !== record.object) await this.objects?.delete(before).catch(() => undefined);
    this.log('info', record.object ? `published the shared quantiser of ${c.name} (${record.spec}) for build ${id}` : `no shared quantiser for build ${id} of ${c.name} (${record.failed}): each shard trains its own`);
  }

  /**
   * For each replica held: publishes its trained index when it is newer than
   * the shard's published one (compare-and-set on index.<c>.<shard>), or
   * installs the published one when that is newer than its own and the
   * replica has applied the log as far as the artefact covers (a replica
   * behind it replays the gap first: it keeps applying the log meanwhile).
   */
  private shareArtefacts(kv: KV): void {
    for (const [local, replica] of this.replicas) {
      if (this.sharing.has(local) || replica.state === 'lost') continue;
      const c = this.collections.get(replica.collectionName);
      if (!c) continue;
      const key = indexKey(c.name, replica.shard);
      const published = this.artefacts.get(key);
      const own = replica.collection.currentArtefact();
      const stats = replica.collection.stats();
      let job: (() => Promise<void>) | undefined;
      if (own && (!published || own.sequence > published.record.sequence)) job = () => this.publishArtefact(kv, c, replica, key, published?.revision);
      else if (published && (!own || published.record.sequence > own.sequence) && stats.sequence >= published.record.sequence && stats.index.state !== 'building') job = () => this.installArtefact(replica, published.record);
      if (!job) continue;
      this.sharing.add(local);
      void job()
        .catch((e: Error) => this.log('warn', `index artefact of ${c.name}/${replica.shard} not shared: ${e.message}`, { err: e.message }))
        .finally(() => this.sharing.delete(local));
    }
  }

  private async publishArtefact(kv: KV, c: ClusterCollection, replica: Replica, key: string, revision: number | undefined): Promise<void> {
    const own = replica.collection.currentArtefact();
    if (!own || !this.objects) return;
    const object = artefactObject(c.name, c.uid, replica.shard, own.name);
    await this.objects.putBlob({ name: object, description: `index of ${c.name} shard ${replica.shard} at change ${own.sequence}` }, packArtefact(own.path));
    const record: ArtefactRecord = { object, sequence: own.sequence, logSequence: replica.appliedSeq, trainedCount: own.trainedCount, spec: replica.collection.stats().index.spec, node: this.nodeId, publishedAt: new Date().toISOString() };
    try {
      if (revision === undefined) await kv.create(key, JSON.stringify(record));
      else await kv.update(key, JSON.stringify(record), revision);
    } catch {
      await this.objects.delete(object).catch(() => undefined); // another replica published first
      return;
    }
    const before = this.artefacts.get(key)?.record.object;
    if (before && before !== object) await this.objects.delete(before).catch(() => undefined);
    this.log('info', `published the index of ${c.name}/${replica.shard} (change ${own.sequence}, log ${record.logSequence})`, { sequence: own.sequence });
    await this.publishSnapshot(kv, c, replica);
  }

  /**
   * Publishes a copy of this replica (points and index: Collection.snapshot)
   * with the log sequence it covers, so that the shard's log can be trimmed
   * up to there (trimLogs) and a replica behind that starts from the copy.
   */
  private async publishSnapshot(kv: KV, c: ClusterCollection, replica: Replica): Promise<void> {
    if (!this.objects) return;
    const dir = mkdtempSync(join(tmpdir(), 'adanns-snapshot-'));
    try {
      const { logSequence } = await replica.collection.snapshot(dir);
      const key = snapshotKey(c.name, replica.shard);
      const before = this.snapshots.get(key);
      if (before && before.logSequence >= logSequence) return;
      const object = artefactObject(c.name, c.uid, replica.shard, `snapshot-${logSequence}`);
      await this.objects.putBlob({ name: object, description: `replica of ${c.name} shard ${replica.shard} at log sequence ${logSequence}` }, packArtefact(dir));
      const record: SnapshotRecord = { object, logSequence, node: this.nodeId, publishedAt: new Date().toISOString() };
      let written;
      try {
        written = await writeSnapshotRecord(kv, key, record);
      } catch (e) {
        if (this.snapshots.get(key)?.object !== object) await this.objects.delete(object).catch(() => undefined);
        throw e;
      }
      this.apply(key, 'PUT', written.revision, written.value);
      // another replica published one at least as far along meanwhile: this copy is not needed (unless it is the
      // very object the record names: the same log sequence is the same object name)
      if (!written.written) {
        if (this.snapshots.get(key)?.object !== object) await this.objects.delete(object).catch(() => undefined);
        return;
      }
      if (written.replaced && written.replaced.object !== object) await this.objects.delete(written.replaced.object).catch(() => undefined);
      this.log('info', `published a snapshot of ${c.name}/${replica.shard} at log sequence ${logSequence}`, { logSequence });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /**
   * Requests the automatic builds and rebuilds (autoBuildReason) of the
   * collections whose first replica of shard 0 this node holds: one node
   * per collection decides, once the collection's size stayed put for
   * autoBuildQuietMs (writes coming in would leave shards trained on less).
   */
  private async autoBuild(): Promise<void> {
    const at = this.options.autoBuildAt ?? 0;
    const factor = this.options.rebuildFactor ?? 0;
    if (at <= 0 && factor <= 0) return;
    const now = Date.now();
    for (const c of this.collections.values()) {
      if (this.slots.get(replicaKey(c.name, 0, 0))?.record?.node !== this.nodeId) continue;
      // per shard, the record of its replica that applied the most
      const shards = Array.from({ length: c.shards }, (_, shard) =>
        Array.from({ length: c.replicas }, (_, r) => this.slots.get(replicaKey(c.name, shard, r))?.record)
          .filter((r): r is SlotRecord => r !== undefined && r.count !== undefined)
          .sort((a, b) => b.appliedSeq - a.appliedSeq)[0],
      );
      const size = shards.map((r) => `${r?.count}/${r?.index?.trainedCount}`).join(',');
      const seen = this.sizes.get(c.name);
      if (!seen || seen.size !== size) {
        this.sizes.set(c.name, { size, since: now, requested: false });
        continue;
      }
      if (seen.requested || now - seen.since < (this.options.autoBuildQuietMs ?? 3000)) continue;
      const reason = autoBuildReason(shards, at, factor);
      if (!reason) continue;
      // requested stays set while the request is out (no second one); publishing it (JetStream acknowledgements)
      // runs beside the heartbeat, which renews the node's leases meanwhile
      seen.requested = true;
      this.inBackground(
        this.build(c.name).then(
          () => this.log('info', `requested an index build of ${c.name}: ${reason}`),
          (e: Error) => {
            seen.requested = false;
            throw e;
          },
        ),
        `an automatic build of ${c.name} was not requested (${reason})`,
      );
    }
  }

  /**
   * Trims each shard log this node published the snapshot of up to the
   * snapshot's sequence, once every replica slot of the shard (held or
   * expired: a node that may come back counts) records having applied that
   * far: a takeover then replays the log from there, on the snapshot.
   */
  private async trimLogs(): Promise<void> {
    const jsm = this.jsm;
    if (!jsm) return;
    for (const [key, snapshot] of this.snapshots) {
      if (snapshot.node !== this.nodeId || (this.trimmed.get(key) ?? 0) >= snapshot.logSequence) continue;
      const [, name, shardText] = key.split('.');
      const c = this.collections.get(name);
      if (!c) continue;
      const shard = Number(shardText);
      const records = Array.from({ length: c.replicas }, (_, r) => this.slots.get(replicaKey(name, shard, r))?.record).filter((r): r is SlotRecord => r !== undefined);
      if (records.length === 0 || records.some((r) => r.appliedSeq < snapshot.logSequence)) continue;
      try {
        // every message before logSequence + 1 goes; the snapshot's own last message is gone with them
        const { purged } = await jsm.streams.purge(streamName(name, shard), { seq: snapshot.logSequence + 1 });
        this.trimmed.set(key, snapshot.logSequence);
        if (purged > 0) this.log('info', `trimmed the log of ${name}/${shard} up to ${snapshot.logSequence} (${purged} messages): every replica applied that far and the snapshot covers it`, { purged, logSequence: snapshot.logSequence });
      } catch (e) {
        this.log('warn', `trimming the log of ${name}/${shard} failed: ${(e as Error).message}`);
      }
    }
  }

  /** Runs slow work beside the heartbeat: its failure is logged, close waits for it. */
  private inBackground(work: Promise<unknown>, failure: string): void {
    const running: Promise<unknown> = work
      .catch((e: Error) => {
        if (!this.closed) this.log('warn', `${failure}: ${e.message}`, { err: e.message });
      })
      .finally(() => this.background.delete(running));
    this.background.add(running);
  }

  /** Replaces a local replica (or its absence) by the shard's snapshot: the log before `first` is gone. */
  private async restoreReplica(c: ClusterCollection, shard: number, stale: Collection | undefined, first: number): Promise<Collection> {
    const local = replicaName(c.name, shard);
    const snapshot = this.snapshots.get(snapshotKey(c.name, shard));
    if (!snapshot || snapshot.logSequence + 1 < first || !this.objects) throw new Error(`the log of ${c.name}/${shard} starts at ${first} and no snapshot covers what comes before it`);
    if (this.restoring.has(local)) throw new Error(`replica ${local} is being restored from its snapshot`);
    this.restoring.add(local);
    try {
      const blob = await this.objects.getBlob(snapshot.object);
      if (!blob) throw new Error(`snapshot object ${snapshot.object} is gone`);
      const store = this.options.store;
      if (stale) await store.drop(local);
      const collection = await store.restore(local, unpackArtefact(blob));
      this.log('info', `restored ${local} from the snapshot ${snapshot.node} published at log sequence ${snapshot.logSequence} (its log starts at ${first}, applied ${stale?.logSequence ?? 0} here)`, { logSequence: snapshot.logSequence });
      return collection;
    } finally {
      this.restoring.delete(local);
    }
  }

  private async installArtefact(replica: Replica, record: ArtefactRecord): Promise<void> {
    if (!this.objects) return;
    const blob = await this.objects.getBlob(record.object);
    if (!blob) throw new Error(`object ${record.object} is gone`);
    await replica.collection.installArtefact(unpackArtefact(blob), record.sequence, record.trainedCount);
    this.log('info', `loaded the index of ${replica.collectionName}/${replica.shard} that ${record.node} trained (change ${record.sequence}) instead of training it`, { sequence: record.sequence });
  }

  // ---- collections ------------------------------------------------------

  private async descriptor(name: string): Promise<ClusterCollection> {
    checkName(name);
    const known = this.collections.get(name);
    if (known) return known;
    const entry = await this.ready().kv.get(collectionKey(name));
    if (!entry || entry.operation !== 'PUT') throw new StoreError('not_found', `no collection named ${JSON.stringify(name)}`);
    this.apply(entry.key, entry.operation, entry.revision, entry.value);
    return entry.json<ClusterCollection>();
  }

  /**
   * Creates a sharded, replicated collection: its shards' streams, then its
   * descriptor (created only if absent: a second create of the name is a
   * conflict). Replica slots are claimed by the live nodes on their next
   * heartbeat; more replicas than live nodes wait for nodes to join.
   */
  async createCollection(name: string, input: { dim: unknown; metric?: unknown; dims?: unknown; index?: unknown; calibrationK?: unknown; payloadIndexes?: unknown; shards?: unknown; replicas?: unknown }): Promise<ClusterCollection> {
    const { jsm, kv } = this.ready();
    checkName(name);
    if (name.length > MAX_CLUSTER_NAME) throw new StoreError('invalid', `a cluster collection name has at most ${MAX_CLUSTER_NAME} characters (its replicas add a shard suffix), got ${name.length}`);
    const shards = input.shards ?? 1;
    const replicas = input.replicas ?? 1;
    if (typeof shards !== 'number' || !Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) throw new StoreError('invalid', `shards must be an integer from 1 to ${MAX_SHARDS}, got ${JSON.stringify(shards)}`);
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS) throw new StoreError('invalid', `replicas must be an integer from 1 to ${MAX_REPLICAS}, got ${JSON.stringify(replicas)}`);
    const given = input.payloadIndexes ?? {};
    if (given === null || typeof given !== 'object' || Array.isArray(given)) throw new StoreError('invalid', `payloadIndexes must be an object of field: type, got ${JSON.stringify(given)}`);
    const payloadIndexes: Record<string, PayloadIndexType> = {};
    for (const [field, type] of Object.entries(given)) payloadIndexes[field] = checkPayloadIndex(field, type).type;
    const schema = makeSchema(name, input);
    if ((await kv.get(collectionKey(name)))?.operation === 'PUT') throw new StoreError('conflict', `collection ${name} already exists`);
    for (let shard = 0; shard < shards; shard++) {
      await jsm.streams.add({
        name: streamName(name, shard),
        subjects: [logSubject(name, shard)],
        num_replicas: this.logReplicas,
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.New,
        // the log is kept whole: a new replica replays it from the start (artefacts would let it be trimmed)
        duplicate_window: (this.options.duplicateWindowMs ?? 120_000) * 1_000_000,
        max_msg_size: this.maxMessageBytes + MESSAGE_HEADROOM,
      });
    }
    const c: ClusterCollection = { name, uid: randomUUID(), shards, replicas, schema, payloadIndexes, logReplicas: this.logReplicas, createdAt: schema.createdAt };
    let revision: number;
    try {
      revision = await kv.create(collectionKey(name), JSON.stringify(c));
    } catch {
      throw new StoreError('conflict', `collection ${name} already exists`);
    }
    this.apply(collectionKey(name), 'PUT', revision, Buffer.from(JSON.stringify(c)));
    this.log('info', `created collection ${name}: ${shards} shard(s) x ${replicas} replica(s), logs with ${this.logReplicas} copies`);
    return c;
  }

  /** Drops a collection: its descriptor, leases, logs, snapshots and quantiser; every node deletes its replicas on its next heartbeat. */
  async dropCollection(name: string): Promise<void> {
    const { jsm, kv } = this.ready();
    const c = await this.descriptor(name);
    await kv.delete(collectionKey(name));
    this.collections.delete(name);
    this.forget(name, Infinity);
    for (let shard = 0; shard < c.shards; shard++) {
      const artefact = this.artefacts.get(indexKey(name, shard))?.record.object;
      if (artefact) await this.objects?.delete(artefact).catch(() => undefined);
      await kv.purge(indexKey(name, shard)).catch(() => undefined);
      const snapshot = this.snapshots.get(snapshotKey(name, shard))?.object;
      if (snapshot) await this.objects?.delete(snapshot).catch(() => undefined);
      await kv.purge(snapshotKey(name, shard)).catch(() => undefined);
      for (let r = 0; r < c.replicas; r++) await kv.purge(replicaKey(name, shard, r)).catch(() => undefined);
      await jsm.streams.delete(streamName(name, shard)).catch(() => undefined);
    }
    const quantiser = this.quantisers.get(name)?.object;
    if (quantiser) await this.objects?.delete(quantiser).catch(() => undefined);
    await kv.purge(quantiserKey(name)).catch(() => undefined);
    const claims: string[] = [];
    for await (const key of await kv.keys(`builds.${name}.>`)) claims.push(key);
    for await (const key of await kv.keys(`qtrain.${name}.>`)) claims.push(key);
    await Promise.all(claims.map((key) => kv.purge(key).catch(() => undefined)));
  }

  async listCollections(): Promise<ClusterCollection[]> {
    this.ready();
    return [...this.collections.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  // ---- writes -------------------------------------------------------------

  /**
   * Publishes log entries of one shard in order, each with a message id
   * (`<requestId>/<shard>/<n>`) so a publish retried (by this node after a
   * timeout, or by the client with the same requestId) is recorded once
   * within the stream's duplicate window. Returns the last sequence.
   */
  private async publish(c: ClusterCollection, shard: number, entries: LogEntry[], requestId: string): Promise<{ seq: number; duplicate: boolean }> {
    const { js } = this.ready();
    let seq = 0;
    let duplicate = true;
    for (let i = 0; i < entries.length; i++) {
      const data = encodeEntry(entries[i]);
      const msgID = `${requestId}/${shard}/${i}`;
      // a stream whose leader is being elected again (a nats server died) answers nothing for a few
      // seconds: the same message id is published again until PUBLISH_RETRY_MS have passed
      const giveUp = Date.now() + PUBLISH_RETRY_MS;
      for (let attempt = 1; ; attempt++) {
        try {
          const ack = await js.publish(logSubject(c.name, shard), data, { msgID, expect: { streamName: streamName(c.name, shard) }, timeout: 4000 });
          seq = ack.seq;
          // a duplicate on our own retry is our first attempt, stored after all: not the client's retry
          duplicate &&= ack.duplicate && attempt === 1;
          break;
        } catch (e) {
          if (Date.now() >= giveUp || this.closed) throw new StoreError('unavailable', `shard ${shard} of ${c.name}: the log did not acknowledge the write (${(e as Error).message}); retry with the same requestId`, 1);
          await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 100 * 2 ** attempt)));
        }
      }
    }
    return { seq, duplicate };
  }

  /**
   * Publishes each shard's entries (shards in parallel). `duplicate`: every
   * message was already in the logs (a retried request): nothing new was written.
   */
  private async publishAll(c: ClusterCollection, byShard: Map<number, LogEntry[]>, requestId: string | undefined): Promise<{ sequence: number; writeToken: string; duplicate?: true }> {
    const id = requestId ?? randomUUID();
    const seqs: Record<number, number> = {};
    let duplicate = true;
    await Promise.all(
      [...byShard].map(async ([shard, entries]) => {
        const ack = await this.publish(c, shard, entries, id);
        seqs[shard] = ack.seq;
        duplicate &&= ack.duplicate;
      }),
    );
    return { sequence: Math.max(0, ...Object.values(seqs)), writeToken: encodeToken({ collection: c.name, seqs }), ...(duplicate ? { duplicate: true as const } : {}) };
  }

  /** A point as this node's own replica of its shard holds it, whatever that replica's state (undefined: not held here, or no such point). */
  async localPoint(name: string, id: unknown): Promise<{ held: boolean; point?: { id: PointId; vector: number[]; payload?: Record<string, unknown> } }> {
    const c = await this.descriptor(name);
    const checked = checkId(id);
    const replica = this.replicas.get(replicaName(c.name, shardOf(checked, c.shards)));
    if (!replica) return { held: false };
    const point = replica.collection.get(checked);
    return point ? { held: true, point } : { held: true };
  }

  private checkRequestId(requestId: unknown): string | undefined {
    if (requestId === undefined) return undefined;
    if (typeof requestId !== 'string' || !/^[A-Za-z0-9_.:-]{1,128}$/.test(requestId)) throw new StoreError('invalid', `requestId must be 1-128 letters, digits, "_", ".", ":" or "-", got ${JSON.stringify(requestId)}`);
    return requestId;
  }

  /** Upserts points: validated here, split by shard, answered once each shard's log acknowledged its part. */
  async upsert(name: string, points: readonly unknown[], requestId?: unknown): Promise<{ sequence: number; upserted: number; writeToken: string; duplicate?: true }> {
    const id = this.checkRequestId(requestId);
    const c = await this.descriptor(name);
    const batch = validatePoints(c.schema, points as never, this.options.maxPayloadBytes ?? 65536);
    const byShard = new Map<number, typeof batch>();
    for (const p of batch) {
      const s = shardOf(p.id, c.shards);
      byShard.set(s, [...(byShard.get(s) ?? []), p]);
    }
    let entries: Map<number, LogEntry[]>;
    try {
      entries = new Map([...byShard].map(([s, ps]) => [s, chunkUpserts(ps, this.maxMessageBytes)]));
    } catch (e) {
      throw new StoreError('too_large', (e as Error).message);
    }
    return { ...(await this.publishAll(c, entries, id)), upserted: batch.length };
  }

  /** Deletes ids (unknown ones are ignored by the replicas); `accepted` counts the ids, not yet the points removed. */
  async delete(name: string, ids: readonly unknown[], requestId?: unknown): Promise<{ sequence: number; accepted: number; writeToken: string; duplicate?: true }> {
    const id = this.checkRequestId(requestId);
    const c = await this.descriptor(name);
    if (!Array.isArray(ids) || ids.length === 0) throw new StoreError('invalid', 'ids must be a non-empty array');
    const checked = [...new Set(ids.map(checkId))];
    const byShard = new Map<number, PointId[]>();
    for (const p of checked) {
      const s = shardOf(p, c.shards);
      byShard.set(s, [...(byShard.get(s) ?? []), p]);
    }
    return { ...(await this.publishAll(c, new Map([...byShard].map(([s, ps]) => [s, chunkDeletes(ps, this.maxMessageBytes)])), id)), accepted: checked.length };
  }

  /** Deletes what a filter matches: the filter goes into every shard's log and each replica evaluates it where it stands in the log. */
  async deleteByFilter(name: string, filter: unknown, requestId?: unknown): Promise<{ sequence: number; writeToken: string }> {
    const id = this.checkRequestId(requestId);
    const c = await this.descriptor(name);
    return this.publishAll(c, new Map(Array.from({ length: c.shards }, (_, s) => [s, [{ op: 'delete-filter', filter } as LogEntry]])), id);
  }

  /** Asks every replica to build its index (each trains on its shard when it reaches this point of the log). */
  async build(name: string): Promise<{ sequence: number; writeToken: string }> {
    const c = await this.descriptor(name);
    // one id in every shard's log: the shards' builds share the quantiser trained for it
    const id = randomUUID();
    return this.publishAll(c, new Map(Array.from({ length: c.shards }, (_, s) => [s, [{ op: 'build', id } as LogEntry]])), undefined);
  }

  async createPayloadIndex(name: string, field: unknown, type: unknown): Promise<{ sequence: number; writeToken: string }> {
    const checked = checkPayloadIndex(field, type);
    const c = await this.descriptor(name);
    return this.publishAll(c, new Map(Array.from({ length: c.shards }, (_, s) => [s, [{ op: 'payload-index', ...checked } as LogEntry]])), undefined);
  }

  async dropPayloadIndex(name: string, field: unknown): Promise<{ sequence: number; writeToken: string }> {
    const { field: checked } = checkPayloadIndex(field, 'keyword');
    const c = await this.descriptor(name);
    return this.publishAll(c, new Map(Array.from({ length: c.shards }, (_, s) => [s, [{ op: 'drop-payload-index', field: checked } as LogEntry]])), undefined);
  }

  // ---- reads: routing -----------------------------------------------------

  /**
   * The nodes to try for a shard, best first: this node when its own replica
   * serves (it knows that without the meta bucket), then the nodes whose
   * leases look live and serving in the view (random order), then the other
   * nodes the shard's slots last named. The view goes stale while the meta
   * bucket re-elects its leader (no renewal reaches the watch), and a lease
   * that merely ran out in a stale view is no evidence the replica stopped:
   * such a node answers at once if it does not serve.
   */
  private candidates(c: ClusterCollection, shard: number): string[] {
    const now = Date.now();
    const live: string[] = [];
    const lastKnown: string[] = [];
    for (let r = 0; r < c.replicas; r++) {
      const record = this.slots.get(replicaKey(c.name, shard, r))?.record;
      if (!record || record.node === this.nodeId || !this.nodes.has(record.node)) continue;
      if (record.expiresAt > now && record.state === 'serving' && this.alive(record.node, now)) live.push(record.node);
      else lastKnown.push(record.node);
    }
    for (let i = live.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [live[i], live[j]] = [live[j], live[i]];
    }
    const local = this.replicas.get(replicaName(c.name, shard))?.serving ?? false;
    return [...(local ? [this.nodeId] : []), ...live, ...lastKnown];
  }

  /**
   * Runs `op` on one live replica of a shard: here when this node serves it,
   * else over HTTP on a node that does; a replica that fails or does not
   * answer in its share of the deadline is replaced by the next one, so a
   * dead node costs latency, not an error, while another replica lives.
   */
  private async onShard<T>(c: ClusterCollection, shard: number, op: string, body: unknown, deadline: number): Promise<{ value: T; node: string; retried: number }> {
    let tried: string[] = [];
    let attempts = 0;
    let lastError: Error | undefined;
    // every replica refused or failed: for a moment only (a consumer restarting after a nats server
    // died), so the shard is tried again for a while within the deadline before the answer is 503
    let giveUp = Infinity;
    for (;;) {
      let candidates = this.candidates(c, shard).filter((n) => !tried.includes(n));
      if (candidates.length === 0) {
        giveUp = Math.min(giveUp, Date.now() + ROUTE_RETRY_MS);
        if (Date.now() + ROUTE_PAUSE_MS >= Math.min(giveUp, deadline)) break;
        await new Promise((resolve) => setTimeout(resolve, ROUTE_PAUSE_MS));
        tried = [];
        candidates = this.candidates(c, shard);
        if (candidates.length === 0) continue;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const node = candidates[0];
      tried.push(node);
      attempts++;
      // each untried replica gets a fair share of what is left of the deadline
      const timeoutMs = Math.max(50, Math.floor(remaining / candidates.length));
      try {
        const value = node === this.nodeId ? await this.replicaCall<T>(c.name, shard, op, body, timeoutMs) : await this.remoteCall<T>(node, c.name, shard, op, body, timeoutMs);
        return { value, node, retried: attempts - 1 };
      } catch (e) {
        // the request itself is wrong: every replica would say so
        if (e instanceof StoreError && (e.kind === 'invalid' || e.kind === 'too_large')) throw e;
        lastError = e as Error;
        // said for the first round only: the later ones (every ROUTE_PAUSE_MS) would repeat it
        if (giveUp === Infinity) this.log('warn', `shard ${shard} of ${c.name} on node ${node} failed (${lastError.message}); trying another replica`, { shard, failedNode: node });
      }
    }
    throw new StoreError('unavailable', `no live replica of shard ${shard} of ${c.name} answered${attempts ? ` (${attempts} tries, last on ${tried.join(', ') || 'none'}: ${lastError?.message ?? 'deadline passed'})` : ' (none is serving: the shard is unassigned or catching up)'}`, 1);
  }

  private async remoteCall<T>(node: string, name: string, shard: number, op: string, body: unknown, timeoutMs: number): Promise<T> {
    const url = this.nodes.get(node)?.url;
    if (!url) throw new Error(`node ${node} has no known address`);
    const response = await fetch(`${url}/v1/internal/replicas/${name}/${shard}/${op}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}) },
      body: JSON.stringify({ ...(body as object), timeoutMs }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const reply = (await response.json()) as { error?: string; message?: string };
    if (!response.ok) {
      const kind = reply.error === 'invalid' ? 'invalid' : reply.error === 'too_large' ? 'too_large' : 'unavailable';
      throw new StoreError(kind, reply.message ?? `node ${node} answered ${response.status}`);
    }
    return reply as T;
  }

  /**
   * An operation on this node's replica of a shard (what a remote node's
   * internal call runs): refused (unavailable) unless the replica serves,
   * and, given `after`, once it has applied the log that far.
   */
  async replicaCall<T>(name: string, shard: number, op: string, body: unknown, timeoutMs: number): Promise<T> {
    const replica = this.replicas.get(replicaName(name, shard));
    if (!replica || !replica.serving) throw new StoreError('unavailable', `node ${this.nodeId} does not serve shard ${shard} of ${name} now (${replica ? replica.state : 'not a replica here'})`, 1);
    const b = (body ?? {}) as { after?: number; queries?: unknown[]; request?: SearchRequest; filter?: unknown; id?: PointId };
    if (b.after !== undefined) await replica.waitFor(b.after, timeoutMs);
    const collection = replica.collection;
    switch (op) {
      case 'search':
        return (await collection.search(b.queries ?? [], { ...(b.request as SearchRequest) })) as T;
      case 'count':
        return (await collection.countPoints(b.filter)) as T;
      case 'get':
        return { point: collection.get(b.id) ?? null } as T;
      default:
        throw new StoreError('invalid', `unknown replica operation ${JSON.stringify(op)}`);
    }
  }

  private afterSeqs(c: ClusterCollection, after: string | undefined): Record<number, number> {
    if (after === undefined) return {};
    let token;
    try {
      token = decodeToken(after);
    } catch (e) {
      throw new StoreError('invalid', (e as Error).message);
    }
    if (token.collection !== c.name) throw new StoreError('invalid', `the write token is of collection ${token.collection}, not ${c.name}`);
    return token.seqs;
  }

  /**
   * A search over every shard: each shard's top k from one live replica,
   * merged by score. Budgets are planned per shard for the same target
   * (an MFLOPs budget is split evenly: shard costs add up); the answer's
   * mflops is the sum over shards, its expected recall the lowest shard's.
   */
  async search(name: string, queries: readonly unknown[], request: Omit<SearchRequest, 'signal'>, options: ClusterSearchOptions = {}): Promise<ClusterSearchAnswer> {
    const started = performance.now();
    const c = await this.descriptor(name);
    if (!Array.isArray(queries) || queries.length === 0) throw new StoreError('invalid', 'give a query vector or a non-empty array of them');
    const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_SEARCH_TIMEOUT_MS);
    const after = this.afterSeqs(c, options.after);
    // a budget's recall is planned at k / shards on each shard: the merged top k holds about that many of
    // each shard's best (hash sharding), which lie as deep in the shard as the top k lies in the whole
    // collection; planned at k each shard would over-deliver (docs/ARCHITECTURE.md, "Cluster")
    const planK = request.budget && c.shards > 1 ? { planK: Math.ceil(request.k / c.shards) } : {};
    const perShard: Omit<SearchRequest, 'signal'> = request.budget && 'mflops' in request.budget ? { ...request, ...planK, budget: { mflops: request.budget.mflops / c.shards } } : { ...request, ...planK };
    const answers = await Promise.all(
      Array.from({ length: c.shards }, async (_, shard) => {
        const t = performance.now();
        const { value, node, retried } = await this.onShard<SearchAnswer>(c, shard, 'search', { queries, request: perShard, ...(after[shard] ? { after: after[shard] } : {}) }, deadline);
        return { answer: value, report: { shard, node, tookMs: performance.now() - t, retried } };
      }),
    );
    const k = request.k;
    const results: Hit[][] = queries.map((_, q) =>
      answers
        .flatMap(({ answer }) => answer.results[q] ?? [])
        .sort((a, b) => b.score - a.score)
        .slice(0, k),
    );
    const all = answers.map((a) => a.answer);
    // each shard's recall is of its share of the merged top k: the answer's is their mean
    const recalls = all.map((a) => a.expectedRecall);
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const budgets = all.map((a) => a.budgetMet);
    const planned = all.every((a) => a.planned)
      ? {
          mflops: all.reduce((s, a) => s + a.planned!.mflops, 0),
          recall: all.some((a) => a.planned!.recall === null) ? null : mean(all.map((a) => a.planned!.recall!)),
          latencyMs: all.some((a) => a.planned!.latencyMs === null) ? null : Math.max(...all.map((a) => a.planned!.latencyMs!)),
          // the shards' recalls at their share of k estimate the merged answer's at k
          k: all[0].planned!.k === null ? null : request.k,
        }
      : null;
    const notes = [...new Set(all.map((a, shard) => (a.note ? `shard ${shard}: ${a.note}` : null)).filter((n): n is string => n !== null))];
    return {
      results,
      params: all.find((a) => a.params)?.params ?? null,
      mflops: all.reduce((s, a) => s + a.mflops, 0),
      expectedRecall: recalls.some((r) => r === null) ? null : mean(recalls as number[]),
      budgetMet: budgets.every((b) => b === null) ? null : budgets.every((b) => b !== false),
      planned,
      note: notes.length > 0 ? notes.join('; ') : null,
      tookMs: performance.now() - started,
      shards: answers.map((a) => a.report),
    };
  }

  /** Points a filter matches (all without one), summed over the shards. */
  async count(name: string, filter?: unknown, options: ClusterSearchOptions = {}): Promise<{ count: number; note: string | null }> {
    const c = await this.descriptor(name);
    const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_SEARCH_TIMEOUT_MS);
    const after = this.afterSeqs(c, options.after);
    const parts = await Promise.all(
      Array.from({ length: c.shards }, (_, shard) => this.onShard<{ count: number; note: string | null }>(c, shard, 'count', { ...(filter === undefined ? {} : { filter }), ...(after[shard] ? { after: after[shard] } : {}) }, deadline)),
    );
    const notes = [...new Set(parts.map((p) => p.value.note).filter((n): n is string => n !== null))];
    return { count: parts.reduce((s, p) => s + p.value.count, 0), note: notes.length ? notes.join('; ') : null };
  }

  /** A point by id, from a live replica of its shard. */
  async getPoint(name: string, id: unknown, options: ClusterSearchOptions = {}): Promise<{ id: PointId; vector: number[]; payload?: Record<string, unknown> } | undefined> {
    const c = await this.descriptor(name);
    const checked = checkId(id);
    const shard = shardOf(checked, c.shards);
    const after = this.afterSeqs(c, options.after);
    const { value } = await this.onShard<{ point: { id: PointId; vector: number[]; payload?: Record<string, unknown> } | null }>(c, shard, 'get', { id: checked, ...(after[shard] ? { after: after[shard] } : {}) }, Date.now() + (options.timeoutMs ?? DEFAULT_SEARCH_TIMEOUT_MS));
    return value.point ?? undefined;
  }

  // ---- status -------------------------------------------------------------

  /** GET /v1/cluster: nodes, and per shard its log's last sequence and each replica's state (what the soak measures catch-up by). */
  async status(): Promise<{
    nodeId: string;
    logReplicas: number;
    nodes: { id: string; url: string; alive: boolean; leaseExpiresAt: number }[];
    collections: { name: string; shards: { shard: number; firstSeq: number; lastSeq: number; replicas: { replica: number; node: string | null; appliedSeq: number; state: ReplicaState | 'unassigned' }[] }[] }[];
  }> {
    const { jsm } = this.ready();
    const now = Date.now();
    const collections = [];
    for (const c of [...this.collections.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const shards = [];
      for (let shard = 0; shard < c.shards; shard++) {
        const info = await jsm.streams.info(streamName(c.name, shard)).catch(() => undefined);
        const replicas = Array.from({ length: c.replicas }, (_, r) => {
          const record = this.slots.get(replicaKey(c.name, shard, r))?.record;
          if (!record) return { replica: r, node: null, appliedSeq: 0, state: 'unassigned' as const };
          const expired = record.expiresAt <= now;
          return { replica: r, node: record.node, appliedSeq: record.appliedSeq, state: expired ? ('lost' as const) : record.state };
        });
        shards.push({ shard, firstSeq: info?.state.first_seq ?? 0, lastSeq: info?.state.last_seq ?? 0, replicas });
      }
      collections.push({ name: c.name, shards });
    }
    return {
      nodeId: this.nodeId,
      logReplicas: this.logReplicas,
      nodes: [...this.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map((n) => ({ id: n.id, url: n.url, alive: this.alive(n.id, now), leaseExpiresAt: n.heartbeatAt + this.leaseMs })),
      collections,
    };
  }

  /** A collection's descriptor with its shards' states (GET /v1/collections/{name} in cluster mode). */
  async describe(name: string): Promise<ClusterCollection & { shardStates: Awaited<ReturnType<ClusterNode['status']>>['collections'][number]['shards'] }> {
    const c = await this.descriptor(name);
    const status = await this.status();
    return { ...c, shardStates: status.collections.find((x) => x.name === name)?.shards ?? [] };
  }
}

