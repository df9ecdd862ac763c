import { describe, expect, it } from 'vitest';
import { ReferenceBackend, WasmSimdBackend } from '@adanns/compute';
import { generateSynthetic } from '@adanns/datasets';
import { AdannsIndex } from '../src/index.js';

// A PQ scan reads its codebooks, rotation and references from copies in the
// backend's arena: those are counted once, from the build on, so an index's
// size does not change when it is first searched.
const dim = 16;
const n = 400;
const { base, queries } = generateSynthetic({ n, dim, clusters: 6, queries: 3, decay: 0.5, seed: 11 });

describe('AdannsIndex.sizes', () => {
  for (const [name, make] of [['reference', async () => new ReferenceBackend()], ['wasm-simd', () => WasmSimdBackend.create({ threads: 1 })]] as const) {
    for (const spec of ['ivf4@16,pq4@16', 'ivf4@16,opq4@16', 'opq4@16']) {
      it(`${spec} on ${name}: the same before and after a search, each codebook counted once`, async () => {
        const backend = await make();
        const index = await AdannsIndex.build(backend, spec, base.data, n, dim, { metric: 'l2', seed: 1, opqIterations: 1, kmeansIterations: 3 });
        const before = index.sizes();
        await index.search(queries.data, queries.rows, 3, index.resolveParams(3, index.spec.coarse ? { nprobe: 2 } : {}));
        expect(index.sizes()).toEqual(before);
        // 256 centroids x d_s floats, plus (OPQ) the rotation, (IVF) the residual references and rotated ones, and the M + 1 sub-space bounds
        const lists = index.spec.coarse?.lists ?? 0;
        const rotated = spec.startsWith('ivf4@16,opq');
        expect(before.codebooks).toBe(4 * (256 * dim + lists * dim * (rotated ? 2 : 1) + 5));
        await backend.dispose();
      });
    }
  }
});
