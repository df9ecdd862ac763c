import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WasmSimdBackend } from '@adanns/compute';
import { generateSynthetic } from '@adanns/datasets';
import { AdannsIndex, allowedIdsOf, FILTERED_RECALL_MARGIN, readCalibration, recallAtK, saveIndex, type AllowedIds } from '../src/index.js';

// Recall budgets under filters (docs/ARCHITECTURE.md, "Budgets under filters"): on synthetic clustered
// data, with filters the calibration never saw (random id subsets and whole clusters, the label = cluster
// case, up to half the clusters) at several selectivities, searched by queries the calibration never saw, the recall a budget
// plans for is reached (within 0.01) for at least 95% of (filter, target) pairs, and budgetMet is never
// true for an answer that missed its target by more than that.

const dim = 32;
const n = 6000;
const clusters = 40;
const k = 10;
const { base, queries } = generateSynthetic({ n, dim, clusters, queries: 200, seed: 5 });

describe('recall budgets under filters', () => {
  it('plans the filtered search so the achieved recall reaches the target', async () => {
    const backend = await WasmSimdBackend.create();
    const index = await AdannsIndex.build(backend, 'ivf48@16,flat@16,rerank@32', base.data, n, dim, { metric: 'l2', seed: 3, calibrate: { ks: [k], maxSeconds: 60, latencyQueries: 2 } });
    expect(index.calibration!.filtered).toBeDefined();
    const filters: [string, number[]][] = [];
    const ids = Array.from({ length: n }, (_, i) => i);
    const rng = (seed: number) => () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (const share of [0.4, 0.15, 0.07, 0.03, 0.012]) {
      const r = rng(Math.round(share * 1e4));
      filters.push([`random ${share}`, ids.filter(() => r() < share)]);
    }
    const lab = base.labels!;
    // class filters (label = cluster): one to twenty whole clusters, and every other cluster (half the data,
    // so half the queries have their whole neighbourhood outside the filter)
    for (const c of [1, 3, 6, 20]) filters.push([`${c} clusters`, ids.filter((i) => lab[i] < c)]);
    filters.push(['even clusters', ids.filter((i) => lab[i] % 2 === 0)]);
    const rows: string[] = [];
    let reached = 0;
    let probedAndMet = 0;
    let total = 0;
    for (const [name, allowedIds] of filters) {
      const allowed: AllowedIds = allowedIdsOf(allowedIds);
      const truth = await index.exactSearch(queries.data, queries.rows, k, undefined, allowed);
      for (const target of [0.8, 0.9, 0.95, 0.99]) {
        const r = await index.searchWithBudget(queries.data, queries.rows, k, { recall: target }, { filter: allowed });
        const achieved = recallAtK(r.ids, k, truth.ids, k, queries.rows, k);
        total++;
        rows.push(`${name} (${allowedIds.length}) target ${target}: plan ${r.filterPlan!.plan} ${r.filterPlan!.plan === 'probe' ? `nprobe ${r.params.nprobe} shortlist ${r.params.shortlist}` : ''} predicted ${r.expectedRecall?.toFixed(4)} lb ${r.filterPlan!.recallLowerBound?.toFixed(4)} achieved ${achieved.toFixed(4)} met ${r.budgetMet} mflops ${r.filterPlan!.expectedMflops.toFixed(3)}`);
        if (achieved >= target - FILTERED_RECALL_MARGIN) reached++;
        if (r.budgetMet) expect(achieved, rows.join('\n')).toBeGreaterThanOrEqual(target - FILTERED_RECALL_MARGIN);
        if (r.budgetMet && r.filter!.plan === 'probe') probedAndMet++;
        // a recall target is met by the cheapest plan known to reach it: never dearer than the exact scan of the matches
        expect(r.filterPlan!.expectedMflops).toBeLessThanOrEqual(index.priceFilter(k, undefined, allowed, 'exact').mflops + 1e-12);
      }
    }
    const table = rows.join('\n');
    expect(reached / total, table).toBeGreaterThanOrEqual(0.95);
    // the filtered calibration is what makes the cheaper plan possible: some targets are met by probing
    expect(probedAndMet, table).toBeGreaterThan(0);
    // saved with the index, and checked when read back
    const dir = mkdtempSync(join(tmpdir(), 'adanns-filtered-cal-'));
    try {
      saveIndex(index, dir);
      const file = join(dir, 'calibration.json');
      expect(readCalibration(file).filtered).toEqual(index.calibration!.filtered);
      const saved = JSON.parse(readFileSync(file, 'utf8'));
      saved.filtered.points[0].recall = 'high';
      writeFileSync(file, JSON.stringify(saved));
      expect(() => readCalibration(file)).toThrow(/malformed filtered calibration/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await backend.dispose();
  }, 300_000);
});
