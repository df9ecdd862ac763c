/**
 * The paper's scale on this machine: generates a seeded Matryoshka-like set of
 * a given shape on disk (default 1,281,167 x 2048, the ImageNet-1K shape, plus
 * 1,000 queries, with exact ground truth computed in chunks), builds a spec
 * from it by streaming (train on a sample, then add chunk by chunk), saves and
 * reloads the index, and prints one JSON line: rows, dim, spec, build seconds,
 * peak RSS, resident bytes per vector by kind, on-disk bytes, recall@10 and
 * single-thread QPS (median of 3 passes) at each --params.
 *
 *   npm run bench:scale [-- --rows 1281167 --dim 2048 --queries 1000 --spec SPEC
 *                          --params nprobe=8 --params nprobe=32 --dir DIR --threads N]
 *
 * The data set is cached in DIR (default .cache/scale-<shape>); the index is
 * rebuilt on every run.
 */
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { intOption, intOptions, parseOrUsage, progressBars, UsageError } from '@adanns/cli-kit';
import { createBackend, defaultThreads, parseMetric } from '@adanns/compute';
import { buildFromStream, loadIndex, parseParams, recallAtK, saveIndex } from '@adanns/core';
import { loadVectors, openVectors, readIvecs } from '@adanns/datasets';
import { prepareScaleData } from './scale-data.js';
import { median, peakRssBytes } from './timing.js';

const { values: o } = parseOrUsage(() =>
  parseArgs({
    options: {
      rows: { type: 'string', default: '1281167' },
      dim: { type: 'string', default: '2048' },
      queries: { type: 'string', default: '1000' },
      clusters: { type: 'string', default: '1000' },
      seed: { type: 'string', default: '11' },
      metric: { type: 'string', default: 'cosine' },
      spec: { type: 'string' },
      params: { type: 'string', multiple: true },
      dir: { type: 'string' },
      threads: { type: 'string' },
      k: { type: 'string', default: '10' },
    },
  }),
);
const { rows, dim, queries: queryCount, clusters, seed, k } = intOptions(o, ['rows', 'dim', 'queries', 'clusters', 'seed', 'k']);
const metric = parseMetric(o.metric!);
const threads = o.threads === undefined ? defaultThreads() : intOption(o.threads, 'threads');
// lists ~ sqrt(N), a power of two; clusters at the shortest useful prefix, a compact scan code, re-rank from disk
const lists = 2 ** Math.round(Math.log2(Math.sqrt(rows)));
const spec = o.spec ?? `ivf${lists}@16,sq8@64,rerank@${dim}`;
const paramSets = (o.params ?? ['nprobe=8,shortlist=100', 'nprobe=32,shortlist=200']).map((text) => {
  try {
    return parseParams(text);
  } catch (e) {
    throw new UsageError(`--params "${text}": ${(e as Error).message}`);
  }
});
const dir = o.dir ?? join('.cache', `scale-n${rows}-d${dim}-c${clusters}-s${seed}`);
const { basePath, queryPath, truthPath } = await prepareScaleData({ rows, dim, queries: queryCount, clusters, seed, metric, k, dir });
const queries = await loadVectors(queryPath);
const truth = readIvecs(truthPath);
const bars = progressBars();

// the streaming build, on `threads` threads, then saved
const indexDir = join(dir, 'index');
rmSync(indexDir, { recursive: true, force: true });
mkdirSync(indexDir, { recursive: true });
const rssBeforeBuild = peakRssBytes();
const buildBackend = await createBackend('cpu', { threads });
const started = performance.now();
const source = await openVectors(basePath);
const built = await buildFromStream(buildBackend, spec, source, { metric, seed: 1, onProgress: bars.update, rerankDir: indexDir });
bars.stop();
const buildSeconds = (performance.now() - started) / 1000;
const peakRss = peakRssBytes();
const sizes = built.sizes();
saveIndex(built, indexDir);
built.release();
await source.close();
await buildBackend.dispose();

// searches on one thread, from the saved index
const backend = await createBackend('cpu', { threads: 1 });
const index = await loadIndex(backend, indexDir);
const serving = index.sizes();
const searches = [];
for (const params of paramSets) {
  const one = async (): Promise<{ seconds: number; ids: Float64Array; mflops: number }> => {
    const ids = new Float64Array(queries.rows * k);
    let mflops = 0;
    const t = performance.now();
    for (let q = 0; q < queries.rows; q++) {
      const r = await index.search(queries.data.subarray(q * dim, (q + 1) * dim), 1, k, params);
      ids.set(r.ids, q * k);
      mflops += r.mflops[0];
    }
    return { seconds: (performance.now() - t) / 1000, ids, mflops: mflops / queries.rows };
  };
  await one(); // warm-up
  const passes = [await one(), await one(), await one()];
  const seconds = median(passes.map((p) => p.seconds));
  searches.push({
    params: index.resolveParams(k, params),
    recall: Number(recallAtK(passes[0].ids, k, truth.ids, truth.k, queries.rows, k).toFixed(4)),
    mflops: Number(passes[0].mflops.toFixed(3)),
    qps: Math.round(queries.rows / seconds),
  });
}
index.release();
await backend.dispose();

const diskBytes = readdirSync(indexDir).reduce((sum, name) => sum + statSync(join(indexDir, name)).size, 0);
console.log(
  JSON.stringify({
    bench: 'scale',
    rows,
    dim,
    queries: queries.rows,
    metric,
    spec,
    buildThreads: threads,
    buildSeconds: Number(buildSeconds.toFixed(1)),
    peakRssBytes: peakRss,
    rssBeforeBuildBytes: rssBeforeBuild,
    residentBytes: sizes.resident,
    // every kind the index holds, per vector (rerankDisk is on disk, not resident)
    bytesPerVector: Object.fromEntries(Object.entries(sizes).filter(([kind]) => kind !== 'vectors').map(([kind, bytes]) => [kind, Number((bytes / rows).toFixed(2))])),
    diskBytes,
    // the loaded index holds its lists at their exact sizes (a build's lists carry growth headroom)
    servingBytesPerVector: Number((serving.resident / rows).toFixed(2)),
    searchThreads: 1,
    searches,
  }),
);
