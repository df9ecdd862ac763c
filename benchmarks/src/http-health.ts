/**
 * /healthz under the heaviest search load the service allows: starts the
 * service as its own process (http-service.ts) with its default limits, fills
 * an unindexed collection (every query an exact scan, the costliest kind),
 * then keeps every search slot (ADANNS_MAX_INFLIGHT_SEARCHES) busy with
 * batches at the per-request limits (planned MFLOPs, hits, body size) while
 * it probes /healthz, /readyz and a one-point write from another connection.
 * At the end it aborts the searches in flight (the service stops them at
 * their next slice) and prints one JSON line: latency percentiles of the
 * probes and what the load was.
 *
 *   npm run bench:health [-- --n 20000 --dim 128 --duration 20 --format msgpack|json --threads 1]
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Packr } from 'msgpackr';
import { loadConfig } from '@adanns/api';
import { AdannsClient } from '@adanns/client';
import { intOption } from '@adanns/cli-kit';
import { packageScript } from '@adanns/compute';
import { generateSynthetic } from '@adanns/datasets';

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
const script = packageScript(import.meta.url, './http-service');
const service = fork(script.path, ['--port', '0', '--threads', o.threads!], {
  env: { ...process.env, ADANNS_DATA_DIR: dataDir, ADANNS_LOG_LEVEL: 'warn', ADANNS_AUTO_BUILD_AT: '0', ADANNS_HOST: '127.0.0.1' },
  execArgv: script.execArgv,
  stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
});
const url = await new Promise<string>((resolve, reject) => {
  service.once('message', (m: { url: string }) => resolve(m.url));
  service.once('exit', (code, signal) => reject(new Error(`the service exited before it was ready (${signal ?? `exit ${code}`})`)));
});

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN);
const round = (x: number) => Math.round(x * 10) / 10;

/** One request on a keep-alive agent of its own, timed from send to the last byte. */
const probeAgent = new Agent({ keepAlive: true, maxSockets: 1 });
function timed(method: string, path: string, body?: string): Promise<{ ms: number; status: number }> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const req = request(`${url}${path}`, { method, agent: probeAgent, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ms: performance.now() - t, status: res.statusCode ?? 0 }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const controller = new AbortController();
try {
  const client = new AdannsClient(url, { format: 'msgpack' });
  await client.createCollection('load', { dim, metric: 'cosine' });
  const { base } = generateSynthetic({ n, dim, queries: 1, seed: 5 });
  for (let from = 0; from < n; from += 2000) {
    const to = Math.min(n, from + 2000);
    await client.upsert('load', Array.from({ length: to - from }, (_, i) => ({ id: from + i, vector: base.data.subarray((from + i) * dim, (from + i + 1) * dim) })));
  }

  // the heaviest batch each limit allows: planned MFLOPs (exact scan: n x dim per query), hits, batch, body size
  const perQuery = (n * dim) / 1e6;
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
  const health: number[] = [];
  const ready: number[] = [];
  const writes: number[] = [];
  const probe = async () => {
    for (let i = 0; Date.now() < end; i++) {
      const h = await timed('GET', '/healthz');
      if (h.status !== 200) throw new Error(`/healthz answered ${h.status}`);
      health.push(h.ms);
      if (i % 5 === 0) ready.push((await timed('GET', '/readyz')).ms);
      if (i % 10 === 0) writes.push((await timed('POST', '/v1/collections/load/points', JSON.stringify({ points: [{ id: `w${i}`, vector: Array.from(base.data.subarray(0, dim)) }] }))).ms);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const workers = Array.from({ length: connections }, worker);
  // the probes start once the searches are under way
  await new Promise((r) => setTimeout(r, 1000));
  await probe();
  controller.abort();
  await Promise.all(workers);
  for (const list of [health, ready, writes]) list.sort((a, b) => a - b);
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
      readyP99Ms: round(percentile(ready, 0.99)),
      writeP50Ms: round(percentile(writes, 0.5)),
      writeP99Ms: round(percentile(writes, 0.99)),
    }),
  );
} finally {
  controller.abort();
  probeAgent.destroy();
  service.kill('SIGTERM');
  await new Promise((resolve) => service.on('exit', resolve));
  rmSync(dataDir, { recursive: true, force: true });
}
