import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WasmSimdBackend } from '@adanns/compute';
import { Store, type CollectionOptions } from '../src/index.js';
import { randomMatrix } from '../../compute/test/naive.js';

// A collection's index re-ranks from the vectors its LMDB already holds:
// no re-rank copy in the artefact or in memory, exact scores of the stored
// vectors, the same answers after a restart.

let backend: WasmSimdBackend;
let options: CollectionOptions;
const dir = mkdtempSync(join(tmpdir(), 'adanns-store-rerank-'));
const dim = 16;
const vectors = randomMatrix(1200, dim, 93);
const queries = randomMatrix(10, dim, 94);

beforeAll(async () => {
  backend = await WasmSimdBackend.create({ threads: 1 });
  options = { backend, backendName: 'cpu', threads: 1, autoBuildAt: 0 };
});
afterAll(async () => {
  await backend.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('collection re-rank from LMDB', () => {
  it('keeps no re-rank copy, scores the stored vectors exactly, and answers the same after a restart', async () => {
    const spec = 'ivf8@4,flat@8,rerank@16';
    let store = await Store.open(dir, options);
    const c = await store.create('lmdb', { dim, metric: 'l2', index: spec });
    await c.upsert(Array.from({ length: 1200 }, (_, i) => ({ id: i, vector: Array.from(vectors.subarray(i * dim, (i + 1) * dim)) })));
    await c.build();
    const bytes = c.stats().index.bytes!;
    expect(bytes.rerank).toBe(0);
    expect(bytes.rerankDisk).toBe(0);
    expect(bytes.residentPerVector).toBeGreaterThan(0);
    const indexDir = join(dir, 'collections', 'lmdb', 'index');
    const artefact = join(indexDir, readFileSync(join(indexDir, 'CURRENT'), 'utf8').trim());
    expect(existsSync(join(artefact, 'rerank.f32'))).toBe(false);
    expect(JSON.parse(readFileSync(join(artefact, 'manifest.json'), 'utf8')).rerank).toEqual({ storage: 'external', dim: 16 });

    // re-ranked at D from LMDB: every score is the exact distance to the stored vector of the id it names
    const params = { nprobe: 3, shortlist: 30 };
    const search = async () => {
      const answer = await store.get('lmdb').search(Array.from({ length: 10 }, (_, q) => Array.from(queries.subarray(q * dim, (q + 1) * dim))), { k: 5, params });
      return answer.results.map((hits) => hits.map((h) => [h.id as number, h.score]));
    };
    const first = await search();
    first.forEach((hits, q) => {
      for (const [id, score] of hits) {
        let d = 0;
        for (let j = 0; j < dim; j++) d += (queries[q * dim + j] - vectors[id * dim + j]) ** 2;
        expect(Math.abs(score + d)).toBeLessThan(1e-5);
      }
    });
    await store.close();
    store = await Store.open(dir, options);
    expect(store.get('lmdb').stats().index.state).toBe('ready');
    expect(await search()).toEqual(first);
    await store.close();
  });
});
