/**
 * Filtered search in the core (issue 18, the index side): for filters of
 * about 50%, 10%, 1% and 0.1% selectivity, each plan a filtered search can
 * take (the cost model's choice, the exact scan of the matches, IVF probing
 * until enough matches) measured on held-out queries: recall@10 against the
 * exact filtered neighbours (brute force over the matching vectors at the
 * full dimension on the reference backend), the fewest hits any query got,
 * mean modelled MFLOPs and the median time per query (one query at a time,
 * median of --passes passes).
 *
 *   npm run build && node benchmarks/dist/filtered-core.js [--data fashion-mnist,synthetic] [--queries 200] [--passes 3]
 *                                           [--params nprobe=8,shortlist=40]
 *
 * Fashion-MNIST (cosine, pca,ivf256@16,flat@128,rerank@784): the filter
 * suite's filters on the class label as payload (labelFilters: a class, a
 * class `any`, a class with an id range). Synthetic (generateSynthetic
 * n=60000, dim=128, 64 clusters, cosine, pca,ivf256@16,flat@64,rerank@128):
 * the same on the cluster label (filters aligned with the geometry), and
 * seeded random id subsets of 10% and 1% (filters unrelated to it). Each
 * filter is prepared once (prepareFilter), as the service does per request.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { intOption } from '@adanns/cli-kit';
import { createBackend, ReferenceBackend, rowBlock, TopK } from '@adanns/compute';
import { AdannsIndex, allowedIdsOf, parseParams, recallAtK, type SearchParams } from '@adanns/core';
import { FASHION_MNIST_DIR, generateSynthetic, loadVectors, readIdx, type VectorSet } from '@adanns/datasets';
import { log } from './fashion-mnist.js';
import { labelFilters } from './suites/filtered.js';
import { median } from './timing.js';

const { values: o } = parseArgs({
  options: {
    data: { type: 'string', default: 'fashion-mnist,synthetic' },
    queries: { type: 'string', default: '200' },
    passes: { type: 'string', default: '3' },
    params: { type: 'string' },
  },
});
const queryCount = intOption(o.queries, 'queries');
const passes = intOption(o.passes, 'passes');
const k = 10;
const backend = await createBackend('cpu');
const reference = new ReferenceBackend();

interface Filter {
  label: string;
  ids: ArrayLike<number>;
}

async function dataSet(name: string): Promise<{ spec: string; params: Partial<SearchParams>; base: VectorSet; queries: VectorSet; filters: Filter[] }> {
  if (name === 'fashion-mnist') {
    const base = await loadVectors('fashion-mnist:train');
    const queries = await loadVectors('fashion-mnist:test', queryCount);
    const labels = Int32Array.from(readIdx(join(FASHION_MNIST_DIR, 'train-labels-idx1-ubyte.gz')).values);
    return { spec: 'pca,ivf256@16,flat@128,rerank@784', params: { nprobe: 8, shortlist: 40 }, base, queries, filters: labelFilters(labels) };
  }
  if (name === 'synthetic') {
    const { base, queries } = generateSynthetic({ n: 60000, dim: 128, clusters: 64, queries: queryCount, noise: 1, seed: 42 });
    const share = (p: number, seed: number) => Array.from({ length: base.rows }, (_, i) => i).filter((i) => ((Math.imul(i + seed, 2654435761) >>> 0) / 2 ** 32) < p);
    return {
      spec: 'pca,ivf256@16,flat@64,rerank@128',
      params: { nprobe: 8, shortlist: 40 },
      base,
      queries,
      filters: [...labelFilters(base.labels!).map((f) => ({ ...f, label: f.label.replace('class', 'cluster') })), { label: 'random 10%', ids: share(0.1, 2) }, { label: 'random 1%', ids: share(0.01, 3) }],
    };
  }
  throw new Error(`--data: unknown data set "${name}" (expected fashion-mnist or synthetic)`);
}

/** Exact filtered top k: brute force over the matching vectors at the full dimension (reference backend). */
async function truthOf(base: VectorSet, queries: VectorSet, ids: ArrayLike<number>): Promise<Float64Array> {
  const rows = new Float32Array(ids.length * base.dim);
  for (let i = 0; i < ids.length; i++) rows.set(base.data.subarray(ids[i] * base.dim, (ids[i] + 1) * base.dim), i * base.dim);
  const best = new TopK(queries.rows, k);
  await reference.scanTopK(rowBlock(queries.data, queries.rows, base.dim), rowBlock(rows, ids.length, base.dim), base.dim, 'cosine', best, Int32Array.from(ids));
  best.sort();
  const out = new Float64Array(queries.rows * k).fill(-1);
  for (let q = 0; q < queries.rows; q++) for (let i = 0; i < best.sizes[q]; i++) out[q * k + i] = best.ids[q * k + i];
  return out;
}

async function run(name: string): Promise<void> {
  const ds = await dataSet(name);
  const { base, queries } = ds;
  const params = o.params ? parseParams(o.params) : ds.params;
  let started = performance.now();
  const index = await AdannsIndex.build(backend, ds.spec, base.data, base.rows, base.dim, { metric: 'cosine', seed: 1 });
  log(`${name}: built ${ds.spec} over ${base.rows} vectors in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const timed = async (options: Parameters<AdannsIndex['search']>[4]) => {
    // one query at a time, each pass timed whole: µs per query, median over passes
    const perQuery: number[] = [];
    for (let pass = 0; pass < passes; pass++) {
      const t = performance.now();
      for (let q = 0; q < queries.rows; q++) await index.search(queries.data.subarray(q * base.dim, (q + 1) * base.dim), 1, k, params, options);
      perQuery.push(((performance.now() - t) * 1000) / queries.rows);
    }
    return median(perQuery);
  };
  const unfiltered = await index.search(queries.data, queries.rows, k, params);
  console.log(`\n## ${name}: ${ds.spec} (cosine), params ${JSON.stringify(params)}, ${queries.rows} queries, k = ${k}\n`);
  console.log(`unfiltered: ${(unfiltered.mflops.reduce((a, b) => a + b, 0) / queries.rows).toFixed(3)} MFLOPs/query, ${(await timed({})).toFixed(0)} µs/query\n`);
  console.log('| filter | matches | plan | recall@10 | fewest hits | MFLOPs/query | µs/query (median) | exact scan of matches, MFLOPs |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const filter of ds.filters) {
    // the slot mask once per filter, not again in each timed search
    const prepared = index.prepareFilter(allowedIdsOf(Array.from(filter.ids)));
    started = performance.now();
    const truth = await truthOf(base, queries, filter.ids);
    log(`${filter.label}: truth in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    for (const plan of [undefined, 'exact', 'probe'] as const) {
      const options = { filter: prepared, filterPlan: plan };
      const r = await index.search(queries.data, queries.rows, k, params, options);
      const truthK = Math.min(k, filter.ids.length);
      const recall = truthK > 0 ? recallAtK(r.ids, k, truth, k, queries.rows, truthK) : 1;
      const mflops = r.mflops.reduce((a, b) => a + b, 0) / queries.rows;
      console.log(`| ${filter.label} | ${r.filter!.matches} | ${plan ? `${r.filter!.plan} (forced)` : r.filter!.plan} | ${recall.toFixed(4)} | ${Math.min(...r.counts)} | ${mflops.toFixed(3)} | ${(await timed(options)).toFixed(0)} | ${r.filter!.predicted.exact.toFixed(3)} |`);
    }
  }
  index.release();
}

for (const name of (o.data ?? '').split(',').filter(Boolean)) await run(name);
await backend.dispose();
