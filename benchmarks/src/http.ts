/**
 * Load test of the HTTP service on loopback: starts the service as its
 * own process (http-service.ts) on a fresh data directory, ingests synthetic vectors with JSON
 * and with MessagePack (autocannon, batches of 100 points), builds the index,
 * then measures search QPS and latency percentiles at two budgets. One JSON
 * line per measure.
 *
 *   npm run bench:http [-- --n 20000 --dim 128 --duration 10 --connections 8]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Packr } from 'msgpackr';
import { AdannsClient } from '@adanns/client';
import { intOption } from '@adanns/cli-kit';
import { generateSynthetic } from '@adanns/datasets';
import { startService } from './service-process.js';

const { values: o } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    dim: { type: 'string', default: '128' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '8' },
    threads: { type: 'string', default: '1' },
  },
});
const n = intOption(o.n, 'n');
const dim = intOption(o.dim, 'dim');
const duration = intOption(o.duration, 'duration');
const connections = intOption(o.connections, 'connections');
const BATCH = 100;

const dataDir = mkdtempSync(join(tmpdir(), 'adanns-http-'));
const { url, stop } = await startService(['--threads', o.threads!], { ADANNS_DATA_DIR: dataDir, ADANNS_LOG_LEVEL: 'warn', ADANNS_AUTO_BUILD_AT: '0' });

const packr = new Packr({ moreTypes: true, useRecords: false });
const { base, queries } = generateSynthetic({ n, dim, queries: 100, seed: 11 });
const client = new AdannsClient(url);

async function load(options: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    // latencies of 2xx answers only: a fast 4xx/5xx must not flatter p50/p99
    autocannon({ connections, duration, excludeErrorStats: true, ...options }, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

/** Answered requests per second that succeeded: autocannon's request rate counts every answer, 4xx and 5xx included. */
function okPerSecond(result: Pick<autocannon.Result, '2xx' | 'duration'>): number {
  return result['2xx'] / result.duration;
}

function report(measure: string, result: autocannon.Result, extra: Record<string, unknown> = {}): void {
  const errors = result.errors + result.non2xx;
  console.log(JSON.stringify({ measure, requestsPerSec: Math.round(okPerSecond(result)), p50Ms: result.latency.p50, p99Ms: result.latency.p99, errors, connections, seconds: duration, ...extra }));
}

try {
  // ingest: each format into its own collection, every request a batch of 100 distinct points
  for (const format of ['json', 'msgpack'] as const) {
    const name = `ingest-${format}`;
    await client.createCollection(name, { dim, metric: 'cosine' });
    let next = 0;
    const body = () => {
      const points = [];
      for (let i = 0; i < BATCH; i++, next++) {
        const row = next % n;
        points.push({ id: next, vector: format === 'json' ? Array.from(base.data.subarray(row * dim, (row + 1) * dim)) : base.data.subarray(row * dim, (row + 1) * dim) });
      }
      return format === 'json' ? JSON.stringify({ points }) : packr.pack({ points });
    };
    const result = await load({
      url: `${url}/v1/collections/${name}/points`,
      method: 'POST',
      headers: { 'content-type': format === 'json' ? 'application/json' : 'application/msgpack' },
      setupClient: (c) => c.setBody(body()),
      requests: [{ method: 'POST', setupRequest: (request) => ({ ...request, body: body() }) }],
    });
    report(`ingest-${format}`, result, { pointsPerSec: Math.round(okPerSecond(result) * BATCH), batch: BATCH, dim });
  }

  // search: one collection of n points with its index, at two budgets
  await client.createCollection('search', { dim, metric: 'cosine' });
  for (let from = 0; from < n; from += 1000) {
    const to = Math.min(n, from + 1000);
    const points = [];
    for (let i = from; i < to; i++) points.push({ id: i, vector: base.data.subarray(i * dim, (i + 1) * dim) });
    await new AdannsClient(url, { format: 'msgpack' }).upsert('search', points);
  }
  await client.buildIndex('search');
  const index = await client.waitForIndex('search');
  let q = 0;
  for (const budget of [{ recall: 0.9 }, { recall: 0.99 }]) {
    const probe = await client.search('search', Array.from(queries.data.subarray(0, dim)), { k: 10, budget });
    const result = await load({
      url: `${url}/v1/collections/search/search`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      requests: [
        {
          method: 'POST',
          setupRequest: (request) => {
            const row = q++ % queries.rows;
            return { ...request, body: JSON.stringify({ vector: Array.from(queries.data.subarray(row * dim, (row + 1) * dim)), k: 10, budget }) };
          },
        },
      ],
    });
    report('search', result, { budget, spec: index.spec, params: probe.params, mflops: Number(probe.mflops.toFixed(4)), expectedRecall: probe.expectedRecall, points: n, dim });
  }
} finally {
  await stop();
  rmSync(dataDir, { recursive: true, force: true });
}
