import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import { recallAtK } from '@adanns/core';
import type { BenchContext } from '../context.js';
import { meanAveragePrecisionAtK, top1Accuracy } from '../quality.js';
import { latencies, medianMs, peakRssBytes, percentile } from '../timing.js';

const M = 16;
const EF_CONSTRUCTION = 200;

/** hnswlib-node (M = 16, efConstruction = 200), ef swept; it takes plain arrays, converted before the clock starts. */
export async function hnswlibSuite(ctx: BenchContext): Promise<void> {
  const { base, queries, truth, baseLabels, queryLabels, metric } = ctx.data;
  const dim = base.dim;
  const k = ctx.k;
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
  const dir = mkdtempSync(join(tmpdir(), 'adanns-hnsw-'));
  index.writeIndexSync(join(dir, 'index.bin'));
  const indexBytes = statSync(join(dir, 'index.bin')).size;
  rmSync(dir, { recursive: true, force: true });

  const ids = new Float64Array(queries.rows * k);
  const searchAll = () => {
    for (let q = 0; q < queries.rows; q++) {
      const found = index.searchKnn(queryRows[q], k).neighbors;
      for (let i = 0; i < k; i++) ids[q * k + i] = found[i] ?? -1;
    }
  };
  for (const ef of [10, 20, 40, 80, 160, 320].filter((e) => e >= k)) {
    index.setEf(ef);
    searchAll();
    const recall = recallAtK(ids, k, truth.ids, truth.k, queries.rows, k);
    const labelled = baseLabels !== undefined && queryLabels !== undefined;
    const top1 = labelled ? top1Accuracy(ids, k, baseLabels, queryLabels) : null;
    const map = labelled ? meanAveragePrecisionAtK(ids, k, baseLabels, queryLabels) : null;
    // no batch API: the batched figure is the same one-at-a-time loop over all queries
    const batchMs = await medianMs(searchAll, ctx.repeats);
    const lat = await latencies(Math.min(ctx.latencyQueries, queries.rows), (q) => index.searchKnn(queryRows[q], k));
    const mean = lat.reduce((a, b) => a + b, 0) / lat.length;
    ctx.add({
      system: 'hnswlib',
      spec: `hnsw M=${M} efConstruction=${EF_CONSTRUCTION}`,
      params: { ef },
      k,
      recall,
      top1,
      map,
      mflops: null,
      qps: 1000 / mean,
      batchQps: (queries.rows * 1000) / batchMs,
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      buildSeconds,
      indexBytes,
      rssBytes: peakRssBytes(),
    });
  }
}
