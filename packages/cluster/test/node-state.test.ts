import { describe, expect, it } from 'vitest';
import type { Store } from '@adanns/store';
import { ClusterNode, writeSnapshotRecord, type ClusterCollection, type SnapshotKv, type SnapshotRecord } from '../src/node.js';
import { quantiserKey, replicaKey, snapshotKey } from '../src/names.js';

/** An in-memory stand-in for the meta bucket's compare-and-set (NATS answers a stale revision with "wrong last sequence"). */
class FakeKv {
  readonly keys = new Map<string, { revision: number; value: Uint8Array; operation: 'PUT' | 'DEL' }>();
  private revision = 0;
  /** Runs once after the next get answered: another writer slipping in between a read and its update. */
  between: (() => void) | undefined;

  put(key: string, value: unknown): number {
    this.keys.set(key, { revision: ++this.revision, value: Buffer.from(JSON.stringify(value)), operation: 'PUT' });
    return this.revision;
  }

  get = async (key: string) => {
    const e = this.keys.get(key);
    const answer = e && { key, revision: e.revision, value: e.value, operation: e.operation, json: <T>() => JSON.parse(Buffer.from(e.value).toString('utf8')) as T };
    const between = this.between;
    this.between = undefined;
    between?.();
    return answer ?? null;
  };

  create = async (key: string, value: Uint8Array) => {
    if (this.keys.get(key)?.operation === 'PUT') throw new Error('wrong last sequence: 1');
    this.keys.set(key, { revision: ++this.revision, value, operation: 'PUT' });
    return this.revision;
  };

  update = async (key: string, value: Uint8Array, revision: number) => {
    if ((this.keys.get(key)?.revision ?? 0) !== revision) throw new Error(`wrong last sequence: ${this.keys.get(key)?.revision}`);
    this.keys.set(key, { revision: ++this.revision, value, operation: 'PUT' });
    return this.revision;
  };

  record(key: string): SnapshotRecord {
    return JSON.parse(Buffer.from(this.keys.get(key)!.value).toString('utf8')) as SnapshotRecord;
  }
}

const snapshot = (logSequence: number, node = 'n1'): SnapshotRecord => ({ object: `c/u/s0/snapshot-${logSequence}`, logSequence, node, publishedAt: '2026-12-02T00:00:00Z' });
const KEY = snapshotKey('c', 0);

describe('the snapshot record', () => {
  it('is written when absent and replaced by a higher log sequence, never by a lower or equal one', async () => {
    const kv = new FakeKv();
    expect(await writeSnapshotRecord(kv as unknown as SnapshotKv, KEY, snapshot(10))).toMatchObject({ written: true, replaced: undefined });
    expect(await writeSnapshotRecord(kv as unknown as SnapshotKv, KEY, snapshot(7, 'n2'))).toMatchObject({ written: false });
    expect(await writeSnapshotRecord(kv as unknown as SnapshotKv, KEY, snapshot(10, 'n2'))).toMatchObject({ written: false });
    expect(kv.record(KEY)).toEqual(snapshot(10));
    const higher = await writeSnapshotRecord(kv as unknown as SnapshotKv, KEY, snapshot(12, 'n2'));
    expect(higher).toMatchObject({ written: true, replaced: snapshot(10) });
    expect(kv.record(KEY)).toEqual(snapshot(12, 'n2'));
    expect(higher.revision).toBe(kv.keys.get(KEY)!.revision);
  });

  it('keeps a higher record another publisher wrote between its read and its write (the log may be trimmed to it)', async () => {
    const kv = new FakeKv();
    kv.put(KEY, snapshot(5));
    // n1 reads 5, then n2 publishes 10 (and may trim the log to 10) before n1 writes its 7
    kv.between = () => kv.put(KEY, snapshot(10, 'n2'));
    const answer = await writeSnapshotRecord(kv as unknown as SnapshotKv, KEY, snapshot(7));
    expect(answer.written).toBe(false);
    expect(kv.record(KEY)).toEqual(snapshot(10, 'n2'));
    expect(answer.revision).toBe(kv.keys.get(KEY)!.revision);
    // and a conflicting write that is still higher is retried on the record read again
    kv.between = () => kv.put(KEY, snapshot(11, 'n2'));
    expect(await writeSnapshotRecord(kv as unknown as SnapshotKv, KEY, snapshot(12))).toMatchObject({ written: true, replaced: snapshot(11, 'n2') });
    expect(kv.record(KEY)).toEqual(snapshot(12));
  });

  it('passes on errors other than a revision conflict', async () => {
    const kv = new FakeKv();
    kv.update = async () => {
      throw new Error('timeout');
    };
    kv.put(KEY, snapshot(1));
    await expect(writeSnapshotRecord(kv as unknown as SnapshotKv, KEY, snapshot(2))).rejects.toThrow('timeout');
  });
});

/** The node's private state, as these tests drive it (no NATS: the fakes stand in for what each path calls). */
interface NodeInternals {
  apply(key: string, operation: string, revision: number, value: Uint8Array | undefined): void;
  sizes: Map<string, { size: string; since: number; requested: boolean }>;
  trimmed: Map<string, number>;
  quantisers: Map<string, unknown>;
  collections: Map<string, ClusterCollection>;
  slots: Map<string, { record: unknown; revision: number }>;
  snapshots: Map<string, SnapshotRecord>;
  js: unknown;
  jsm: unknown;
  kv: unknown;
  objects: unknown;
  build(name: string): Promise<unknown>;
  autoBuild(): Promise<void>;
  ensureReplica(c: ClusterCollection, shard: number): Promise<unknown>;
}

const newNode = (options: object = {}, store: Partial<Store> = {}) => {
  const node = new ClusterNode({ nodeId: 'n1', servers: ['nats://127.0.0.1:1'], store: store as Store, ...options });
  return { node, internals: node as unknown as NodeInternals };
};
const collection = (uid: string): ClusterCollection => ({ name: 'c', uid, shards: 1, replicas: 1, schema: { dim: 4, metric: 'l2', dims: [4], index: null } as unknown as ClusterCollection['schema'], payloadIndexes: {}, logReplicas: 1, createdAt: '2026-12-02T00:00:00Z' });
const bytes = (v: unknown) => Buffer.from(JSON.stringify(v));
const quantiser = { build: 'b1', object: 'c/u1/q', spec: null, node: 'n1', shard: 0, publishedAt: '' };

describe('per-collection state of a cluster node', () => {
  const keep = (n: NodeInternals) => {
    n.sizes.set('c', { size: '10/null', since: 0, requested: true });
    n.trimmed.set(snapshotKey('c', 0), 40);
    n.trimmed.set(snapshotKey('cc', 0), 40);
  };

  it('is forgotten when the collection is dropped', () => {
    const { internals: n } = newNode();
    n.apply('collections.c', 'PUT', 1, bytes(collection('u1')));
    n.apply(quantiserKey('c'), 'PUT', 2, bytes(quantiser));
    keep(n);
    n.apply('collections.c', 'DEL', 3, undefined);
    expect([n.sizes.has('c'), n.trimmed.has(snapshotKey('c', 0)), n.quantisers.has('c')]).toEqual([false, false, false]);
    // another collection's, whose name starts alike, stays
    expect(n.trimmed.get(snapshotKey('cc', 0))).toBe(40);
  });

  it('is forgotten when a collection of the name is created again, but not a quantiser written after that', () => {
    const { internals: n } = newNode();
    n.apply('collections.c', 'PUT', 1, bytes(collection('u1')));
    n.apply(quantiserKey('c'), 'PUT', 2, bytes(quantiser));
    keep(n);
    // the same collection again (a full read): nothing is forgotten
    n.apply('collections.c', 'PUT', 3, bytes(collection('u1')));
    expect(n.sizes.has('c') && n.trimmed.has(snapshotKey('c', 0)) && n.quantisers.has('c')).toBe(true);
    // the drop was missed (this node was away): the new uid says so
    n.apply('collections.c', 'PUT', 5, bytes(collection('u2')));
    expect([n.sizes.has('c'), n.trimmed.has(snapshotKey('c', 0)), n.quantisers.has('c')]).toEqual([false, false, false]);
    // a full read may apply the new collection's quantiser before its descriptor: it is kept
    keep(n);
    n.apply(quantiserKey('c'), 'PUT', 8, bytes({ ...quantiser, build: 'b2' }));
    n.apply('collections.c', 'PUT', 7, bytes(collection('u3')));
    expect([n.sizes.has('c'), n.quantisers.has('c')]).toEqual([false, true]);
  });
});

describe('slow work of the heartbeat', () => {
  const never = () => new Promise<never>(() => undefined);
  const within = <T>(p: Promise<T>) => Promise.race([p, new Promise<'waited'>((resolve) => setTimeout(() => resolve('waited'), 500))]);

  it('requests an automatic build without waiting for it, once', async () => {
    const { internals: n } = newNode({ autoBuildAt: 5, autoBuildQuietMs: 0 });
    n.collections.set('c', collection('u1'));
    n.slots.set(replicaKey('c', 0, 0), { record: { node: 'n1', expiresAt: Date.now() + 60_000, appliedSeq: 3, state: 'serving', count: 10, index: { state: 'none', trainedCount: null } }, revision: 1 });
    let builds = 0;
    n.build = () => {
      builds++;
      return never();
    };
    await n.autoBuild(); // sees the size
    expect(await within(n.autoBuild())).toBeUndefined(); // requests, and returns while the request is out
    expect(await within(n.autoBuild())).toBeUndefined();
    expect(builds).toBe(1);
  });

  it('restores a replica from the snapshot without waiting for it, and starts no second restore meanwhile', async () => {
    const { internals: n } = newNode({}, { names: () => [] });
    let downloads = 0;
    n.js = {};
    n.kv = {};
    n.jsm = { streams: { info: async () => ({ state: { first_seq: 50, last_seq: 60 } }) } };
    n.objects = {
      getBlob: () => {
        downloads++;
        return never();
      },
    };
    n.snapshots.set(snapshotKey('c', 0), snapshot(49));
    expect(await within(n.ensureReplica(collection('u1'), 0))).toBeUndefined();
    expect(await within(n.ensureReplica(collection('u1'), 0))).toBeUndefined();
    expect(downloads).toBe(1);
  });
});
