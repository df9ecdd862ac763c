/**
 * /healthz under the heaviest search load the service allows: starts the
 * service as its own process (http-service.ts) with its default limits, fills
 * an unindexed collection (every query an exact scan, the costliest kind),
 * then keeps every search slot (ADANNS_MAX_INFLIGHT_SEARCHES) busy with
 * batches at the per-request limits (planned MFLOPs, hits, body size) while
 * it probes /healthz, /readyz and a one-point write from another thread.
 * At the end it aborts the searches in flight (the service stops them at
 * their next slice) and prints one JSON line: latency percentiles of the
 * probes and what the load was.
 *
 *   npm run bench:health [-- --n 20000 --dim 128 --duration 20 --format msgpack|json --threads 1]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Packr } from 'msgpackr';
import { loadConfig } from '@adanns/api';
import { AdannsClient } from '@adanns/client';
import { intOption } from '@adanns/cli-kit';
import { generateSynthetic } from '@adanns/datasets';
import { startService } from './service-process.js';

const { values: o } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    dim: { type: 'string', default: '128' },
    duration: { type: 'string', default: '20' },
    format: { type: 'string', default: 'msgpack' },
    threads: { type: 'string', default: '1' },
    k: { type: 'string', default: '10' },
  },
});
const n = intOption(o.n, 'n');
const dim = intOption(o.dim, 'dim');
const duration = intOption(o.duration, 'duration');
const k = intOption(o.k, 'k');
if (o.format !== 'msgpack' && o.format !== 'json') throw new Error(`--format must be msgpack or json, got "${o.format}"`);
const format = o.format;
// the limits the service runs with (its defaults, or ADANNS_* from this environment)
const limits = loadConfig([], { ...process.env, ADANNS_HOST: '127.0.0.1' });

const dataDir = mkdtempSync(join(tmpdir(), 'adanns-health-'));
const { url, stop } = await startService(['--threads', o.threads!], { ADANNS_DATA_DIR: dataDir, ADANNS_LOG_LEVEL: 'warn', ADANNS_AUTO_BUILD_AT: '0', ADANNS_HOST: '127.0.0.1' });

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN);
const round = (x: number) => Math.round(x * 10) / 10;

/**
 * The probes run on a thread of their own (its own event loop and keep-alive
 * connection), so the time the load generator spends sending 64 large bodies
 * does not count as the service's latency: every 20 ms GET /healthz, every
 * 5th also /readyz, every 10th a one-point upsert, each timed from send to
 * its last byte.
 */
const PROBE = `
const { workerData, parentPort } = require('node:worker_threads');
const { Agent, request } = require('node:http');
const { url, until, points } = workerData;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const timed = (method, path, body) => new Promise((resolve, reject) => {
  const t = performance.now();
  const req = request(url + path, { method, agent, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
    res.resume();
    res.on('end', () => resolve({ ms: performance.now() - t, status: res.statusCode }));
  });
  req.on('error', reject);
  req.end(body);
});
(async () => {
  const health = [], ready = [], writes = [], steady = [];
  const start = performance.now();
  let worst = { ms: 0, at: 0 };
  for (let i = 0; Date.now() < until; i++) {
    const at = performance.now() - start;
    const h = await timed('GET', '/healthz');
    if (h.status !== 200) throw new Error('/healthz answered ' + h.status);
    health.push(h.ms);
    if (at > 5000) steady.push(h.ms);
    if (h.ms > worst.ms) worst = { ms: h.ms, at };
    if (i % 5 === 0) ready.push((await timed('GET', '/readyz')).ms);
    if (i % 10 === 0) writes.push((await timed('POST', '/v1/collections/load/points', points[i % points.length])).ms);
    await new Promise((r) => setTimeout(r, 20));
  }
  agent.destroy();
  parentPort.postMessage({ health, ready, writes, steady, worstAtS: worst.at / 1000 });
})();
`;

const controller = new AbortController();
try {
  const client = new AdannsClient(url, { format: 'msgpack' });
  await client.createCollection('load', { dim, metric: 'cosine' });
  const { base } = generateSynthetic({ n, dim, queries: 1, seed: 5 });
  for (let from = 0; from < n; from += 2000) {
    const to = Math.min(n, from + 2000);
    await client.upsert('load', Array.from({ length: to - from }, (_, i) => ({ id: from + i, vector: base.data.subarray((from + i) * dim, (from + i + 1) * dim) })));
  }

  // the heaviest batch each limit allows: planned MFLOPs (exact scan: n x dim per query, the
  // write probe's point included), hits, batch, body size
  const perQuery = ((n + 1) * dim) / 1e6;
  const bytesPerQuery = format === 'msgpack' ? dim * 4 + 8 : dim * 21;
  const queries = Math.max(
    1,
    Math.min(limits.maxBatch, Math.floor(limits.maxSearchMflops / perQuery), Math.floor(limits.maxSearchHits / k), Math.floor((Math.min(limits.maxSearchBodyBytes, limits.maxBodyBytes) * 0.95) / bytesPerQuery)),
  );
  const vectors = Array.from({ length: queries }, (_, q) => base.data.subarray((q % n) * dim, ((q % n) + 1) * dim));
  const body = format === 'msgpack' ? new Packr({ moreTypes: true, useRecords: false }).pack({ vectors, k }) : JSON.stringify({ vectors: vectors.map((v) => Array.from(v)), k });
  const connections = limits.maxInflightSearches;

  let completed = 0;
  let shed = 0;
  const other = new Map<number, number>();
  const end = Date.now() + duration * 1000;
  const worker = async () => {
    while (Date.now() < end) {
      try {
        const response = await fetch(`${url}/v1/collections/load/search`, { method: 'POST', headers: { 'content-type': `application/${format}` }, body, signal: controller.signal });
        await response.arrayBuffer();
        if (response.status === 200) completed++;
        else if (response.status === 429) {
          shed++;
          await new Promise((r) => setTimeout(r, 50));
        } else other.set(response.status, (other.get(response.status) ?? 0) + 1);
      } catch (e) {
        if (!controller.signal.aborted) throw e;
      }
    }
  };
  const workers = Array.from({ length: connections }, worker);
  // the probes start once the searches are under way
  await new Promise((r) => setTimeout(r, 1000));
  const points = Array.from({ length: 16 }, (_, i) => JSON.stringify({ points: [{ id: 'probe', vector: Array.from(base.data.subarray(i * dim, (i + 1) * dim)) }] }));
  const probes = new Worker(PROBE, { eval: true, workerData: { url, until: end, points } });
  const { health, ready, writes, steady, worstAtS } = await new Promise<{ health: number[]; ready: number[]; writes: number[]; steady: number[]; worstAtS: number }>((resolve, reject) => {
    probes.once('message', resolve);
    probes.once('error', reject);
  });
  controller.abort();
  await Promise.all(workers);
  for (const list of [health, ready, writes, steady]) list.sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      measure: 'health-under-search-load',
      format,
      connections,
      queriesPerRequest: queries,
      k,
      plannedMflopsPerRequest: round(queries * perQuery),
      bodyBytes: typeof body === 'string' ? Buffer.byteLength(body) : body.length,
      points: n,
      dim,
      seconds: duration,
      searchesCompleted: completed,
      shed429: shed,
      otherStatuses: Object.fromEntries(other),
      probes: health.length,
      healthP50Ms: round(percentile(health, 0.5)),
      healthP99Ms: round(percentile(health, 0.99)),
      healthMaxMs: round(health.at(-1) ?? NaN),
      // seconds after the probes started (1 s after the load)
      healthMaxAtS: round(worstAtS),
      // probes from 5 s on, once the 64 bodies have arrived and been decoded
      healthSteadyP99Ms: round(percentile(steady, 0.99)),
      readyP99Ms: round(percentile(ready, 0.99)),
      writeP50Ms: round(percentile(writes, 0.5)),
      writeP99Ms: round(percentile(writes, 0.99)),
    }),
  );
} finally {
  controller.abort();
  await stop();
  rmSync(dataDir, { recursive: true, force: true });
}
