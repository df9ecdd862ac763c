/**
 * Rigid IVF against AdANNS-IVF on Fashion-MNIST (cosine): recall@10 and
 * modelled MFLOPs per query over a sweep of (d_c, d_s, nprobe), printed as a
 * Markdown table. Exact ground truth is computed once and cached.
 *
 *   node benchmarks/dist/ivf-table.js [--queries 1000] [--lists 256] [--cache .cache]
 */
import { parseArgs } from 'node:util';
import { intOption } from '@adanns/cli-kit';
import { createBackend } from '@adanns/compute';
import { AdannsIndex, recallAtK, type SearchParams } from '@adanns/core';
import { fashionMnist, log } from './fashion-mnist.js';
import { medianMs, MIN_PASSES } from './timing.js';

const { values: o } = parseArgs({
  options: {
    queries: { type: 'string', default: '1000' },
    lists: { type: 'string', default: '256' },
    cache: { type: 'string', default: '.cache' },
  },
});
const queryCount = intOption(o.queries, 'queries');
const lists = intOption(o.lists, 'lists');
const k = 10;
const backend = await createBackend('cpu');
const { base, queries, truth } = await fashionMnist(queryCount, k, o.cache);

interface Row { system: string; spec: string; params: SearchParams; recall: number; mflops: number; ms: number; buildS: number }
const rows: Row[] = [];

async function sweep(system: string, spec: string, settings: Array<Partial<SearchParams>>): Promise<void> {
  log(`building ${spec}`);
  const started = performance.now();
  const index = await AdannsIndex.build(backend, spec, base.data, base.rows, base.dim, { metric: 'cosine' });
  const buildS = (performance.now() - started) / 1000;
  log(`built ${spec} in ${buildS.toFixed(1)} s`);
  for (const given of settings) {
    const r = await index.search(queries.data, queries.rows, k, given);
    const ms = (await medianMs(() => index.search(queries.data, queries.rows, k, given), MIN_PASSES)) / queries.rows;
    const recall = recallAtK(r.ids, k, truth.ids, truth.k, queries.rows, k);
    rows.push({ system, spec, params: r.params, recall, mflops: r.mflops.reduce((a, b) => a + b, 0) / queries.rows, ms, buildS });
    log(`${spec} ${JSON.stringify(r.params)} recall ${recall.toFixed(4)}`);
  }
  index.release();
}

const nprobes = [1, 2, 4, 8, 16, 32];
await sweep('rigid IVF', `ivf${lists}@784,flat@784`, nprobes.map((nprobe) => ({ nprobe })));
for (const dc of [16, 32, 64]) {
  const settings: Array<Partial<SearchParams>> = [];
  for (const ds of [32, 64, 128]) for (const nprobe of nprobes) settings.push({ nprobe, scanDim: ds });
  await sweep('AdANNS-IVF', `pca,ivf${lists}@${dc},flat@128`, settings);
}
await sweep('AdANNS-IVF + re-rank', `pca,ivf${lists}@32,flat@64,rerank@784`, nprobes.map((nprobe) => ({ nprobe, shortlist: 100 })));

console.log(`Fashion-MNIST, cosine: ${base.rows} base vectors, ${queries.rows} test queries, exact top-${k} ground truth; ${lists} lists; backend ${backend.name} (WebAssembly SIMD kernels), batched search, ms/query the median of ${MIN_PASSES} timed passes.\n`);
console.log('| system | spec | d_c | d_s | nprobe | re-rank | recall@10 | MFLOPs/query | ms/query | build s |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const p = r.params;
  console.log(
    `| ${r.system} | \`${r.spec}\` | ${p.coarseDim} | ${p.scanDim} | ${p.nprobe} | ${p.rerankDim ? `${p.shortlist}@${p.rerankDim}` : '-'} | ${r.recall.toFixed(4)} | ${r.mflops.toFixed(3)} | ${r.ms.toFixed(3)} | ${r.buildS.toFixed(1)} |`,
  );
}
