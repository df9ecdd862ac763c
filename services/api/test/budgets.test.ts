import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AdannsClient, type IndexStats } from '@adanns/client';
import { createRng } from '@adanns/compute';
import { loadConfig, serve } from '../src/index.js';

// Budgets and automatic builds as a user meets them: the default configuration, over a loopback socket.

const dirs: string[] = [];
const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const stop of stops) await stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A server with the default configuration (one thread, no logs). */
async function start(): Promise<AdannsClient> {
  const dir = mkdtempSync(join(tmpdir(), 'adanns-budgets-'));
  dirs.push(dir);
  const { url, stop } = await serve({ ...loadConfig([], {}), host: '127.0.0.1', port: 0, dataDir: dir, threads: 1, logLevel: 'silent' });
  stops.push(stop);
  return new AdannsClient(url);
}

/** Unit vectors around 60 random centres (clustered, like embeddings). */
function clustered(rows: number, dim: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const centres = Float32Array.from({ length: 60 * dim }, () => rng.normal());
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const c = rng.int(60);
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += (out[r * dim + d] = centres[c * dim + d] + 0.6 * rng.normal()) ** 2;
    for (let d = 0; d < dim; d++) out[r * dim + d] /= Math.sqrt(norm);
  }
  return out;
}

/** Exact cosine top-k ids (rows of unit vectors). */
function exactTopK(base: Float32Array, queries: Float32Array, dim: number, k: number): number[][] {
  const n = base.length / dim;
  return Array.from({ length: queries.length / dim }, (_, q) => {
    const scores = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let d = 0; d < dim; d++) s += base[i * dim + d] * queries[q * dim + d];
      scores[i] = s;
    }
    return Array.from(scores.keys())
      .sort((a, b) => scores[b] - scores[a] || a - b)
      .slice(0, k);
  });
}

describe('budgets and automatic builds through the service', () => {
  it('trains on all of a 30,000-point import, and budgetMet agrees with what each answer measured', async () => {
    const client = await start();
    const dim = 16;
    const n = 30_000;
    // 200 more from the same clusters, never stored: the queries
    const all = clustered(n + 200, dim, 1);
    const base = all.subarray(0, n * dim);
    await client.createCollection('bulk', { dim });
    for (let from = 0; from < n; from += 1000) {
      await client.upsert('bulk', Array.from({ length: 1000 }, (_, i) => ({ id: from + i, vector: Array.from(base.subarray((from + i) * dim, (from + i + 1) * dim)) })));
      // past the automatic threshold (10,000) the build waits for the import to go quiet
      expect((await client.indexStatus('bulk')).state).toBe('none');
    }
    let index: IndexStats;
    for (let waited = 0; (index = await client.indexStatus('bulk')).state !== 'ready'; waited += 200) {
      if (waited > 50_000) throw new Error(`the automatic build did not finish: ${JSON.stringify(index)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(index).toMatchObject({ state: 'ready', trainedCount: n, rebuildAdvised: false, lastError: null });

    const queries = all.subarray(n * dim);
    const rows = Array.from({ length: 200 }, (_, q) => Array.from(queries.subarray(q * dim, (q + 1) * dim)));
    const truth = exactTopK(base, queries, dim, 10);
    // a recall budget at the calibrated k: claimed, and held on queries calibration never saw
    for (const target of [0.8, 0.9]) {
      const answer = await client.searchBatch('bulk', rows, { k: 10, budget: { recall: target } });
      let hits = 0;
      answer.results.forEach((r, q) => (hits += r.filter((h) => truth[q].includes(h.id as number)).length));
      const achieved = hits / (10 * rows.length);
      expect(answer.budgetMet, `recall ${target}: ${answer.note}`).toBe(true);
      expect(answer.planned).toMatchObject({ k: 10 });
      expect(answer.planned!.recall).toBeGreaterThanOrEqual(target);
      expect(achieved, `recall ${target}`).toBeGreaterThanOrEqual(target - 0.02);
    }
    // at a k not calibrated (collections calibrate at 1, 10 and 100): planned from the ks around it, not claimed
    const otherK = await client.search('bulk', rows[0], { k: 20, budget: { recall: 0.8 } });
    expect(otherK.budgetMet).toBe(false);
    expect(otherK.note).toMatch(/recall at k = 20 is not calibrated \(calibrated k: 1, 10, 100\): planned on the lower of the recalls at k = 10 and 100/);

    // MFLOPs (per query) and latency budgets: met exactly when the answer's own figures are within them
    const frontier = (await client.getCollection('bulk')).frontier!;
    const mflops = frontier[Math.floor(frontier.length / 3)].mflops;
    let spent = 0;
    for (const row of rows.slice(0, 50)) {
      const answer = await client.search('bulk', row, { k: 10, budget: { mflops } });
      expect(answer.budgetMet).toBe(answer.mflops <= mflops);
      spent += answer.mflops;
      const timed = await client.search('bulk', row, { k: 10, budget: { latencyMs: 0.5 } });
      expect(timed.budgetMet).toBe(timed.tookMs <= 0.5);
      expect(timed.planned!.latencyMs).toBeGreaterThan(0);
    }
    const planned = (await client.search('bulk', rows[0], { k: 10, budget: { mflops } })).planned!;
    expect(Math.abs(planned.mflops - spent / 50) / (spent / 50)).toBeLessThan(0.3);
    const tight = await client.search('bulk', rows[0], { k: 10, budget: { mflops: 1e-6 } });
    expect(tight).toMatchObject({ budgetMet: false, note: expect.stringMatching(/over the budget of 0.000001/) });
  }, 90_000);

  it('answers the README quick start: two points get no index, and say so', async () => {
    const client = await start();
    await client.createCollection('docs', { dim: 4, metric: 'cosine' });
    await client.upsert('docs', [
      { id: 1, vector: [1, 0, 0, 0], payload: { title: 'a' } },
      { id: 'two', vector: [0, 1, 0, 0] },
    ]);
    const building = await client.buildIndex('docs');
    expect(building).toMatchObject({ state: 'exact', lastError: null, note: 'too few points (2) for an index: calibrating one needs at least 11; searches are exact' });
    expect(await client.indexStatus('docs')).toMatchObject({ state: 'exact' });
    const answer = await client.search('docs', [1, 0.1, 0, 0], { k: 2, budget: { recall: 0.95 } });
    expect(answer.results[0].map((h) => h.id)).toEqual([1, 'two']);
    expect(answer).toMatchObject({ params: null, expectedRecall: 1, budgetMet: true, note: 'exact search over all 2 points: too few points (2) for an index: calibrating one needs at least 11; searches are exact' });
  });
});
