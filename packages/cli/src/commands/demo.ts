import { parseArgs } from 'node:util';
import { AdannsIndex, formatParams, recallAtK, type SearchParams } from '@adanns/core';
import { generateSynthetic } from '@adanns/datasets';
import { BACKEND_FLAGS, backendOptions, openBackend, intOption, parseOrUsage, progressBars } from '@adanns/cli-kit';

export const demoUsage = `adanns demo [--n N] [--dim D] [--queries Q] ${BACKEND_FLAGS}
  Builds an AdANNS-IVF index on the synthetic Matryoshka set and searches it at
  several compute settings, printing recall@10, modelled MFLOPs and time for each.`;

/** The settings the demo sweeps, from cheapest to most thorough. */
const SETTINGS: Array<{ label: string; params: Partial<SearchParams> }> = [
  { label: 'tiny', params: { coarseDim: 8, nprobe: 1, scanDim: 16, shortlist: 10 } },
  { label: 'small', params: { coarseDim: 16, nprobe: 2, scanDim: 32, shortlist: 50, rerankDim: 64 } },
  { label: 'medium', params: { coarseDim: 32, nprobe: 4, scanDim: 32, shortlist: 100 } },
  { label: 'large', params: { coarseDim: 32, nprobe: 8, scanDim: 64, shortlist: 200 } },
  { label: 'thorough', params: { coarseDim: 32, nprobe: 24, scanDim: 64, shortlist: 200 } },
  { label: 'exhaustive', params: { coarseDim: 32, nprobe: 128, scanDim: 64, shortlist: 200 } },
];

export async function demoCommand(argv: string[]): Promise<void> {
  const o = parseOrUsage(() => parseArgs({ args: argv, options: {
    n: { type: 'string' },
    dim: { type: 'string' },
    queries: { type: 'string' },
    ...backendOptions,
  } }).values);
  const n = intOption(o.n, 'n', 20000);
  const dim = intOption(o.dim, 'dim', 128);
  const queryCount = intOption(o.queries, 'queries', 500);
  const k = 10;
  const backend = await openBackend(o);
  const { base, queries } = generateSynthetic({ n, dim, queries: queryCount, clusters: 100, noise: 1.5, seed: 7 });
  const spec = `ivf128@32,flat@64,rerank@${dim}`;
  console.log(`adanns demo: ${n} synthetic Matryoshka vectors of dim ${dim}, ${queryCount} queries, cosine, backend ${backend.name}`);
  const bars = progressBars();
  let started = performance.now();
  const index = await AdannsIndex.build(backend, spec, base.data, base.rows, base.dim, { metric: 'cosine', onProgress: bars.update });
  bars.stop();
  console.log(`built ${spec} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  started = performance.now();
  const truth = await index.exactSearch(queries.data, queries.rows, k);
  const exactMs = (performance.now() - started) / queries.rows;
  console.log(`exact search (brute force at ${dim} dims): ${((n * dim) / 1e6).toFixed(2)} MFLOPs/query, ${exactMs.toFixed(3)} ms/query\n`);
  console.log(`${'setting'.padEnd(11)} ${'params'.padEnd(66)} recall@10  MFLOPs/query  ms/query`);
  for (const { label, params } of SETTINGS) {
    const t = performance.now();
    const r = await index.search(queries.data, queries.rows, k, params);
    const ms = (performance.now() - t) / queries.rows;
    const recall = recallAtK(r.ids, k, truth.ids, k, queries.rows, k);
    const mflops = r.mflops.reduce((a, b) => a + b, 0) / queries.rows;
    console.log(`${label.padEnd(11)} ${formatParams(r.params).padEnd(66)} ${recall.toFixed(4).padStart(9)}  ${mflops.toFixed(4).padStart(12)}  ${ms.toFixed(3).padStart(8)}`);
  }
}
