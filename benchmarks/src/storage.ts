/**
 * Storage trade-offs on Fashion-MNIST (cosine, 60,000 x 784, test queries):
 * for flat float32, float16, sq8 and OPQ lists, all with re-rank at 784 from
 * disk, the resident bytes per vector by kind, the bytes on disk and recall@10;
 * then the re-rank's cost read from disk, page cache warm and cold (the file's
 * pages dropped with posix_fadvise DONTNEED through `dd iflag=nocache`,
 * checked with fincore), against the same vectors resident in float32.
 * Prints one JSON line per index and one for the re-rank timing.
 *
 *   node benchmarks/dist/storage.js [--queries 1000] [--lists 256] [--nprobe 8] [--shortlist 100]
 *                                   [--cache .cache] [--dir DIR] [--passes 3]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { intOption } from '@adanns/cli-kit';
import { createBackend } from '@adanns/compute';
import { AdannsIndex, loadIndex, recallAtK, saveIndex } from '@adanns/core';
import { fashionMnist, log } from './fashion-mnist.js';
import { median } from './timing.js';

const { values: o } = parseArgs({
  options: {
    queries: { type: 'string', default: '1000' },
    lists: { type: 'string', default: '256' },
    nprobe: { type: 'string', default: '8' },
    shortlist: { type: 'string', default: '100' },
    passes: { type: 'string', default: '3' },
    cache: { type: 'string', default: '.cache' },
    dir: { type: 'string' },
  },
});
const k = 10;
const lists = intOption(o.lists, 'lists');
const params = { nprobe: intOption(o.nprobe, 'nprobe'), shortlist: intOption(o.shortlist, 'shortlist') };
const passes = intOption(o.passes, 'passes');
const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'adanns-storage-'));
const build = await createBackend('cpu');
const { base, queries, truth } = await fashionMnist(intOption(o.queries, 'queries'), k, o.cache);
const D = base.dim;
const spec = (codec: string, rerank = '') => `pca,ivf${lists}@32,${codec},rerank@${D}${rerank}`;

for (const codec of ['flat@64', 'f16@64', 'sq8@64', 'opq32@64']) {
  log(`building ${spec(codec)}`);
  const index = await AdannsIndex.build(build, spec(codec), base.data, base.rows, D, { metric: 'cosine', seed: 1 });
  const r = await index.search(queries.data, queries.rows, k, params);
  const sizes = index.sizes();
  const perVector = (bytes: number) => Number((bytes / sizes.vectors).toFixed(2));
  const kinds = (['lists', 'codes', 'norms', 'ids', 'centroids', 'rotation', 'codebooks', 'rerank'] as const).filter((kind) => sizes[kind] > 0);
  console.log(JSON.stringify({
    spec: spec(codec),
    params,
    recall: recallAtK(r.ids, k, truth.ids, truth.k, queries.rows, k),
    residentBytesPerVector: perVector(sizes.resident),
    byKind: Object.fromEntries(kinds.map((kind) => [kind, perVector(sizes[kind])])),
    diskBytesPerVector: perVector(sizes.rerankDisk),
  }));
  if (codec === 'flat@64') saveIndex(index, join(dir, 'disk'));
  index.release();
}

// the re-rank from disk against the same index re-ranking resident float32 rows, searched on one thread
log(`building ${spec('flat@64', ':f32')}`);
const resident = await AdannsIndex.build(build, spec('flat@64', ':f32'), base.data, base.rows, D, { metric: 'cosine', seed: 1 });
saveIndex(resident, join(dir, 'memory'));
resident.release();
await build.dispose();
const backend = await createBackend('cpu', { threads: 1 });
const fromDisk = loadIndex(backend, join(dir, 'disk'));
const inMemory = loadIndex(backend, join(dir, 'memory'));
const file = join(dir, 'disk', 'rerank.f32');
const cachedPages = () => execFileSync('fincore', ['--noheadings', '--output', 'RES', file], { encoding: 'utf8' }).trim();
const msPerQuery = async (index: AdannsIndex, before?: () => void): Promise<number> => {
  const times: number[] = [];
  for (let p = 0; p < passes; p++) {
    before?.();
    const t = performance.now();
    await index.search(queries.data, queries.rows, k, params);
    times.push((performance.now() - t) / queries.rows);
  }
  return median(times);
};
await fromDisk.search(queries.data, queries.rows, k, params); // warms the page cache and the code
await inMemory.search(queries.data, queries.rows, k, params);
const memoryMs = await msPerQuery(inMemory);
const warmMs = await msPerQuery(fromDisk);
const warmPages = cachedPages();
let coldPages = '';
const coldMs = await msPerQuery(fromDisk, () => {
  execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
  coldPages = cachedPages();
});
const a = await fromDisk.search(queries.data, queries.rows, k, params);
const b = await inMemory.search(queries.data, queries.rows, k, params);
console.log(JSON.stringify({
  rerank: `${params.shortlist} candidates x ${D} float32 per query, ${queries.rows} queries in one batch, 1 thread, median of ${passes} passes`,
  msPerQuery: { memory: Number(memoryMs.toFixed(4)), diskWarm: Number(warmMs.toFixed(4)), diskCold: Number(coldMs.toFixed(4)) },
  diskReadMsPerQuery: { warm: Number((warmMs - memoryMs).toFixed(4)), cold: Number((coldMs - memoryMs).toFixed(4)) },
  fileCachedBytes: { warm: warmPages, afterDrop: coldPages },
  sameIdsAndScores: a.ids.every((id, i) => id === b.ids[i]) && a.scores.every((s, i) => Object.is(s, b.scores[i])),
}));
fromDisk.release();
inMemory.release();
await backend.dispose();
if (!o.dir) rmSync(dir, { recursive: true, force: true });
