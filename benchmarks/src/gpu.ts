/**
 * WebGPU against the CPU backend on one machine: flat-scan bandwidth and
 * AdANNS-IVF search QPS at batch 1, 32 and 1024 over synthetic 768-d
 * vectors (1M by default, for a GPU machine; --n for smaller runs). One JSON
 * line per measure and backend.
 *
 *   npm run bench:gpu [-- --n 1000000 --dim 768 --seconds 2]
 */
import { parseArgs } from 'node:util';
import { intOption } from '@adanns/cli-kit';
import { createBackend, rowBlock, TopK, type Backend } from '@adanns/compute';
import { AdannsIndex } from '@adanns/core';
import { generateSynthetic } from '@adanns/datasets';

const { values: o } = parseArgs({
  options: {
    n: { type: 'string', default: '1000000' },
    dim: { type: 'string', default: '768' },
    seconds: { type: 'string', default: '2' },
    backends: { type: 'string', default: 'webgpu,cpu' },
  },
});
const n = intOption(o.n, 'n');
const dim = intOption(o.dim, 'dim');
const seconds = Number(o.seconds);
if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, got "${o.seconds}"`);

const started = performance.now();
const { base, queries } = generateSynthetic({ n, dim, queries: 1024, clusters: 256, seed: 17 });
const lists = Math.max(16, Math.min(4096, Math.round(Math.sqrt(n))));
const coarseDim = Math.min(64, dim);
const storedDim = Math.min(256, dim);
const spec = `ivf${lists}@${coarseDim},flat@${storedDim}${storedDim < dim ? `,rerank@${dim}` : ''}`;
const params = { nprobe: Math.max(4, Math.round(lists / 64)), coarseDim, scanDim: Math.min(128, dim), shortlist: 100, ...(storedDim < dim ? { rerankDim: dim } : {}) };

/** Calls per second of `fn`, run for about `seconds` after one warm-up call. */
async function rate(fn: () => Promise<unknown>): Promise<number> {
  await fn();
  let calls = 0;
  const t = performance.now();
  while (performance.now() - t < seconds * 1000) {
    await fn();
    calls++;
  }
  return calls / ((performance.now() - t) / 1000);
}

const line = (fields: Record<string, unknown>) => console.log(JSON.stringify(fields));

for (const name of o.backends!.split(',')) {
  let backend: Backend;
  try {
    backend = await createBackend(name);
  } catch (e) {
    line({ backend: name, error: (e as Error).message });
    continue;
  }
  const description = 'description' in backend ? String((backend as { description: string }).description) : `${backend.name}`;
  // flat scan: one query against every vector at full dimension, rows stored in the backend's arena
  const stored = backend.arena.float32(n * dim);
  stored.set(base.data);
  const block = rowBlock(stored, n, dim);
  const scanRate = await rate(() => backend.scanTopK(rowBlock(queries.data, 1, dim), block, dim, 'ip', new TopK(1, 10)));
  line({ backend: name, adapter: description, measure: 'flat-scan', n, dim, GBps: Number(((scanRate * n * dim * 4) / 1e9).toFixed(2)), scansPerSec: Number(scanRate.toFixed(2)) });
  backend.arena.release(stored);

  const buildStart = performance.now();
  const index = await AdannsIndex.build(backend, spec, base.data, n, dim, { metric: 'cosine', maxPointsPerCentroid: 64, seed: 1 });
  line({ backend: name, measure: 'build', spec, seconds: Number(((performance.now() - buildStart) / 1000).toFixed(1)) });
  for (const batch of [1, 32, 1024]) {
    const perSecond = await rate(() => index.search(queries.data.subarray(0, batch * dim), batch, 10, params));
    line({ backend: name, measure: 'search', spec, params, batch, qps: Math.round(perSecond * batch) });
  }
  index.release();
  await backend.dispose();
}
line({ measure: 'total', seconds: Number(((performance.now() - started) / 1000).toFixed(1)) });
