/**
 * The fault scenarios of issue 19, each against a running LocalCluster
 * (3 nats-server, 4 nodes), each on its own collection of 2 shards x 2
 * replicas, bounded in time and stopping by itself. Each returns one result
 * line; `ok` says whether the guarantees held.
 */
import { existsSync, readFileSync } from 'node:fs';
import { shardOf, type LocalCluster } from '@adanns/cluster';
import { call, clusterView, Load, Model, must, pointVector, replicaNodes, sleep, verify, waitCaughtUp, type LoadStats, type Verdict } from './harness.js';

export interface SoakOptions {
  /** Seconds of load in the scenarios under load. */
  seconds: number;
  dim: number;
  /** Points per write batch of the load, and points written up front by the other scenarios. */
  batch: number;
  points: number;
  searchers: number;
  /** Longest wait for replicas to catch up, in ms. */
  catchUpTimeoutMs: number;
  log: (line: string) => void;
}

export const DEFAULT_SOAK: SoakOptions = { seconds: 20, dim: 32, batch: 50, points: 2000, searchers: 2, catchUpTimeoutMs: 120_000, log: () => {} };

export interface ScenarioResult {
  scenario: string;
  ok: boolean;
  seconds: number;
  searchesSent: number;
  searchesFailed: number;
  writesAcknowledged: number;
  writesMissing: number;
  deletesResurrected: number;
  [key: string]: unknown;
}

type Scenario = (cluster: LocalCluster, o: SoakOptions) => Promise<ScenarioResult>;

const SHARDS = 2;
/**
 * Least time a killed nats-server stays down: longer than the election of new
 * stream leaders (nats-server 2.9.10's Raft waits a random 4-9 s before it
 * stands) plus the nodes' publish retries, so writes must go on within it.
 */
const NATS_DOWN_MS = 15_000;
/**
 * Most time it stays down waiting for a first write acknowledged without it:
 * on a loaded machine (2 cores shared with other work) the elections took
 * longer than NATS_DOWN_MS, and a restart before any write went through
 * would not show that writes go on.
 */
const NATS_DOWN_MAX_MS = 45_000;
const REPLICAS = 2;

async function createCollection(cluster: LocalCluster, name: string, o: SoakOptions): Promise<void> {
  await must(cluster.nodes[0].url, 'PUT', `/v1/collections/${name}`, { dim: o.dim, metric: 'l2', shards: SHARDS, replicas: REPLICAS });
  await waitCaughtUp(cluster.nodes[0].url, name, o.catchUpTimeoutMs);
}

/** The node that a scenario kills: a replica of shard 0 other than the first node (which clients keep using). */
async function victimNode(cluster: LocalCluster, collection: string): Promise<string> {
  const shards = await replicaNodes(cluster.nodes[0].url, collection);
  const victim = shards[0].find((n) => n !== cluster.nodes[0].id);
  if (!victim) throw new Error(`shard 0 of ${collection} has no replica besides ${cluster.nodes[0].id}: ${JSON.stringify(shards)}`);
  return victim;
}

function result(scenario: string, started: number, load: Omit<LoadStats, 'failures'> | undefined, verdict: Verdict, extra: Record<string, unknown>, acknowledged?: number): ScenarioResult {
  const searchesFailed = load?.searchesFailed ?? 0;
  return {
    scenario,
    ok: verdict.writesMissing === 0 && verdict.deletesResurrected === 0 && searchesFailed === 0 && (load?.writesFailed ?? 0) === 0,
    seconds: Math.round((performance.now() - started) / 100) / 10,
    searchesSent: load?.searchesSent ?? 0,
    searchesFailed,
    writesAcknowledged: acknowledged ?? load?.writesAcknowledged ?? 0,
    writesMissing: verdict.writesMissing,
    deletesResurrected: verdict.deletesResurrected,
    ...extra,
    replicaReads: verdict.reads,
    ...(verdict.examples.length ? { examples: verdict.examples } : {}),
  };
}

function loadFields(stats: LoadStats): Record<string, unknown> {
  const { failures, searchesSent: _s, searchesFailed: _f, writesAcknowledged: _w, ...rest } = stats;
  return { ...rest, ...(failures.length ? { failures } : {}) };
}

/** Polls until `node`'s replicas serve with their log applied to at least `seq` per shard; ms from `from`. */
async function waitServing(cluster: LocalCluster, collection: string, node: string, seqs: Map<number, number>, from: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const view = await call<Awaited<ReturnType<typeof clusterView>>>(cluster.nodes[0].url, 'GET', '/v1/cluster', undefined, 5000);
    const c = view.body?.collections.find((x) => x.name === collection);
    const mine = c?.shards.flatMap((s) => s.replicas.filter((r) => r.node === node).map((r) => ({ shard: s.shard, ...r }))) ?? [];
    if (mine.length > 0 && mine.every((r) => r.state === 'serving' && r.appliedSeq >= (seqs.get(r.shard) ?? 0))) return performance.now() - from;
    await sleep(50);
  }
  throw new Error(`${node} did not serve ${collection} again within ${timeoutMs} ms`);
}

async function lastSeqs(cluster: LocalCluster, collection: string): Promise<Map<number, number>> {
  const view = await clusterView(cluster.nodes[0].url);
  const c = view.collections.find((x) => x.name === collection)!;
  return new Map(c.shards.map((s) => [s.shard, s.lastSeq]));
}

/** kill -9 one replica under search + ingest load, restart it, measure until it serves again. */
const killReplica: Scenario = async (cluster, o) => {
  const started = performance.now();
  const scenario = 'kill-replica';
  const name = `soak-${scenario}`;
  await createCollection(cluster, name, o);
  const victim = await victimNode(cluster, name);
  const targets = cluster.nodes.filter((n) => n.id !== victim).map((n) => n.url);
  const load = new Load({ collection: name, dim: o.dim, targets: () => targets, searchers: o.searchers, batch: o.batch, deleteEvery: 5, writePauseMs: 20 }).start();
  const quarter = (o.seconds * 1000) / 4;
  await sleep(quarter);
  o.log(`${name}: kill -9 ${victim}`);
  await cluster.killNode(victim);
  await sleep(quarter);
  const seqs = await lastSeqs(cluster, name);
  const restartAt = performance.now();
  await cluster.startNode(victim);
  const restartMs = performance.now() - restartAt;
  const catchUpMs = await waitServing(cluster, name, victim, seqs, restartAt, o.catchUpTimeoutMs);
  o.log(`${name}: ${victim} ready after ${Math.round(restartMs)} ms, serving after ${Math.round(catchUpMs)} ms`);
  await sleep(Math.max(0, 2 * quarter - (performance.now() - restartAt)));
  const stats = await load.stop();
  await waitCaughtUp(cluster.nodes[0].url, name, o.catchUpTimeoutMs);
  const verdict = await verify(cluster, name, load.model);
  return result(scenario, started, stats, verdict, { killed: victim, ...loadFields(stats), restartMs: Math.round(restartMs), catchUpMs: Math.round(catchUpMs), pointsAcknowledged: load.model.live.size });
};

interface Jsz {
  account_details?: { stream_detail?: { name: string; cluster?: { leader?: string } }[] }[];
}

/** The nats-server leading most of `collection`'s streams (the one whose loss forces elections), as its monitoring endpoint says. */
async function busiestStreamLeader(cluster: LocalCluster, collection: string): Promise<string> {
  const counts = new Map<string, number>();
  for (const n of cluster.nats) {
    const r = await call<Jsz>(`http://${cluster.host}:${n.spec.monitorPort}`, 'GET', '/jsz?accounts=true&streams=true');
    for (const a of r.body?.account_details ?? []) {
      for (const s of a.stream_detail ?? []) if (s.name.includes(collection) && s.cluster?.leader) counts.set(s.cluster.leader, (counts.get(s.cluster.leader) ?? 0) + 1);
    }
    if (counts.size > 0) break;
  }
  const [best] = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  return best?.[0] ?? cluster.nats[0].name;
}

/** kill -9 one of three nats-server under load; writes go on; after it returns every acknowledged write is on every replica. */
const killNats: Scenario = async (cluster, o) => {
  const started = performance.now();
  const scenario = 'kill-nats';
  const name = `soak-${scenario}`;
  await createCollection(cluster, name, o);
  const targets = cluster.nodes.map((n) => n.url);
  const load = new Load({ collection: name, dim: o.dim, targets: () => targets, searchers: o.searchers, batch: o.batch, deleteEvery: 5, writePauseMs: 20 }).start();
  const quarter = (o.seconds * 1000) / 4;
  await sleep(quarter);
  const victim = await busiestStreamLeader(cluster, name);
  const ackedBefore = load.model.acknowledgedWrites;
  o.log(`${name}: kill -9 ${victim}`);
  await cluster.killNats(victim);
  const killedAt = performance.now();
  // down long enough for JetStream to elect new leaders (seconds) and writes to go on without the server
  await sleep(Math.max(quarter, NATS_DOWN_MS));
  while (load.model.acknowledgedWrites === ackedBefore && performance.now() - killedAt < NATS_DOWN_MAX_MS) await sleep(250);
  const downMs = performance.now() - killedAt;
  const ackedWhileDown = load.model.acknowledgedWrites - ackedBefore;
  const restartAt = performance.now();
  await cluster.startNats(victim);
  const natsRejoinMs = performance.now() - restartAt;
  await sleep(Math.max(0, 2 * quarter - (performance.now() - restartAt)));
  const stats = await load.stop();
  const catchUpMs = await waitCaughtUp(cluster.nodes[0].url, name, o.catchUpTimeoutMs);
  const verdict = await verify(cluster, name, load.model);
  const r = result(scenario, started, stats, verdict, { killed: victim, natsDownMs: Math.round(downMs), writesAcknowledgedWhileDown: ackedWhileDown, ...loadFields(stats), natsRejoinMs: Math.round(natsRejoinMs), catchUpMs: Math.round(catchUpMs), pointsAcknowledged: load.model.live.size });
  // "writes continue": some were acknowledged while the server was down
  r.ok &&= ackedWhileDown > 0;
  return r;
};

/**
 * A client retries writes whose answers it never saw (same requestId), late:
 * after newer writes to the same points. Deduplication must drop the retries:
 * no point comes back at an older version, no deleted point comes back, and
 * the count is the number of distinct live ids.
 */
const duplicateRetry: Scenario = async (cluster, o) => {
  const started = performance.now();
  const scenario = 'duplicate-retry';
  const name = `soak-${scenario}`;
  await createCollection(cluster, name, o);
  const model = new Model();
  const urls = cluster.nodes.map((n) => n.url);
  const path = `/v1/collections/${name}/points`;
  const ids = Array.from({ length: o.points }, (_, i) => i);
  const first = { points: ids.map((id) => ({ id, vector: pointVector(id, 1, o.dim), payload: { v: 1 } })), requestId: `${name}-first` };
  const retryAnswers: { duplicate?: boolean }[] = [];
  let sends = 0;
  const send = async (method: string, body: object, via: number) => {
    sends++;
    return must<{ sequence?: number; writeToken?: string; duplicate?: boolean }>(urls[via % urls.length], method, path, body);
  };
  await send('POST', first, 0);
  model.upserted(ids, 1);
  // the retry of a write whose acknowledgement was lost, through another node
  retryAnswers.push(await send('POST', first, 1));
  const updated = ids.slice(0, Math.max(1, ids.length >> 3));
  await send('POST', { points: updated.map((id) => ({ id, vector: pointVector(id, 2, o.dim), payload: { v: 2 } })), requestId: `${name}-update` }, 2);
  model.upserted(updated, 2);
  const removed = ids.slice(updated.length, 2 * updated.length);
  const del = { ids: removed, requestId: `${name}-delete` };
  await send('DELETE', del, 3);
  model.removed(removed);
  // late retries of the first write and of the delete, after the update: both must change nothing
  retryAnswers.push(await send('POST', first, 3));
  retryAnswers.push(await send('DELETE', del, 0));
  await waitCaughtUp(urls[0], name, o.catchUpTimeoutMs);
  const verdict = await verify(cluster, name, model);
  const count = await must<{ count: number }>(urls[0], 'POST', `/v1/collections/${name}/points/count`, {});
  const r = result(scenario, started, undefined, verdict, { requestsSent: sends, retriesSent: retryAnswers.length, retriesAnsweredDuplicate: retryAnswers.filter((a) => a.duplicate === true).length, count: count.count, expectedCount: model.live.size }, model.acknowledgedWrites);
  r.ok &&= count.count === model.live.size && retryAnswers.every((a) => a.duplicate === true);
  return r;
};

/** Hits of exact searches for the deleted points' own vectors that name a deleted point. */
async function deletedInSearches(url: string, collection: string, deleted: number[], dim: number): Promise<number> {
  let found = 0;
  for (const id of deleted) {
    const r = await must<{ results: { id: number }[][] }>(url, 'POST', `/v1/collections/${collection}/search`, { vector: pointVector(id, 1, dim), k: 3 });
    const hits = r.results.flat();
    if (hits.some((h) => deleted.includes(h.id))) found++;
  }
  return found;
}

/**
 * A delete followed at once by kill -9 of every replica but the one the
 * requests go through (both replicas of one shard, one of the other), before
 * they may have applied it; they restart and replay the log: the deleted
 * points stay deleted on every replica, in point reads and in searches.
 */
const deleteRestart: Scenario = async (cluster, o) => {
  const started = performance.now();
  const scenario = 'delete-restart';
  const name = `soak-${scenario}`;
  await createCollection(cluster, name, o);
  const model = new Model();
  const url = cluster.nodes[0].url;
  const path = `/v1/collections/${name}/points`;
  const ids = Array.from({ length: o.points }, (_, i) => i);
  await must(url, 'POST', path, { points: ids.map((id) => ({ id, vector: pointVector(id, 1, o.dim), payload: { v: 1 } })), requestId: `${name}-points` });
  model.upserted(ids, 1);
  const client = cluster.nodes[0].id;
  const victims = [...new Set((await replicaNodes(url, name)).flat())].filter((n) => n !== client);
  const removed = ids.filter((id) => id % 10 === 3);
  await must(url, 'DELETE', path, { ids: removed, requestId: `${name}-delete` });
  model.removed(removed);
  await Promise.all(victims.map((v) => cluster.killNode(v)));
  o.log(`${name}: deleted ${removed.length} points, killed ${victims.join(', ')}`);
  await Promise.all(victims.map((v) => cluster.startNode(v)));
  await waitCaughtUp(url, name, o.catchUpTimeoutMs);
  const restarts = victims.length;
  const verdict = await verify(cluster, name, model);
  const deleted = [...model.deleted].slice(0, 20);
  const inSearches = await deletedInSearches(url, name, deleted, o.dim);
  const r = result(scenario, started, undefined, verdict, { replicasRestarted: restarts, deletedSearchedFor: deleted.length, deletedFoundBySearch: inSearches }, model.acknowledgedWrites);
  r.ok &&= inSearches === 0;
  r.deletesResurrected = Math.max(r.deletesResurrected, inSearches);
  return r;
};

/** Whether a node's log (JSON lines) has a message matching `pattern` logged after `since` (epoch ms). */
function logged(file: string, pattern: RegExp, since: number): boolean {
  if (!existsSync(file)) return false;
  return readFileSync(file, 'utf8')
    .split('\n')
    .some((line) => pattern.test(line) && (JSON.parse(line) as { time: number }).time >= since);
}

/**
 * A replica is down while points are written, an index is built (trained by
 * the other replica of its shard and published as an artefact covering the
 * log so far), and more points are written and some deleted. Restarted, it
 * must apply the gap before it serves (never `serving` below the log's end as
 * of its restart), load the artefact instead of training, and then hold
 * every acknowledged write.
 */
const laggingArtefact: Scenario = async (cluster, o) => {
  const started = performance.now();
  const scenario = 'lagging-artefact';
  const name = `soak-${scenario}`;
  await createCollection(cluster, name, o);
  const model = new Model();
  const url = cluster.nodes[0].url;
  const path = `/v1/collections/${name}/points`;
  const write = async (from: number, count: number, tag: string) => {
    const ids = Array.from({ length: count }, (_, i) => from + i);
    await must(url, 'POST', path, { points: ids.map((id) => ({ id, vector: pointVector(id, 1, o.dim), payload: { v: 1 } })), requestId: `${name}-${tag}` });
    model.upserted(ids, 1);
    return ids;
  };
  const before = await write(0, o.points, 'before');
  const victim = await victimNode(cluster, name);
  await cluster.killNode(victim);
  o.log(`${name}: kill -9 ${victim}, then writes, a build and more writes`);
  await write(o.points, o.points, 'gap');
  const buildAt = Date.now();
  await must(url, 'POST', `/v1/collections/${name}/index`, {});
  // the other replica of each shard trains and publishes: wait until searches answer from an index on both shards
  const deadline = performance.now() + o.catchUpTimeoutMs;
  for (;;) {
    const r = await must<{ params: unknown; note: string | null }>(url, 'POST', `/v1/collections/${name}/search`, { vector: pointVector(1, 1, o.dim), k: 10 });
    if (r.params && !/exact/i.test(r.note ?? '')) break;
    if (performance.now() > deadline) throw new Error(`${name}: no index on every shard within ${o.catchUpTimeoutMs} ms (note: ${r.note})`);
    await sleep(200);
  }
  const trainer = cluster.nodes.find((n) => n.id !== victim && logged(n.logFile, new RegExp(`published the index of ${name}/0`), buildAt));
  await write(2 * o.points, o.points, 'after');
  const removed = before.filter((id) => id % 7 === 0);
  await must(url, 'DELETE', path, { ids: removed, requestId: `${name}-delete` });
  model.removed(removed);
  const seqs = await lastSeqs(cluster, name);
  const restartAt = performance.now();
  const restartEpoch = Date.now();
  // while it starts, ask the victim's replica directly (the route other nodes use, refused unless the replica serves) for
  // the last point written to shard 0 and a point deleted from it: an answer without the one or with the other is a
  // replica serving before it replayed the gap
  const shardZero = (ids: Iterable<number>) => [...ids].filter((id) => shardOf(id, 2) === 0);
  const lastWritten = shardZero(model.live.keys()).at(-1)!;
  const deletedProbe = shardZero(removed)[0];
  const victimUrl = cluster.node(victim).url;
  let servedEarly = 0;
  let servedEarlyExample: string | undefined;
  let probesAnswered = 0;
  let watching = true;
  const watch = (async () => {
    while (watching) {
      for (const [id, shouldExist] of [[lastWritten, true], [deletedProbe, false]] as const) {
        const r = await call<{ point: unknown }>(victimUrl, 'POST', `/v1/internal/replicas/${name}/0/get`, { id }, 2000);
        if (r.status !== 200) continue;
        probesAnswered++;
        if ((r.body.point !== null) !== shouldExist) {
          servedEarly++;
          servedEarlyExample ??= `point ${id} ${shouldExist ? 'missing' : 'still there'} ${Math.round(performance.now() - restartAt)} ms after the restart began`;
        }
      }
      await sleep(50);
    }
  })();
  await cluster.startNode(victim);
  const catchUpMs = await waitServing(cluster, name, victim, seqs, restartAt, o.catchUpTimeoutMs);
  watching = false;
  await watch;
  await waitCaughtUp(url, name, o.catchUpTimeoutMs);
  // the artefact is installed on a heartbeat after the replica reached its sequence
  const victimLog = cluster.node(victim).logFile;
  const loadDeadline = performance.now() + o.catchUpTimeoutMs;
  let artefactLoaded = false;
  while (!(artefactLoaded = logged(victimLog, new RegExp(`loaded the index of ${name}/0 `), restartEpoch)) && performance.now() < loadDeadline) await sleep(200);
  const trainedItself = logged(victimLog, new RegExp(`training the index of ${name}/0 `), restartEpoch);
  const verdict = await verify(cluster, name, model);
  const r = result(scenario, started, undefined, verdict, { killed: victim, trainedBy: trainer?.id ?? null, catchUpMs: Math.round(catchUpMs), probesAnswered, servedBeforeCaughtUp: servedEarly, ...(servedEarlyExample ? { servedEarlyExample } : {}), artefactLoaded, trainedItself }, model.acknowledgedWrites);
  r.ok &&= servedEarly === 0 && probesAnswered > 0 && artefactLoaded && !trainedItself;
  return r;
};

export const SCENARIOS: Record<string, Scenario> = {
  'kill-replica': killReplica,
  'kill-nats': killNats,
  'duplicate-retry': duplicateRetry,
  'delete-restart': deleteRestart,
  'lagging-artefact': laggingArtefact,
};
