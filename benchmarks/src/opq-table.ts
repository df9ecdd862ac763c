/**
 * Rigid OPQ (d = 784) against AdANNS-OPQ (PCA, best prefix d per byte budget
 * M chosen on calibration queries), alone and behind IVF, on Fashion-MNIST
 * (cosine): recall@10 and 1-NN label accuracy at M = 8, 16, 32, 64 bytes.
 *
 *   node benchmarks/dist/opq-table.js [--queries 1000] [--bytes 8,16,32,64] [--lists 256] [--nprobe 16]
 */
import { parseArgs } from 'node:util';
import { intOption } from '@adanns/cli-kit';
import { createBackend } from '@adanns/compute';
import { AdannsIndex, formatSpec, recallAtK, selectQuantizedDim, type BuildOptions } from '@adanns/core';
import { loadVectors } from '@adanns/datasets';
import { fashionMnist, log } from './fashion-mnist.js';
import { top1Accuracy } from './quality.js';

const { values: o } = parseArgs({
  options: {
    queries: { type: 'string', default: '1000' },
    bytes: { type: 'string', default: '8,16,32,64' },
    lists: { type: 'string', default: '256' },
    nprobe: { type: 'string', default: '16' },
    cache: { type: 'string', default: '.cache' },
  },
});
const k = 10;
const queryCount = intOption(o.queries, 'queries');
const byteBudgets = o.bytes.split(',').map((b) => intOption(b, 'bytes'));
const lists = intOption(o.lists, 'lists');
const nprobe = intOption(o.nprobe, 'nprobe');
const backend = await createBackend('cpu');
const { base, queries, truth } = await fashionMnist(queryCount, k, o.cache);
// calibration queries: the last 500 test images, disjoint from the evaluated ones
const test = await loadVectors('fashion-mnist:test');
const calibration = test.data.subarray((test.rows - 500) * test.dim);
if (queryCount > test.rows - 500) throw new Error(`--queries must leave 500 test images for calibration (at most ${test.rows - 500})`);

// Training budget that keeps 784-d OPQ training practical on a CPU (stated in the output).
const build: BuildOptions = { metric: 'cosine', opqIterations: 4, pqTrainSize: 16_384, kmeansIterations: 10, maxPointsPerCentroid: 64 };

interface Row { system: string; spec: string; bytes: number; recall: number; top1: number; mflops: number; buildS: number; note: string }
const rows: Row[] = [];
async function measure(system: string, index: AdannsIndex, bytes: number, buildS: number, note = ''): Promise<void> {
  const r = await index.search(queries.data, queries.rows, k, index.spec.coarse ? { nprobe } : {});
  rows.push({
    system,
    spec: formatSpec(index.spec),
    bytes,
    recall: recallAtK(r.ids, k, truth.ids, truth.k, queries.rows, k),
    top1: top1Accuracy(r.ids, k, base.labels!, queries.labels!),
    mflops: r.mflops.reduce((a, b) => a + b, 0) / queries.rows,
    buildS,
    note,
  });
  log(`${system} ${rows.at(-1)!.spec}: recall ${rows.at(-1)!.recall.toFixed(4)}, top-1 ${rows.at(-1)!.top1.toFixed(4)}`);
}

for (const m of byteBudgets) {
  for (const [system, rigid, template] of [
    ['OPQ', `opq${m}@784`, `pca,opq${m}@${m}`],
    ['IVF-OPQ', `ivf${lists}@784,opq${m}@784`, `pca,ivf${lists}@32,opq${m}@${m}`],
  ] as const) {
    log(`building rigid ${rigid}`);
    let t = performance.now();
    const rigidIndex = await AdannsIndex.build(backend, rigid, base.data, base.rows, base.dim, build);
    await measure(`rigid ${system}`, rigidIndex, m, (performance.now() - t) / 1000);
    rigidIndex.release();
    t = performance.now();
    const chosen = await selectQuantizedDim(backend, template, base.data, base.rows, base.dim, {
      ...build,
      queries: calibration,
      queryRows: 500,
      k,
      dims: [8, 16, 32, 64, 128, 256],
      params: template.includes('ivf') ? { nprobe } : {},
      onCandidate: (c, spec) => log(`  calibration ${spec}: recall ${c.recall.toFixed(4)}`),
    });
    const tried = chosen.candidates.map((c) => `${c.dim}:${c.recall.toFixed(3)}`).join(' ');
    await measure(`AdANNS-${system}`, chosen.index, m, (performance.now() - t) / 1000, `best d = ${chosen.best.dim} of ${tried} (calibration recall)`);
    chosen.index.release();
  }
}

console.log(`Fashion-MNIST, cosine: ${base.rows} base vectors, ${queries.rows} test queries (exact top-${k}), 500 other test images for calibration.`);
console.log(`Training: OPQ ${build.opqIterations} iterations, PQ on ${build.pqTrainSize} vectors, k-means ${build.kmeansIterations} iterations on ${build.maxPointsPerCentroid} points per list; IVF nprobe = ${nprobe} of ${lists}. CPU backend.\n`);
console.log('| system | spec | bytes | recall@10 | 1-NN accuracy | MFLOPs/query | build s (AdANNS: all candidates) | choice |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.system} | \`${r.spec}\` | ${r.bytes} | ${r.recall.toFixed(4)} | ${r.top1.toFixed(4)} | ${r.mflops.toFixed(3)} | ${r.buildS.toFixed(0)} | ${r.note} |`);
}
