import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import { recallAtK } from '@adanns/core';
import type { BenchContext } from '../context.js';
import { meanAveragePrecisionAtK, top1Accuracy } from '../quality.js';
import { peakRssBytes } from '../timing.js';

export const HNSWLIB_VERSION = (createRequire(import.meta.url)('hnswlib-node/package.json') as { version: string }).version;
const M = 16;
const EF_CONSTRUCTION = 200;

/** An hnswlib-node index over the base (row i added under label i), timed, with the queries as the plain arrays it takes. */
export async function buildHnswlib(ctx: BenchContext): Promise<{ index: hnswlib.HierarchicalNSW; spec: string; buildSeconds: number; indexBytes: number; queryRows: number[][] }> {
  const { base, queries, metric } = ctx.data;
  const dim = base.dim;
  const rows: number[][] = Array.from({ length: base.rows }, (_, i) => Array.from(base.data.subarray(i * dim, (i + 1) * dim)));
  const queryRows: number[][] = Array.from({ length: queries.rows }, (_, i) => Array.from(queries.data.subarray(i * dim, (i + 1) * dim)));
  ctx.log(`building hnswlib M=${M} efConstruction=${EF_CONSTRUCTION}`);
  const started = performance.now();
  const index = new hnswlib.HierarchicalNSW(metric, dim);
  index.initIndex(base.rows, M, EF_CONSTRUCTION, ctx.seed);
  for (let i = 0; i < base.rows; i++) {
    index.addPoint(rows[i], i);
    if (i % 1000 === 999 || i === base.rows - 1) ctx.progress('hnswlib', i + 1, base.rows);
  }
  const buildSeconds = (performance.now() - started) / 1000;
  // the addon's addPoint and searchKnn run synchronously on the calling thread (it has no parallel
  // entry point such as hnswlib's Python addItems(num_threads)), so every figure here is one thread
  ctx.describe('hnswlib', { threads: 1, version: HNSWLIB_VERSION });
  const dir = mkdtempSync(join(tmpdir(), 'adanns-hnsw-'));
  index.writeIndexSync(join(dir, 'index.bin'));
  const indexBytes = statSync(join(dir, 'index.bin')).size;
  rmSync(dir, { recursive: true, force: true });
  return { index, spec: `hnsw M=${M} efConstruction=${EF_CONSTRUCTION}`, buildSeconds, indexBytes, queryRows };
}

const HNSW_EF_SWEEP = [10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 160, 200, 250, 320];

/** hnswlib-node (M = 16, efConstruction = 200), ef swept; it takes plain arrays, converted before the clock starts. */
export async function hnswlibSuite(ctx: BenchContext): Promise<void> {
  const { queries, truth, baseLabels, queryLabels } = ctx.data;
  const k = ctx.k;
  const { index, spec, buildSeconds, indexBytes, queryRows } = await buildHnswlib(ctx);

  const ids = new Float64Array(queries.rows * k);
  const searchAll = () => {
    for (let q = 0; q < queries.rows; q++) {
      const found = index.searchKnn(queryRows[q], k).neighbors;
      for (let i = 0; i < k; i++) ids[q * k + i] = found[i] ?? -1;
    }
  };
  const singles = Math.min(ctx.latencyQueries, queries.rows);
  // a fine ef sweep (steps of about 1.25x) so a recall threshold meets hnswlib's frontier close to where it crosses it:
  // with doubling steps the point after the crossing can be up to twice as slow, which flatters every other system
  for (const ef of HNSW_EF_SWEEP.filter((e) => e >= k)) {
    index.setEf(ef);
    searchAll();
    const recall = recallAtK(ids, k, truth.ids, truth.k, queries.rows, k);
    const labelled = baseLabels !== undefined && queryLabels !== undefined;
    const top1 = labelled ? top1Accuracy(ids, k, baseLabels, queryLabels) : null;
    const map = labelled ? meanAveragePrecisionAtK(ids, k, baseLabels, queryLabels) : null;
    const row = { system: 'hnswlib', spec, params: { ef }, k, recall, top1, map, mflops: null, buildSeconds, indexBytes, rssBytes: peakRssBytes() };
    ctx.timed(row, {
      // one index for every ef: other rows run between this row's passes, so each pass sets its ef (cheap)
      before: () => index.setEf(ef),
      singles,
      single: (q) => index.searchKnn(queryRows[q], k),
      // no batch API: the batched figure is the same one-at-a-time loop over all queries
      batch: { queries: queries.rows, run: searchAll },
    });
  }
}
