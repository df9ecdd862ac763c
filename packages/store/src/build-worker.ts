import { readFileSync, writeFileSync } from 'node:fs';
import { createBackend } from '@adanns/compute';
import { AdannsIndex, AUTO_SPEC, formatSpec, PcaTransform, readArrayFile, type Calibration, type VectorReader } from '@adanns/core';
import { readArtefact, writeArtefact } from './artefacts.js';
import { applyChanges } from './catch-up.js';
import { PointStore } from './points.js';
import { decodeQuantiser, encodeQuantiser, quantiserOf } from './quantiser.js';
import { collectionRerankStore } from './rerank.js';
import { indexRowsInPlace } from './vectors.js';

/**
 * Trains and fills an index in a child process, so searches and writes go on
 * while it runs (and a build that runs out of memory takes only itself down):
 * reads a snapshot of the collection's points, builds with calibration,
 * writes the artefact, and reports its name and the sequence it covers. The
 * server loads it, replays later changes and swaps it in. A process rather
 * than a worker thread also keeps Dawn (WebGPU) and worker threads apart,
 * which crash when a thread starts after a Dawn device exists.
 */
export interface BuildJob {
  lmdbPath: string;
  artefactDir: string;
  /** Index spec; null = `auto` (chosen for the snapshot: core planner/auto.ts). */
  spec: string | null;
  dims: number[];
  metric: 'cosine' | 'ip' | 'l2';
  backend: string;
  threads?: number;
  seed: number;
  /** Time bound of the calibration sweep that makes budgets work. */
  calibrationSeconds: number;
  /** The k values calibrated (default 1, 10, 100). */
  calibrationKs?: number[];
  /** An array file of calibration queries the user gave (index form: unit rows for cosine); absent: held-out points. */
  calibrationQueries?: string;
  /**
   * Re-calibrate the live index instead of building one: load this artefact
   * (CURRENT's), replay the change log into it, calibrate, and report the
   * calibration (the server adopts it if that artefact is still live).
   */
  recalibrate?: { artefact: string };
  /** A shared quantiser file (quantiser.ts): its spec, PCA and coarse centroids are used, not trained (cluster shards). */
  quantiser?: string;
  /** Write the trained quantiser (quantiser.ts) here as soon as the stages are trained, before the vectors are added, and say so ('quantiser'). */
  exportQuantiser?: string;
  /** Vectors the index is for when more than the snapshot's (spec `auto` sizes its lists by it: a cluster shard training the collection's quantiser). */
  countHint?: number;
}

export type BuildMessage =
  | { type: 'progress'; stage: string; done: number; total: number }
  | { type: 'done'; name: string; sequence: number; count: number; spec: string; reason: string | null; buildSeconds: number; calibrationSeconds: number }
  | { type: 'calibrated'; artefact: string; calibration: Calibration; sequence: number }
  | { type: 'quantiser'; path: string }
  | { type: 'failed'; message: string };

const job = JSON.parse(process.argv[2]) as BuildJob;
const parent = process.ppid;

/**
 * Whether the server that started this build still runs. Linux reports the
 * live parent in /proc/self/stat (an orphan is re-parented at once); elsewhere
 * the parent pid is probed.
 */
function parentAlive(): boolean {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent;
  } catch {
    try {
      process.kill(parent, 0);
      return true;
    } catch {
      return false;
    }
  }
}

// The server is gone (crashed or killed): nobody will adopt the result, and
// it restarts the build itself when it comes back. The IPC disconnect arrives
// only when the event loop polls, which a build's compute may not let it do for
// long, so every progress report checks the parent too.
process.on('disconnect', () => process.exit(0));
setInterval(() => {
  if (!parentAlive()) process.exit(0);
}, 1000).unref();
const post = (m: BuildMessage) => {
  if (!process.connected || !parentAlive()) process.exit(0);
  process.send!(m);
};

/** The calibration queries the user gave, if any (the sweep leaves out the ks the index is too small for). */
function givenQueries(): { queries: Float32Array; queryRows: number } | undefined {
  if (!job.calibrationQueries) return undefined;
  const { array, shape } = readArrayFile(job.calibrationQueries, 'f32', [-1, -1]);
  return { queries: array, queryRows: shape[0] };
}

/**
 * Re-calibration without a rebuild: the live index as the server holds it
 * (its artefact brought up to date from the change log), on the user's
 * queries, else on the held-out points of its build still stored (never
 * trained on), else a sample of stored vectors.
 */
async function recalibrate(artefact: string): Promise<void> {
  const { store } = PointStore.open(job.lmdbPath);
  try {
    const backend = await createBackend(job.backend, job.threads === undefined ? {} : { threads: job.threads });
    const rerankStore = collectionRerankStore((iids, d, out) => {
      store.readVectors(iids, d, out);
      indexRowsInPlace(out, iids.length, d, job.metric);
    });
    const found = readArtefact(backend, job.artefactDir, { rerankStore });
    if (!found || found.name !== artefact) throw new Error(`the live index changed (artefact ${found?.name ?? 'none'}, not ${artefact}) before re-calibration started`);
    const { index } = found;
    const touched = store.changedSince(found.sequence);
    if (!touched) throw new Error(`the change log was pruned past ${found.sequence}`);
    const sequence = store.sequence;
    await applyChanges(index, store, touched, index.dim, job.metric);
    let queries: { queries: Float32Array; queryRows: number; queryIds?: Float64Array } | undefined = givenQueries();
    const held = index.calibration?.queryIds?.filter((id) => index.has(id)) ?? [];
    if (!queries && held.length >= 2) {
      const data = new Float32Array(held.length * index.dim);
      store.readVectors(held, index.dim, data);
      queries = { queries: indexRowsInPlace(data, held.length, index.dim, job.metric), queryRows: held.length, queryIds: Float64Array.from(held) };
    }
    // ground truth (and a stored sample) read the collection's vectors when the index keeps none at the full dimension
    const vectors: VectorReader | undefined = index.fullVectors()
      ? undefined
      : (slots, out) => {
          store.readVectors(index.idsOf(slots), index.dim, out);
          indexRowsInPlace(out, slots.length, index.dim, job.metric);
        };
    const calibration = await index.calibrate({ ks: job.calibrationKs, maxSeconds: job.calibrationSeconds, seed: job.seed, vectors, ...queries, onProgress: (done, total) => post({ type: 'progress', stage: 'calibrate', done, total }) });
    index.release();
    await backend.dispose();
    post({ type: 'calibrated', artefact, calibration, sequence });
  } finally {
    await store.close();
  }
}

async function build(): Promise<void> {
  const { store } = PointStore.open(job.lmdbPath);
  const snapshot = store.snapshot();
  await store.close();
  const count = snapshot.iids.length;
  if (count === 0) throw new Error('the collection has no points to build an index from');
  const dim = snapshot.data.length / count;
  const shared = job.quantiser ? decodeQuantiser(readFileSync(job.quantiser), dim, job.metric) : undefined;
  const spec = shared?.spec ?? job.spec ?? AUTO_SPEC;
  const backend = await createBackend(job.backend, job.threads === undefined ? {} : { threads: job.threads });
  const started = performance.now();
  // the same form the server's index holds (unit rows for cosine)
  const rows = indexRowsInPlace(snapshot.data, count, dim, job.metric);
  const rowOf = new Map<number, number>();
  snapshot.iids.forEach((iid, row) => rowOf.set(iid, row));
  const index = await AdannsIndex.build(backend, spec, rows, count, dim, {
    metric: job.metric,
    ids: snapshot.iids,
    seed: job.seed,
    autoDims: job.dims,
    ...(job.countHint && job.countHint > count ? { count: job.countHint } : {}),
    ...(shared?.pca ? { pca: new PcaTransform(dim, shared.pca.components, shared.pca.variances, shared.pca.mean) } : {}),
    ...(shared?.centroids ? { coarseCentroids: shared.centroids } : {}),
    ...(job.exportQuantiser
      ? {
          onTrained: (trained: AdannsIndex) => {
            const q = quantiserOf(trained);
            if (!q) return;
            writeFileSync(job.exportQuantiser!, encodeQuantiser(q));
            post({ type: 'quantiser', path: job.exportQuantiser! });
          },
        }
      : {}),
    onProgress: (stage, done, total) => post({ type: 'progress', stage, done, total }),
    // re-rank (and calibration's ground truth) read the snapshot; the saved index records that the collection keeps the vectors
    rerankStore: collectionRerankStore((iids, d, out) => {
      for (let i = 0; i < iids.length; i++) {
        const row = rowOf.get(iids[i])!;
        out.set(rows.subarray(row * dim, row * dim + d), i * d);
      }
    }),
    // on the user's queries, else on points drawn before training and left out of it (still indexed);
    // ground truth reads the snapshot's rows when the index keeps no full vectors
    calibrate: { ks: job.calibrationKs, maxSeconds: job.calibrationSeconds, ...givenQueries() },
  });
  const calibrationSeconds = index.calibration?.seconds ?? 0;
  const buildSeconds = (performance.now() - started) / 1000 - calibrationSeconds;
  const name = writeArtefact(index, job.artefactDir, snapshot.sequence, count);
  await backend.dispose();
  post({ type: 'done', name, sequence: snapshot.sequence, count, spec: formatSpec(index.spec), reason: index.choice?.reason ?? null, buildSeconds, calibrationSeconds });
}

try {
  if (job.recalibrate) await recalibrate(job.recalibrate.artefact);
  else await build();
} catch (e) {
  post({ type: 'failed', message: (e as Error).message });
}
