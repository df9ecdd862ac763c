/** Fashion-MNIST (cosine) with cached exact ground truth, shared by the measurement scripts. */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '@adanns/compute';
import { exactNeighbours } from '@adanns/core';
import { loadVectors, readIvecs, writeIvecs, type IdMatrix, type VectorSet } from '@adanns/datasets';

export const log = (msg: string): void => {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

export async function fashionMnist(backend: Backend, queryCount: number, k: number, cacheDir: string): Promise<{ base: VectorSet; queries: VectorSet; truth: IdMatrix }> {
  const base = await loadVectors('fashion-mnist:train');
  const queries = await loadVectors('fashion-mnist:test', queryCount);
  mkdirSync(cacheDir, { recursive: true });
  const gtPath = join(cacheDir, `fashion-mnist-cosine-top${k}-q${queries.rows}.ivecs`);
  if (!existsSync(gtPath)) {
    log(`computing exact ground truth for ${queries.rows} queries -> ${gtPath}`);
    const { ids } = await exactNeighbours(backend, base.data, base.rows, queries.data, queries.rows, base.dim, 'cosine', k);
    writeIvecs(gtPath, ids, queries.rows, k);
  }
  return { base, queries, truth: readIvecs(gtPath) };
}

