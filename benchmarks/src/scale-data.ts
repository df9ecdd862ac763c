import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { progressBars } from '@adanns/cli-kit';
import { createBackend, defaultThreads, type Metric } from '@adanns/compute';
import { exactNeighboursOf } from '@adanns/core';
import { createNpyWriter, loadVectors, openVectors, syntheticChunks, writeIvecs } from '@adanns/datasets';

export interface ScaleDataOptions {
  rows: number;
  dim: number;
  queries: number;
  clusters: number;
  seed: number;
  metric: Metric;
  k: number;
  dir: string;
}

/**
 * The data set of bench:scale, made once and cached in `dir`: base.npy and
 * queries.npy written chunk by chunk from the seeded synthetic generator
 * (never whole in memory), and the exact ground truth over the base streamed
 * back from disk in chunks, on every core.
 */
export async function prepareScaleData(o: ScaleDataOptions): Promise<{ basePath: string; queryPath: string; truthPath: string }> {
  mkdirSync(o.dir, { recursive: true });
  const basePath = join(o.dir, 'base.npy');
  const queryPath = join(o.dir, 'queries.npy');
  const truthPath = join(o.dir, `gt-${o.metric}-k${o.k}.ivecs`);
  const bars = progressBars();
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  if (!existsSync(basePath) || !existsSync(queryPath)) {
    const started = performance.now();
    const base = createNpyWriter(basePath, [o.rows, o.dim], '<f4');
    const queries = createNpyWriter(queryPath, [o.queries, o.dim], '<f4');
    for (const chunk of syntheticChunks({ n: o.rows, dim: o.dim, clusters: o.clusters, queries: o.queries, seed: o.seed }, 16384)) {
      (chunk.part === 'base' ? base : queries).append(chunk.data);
      if (chunk.part === 'base') bars.update('generate', chunk.from + chunk.rows, o.rows);
    }
    base.close();
    queries.close();
    bars.stop();
    log(`generated ${o.rows} x ${o.dim} (+${o.queries} queries) in ${((performance.now() - started) / 1000).toFixed(0)} s into ${o.dir}`);
  }
  if (!existsSync(truthPath)) {
    const started = performance.now();
    const queries = await loadVectors(queryPath);
    const backend = await createBackend('cpu', { threads: defaultThreads() });
    const base = await openVectors(basePath);
    try {
      const truth = await exactNeighboursOf(backend, base.chunks(32768), base.rows, queries.data, queries.rows, o.dim, o.metric, o.k, (d, t) => bars.update('groundtruth', d, t));
      bars.stop();
      writeIvecs(truthPath, truth.ids, queries.rows, o.k);
    } finally {
      await base.close();
      await backend.dispose();
    }
    log(`ground truth in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
  return { basePath, queryPath, truthPath };
}
