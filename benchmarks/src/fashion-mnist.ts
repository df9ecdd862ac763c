/** Fashion-MNIST (cosine) with cached exact ground truth, shared by the measurement scripts. */
import { loadVectors, type IdMatrix, type VectorSet } from '@adanns/datasets';
import { cachedGroundTruth } from './bench-data.js';

export const log = (msg: string): void => {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

export async function fashionMnist(queryCount: number, k: number, cacheDir: string): Promise<{ base: VectorSet; queries: VectorSet; truth: IdMatrix }> {
  const base = await loadVectors('fashion-mnist:train');
  const queries = await loadVectors('fashion-mnist:test', queryCount);
  log(`exact ground truth for ${queries.rows} queries (cached in ${cacheDir})`);
  return { base, queries, truth: await cachedGroundTruth(base, queries, 'cosine', k, cacheDir) };
}
