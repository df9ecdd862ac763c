import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, serve, type ServiceConfig } from '../src/index.js';

// Cluster mode end to end: one real nats-server with JetStream on a free loopback port, three
// adanns nodes in this process (each its own data dir, store and HTTP port), a 2-shard x 2-replica
// collection. Logs keep one copy (one nats server); the launcher's 3-server form is the soak's.

/** A seeded generator (mulberry32, Box-Muller): the test's data is the same at every run. */
function createRng(seed: number): { next(): number; int(n: number): number; normal(): number } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), normal: () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()) };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  const port = (s.address() as { port: number }).port;
  await new Promise((ok) => s.close(ok));
  return port;
}

// generous: CI runs this on 2 cores, often next to other suites
async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const dir = mkdtempSync(join(tmpdir(), 'adanns-cluster-'));
let nats: ChildProcess;
let natsUrl: string;
type Node = Awaited<ReturnType<typeof serve>> & { id: string; config: ServiceConfig };
const nodes = new Map<string, Node>();

async function startNode(id: string): Promise<Node> {
  const config: ServiceConfig = {
    ...loadConfig([], {}),
    host: '127.0.0.1',
    port: 0,
    dataDir: join(dir, id),
    threads: 1,
    logLevel: 'silent',
    autoBuildAt: 0,
    cluster: { servers: [natsUrl], nodeId: id, leaseMs: LEASE_MS, takeoverMs: TAKEOVER_MS, shareQuantiser: SHARE_QUANTISER },
  };
  const node = { ...(await serve(config)), id, config };
  nodes.set(id, node);
  return node;
}

async function stopNode(id: string): Promise<void> {
  await nodes.get(id)?.stop();
  nodes.delete(id);
}

async function call<T = Record<string, unknown>>(node: Node, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${node.url}${path}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  return { status: response.status, body: (await response.json()) as T };
}

interface Status {
  collections: { name: string; shards: { shard: number; firstSeq: number; lastSeq: number; replicas: { node: string | null; appliedSeq: number; state: string }[] }[] }[];
}

/** Waits until every replica of `name` is serving and has applied its shard's whole log. */
async function settled(node: Node, name: string): Promise<Status['collections'][number]> {
  return waitFor(`every replica of ${name} serving and caught up`, async () => {
    const { body } = await call<Status>(node, 'GET', '/v1/cluster');
    const c = body.collections.find((x) => x.name === name);
    return c && c.shards.every((s) => s.replicas.every((r) => r.node !== null && r.state === 'serving' && r.appliedSeq === s.lastSeq)) ? c : undefined;
  });
}

/** Short leases so the takeover test waits seconds, not the default 35 s. */
const LEASE_MS = 2000;
/** ADANNS_TEST_SHARE_QUANTISER=0: each shard trains its own quantiser (the recall-parity test then fails: README "Cluster"). */
const SHARE_QUANTISER = process.env.ADANNS_TEST_SHARE_QUANTISER !== '0';
const TAKEOVER_MS = 6000;
const DIM = 16;
const random = createRng(7);
const vectors = Array.from({ length: 600 }, () => Array.from({ length: DIM }, () => random.next() * 2 - 1));
const points = vectors.map((vector, id) => ({ id, vector, payload: { even: id % 2 === 0 } }));

beforeAll(async () => {
  const port = await freePort();
  natsUrl = `nats://127.0.0.1:${port}`;
  nats = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir, 'nats')], { stdio: 'ignore' });
  await waitFor(
    'nats-server to listen',
    () =>
      new Promise<true | undefined>((ok) => {
        const socket = tcpConnect(port, '127.0.0.1', () => {
          socket.destroy();
          ok(true);
        });
        socket.once('error', () => ok(undefined));
      }),
    30_000,
  );
  for (const id of ['n1', 'n2', 'n3']) await startNode(id);
}, 120_000);

afterAll(async () => {
  for (const id of [...nodes.keys()]) await stopNode(id).catch(() => undefined);
  nats?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('cluster configuration', () => {
  it('reads --cluster, --node-id and the lease settings, and names what is wrong', () => {
    const c = loadConfig(['--cluster', 'nats://127.0.0.1:4222, nats://127.0.0.1:4223', '--node-id', 'n1'], { ADANNS_LEASE_MS: '3000' });
    expect(c.cluster).toEqual({ servers: ['nats://127.0.0.1:4222', 'nats://127.0.0.1:4223'], nodeId: 'n1', leaseMs: 3000, takeoverMs: 30_000 });
    expect(loadConfig([], { ADANNS_NATS_URL: 'nats://h:1', ADANNS_NODE_ID: 'a', ADANNS_ADVERTISE_URL: 'http://h:8081/' }).cluster).toMatchObject({ servers: ['nats://h:1'], nodeId: 'a', advertiseUrl: 'http://h:8081' });
    expect(loadConfig([], {}).cluster).toBeUndefined();
    expect(() => loadConfig(['--cluster', 'nats://h:1'], {})).toThrow(/needs --node-id/);
    expect(() => loadConfig(['--cluster', 'http://h:1', '--node-id', 'a'], {})).toThrow(/nats:\/\/host:port URLs, got "http:\/\/h:1"/);
    expect(() => loadConfig(['--cluster', 'nats://h:1', '--node-id', 'a.b'], {})).toThrow(/node-id must be 1-64 letters, digits, "_" or "-", got "a.b"/);
    expect(() => loadConfig(['--cluster', 'nats://h:1', '--node-id', 'a'], { ADANNS_LEASE_MS: '100' })).toThrow(/ADANNS_LEASE_MS must be at least 500/);
  });
});

describe('cluster mode', () => {
  it('creates a sharded collection, acknowledges writes once logged and deduplicates a retried request', { timeout: 180_000 }, async () => {
    const n1 = nodes.get('n1')!;
    const created = await call(n1, 'PUT', '/v1/collections/c', { dim: DIM, metric: 'l2', shards: 2, replicas: 2 });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'c', shards: 2, replicas: 2 });
    expect((await call(n1, 'PUT', '/v1/collections/c', { dim: DIM, shards: 2 })).status).toBe(409);
    expect((await call(n1, 'PUT', '/v1/collections/d', { dim: DIM, shards: 0 })).body).toMatchObject({ error: 'invalid' });

    const first = await call<{ sequence: number; upserted: number; writeToken: string; duplicate?: boolean }>(n1, 'POST', '/v1/collections/c/points', { points, requestId: 'load-1' });
    expect(first.status).toBe(200);
    expect(first.body.upserted).toBe(points.length);
    expect(first.body.duplicate).toBeUndefined();
    const before = await settled(n1, 'c');
    // the client retries the same request (its answer was lost): the logs keep one copy
    const retry = await call<{ sequence: number; duplicate?: boolean }>(nodes.get('n2')!, 'POST', '/v1/collections/c/points', { points, requestId: 'load-1' });
    expect(retry.status).toBe(200);
    expect(retry.body).toMatchObject({ sequence: first.body.sequence, duplicate: true });
    const after = await settled(n1, 'c');
    expect(after.shards.map((s) => s.lastSeq)).toEqual(before.shards.map((s) => s.lastSeq));
    // read-your-writes through any node
    const count = await call<{ count: number }>(nodes.get('n3')!, 'POST', '/v1/collections/c/points/count', { after: first.body.writeToken });
    expect(count.body.count).toBe(points.length);
    // each point lives on exactly one shard: the shards' counts add up to the points
    const shardCounts = [...nodes.values()].flatMap((n) => n.store.names().filter((x) => x.startsWith('c--s')).map((x) => [x, n.store.get(x).count] as const));
    const byShard = new Map(shardCounts);
    expect((byShard.get('c--s0') ?? 0) + (byShard.get('c--s1') ?? 0)).toBe(points.length);
  });

  it('answers a search over two shards as a single node answers it', { timeout: 120_000 }, async () => {
    const single = await serve({ ...loadConfig([], {}), host: '127.0.0.1', port: 0, dataDir: join(dir, 'single'), threads: 1, logLevel: 'silent', autoBuildAt: 0 });
    try {
      await fetch(`${single.url}/v1/collections/c`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ dim: DIM, metric: 'l2' }) });
      await fetch(`${single.url}/v1/collections/c/points`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ points }) });
      const queries = vectors.slice(0, 20).map((v) => v.map((x) => x + 0.01));
      const want = (await (await fetch(`${single.url}/v1/collections/c/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ vectors: queries, k: 10 }) })).json()) as { results: { id: number }[][] };
      const got = await call<{ results: { id: number; score: number }[][]; shards: { shard: number; node: string }[]; mflops: number }>(nodes.get('n2')!, 'POST', '/v1/collections/c/search', { vectors: queries, k: 10 });
      expect(got.status).toBe(200);
      expect(got.body.shards.map((s) => s.shard)).toEqual([0, 1]);
      // both exact here (too few points for an index): the merged top 10 is the single node's
      let found = 0;
      want.results.forEach((hits, q) => {
        const ids = new Set(got.body.results[q].map((h) => h.id));
        found += hits.filter((h) => ids.has(h.id)).length;
      });
      expect(found / (10 * queries.length)).toBeGreaterThanOrEqual(0.99);
      for (const hits of got.body.results) for (let i = 1; i < hits.length; i++) expect(hits[i - 1].score).toBeGreaterThanOrEqual(hits[i].score);
    } finally {
      await single.stop();
    }
  });

  it('a stopped replica costs latency, not an error; restarted, it resumes from its applied sequence', { timeout: 180_000 }, async () => {
    const n1 = nodes.get('n1')!;
    const status = await settled(n1, 'c');
    // stop a node holding a replica of shard 0; search through the node that holds none, so shard 0 is always remote
    const holders = status.shards[0].replicas.map((r) => r.node!);
    const victim = holders[0];
    const survivor = [...nodes.keys()].find((id) => !holders.includes(id))!;
    const localBefore = nodes.get(victim)!.store.get('c--s0');
    const sequenceBefore = localBefore.logSequence;
    const lmdbBefore = localBefore.stats().sequence;
    await stopNode(victim);
    const query = vectors[3];
    const answers = [];
    for (let i = 0; i < 12; i++) {
      const r = await call<{ results: { id: number }[][]; shards: { node: string; retried: number }[] }>(nodes.get(survivor)!, 'POST', '/v1/collections/c/search', { vector: query, k: 5 });
      expect(r.status).toBe(200);
      expect(r.body.results[0][0].id).toBe(3);
      expect(r.body.shards.every((s) => s.node !== victim)).toBe(true);
      answers.push(r.body);
    }
    // the stopped node's lease had not run out: some searches tried it first and went on to the other replica
    expect(answers.some((a) => a.shards[0].retried > 0)).toBe(true);
    // writes go on while it is down: a delete and new points
    const del = await call<{ writeToken: string }>(nodes.get(survivor)!, 'DELETE', '/v1/collections/c/points', { ids: [0, 1, 2] });
    expect(del.status).toBe(200);
    const more = Array.from({ length: 40 }, (_, i) => ({ id: 1000 + i, vector: vectors[i] }));
    expect((await call(nodes.get(survivor)!, 'POST', '/v1/collections/c/points', { points: more })).status).toBe(200);

    const back = await startNode(victim);
    const resumed = await settled(back, 'c');
    const local = back.store.get('c--s0');
    expect(local.logSequence).toBe(resumed.shards[0].lastSeq);
    // one LMDB transaction per log message applied since the restart: nothing was applied twice
    expect(local.stats().sequence - lmdbBefore).toBe(local.logSequence - sequenceBefore);
    // deleted stays deleted on every replica, through the restart
    for (const node of nodes.values()) {
      for (const id of [0, 1, 2]) {
        const r = await fetch(`${node.url}/v1/collections/c/points/${id}?local=true`);
        expect(r.status).toBe(404);
      }
    }
    const count = await call<{ count: number }>(back, 'POST', '/v1/collections/c/points/count', {});
    expect(count.body.count).toBe(points.length - 3 + more.length);
  });

  // the shards build on one coarse quantiser (trained by one of them for the build request), and each plans a
  // recall budget at k / shards: the merged answer's recall@10 is the single node's within 0.01. Planned at k,
  // each shard over-delivers (measured 0.991 against 0.945: README "Cluster"). At fixed params the figures
  // differ by one k-means run from another (the single node trains on all points, the shards' quantiser on one
  // shard's): printed, not asserted.
  it('a 2-shard collection meets a recall budget as a single node does', { timeout: 300_000 }, async () => {
    const dim = 16;
    const n = 4000;
    const SPEC = 'ivf32@16,flat@16';
    const rng = createRng(3);
    const centres = Array.from({ length: 40 }, () => Array.from({ length: dim }, () => rng.normal()));
    const rows = Array.from({ length: n + 300 }, () => {
      const c = centres[rng.int(centres.length)];
      return c.map((x) => x + 0.6 * rng.normal());
    });
    const base = rows.slice(0, n);
    const queries = rows.slice(n);
    const unit = (v: number[]) => {
      const norm = Math.hypot(...v);
      return v.map((x) => x / norm);
    };
    const truth = queries.map((q) => {
      const u = unit(q);
      return base
        .map((b, id) => ({ id, s: unit(b).reduce((acc, x, d) => acc + x * u[d], 0) }))
        .sort((a, b) => b.s - a.s)
        .slice(0, 10)
        .map((h) => h.id);
    });
    const recall = (results: { id: number }[][]) => results.reduce((acc, hits, q) => acc + hits.filter((h) => truth[q].includes(h.id)).length, 0) / (10 * queries.length);
    const body = (b: unknown) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) });
    const batch = base.map((vector, id) => ({ id, vector }));

    const single = await serve({ ...loadConfig([], {}), host: '127.0.0.1', port: 0, dataDir: join(dir, 'single-r'), threads: 1, logLevel: 'silent', autoBuildAt: 0 });
    const n2 = nodes.get('n2')!;
    try {
      // one spec for both (auto would try several on each): the same index shape
      await fetch(`${single.url}/v1/collections/r`, { method: 'PUT', ...body({ dim, index: SPEC }) });
      await fetch(`${single.url}/v1/collections/r/points`, { method: 'POST', ...body({ points: batch }) });
      await fetch(`${single.url}/v1/collections/r/index`, { method: 'POST' });
      // one replica per shard: the builds are what this test waits for (the replicas' own tests are above)
      expect((await call(n2, 'PUT', '/v1/collections/r', { dim, index: SPEC, shards: 2, replicas: 1 })).status).toBe(201);
      expect((await call(n2, 'POST', '/v1/collections/r/points', { points: batch })).status).toBe(200);
      expect((await call(n2, 'POST', '/v1/collections/r/index')).status).toBe(202);
      const shardCollections = () => [...nodes.values()].flatMap((node) => node.store.names().filter((x) => x.startsWith('r--s')).map((x) => node.store.get(x)));
      await waitFor(
        'the indexes to be trained',
        async () => {
          const s = (await (await fetch(`${single.url}/v1/collections/r`)).json()) as { index: { state: string } };
          const replicas = shardCollections().map((c) => c.stats().index.state);
          return s.index.state === 'ready' && replicas.length === 2 && replicas.every((x) => x === 'ready') ? true : undefined;
        },
        240_000,
      );
      // trained once: both shards hold the same quantiser (the same centroids)
      const [q0, q1] = shardCollections().map((c) => Buffer.from(c.sharedQuantiser()!));
      expect(q0.equals(q1)).toBe(SHARE_QUANTISER);
      const figures: string[] = [];
      const compare = async (what: string, request: object) => {
        const want = (await (await fetch(`${single.url}/v1/collections/r/search`, { method: 'POST', ...body({ vectors: queries, k: 10, ...request }) })).json()) as { results: { id: number }[][]; budgetMet: boolean | null };
        const got = await call<{ results: { id: number }[][]; planned: unknown; budgetMet: boolean | null; note: string | null }>(n2, 'POST', '/v1/collections/r/search', { vectors: queries, k: 10, ...request });
        expect(got.status).toBe(200);
        const [rs, rc] = [recall(want.results), recall(got.body.results)];
        figures.push(`${what}: single node ${rs.toFixed(4)}, 2 shards ${rc.toFixed(4)}`);
        return [rs, rc, got.body, want] as const;
      };
      const [bs, bc, planned, alone] = await compare('budget recall 0.9', { budget: { recall: 0.9 } });
      // a reachable recall budget is claimed: each shard's recall is judged at the k it was planned (and calibrated) at
      expect(alone.budgetMet).toBe(true);
      expect({ budgetMet: planned.budgetMet, note: planned.note }).toEqual({ budgetMet: true, note: null });
      await compare('nprobe 2', { params: { nprobe: 2 } });
      console.log(`recall@10 (${queries.length} queries, shared quantiser ${SHARE_QUANTISER}): ${figures.join('; ')}`);
      expect(planned.planned).not.toBeNull();
      // the calibrated target, less the sampling noise of the queries, on one node and over two shards: each shard (like
      // the single node) plans the fastest calibrated point reaching the target, and their calibrations time the points
      // apart, so the two may run different plans above the target (0.9930 and 0.9817 in one run)
      expect(bs).toBeGreaterThanOrEqual(0.88);
      expect(bc).toBeGreaterThanOrEqual(0.88);
    } finally {
      await single.stop();
    }
  });

  it('one replica trains for a build request; the others load its artefact from the object store', { timeout: 300_000 }, async () => {
    const n3 = nodes.get('n3')!;
    expect((await call(n3, 'PUT', '/v1/collections/a', { dim: DIM, index: 'ivf16@16,flat@16', shards: 1, replicas: 3 })).status).toBe(201);
    const many = Array.from({ length: 1500 }, (_, id) => ({ id, vector: Array.from({ length: DIM }, () => random.normal()) }));
    expect((await call(n3, 'POST', '/v1/collections/a/points', { points: many })).status).toBe(200);
    expect((await call(n3, 'POST', '/v1/collections/a/index')).status).toBe(202);
    const replicas = () => [...nodes.values()].filter((n) => n.store.names().includes('a--s0')).map((n) => n.store.get('a--s0'));
    await waitFor('every replica to hold the trained index', () => (replicas().length === 3 && replicas().every((c) => c.stats().index.state === 'ready') ? true : undefined), 240_000);
    // trained once: one replica ran a build, the two others installed its artefact
    expect(replicas().filter((c) => c.lastBuild !== undefined)).toHaveLength(1);
    const [first, ...rest] = replicas().map((c) => c.stats().index);
    for (const other of rest) expect({ spec: other.spec, sequence: other.sequence, trainedCount: other.trainedCount }).toEqual({ spec: first.spec, sequence: first.sequence, trainedCount: first.trainedCount });
    // and they answer alike
    const answers = await Promise.all(replicas().map((c) => c.search([many[7].vector], { k: 5, params: { nprobe: 2 } })));
    for (const a of answers.slice(1)) expect(a.results).toEqual(answers[0].results);
  });

  it('trims a shard log up to its published snapshot; a replica behind the trim starts from the snapshot', { timeout: 180_000 }, async () => {
    const n3 = nodes.get('n3')!;
    // the build above published the trained replica's snapshot; once every replica applied past it, the log is trimmed
    const trimmed = await waitFor('the log of a/0 to be trimmed', async () => {
      const { body } = await call<Status>(n3, 'GET', '/v1/cluster');
      const shard = body.collections.find((x) => x.name === 'a')!.shards[0];
      return shard.firstSeq > 1 ? shard : undefined;
    });
    expect(trimmed.replicas.every((r) => r.appliedSeq >= trimmed.firstSeq - 1)).toBe(true);
    // a node comes back without its copy of the replica (a new disk): the log no longer holds the first writes
    const victim = 'n1';
    const before = nodes.get(victim)!.store.get('a--s0').count;
    await stopNode(victim);
    rmSync(join(dir, victim, 'collections', 'a--s0'), { recursive: true, force: true });
    const later = Array.from({ length: 30 }, (_, i) => ({ id: 5000 + i, vector: Array.from({ length: DIM }, () => random.normal()) }));
    expect((await call(n3, 'POST', '/v1/collections/a/points', { points: later })).status).toBe(200);
    expect((await call(n3, 'DELETE', '/v1/collections/a/points', { ids: [0, 1] })).status).toBe(200);
    const back = await startNode(victim);
    await settled(n3, 'a');
    // restored from the snapshot (points and index), then the log after it
    const restored = back.store.get('a--s0');
    expect(restored.count).toBe(before + later.length - 2);
    expect(restored.stats().index.state).toBe('ready');
    expect((await fetch(`${back.url}/v1/collections/a/points/5003?local=true`)).status).toBe(200);
    expect((await fetch(`${back.url}/v1/collections/a/points/7?local=true`)).status).toBe(200);
    expect((await fetch(`${back.url}/v1/collections/a/points/1?local=true`)).status).toBe(404);
  });

  it('another node takes over a replica whose lease ran out, and catches up before it serves', { timeout: 180_000 }, async () => {
    const n1 = nodes.get('n1')!;
    const status = await settled(n1, 'c');
    const victim = status.shards[1].replicas.map((r) => r.node!).find((n) => n !== 'n1')!;
    await stopNode(victim);
    const started = Date.now();
    const live = [...nodes.values()][0];
    const moved = await waitFor(
      'the replica to move to a live node',
      async () => {
        const { body } = await call<Status>(live, 'GET', '/v1/cluster');
        const c = body.collections.find((x) => x.name === 'c')!;
        return c.shards.every((s) => s.replicas.every((r) => r.node !== victim && r.state === 'serving' && r.appliedSeq === s.lastSeq)) ? c : undefined;
      },
      LEASE_MS + TAKEOVER_MS + 20_000,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(TAKEOVER_MS);
    expect(moved.shards.flatMap((s) => s.replicas.map((r) => r.node))).not.toContain(victim);
    const count = await call<{ count: number }>(live, 'POST', '/v1/collections/c/points/count', {});
    expect(count.body.count).toBe(points.length - 3 + 40);
    await startNode(victim);
  });

  it('keeps answering searches while the meta bucket cannot be reached for longer than a lease', { timeout: 180_000 }, async () => {
    const n1 = nodes.get('n1')!;
    await settled(n1, 'c');
    // a frozen nats-server: no lease renewal lands and every view's leases run out, as while JetStream
    // re-elects the bucket's leader; searches read only the replicas' LMDB and need no NATS
    nats.kill('SIGSTOP');
    try {
      await new Promise((r) => setTimeout(r, LEASE_MS + 1500));
      const statuses: number[] = [];
      for (const node of nodes.values()) {
        for (let i = 0; i < 3; i++) statuses.push((await call(node, 'POST', '/v1/collections/c/search', { vector: points[i].vector, k: 3, timeoutMs: 5000 })).status);
      }
      expect(statuses.every((s) => s === 200), statuses.join(',')).toBe(true);
    } finally {
      nats.kill('SIGCONT');
    }
    // and the cluster goes on once the server answers again
    await settled(n1, 'c');
  });
});
