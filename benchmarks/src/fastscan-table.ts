/**
 * 4-bit fast-scan PQ against 8-bit PQ at equal bytes on Fashion-MNIST
 * (cosine): the same PCA, IVF lists, probes, shortlist and exact re-rank at
 * 784 from float32 rows in memory, only the scan codec differs (pq{M} against
 * pq{2M}x4, M bytes per vector). Prints a Markdown table of recall@10,
 * modelled MFLOPs, single-query microseconds (median over passes of the mean)
 * and batched microseconds per query, on one thread. Ground truth is exact
 * and cached.
 *
 *   node benchmarks/dist/fastscan-table.js [--queries 1000] [--single 300] [--base 60000] [--lists 256] [--bytes 8,16] [--scan 64] [--nprobes 4,8,16] [--shortlists 20,50,100,200] [--passes 5] [--cache .cache]
 */
import { parseArgs } from 'node:util';
import { intOption } from '@adanns/cli-kit';
import { createBackend } from '@adanns/compute';
import { AdannsIndex, recallAtK, type SearchParams } from '@adanns/core';
import { loadVectors } from '@adanns/datasets';
import { cachedGroundTruth } from './bench-data.js';
import { log } from './fashion-mnist.js';
import { median, MIN_PASSES } from './timing.js';

const { values: o } = parseArgs({
  options: {
    queries: { type: 'string', default: '1000' },
    single: { type: 'string', default: '300' },
    base: { type: 'string', default: '60000' },
    lists: { type: 'string', default: '256' },
    bytes: { type: 'string', default: '8,16' },
    scan: { type: 'string', default: '64' },
    cache: { type: 'string', default: '.cache' },
    passes: { type: 'string', default: '5' },
    nprobes: { type: 'string', default: '4,8,16' },
    shortlists: { type: 'string', default: '20,50,100,200' },
  },
});
const queryCount = intOption(o.queries, 'queries');
const singleCount = intOption(o.single, 'single');
const baseRows = intOption(o.base, 'base');
const lists = intOption(o.lists, 'lists');
const scanDim = intOption(o.scan, 'scan');
const byteBudgets = o.bytes!.split(',').map((b) => intOption(b, 'bytes'));
const passes = intOption(o.passes, 'passes');
if (passes < MIN_PASSES) throw new Error(`--passes must be at least ${MIN_PASSES}, got ${passes}`);
const k = 10;
const backend = await createBackend('cpu', { threads: 1 });
const base = await loadVectors('fashion-mnist:train', baseRows);
const queries = await loadVectors('fashion-mnist:test', queryCount);
log(`exact ground truth for ${queries.rows} queries over ${base.rows} vectors (cached in ${o.cache})`);
const truth = await cachedGroundTruth(base, queries, 'cosine', k, o.cache!);
const D = base.dim;

interface Row { spec: string; params: SearchParams; recall: number; mflops: number; singleUs: number; batchUs: number; codeBytes: number; buildS: number }
const rows: Row[] = [];

async function build(spec: string): Promise<{ spec: string; index: AdannsIndex; buildS: number }> {
  log(`building ${spec}`);
  const started = performance.now();
  const index = await AdannsIndex.build(backend, spec, base.data, base.rows, D, { metric: 'cosine', seed: 1 });
  return { spec, index, buildS: (performance.now() - started) / 1000 };
}

/**
 * Both indexes of a byte budget at each setting, their timed passes
 * interleaved (8-bit pass, fast-scan pass, ...), so load from other
 * processes falls on both alike; each figure is the median over passes.
 */
async function compare(pair: Array<{ spec: string; index: AdannsIndex; buildS: number }>, settings: Array<Partial<SearchParams>>): Promise<void> {
  const singles = Math.min(singleCount, queries.rows);
  for (const given of settings) {
    const single: number[][] = pair.map(() => []);
    const batch: number[][] = pair.map(() => []);
    for (const { index } of pair) {
      // warm-up: one batch and a few single queries
      await index.search(queries.data, queries.rows, k, given);
      for (let i = 0; i < Math.min(singles, 20); i++) await index.search(queries.data.subarray(i * D, (i + 1) * D), 1, k, given);
    }
    for (let pass = 0; pass < passes; pass++) {
      for (let x = 0; x < pair.length; x++) {
        const { index } = pair[x];
        let t = performance.now();
        for (let i = 0; i < singles; i++) await index.search(queries.data.subarray(i * D, (i + 1) * D), 1, k, given);
        single[x].push(((performance.now() - t) * 1000) / singles);
        t = performance.now();
        await index.search(queries.data, queries.rows, k, given);
        batch[x].push(((performance.now() - t) * 1000) / queries.rows);
      }
    }
    for (let x = 0; x < pair.length; x++) {
      const { spec, index, buildS } = pair[x];
      const r = await index.search(queries.data, queries.rows, k, given);
      const recall = recallAtK(r.ids, k, truth.ids, truth.k, queries.rows, k);
      rows.push({ spec, params: r.params, recall, mflops: r.mflops.reduce((a, b) => a + b, 0) / queries.rows, singleUs: median(single[x]), batchUs: median(batch[x]), codeBytes: index.sizes().codes, buildS });
      log(`${spec} ${JSON.stringify(given)} recall ${recall.toFixed(4)} single ${median(single[x]).toFixed(0)} us`);
    }
  }
}

const settings: Array<Partial<SearchParams>> = [];
const list = (text: string, flag: string) => text.split(',').map((v) => intOption(v, flag));
for (const nprobe of list(o.nprobes!, 'nprobes')) for (const shortlist of list(o.shortlists!, 'shortlists')) settings.push({ nprobe, shortlist });
for (const m of byteBudgets) {
  const pair = [await build(`pca,ivf${lists}@32,pq${m}@${scanDim},rerank@${D}:f32`), await build(`pca,ivf${lists}@32,pq${2 * m}x4@${scanDim},rerank@${D}:f32`)];
  await compare(pair, settings);
  for (const { index } of pair) index.release();
}

console.log(
  `Fashion-MNIST, cosine: ${base.rows} base vectors, ${queries.rows} test queries (single-query timing on the first ${Math.min(singleCount, queries.rows)}), exact top-${k} ground truth; ` +
    `backend ${backend.name}, 1 thread; times are medians of ${passes} timed passes, the two codecs' passes interleaved.\n`,
);
console.log('| spec | nprobe | shortlist | recall@10 | MFLOPs/query | single-query us | batched us/query | list codes MiB | build s |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| \`${r.spec}\` | ${r.params.nprobe} | ${r.params.shortlist} | ${r.recall.toFixed(4)} | ${r.mflops.toFixed(3)} | ${r.singleUs.toFixed(0)} | ${r.batchUs.toFixed(1)} | ${(r.codeBytes / 2 ** 20).toFixed(2)} | ${r.buildS.toFixed(1)} |`,
  );
}
await backend.dispose();
