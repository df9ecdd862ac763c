import { createBackend } from '@adanns/compute';
import { AdannsIndex } from '@adanns/core';
import { writeArtefact } from './artefacts.js';
import { PointStore } from './points.js';
import { defaultSpec } from './schema.js';

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
const post = (m: BuildMessage) => process.send!(m);
// the server is gone (crashed or killed): nobody will adopt the result
process.on('disconnect', () => process.exit(0));

try {
  const { store } = PointStore.open(job.lmdbPath);
  const snapshot = store.snapshot();
  await store.close();
  const count = snapshot.iids.length;
  if (count === 0) throw new Error('the collection has no points to build an index from');
  const spec = job.spec ?? defaultSpec(count, job.dims);
  const backend = await createBackend(job.backend, job.threads === undefined ? {} : { threads: job.threads });
  let started = performance.now();
  const index = await AdannsIndex.build(backend, spec, snapshot.data, count, snapshot.data.length / count, {
    metric: job.metric,
    ids: snapshot.iids,
    seed: job.seed,
    onProgress: (stage, done, total) => post({ type: 'progress', stage, done, total }),
  });
  const buildSeconds = (performance.now() - started) / 1000;
  started = performance.now();
  await index.calibrate({ maxSeconds: job.calibrationSeconds, seed: job.seed, onProgress: (done, total) => post({ type: 'progress', stage: 'calibrate', done, total }) });
  const calibrationSeconds = (performance.now() - started) / 1000;
  const name = writeArtefact(index, job.artefactDir, snapshot.sequence);
  await backend.dispose();
  post({ type: 'done', name, sequence: snapshot.sequence, count, spec, buildSeconds, calibrationSeconds });
} catch (e) {
  post({ type: 'failed', message: (e as Error).message });
}
