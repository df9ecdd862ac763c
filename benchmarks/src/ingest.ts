/**
 * Durable ingest and rebuild: upserts N synthetic vectors of dimension D in
 * batches into a fresh collection (each batch acknowledged only once LMDB
 * has flushed it), then builds the default AdANNS-IVF index over all of them
 * in the background worker. Prints one JSON line per measure.
 *
 *   npm run bench:ingest [-- --n 100000 --dim 768 --batch 1000 --threads 2]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { intOption } from '@adanns/cli-kit';
import { createBackend, defaultThreads } from '@adanns/compute';
import { generateSynthetic } from '@adanns/datasets';
import { Store } from '@adanns/store';

const { values: o } = parseArgs({
  options: {
    n: { type: 'string', default: '100000' },
    dim: { type: 'string', default: '768' },
    batch: { type: 'string', default: '1000' },
    threads: { type: 'string' },
  },
});
const n = intOption(o.n, 'n');
const dim = intOption(o.dim, 'dim');
const batchSize = intOption(o.batch, 'batch');
const threads = o.threads === undefined ? defaultThreads() : intOption(o.threads, 'threads');

const { base } = generateSynthetic({ n, dim, queries: 1, clusters: 100, seed: 5 });
const dataDir = mkdtempSync(join(tmpdir(), 'adanns-ingest-'));
const backend = await createBackend('cpu', { threads });
const store = await Store.open(dataDir, { backend, backendName: 'cpu', threads, autoBuildAt: 0 });
try {
  const collection = await store.create('ingest', { dim, metric: 'cosine' });
  let started = performance.now();
  for (let from = 0; from < n; from += batchSize) {
    const to = Math.min(n, from + batchSize);
    const points = [];
    for (let i = from; i < to; i++) points.push({ id: i, vector: base.data.subarray(i * dim, (i + 1) * dim) });
    await collection.upsert(points);
  }
  const ingestSeconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ measure: 'ingest', points: n, dim, batch: batchSize, seconds: Number(ingestSeconds.toFixed(2)), pointsPerSec: Math.round(n / ingestSeconds) }));
  started = performance.now();
  await collection.build();
  const stats = collection.stats();
  if (stats.index.state !== 'ready') throw new Error(`build did not finish: ${stats.index.lastError}`);
  const timing = collection.lastBuild!;
  console.log(JSON.stringify({ measure: 'rebuild', points: n, dim, spec: stats.index.spec, threads, seconds: Number(((performance.now() - started) / 1000).toFixed(1)), trainAndFillSeconds: Number(timing.trainAndFillSeconds.toFixed(1)), calibrationSeconds: Number(timing.calibrationSeconds.toFixed(1)) }));
} finally {
  await store.close();
  await backend.dispose();
  rmSync(dataDir, { recursive: true, force: true });
}
