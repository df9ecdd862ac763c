import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { generateSynthetic, loadVectors } from '@adanns/datasets';
import { benchCommand } from '../src/index.js';
import { filteredTruth, labelFilters } from '../src/suites/filtered.js';
import type { Results } from '../src/row.js';

const dir = mkdtempSync(join(tmpdir(), 'adanns-filter-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('label filters', () => {
  it('uses class equality, class any and class plus an id range to reach each selectivity', () => {
    // ten classes of 100 rows each, interleaved (row i has class i % 10)
    const labels = Int32Array.from({ length: 1000 }, (_, i) => i % 10);
    const [half, tenth, hundredth, thousandth] = labelFilters(labels);
    expect(half.label).toBe('class any [0, 1, 2, 3, 4]');
    expect(half.ids.length).toBe(500);
    expect(tenth.label).toBe('class = 0');
    expect(Array.from(tenth.ids.slice(0, 3))).toEqual([0, 10, 20]);
    expect(hundredth.ids.length).toBe(10);
    expect(hundredth.label).toBe('class = 0 and id < 91');
    expect(thousandth.ids.length).toBe(1);
    for (const f of [half, tenth, hundredth, thousandth]) for (const id of f.ids) expect(f.label.includes('any') || labels[id] === 0).toBe(true);
  });
});

describe('filtered ground truth', () => {
  it('is the exact top k among the matching rows, and is cached', async () => {
    const { base, queries } = generateSynthetic({ n: 300, dim: 8, queries: 5, seed: 7 });
    const ids = Int32Array.from({ length: 300 }, (_, i) => i).filter((i) => i % 7 === 3);
    const truth = await filteredTruth(base, queries, 'cosine', 5, ids, dir);
    const cos = (q: number, r: number) => {
      let dot = 0;
      let nq = 0;
      let nr = 0;
      for (let j = 0; j < 8; j++) {
        const a = queries.data[q * 8 + j];
        const b = base.data[r * 8 + j];
        dot += a * b;
        nq += a * a;
        nr += b * b;
      }
      return dot / Math.sqrt(nq * nr);
    };
    for (let q = 0; q < 5; q++) {
      const expected = [...ids].sort((a, b) => cos(q, b) - cos(q, a)).slice(0, 5);
      expect(Array.from(truth.slice(q * 5, q * 5 + 5))).toEqual(expected);
    }
    expect(readdirSync(dir).filter((f) => f.startsWith('gt-filtered-'))).toHaveLength(1);
    expect(Array.from(await filteredTruth(base, queries, 'cosine', 5, ids, dir))).toEqual(Array.from(truth));
    // fewer matches than k: the rest is -1
    const few = await filteredTruth(base, queries, 'cosine', 5, Int32Array.from([4, 9]), dir);
    expect(Array.from(few.slice(0, 5)).slice(2)).toEqual([-1, -1, -1]);
    expect(new Set(few.slice(0, 2))).toEqual(new Set([4, 9]));
  });
});

describe('adanns bench --filter-suite', () => {
  it('runs end to end on a tiny synthetic set', async () => {
    const out = join(dir, 'run');
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      await benchCommand(['--filter-suite', '--synthetic', 'n=600,dim=16,clusters=6,queries=20,seed=3', '--latency-queries', '5', '--out', out]);
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Results;
    // no unfiltered truth is computed for the filtered suite alone
    expect(readdirSync(out).filter((f) => /^gt-[0-9a-f]+\.ivecs$/.test(f))).toEqual([]);
    expect(readdirSync(out).filter((f) => f.startsWith('gt-filtered-'))).toHaveLength(4);
    const bySel = new Map<number, typeof results.rows>();
    for (const r of results.rows) {
      expect(r.selectivity, r.system).toBeDefined();
      bySel.set(r.selectivity!, [...(bySel.get(r.selectivity!) ?? []), r]);
    }
    // the filters on the set's cluster labels, most matching first; at 0.1% of 600 rows one row matches, fewer than k
    const { labels } = await loadVectors('synthetic:n=600,dim=16,clusters=6,queries=20,seed=3');
    const expected = labelFilters(labels!).map((f) => f.ids.length);
    expect([...bySel.values()].map((rows) => rows[0].matches)).toEqual(expected);
    expect(expected.at(-1)).toBe(1);
    expect(expected[0] / 600).toBeGreaterThan(0.3);
    for (const rows of bySel.values()) {
      const m = rows[0].matches!;
      const systems = new Set(rows.map((r) => r.system));
      for (const s of ['adanns-ivf', 'adanns-budget', 'exact-matches', 'hnswlib']) expect(systems, s).toContain(s);
      // the exact scan of the matches (fast backend) agrees with the truth (reference backend) and is charged matches x D
      // (not exactly 1 only where float rounding reorders near-ties between the fast and the reference kernels)
      const exact = rows.find((r) => r.system === 'exact-matches')!;
      expect(exact.recall).toBeGreaterThanOrEqual(0.99);
      expect(exact.mflops).toBeCloseTo((m * 16) / 1e6, 12);
      for (const r of rows) {
        expect(r.recall).toBeGreaterThanOrEqual(0);
        expect(r.recall).toBeLessThanOrEqual(1);
        expect(r.qps).toBeGreaterThan(0);
        expect(r.matches).toBe(m);
        // adanns returns k hits whenever k match (hnswlib may return fewer: it is measured, not asserted)
        if (r.system.startsWith('adanns') || r.system === 'exact-matches') expect(r.hits, `${r.system} ${JSON.stringify(r.params)}`).toBe(Math.min(10, m));
      }
      // an exact plan is exact: recall 1 against the filtered truth
      for (const r of rows.filter((x) => x.params.plan === 'exact')) expect(r.recall).toBeGreaterThanOrEqual(0.99);
    }
    expect(results.machine.systems.hnswlib.threads).toBe(1);
    const summary = readFileSync(join(out, 'summary.md'), 'utf8');
    expect(summary).toMatch(/\| selectivity \| filter \| system \| params \| recall@10 \| hits \| MFLOPs \| QPS \|/);
    expect(summary).toMatch(/## Goals/);
    // recall budgets planned under each filter: one row per target, predicted recall beside the achieved one
    expect(summary).toMatch(/## Recall budgets under the filter: predicted against achieved/);
    for (const rows of bySel.values()) expect(rows.filter((r) => r.system === 'adanns-budget').map((r) => r.budget!.recall)).toEqual([0.9, 0.95, 0.99]);
    expect(readFileSync(join(out, 'recall-vs-qps-filtered.svg'), 'utf8')).toMatch(/^<svg/);
    expect(existsSync(join(out, 'recall-vs-mflops.svg'))).toBe(false);
  }, 60_000);

  it('refuses --filter-suite with --suite or --spec', async () => {
    await expect(benchCommand(['--filter-suite', '--suite', 'exact', '--out', join(dir, 'x')])).rejects.toThrow(/--filter-suite runs the filtered suite alone/);
    await expect(benchCommand(['--filter-suite', '--spec', 'flat', '--out', join(dir, 'x')])).rejects.toThrow(/--filter-suite and --spec/);
  });
});
