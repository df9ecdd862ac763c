import { readFileSync } from 'node:fs';
import { createBackend } from '@adanns/compute';
import { AdannsIndex, type VectorReader } from '@adanns/core';
import { writeArtefact } from './artefacts.js';
import { PointStore } from './points.js';
import { CALIBRATION_K, defaultSpec } from './schema.js';
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
  /** Index spec; null = defaultSpec for the snapshot's size. */
  spec: string | null;
  dims: number[];
  metric: 'cosine' | 'ip' | 'l2';
  backend: string;
  threads?: number;
  seed: number;
  /** Time bound of the calibration sweep that makes budgets work. */
  calibrationSeconds: number;
}

export type BuildMessage =
  | { type: 'progress'; stage: string; done: number; total: number }
  | { type: 'done'; name: string; sequence: number; count: number; spec: string; buildSeconds: number; calibrationSeconds: number }
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

try {
  const { store } = PointStore.open(job.lmdbPath);
  const snapshot = store.snapshot();
  await store.close();
  const count = snapshot.iids.length;
  if (count === 0) throw new Error('the collection has no points to build an index from');
  const spec = job.spec ?? defaultSpec(count, job.dims);
  const backend = await createBackend(job.backend, job.threads === undefined ? {} : { threads: job.threads });
  let started = performance.now();
  const dim = snapshot.data.length / count;
  // the same form the server's index holds (unit rows for cosine)
  const rows = indexRowsInPlace(snapshot.data, count, dim, job.metric);
  const rowOf = new Map<number, number>();
  snapshot.iids.forEach((iid, row) => rowOf.set(iid, row));
  const index = await AdannsIndex.build(backend, spec, rows, count, dim, {
    metric: job.metric,
    ids: snapshot.iids,
    seed: job.seed,
    onProgress: (stage, done, total) => post({ type: 'progress', stage, done, total }),
    // re-rank (and calibration's ground truth) read the snapshot; the saved index records that the collection keeps the vectors
    rerankStore: collectionRerankStore((iids, d, out) => {
      for (let i = 0; i < iids.length; i++) {
        const row = rowOf.get(iids[i])!;
        out.set(rows.subarray(row * dim, row * dim + d), i * d);
      }
    }),
  });
  const buildSeconds = (performance.now() - started) / 1000;
  started = performance.now();
  // exact ground truth: the snapshot's rows when the index keeps no full vectors (slot = row in a fresh build)
  const vectors: VectorReader | undefined = index.fullVectors() ? undefined : (slots, out) => {
    for (let i = 0; i < slots.length; i++) out.set(rows.subarray(slots[i] * dim, (slots[i] + 1) * dim), i * dim);
  };
  await index.calibrate({ k: CALIBRATION_K, maxSeconds: job.calibrationSeconds, seed: job.seed, vectors, onProgress: (done, total) => post({ type: 'progress', stage: 'calibrate', done, total }) });
  const calibrationSeconds = (performance.now() - started) / 1000;
  const name = writeArtefact(index, job.artefactDir, snapshot.sequence, count);
  await backend.dispose();
  post({ type: 'done', name, sequence: snapshot.sequence, count, spec, buildSeconds, calibrationSeconds });
} catch (e) {
  post({ type: 'failed', message: (e as Error).message });
}
