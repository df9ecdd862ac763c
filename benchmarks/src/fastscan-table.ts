/**
 * 4-bit fast-scan PQ against 8-bit PQ at equal bytes on Fashion-MNIST
 * (cosine): the same PCA, IVF lists, probes, shortlist and exact re-rank at
 * 784 from float32 rows in memory, only the scan codec differs (pq{M} against
 * pq{2M}x4, M bytes per vector). Prints a Markdown table of recall@10,
 * modelled MFLOPs, single-query microseconds (median over passes of the mean)
 * and batched microseconds per query, on one thread. Ground truth is exact
 * and cached.
 *
 *   node benchmarks/dist/fastscan-table.js [--queries 1000] [--single 300] [--base 60000] [--lists 256] [--bytes 8,16] [--cache .cache]
 */
import { parseArgs } from 'node:util';
import { intOption } from '@adanns/cli-kit';
import { createBackend } from '@adanns/compute';
import { AdannsIndex, recallAtK, type SearchParams } from '@adanns/core';
import { loadVectors } from '@adanns/datasets';
import { cachedGroundTruth } from './bench-data.js';
import { log } from './fashion-mnist.js';
import { medianMs, MIN_PASSES, timeSingleQueries } from './timing.js';

const { values: o } = parseArgs({
  options: {
    queries: { type: 'string', default: '1000' },
    single: { type: 'string', default: '300' },
    base: { type: 'string', default: '60000' },
    lists: { type: 'string', default: '256' },
    bytes: { type: 'string', default: '8,16' },
    scan: { type: 'string', default: '64' },
    cache: { type: 'string', default: '.cache' },
  },
});
const queryCount = intOption(o.queries, 'queries');
const singleCount = intOption(o.single, 'single');
const baseRows = intOption(o.base, 'base');
const lists = intOption(o.lists, 'lists');
const scanDim = intOption(o.scan, 'scan');
const byteBudgets = o.bytes!.split(',').map((b) => intOption(b, 'bytes'));
const k = 10;
const backend = await createBackend('cpu', { threads: 1 });
const base = await loadVectors('fashion-mnist:train', baseRows);
const queries = await loadVectors('fashion-mnist:test', queryCount);
log(`exact ground truth for ${queries.rows} queries over ${base.rows} vectors (cached in ${o.cache})`);
const truth = await cachedGroundTruth(base, queries, 'cosine', k, o.cache!);
const D = base.dim;

interface Row { spec: string; params: SearchParams; recall: number; mflops: number; singleUs: number; batchUs: number; codeBytes: number; buildS: number }
const rows: Row[] = [];

async function sweep(spec: string, settings: Array<Partial<SearchParams>>): Promise<void> {
  log(`building ${spec}`);
  const started = performance.now();
  const index = await AdannsIndex.build(backend, spec, base.data, base.rows, D, { metric: 'cosine', seed: 1 });
  const buildS = (performance.now() - started) / 1000;
  const codeBytes = index.sizes().codes;
  for (const given of settings) {
    const r = await index.search(queries.data, queries.rows, k, given);
    const batchUs = ((await medianMs(() => index.search(queries.data, queries.rows, k, given), MIN_PASSES)) * 1000) / queries.rows;
    const single = await timeSingleQueries(Math.min(singleCount, queries.rows), MIN_PASSES, (i) => index.search(queries.data.subarray(i * D, (i + 1) * D), 1, k, given));
    const recall = recallAtK(r.ids, k, truth.ids, truth.k, queries.rows, k);
    rows.push({ spec, params: r.params, recall, mflops: r.mflops.reduce((a, b) => a + b, 0) / queries.rows, singleUs: 1e6 / single.qps, batchUs, codeBytes, buildS });
    log(`${spec} ${JSON.stringify(given)} recall ${recall.toFixed(4)} single ${(1e6 / single.qps).toFixed(0)} us`);
  }
  index.release();
}

const settings: Array<Partial<SearchParams>> = [];
for (const nprobe of [4, 8, 16]) for (const shortlist of [20, 50, 100]) settings.push({ nprobe, shortlist });
for (const m of byteBudgets) {
  await sweep(`pca,ivf${lists}@32,pq${m}@${scanDim},rerank@${D}:f32`, settings);
  await sweep(`pca,ivf${lists}@32,pq${2 * m}x4@${scanDim},rerank@${D}:f32`, settings);
}

console.log(
  `Fashion-MNIST, cosine: ${base.rows} base vectors, ${queries.rows} test queries (single-query timing on the first ${Math.min(singleCount, queries.rows)}), exact top-${k} ground truth; ` +
    `backend ${backend.name}, 1 thread; times are medians of ${MIN_PASSES} timed passes.\n`,
);
console.log('| spec | nprobe | shortlist | recall@10 | MFLOPs/query | single-query us | batched us/query | list codes MiB | build s |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| \`${r.spec}\` | ${r.params.nprobe} | ${r.params.shortlist} | ${r.recall.toFixed(4)} | ${r.mflops.toFixed(3)} | ${r.singleUs.toFixed(0)} | ${r.batchUs.toFixed(1)} | ${(r.codeBytes / 2 ** 20).toFixed(2)} | ${r.buildS.toFixed(1)} |`,
  );
}
await backend.dispose();
