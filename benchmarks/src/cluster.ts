/**
 * One node against a local cluster of 2 shards x 2 replicas (3 nats-server,
 * 4 nodes), on the same synthetic data, with the same HTTP client:
 * - ingest: every point once, in batches, from `--writers` concurrent
 *   writers; points/s counted to the last acknowledgement (single node: LMDB
 *   flushed; cluster: JetStream acknowledged, replicated to 2 of 3 servers),
 *   and for the cluster also to the moment every replica has applied it;
 * - search: the index built (the default spec, ADANNS_AUTO_BUILD_AT off, CPU backend),
 *   then `--connections` searches in flight for `--duration` s, `--passes`
 *   times; QPS and p99 are the medians of the passes. The cluster's clients
 *   spread over its nodes (any node routes).
 * Every process shares this machine's cores: on a 2-core machine the cluster
 * cannot gain throughput, the figures show its cost. One JSON line per measure.
 *
 *   npm run bench:cluster [-- --n 20000 --dim 128 --duration 10 --connections 8 --passes 3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { intOption, intOptions } from '@adanns/cli-kit';
import { LocalCluster } from '@adanns/cluster';
import { generateSynthetic } from '@adanns/datasets';
import { startService } from './service-process.js';
import { median, MIN_PASSES, percentile } from './timing.js';

const { values: o } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    dim: { type: 'string', default: '128' },
    batch: { type: 'string', default: '100' },
    writers: { type: 'string', default: '4' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '8' },
    passes: { type: 'string', default: String(MIN_PASSES) },
    // the single node uses every core; each cluster node one thread (4 nodes share the cores)
    threads: { type: 'string', default: String(availableParallelism()) },
    'node-threads': { type: 'string', default: '1' },
    only: { type: 'string' },
  },
});
const { n, dim, batch, writers, duration, connections, passes } = intOptions(o, ['n', 'dim', 'batch', 'writers', 'duration', 'connections', 'passes']);
if (o.only !== undefined && o.only !== 'node' && o.only !== 'cluster') throw new Error(`--only must be node or cluster, got "${o.only}"`);

const { base, queries } = generateSynthetic({ n, dim, queries: 200, seed: 11 });
const row = (data: Float32Array, i: number) => Array.from(data.subarray(i * dim, (i + 1) * dim));
const COLLECTION = 'bench';
/** The 1-minute load average: other work on the machine shows in every figure, so each line says how busy it was. */
const loadAverage = () => Math.round(loadavg()[0] * 10) / 10;

async function post<T>(url: string, path: string, body: unknown, method = 'POST'): Promise<T> {
  const res = await fetch(url + path, { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}${path}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** Sends every point once, `writers` batches in flight, round-robin over `urls`; returns seconds to the last acknowledgement. */
async function ingest(urls: string[], withRequestId: boolean): Promise<number> {
  let next = 0;
  let sent = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (next < n) {
        const from = next;
        next = Math.min(n, next + batch);
        const points = [];
        for (let i = from; i < next; i++) points.push({ id: i, vector: row(base.data, i) });
        await post(urls[sent++ % urls.length], `/v1/collections/${COLLECTION}/points`, withRequestId ? { points, requestId: `bench-${from}` } : { points });
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

/** `connections` searches in flight for `duration` s over `urls`: answered per second and latency percentiles (ms). */
async function searchPass(urls: string[]): Promise<{ qps: number; p50: number; p99: number; errors: number }> {
  const latencies: number[] = [];
  let errors = 0;
  let q = 0;
  const started = performance.now();
  const end = started + duration * 1000;
  await Promise.all(
    Array.from({ length: connections }, async (_, c) => {
      while (performance.now() < end) {
        const i = q++;
        const t = performance.now();
        try {
          await post(urls[(i + c) % urls.length], `/v1/collections/${COLLECTION}/search`, { vector: row(queries.data, i % queries.rows), k: 10 });
          latencies.push(performance.now() - t);
        } catch {
          errors++;
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { qps: latencies.length / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors };
}

async function searchPasses(setup: string, urls: string[], extra: Record<string, unknown>): Promise<{ qps: number; p99: number }> {
  await searchPass(urls); // warm-up pass (JIT, page cache, connections)
  const runs = [];
  for (let p = 0; p < passes; p++) runs.push(await searchPass(urls));
  const result = { qps: median(runs.map((r) => r.qps)), p50: median(runs.map((r) => r.p50)), p99: median(runs.map((r) => r.p99)) };
  const round = (x: number) => Math.round(x * 10) / 10;
  console.log(JSON.stringify({ measure: 'search', setup, qps: Math.round(result.qps), p50Ms: round(result.p50), p99Ms: round(result.p99), passQps: runs.map((r) => Math.round(r.qps)), errors: runs.reduce((s, r) => s + r.errors, 0), connections, seconds: duration, points: n, dim, load1: loadAverage(), ...extra }));
  return result;
}

/** Polls until searches on every url answer from an index on every shard (no "exact" note) a few times in a row. */
async function waitIndexed(urls: string[], timeoutMs = 600_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  let streak = 0;
  let last: { params: unknown; note: string | null } | undefined;
  while (Date.now() < deadline) {
    last = await post<{ params: unknown; note: string | null }>(urls[streak % urls.length], `/v1/collections/${COLLECTION}/search`, { vector: row(queries.data, 0), k: 10 });
    streak = last.params && !/exact/i.test(last.note ?? '') ? streak + 1 : 0;
    // each search reaches one replica per shard: enough answers in a row cover every replica with high probability
    if (streak >= 8 * urls.length) return { params: last.params };
    await new Promise((r) => setTimeout(r, streak ? 10 : 500));
  }
  throw new Error(`the index was not ready on every shard within ${timeoutMs} ms (last note: ${last?.note})`);
}

const results: Record<string, { ingest: number; qps: number; p99: number }> = {};

if (o.only !== 'cluster') {
  const dataDir = mkdtempSync(join(tmpdir(), 'adanns-bench-node-'));
  const service = await startService(['--threads', o.threads!], { ADANNS_DATA_DIR: dataDir, ADANNS_LOG_LEVEL: 'warn', ADANNS_AUTO_BUILD_AT: '0', ADANNS_BACKEND: 'cpu' });
  try {
    await post(service.url, `/v1/collections/${COLLECTION}`, { dim, metric: 'cosine' }, 'PUT');
    const seconds = await ingest([service.url], false);
    const ingestRate = n / seconds;
    console.log(JSON.stringify({ measure: 'ingest', setup: '1 node', pointsPerSec: Math.round(ingestRate), seconds: Math.round(seconds * 10) / 10, batch, writers, points: n, dim, threads: Number(o.threads), load1: loadAverage() }));
    await post(service.url, `/v1/collections/${COLLECTION}/index`, {});
    const indexed = await waitIndexed([service.url]);
    const s = await searchPasses('1 node', [service.url], { threads: Number(o.threads), ...indexed });
    results['1 node'] = { ingest: ingestRate, ...s };
  } finally {
    await service.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (o.only !== 'node') {
  const dir = mkdtempSync(join(tmpdir(), 'adanns-bench-cluster-'));
  const cluster = await LocalCluster.start({ dir, fresh: true, ports: 'free', nodeFrom: 'dist', threads: intOption(o['node-threads'], 'node-threads'), nodeEnv: { ADANNS_LOG_LEVEL: 'warn', ADANNS_AUTO_BUILD_AT: '0', ADANNS_BACKEND: 'cpu' } });
  try {
    const urls = cluster.nodes.map((x) => x.url);
    await post(urls[0], `/v1/collections/${COLLECTION}`, { dim, metric: 'cosine', shards: 2, replicas: 2 }, 'PUT');
    const started = performance.now();
    const seconds = await ingest(urls, true);
    // acknowledged is durable (in the log); applied is when every replica's LMDB has it too
    const applied = await waitApplied(urls[0]);
    const appliedSeconds = (applied - started) / 1000;
    const ingestRate = n / seconds;
    console.log(JSON.stringify({ measure: 'ingest', setup: '2 shards x 2 replicas', pointsPerSec: Math.round(ingestRate), seconds: Math.round(seconds * 10) / 10, appliedEverywherePointsPerSec: Math.round(n / appliedSeconds), batch, writers, points: n, dim, nodes: urls.length, nodeThreads: Number(o['node-threads']), load1: loadAverage() }));
    await post(urls[0], `/v1/collections/${COLLECTION}/index`, {});
    const indexed = await waitIndexed(urls);
    const s = await searchPasses('2 shards x 2 replicas', urls, { nodes: urls.length, nodeThreads: Number(o['node-threads']), ...indexed });
    results['2x2'] = { ingest: ingestRate, ...s };
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Waits until every replica has applied its shard's log to the end; returns the time (performance.now()) it saw that. */
async function waitApplied(url: string, timeoutMs = 600_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await fetch(`${url}/v1/cluster`).then((r) => r.json() as Promise<{ collections: { name: string; shards: { lastSeq: number; replicas: { appliedSeq: number }[] }[] }[] }>);
    const c = view.collections.find((x) => x.name === COLLECTION);
    if (c && c.shards.every((s) => s.replicas.every((r) => r.appliedSeq >= s.lastSeq))) return performance.now();
    if (Date.now() > deadline) throw new Error(`replicas did not apply the ingest within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const one = results['1 node'];
const two = results['2x2'];
if (one && two) {
  const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  console.log(JSON.stringify({ measure: 'ratio', of: '2 shards x 2 replicas / 1 node', ingest: ratio(two.ingest, one.ingest), qps: ratio(two.qps, one.qps), p99: ratio(two.p99, one.p99), cores: availableParallelism(), note: `all processes share ${availableParallelism()} cores` }));
}
