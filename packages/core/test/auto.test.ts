import { describe, expect, it } from 'vitest';
import { ReferenceBackend } from '@adanns/compute';
import { generateSynthetic, memoryStream } from '@adanns/datasets';
import { AdannsIndex, buildFromStream, calibrationGrid, chooseAutoSpec, exactNeighbours, isAutoSpec, loadIndex, parseSpec, recallAtK, saveIndex } from '../src/index.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// `index: "auto"` reads the spectrum and a small trial: a decaying
// (Matryoshka-like) spectrum gets a short scan prefix and a re-rank, a flat one
// scans at (or near) the full dimension, and the build keeps recall 0.99
// reachable on held-out queries.

const backend = new ReferenceBackend();
const dim = 32;
const n = 6000;
const sets = {
  decaying: generateSynthetic({ n, dim, decay: 1.2, clusters: 40, queries: 100, seed: 11 }),
  flat: generateSynthetic({ n, dim, decay: 0, clusters: 300, noise: 0.6, queries: 100, seed: 12 }),
};

describe('auto spec', () => {
  it('recognises "auto" and nothing else', () => {
    expect(isAutoSpec('auto')).toBe(true);
    expect(isAutoSpec(' Auto ')).toBe(true);
    expect(isAutoSpec('pca,ivf8@8,flat@16')).toBe(false);
    expect(() => parseSpec('auto', dim)).toThrow(/unknown token "auto"/);
  });

  it('chooses a short scan prefix with a re-rank on a decaying spectrum', async () => {
    const { base } = sets.decaying;
    const choice = await chooseAutoSpec(backend, base.data, n, dim, { metric: 'cosine', seed: 1 });
    const spec = parseSpec(choice.spec, dim);
    expect(spec.transform).toBe('pca');
    expect(spec.scan.dim).toBeLessThanOrEqual(dim / 2);
    expect(spec.rerank?.dim).toBe(dim);
    expect(choice.spectrum.find((s) => s.dim === 8)!.share).toBeGreaterThan(0.5);
    expect(choice.reason).toMatch(/decaying/);
  });

  it('scans at (or near) the full dimension on a flat spectrum', async () => {
    const { base } = sets.flat;
    const choice = await chooseAutoSpec(backend, base.data, n, dim, { metric: 'cosine', seed: 1 });
    const spec = parseSpec(choice.spec, dim);
    expect(spec.scan.dim).toBeGreaterThanOrEqual(dim / 2);
    expect(choice.spectrum.find((s) => s.dim === 8)!.share).toBeLessThan(0.4);
    expect(choice.reason).toMatch(/flat spectrum/);
  });

  it('prices funnel plans (a scan at a shorter prefix, a stage at d_s from the lists) and chooses the cheapest plan at 0.95 among plain and funnel ones', async () => {
    // 64-d: prefixes 16 and 32 below a d_s of 32 or 64 to scan at
    const wide = 64;
    const { base } = generateSynthetic({ n, dim: wide, decay: 1.2, clusters: 40, queries: 1, seed: 13 });
    const choice = await chooseAutoSpec(backend, base.data, n, wide, { metric: 'cosine', seed: 1 });
    const funnels = choice.candidates.filter((c) => c.funnelScanDim !== undefined);
    expect(funnels.length).toBeGreaterThan(0);
    for (const c of funnels) {
      expect(c.funnelScanDim!).toBeLessThan(c.scanDim);
      expect(c.scanDim).toBeLessThan(wide);
    }
    expect(funnels.some((c) => c.mflops[0.95] !== null)).toBe(true);
    const reachable = choice.candidates.filter((c) => c.mflops[0.95] !== null && c.mflops[0.99] !== null);
    const cheapest = reachable.reduce((a, b) => (b.mflops[0.95]! < a.mflops[0.95]! ? b : a));
    const spec = parseSpec(choice.spec, wide);
    expect(spec.scan.dim).toBe(cheapest.scanDim);
    expect(spec.coarse?.dim).toBe(cheapest.coarseDim);
    if (cheapest.funnelScanDim !== undefined) expect(choice.reason).toMatch(/funnel stage/);
  });

  it('an exact scan for a small collection', async () => {
    const { base } = sets.flat;
    const choice = await chooseAutoSpec(backend, base.data, 500, dim, { metric: 'l2' });
    expect(choice.spec).toBe('flat');
    expect(choice.reason).toMatch(/exact scan/);
  });

  it('a streaming build chooses as the in-memory one does (the trial queries\' neighbours found over the whole source)', async () => {
    const { base } = sets.decaying;
    const inMemory = await chooseAutoSpec(backend, base.data, n, dim, { metric: 'l2', seed: 4 });
    const streamed = await buildFromStream(backend, 'auto', memoryStream({ name: 'decaying', data: base.data, rows: n, dim }), { metric: 'l2', seed: 4, chunkRows: 1000 });
    expect(streamed.choice?.reason).toMatch(/exact neighbours among all 6000 vectors/);
    expect(parseSpec(inMemory.spec, dim).scan.dim).toBeLessThanOrEqual(dim / 2);
    expect(streamed.spec.scan.dim).toBeLessThanOrEqual(dim / 2);
    expect(streamed.size).toBe(n);
  });

  for (const [name, set] of Object.entries(sets)) {
    it(`${name}: the built index reaches recall@10 0.99 on held-out queries at a point of its calibration grid, and keeps its reason when saved`, async () => {
      const { base, queries } = set;
      const index = await AdannsIndex.build(backend, 'auto', base.data, n, dim, { metric: 'cosine', seed: 2 });
      expect(index.choice?.reason).toBeTruthy();
      const truth = await exactNeighbours(backend, base.data, n, queries.data, queries.rows, dim, 'cosine', 10);
      // the calibration grid's most thorough points (every list, each shortlist): what calibration would measure there
      const grid = calibrationGrid(index, 10);
      const most = Math.max(...grid.map((p) => p.nprobe));
      let best = 0;
      for (const p of grid.filter((g) => g.nprobe === most && g.scanDim === index.spec.scan.dim && g.coarseDim === index.spec.coarse!.dim)) {
        const r = await index.search(queries.data, queries.rows, 10, p);
        best = Math.max(best, recallAtK(r.ids, 10, truth.ids, 10, queries.rows, 10));
      }
      expect(best).toBeGreaterThanOrEqual(0.99);
      const dir = mkdtempSync(join(tmpdir(), 'adanns-auto-'));
      try {
        saveIndex(index, dir);
        expect(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).spec).not.toBe('auto');
        expect(loadIndex(backend, dir).choice).toEqual(index.choice);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
