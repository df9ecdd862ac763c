import type { AdannsIndex } from '../index/adanns-index.js';
import { formatParams, usesShortlist, type PatienceRule, type RerankPatience, type SearchParams } from '../params.js';
import { marginForMeanDepth, probeDepth } from '../stages/adaptive-probe.js';
import type { CalibrationLevel } from './calibrate.js';
import { FUNNEL_TARGETS } from './funnel-grid.js';
import type { ProbeCounts } from './pricing.js';

/** How much further than its mean depth an adaptive point lets a query probe. */
const CAP_FACTOR = 4;

/**
 * Patience rules calibration tries (stages/adaptive-probe.ts): the scan's top
 * 40 or 100 watched over windows of 1 to 4 lists, the shapes that led the
 * offline sweep on Fashion-MNIST and the synthetic set (issue 17), under a
 * cap of 32 lists.
 */
const PATIENCE_RULES: PatienceRule[] = [
  { top: 40, newMax: 0, lists: 1 },
  { top: 40, newMax: 1, lists: 2 },
  { top: 40, newMax: 2, lists: 3 },
  { top: 100, newMax: 2, lists: 2 },
  { top: 100, newMax: 3, lists: 4 },
];
const PATIENCE_CAP = 32;

/** Adaptive points for the calibration grid, with what pricing needs about them. */
export interface AdaptiveGrid {
  points: SearchParams[];
  /** Per (coarseDim, cap, margin): how often the calibration queries probed each list. */
  probes: ProbeCounts[];
  /** Mean lists probed per query of each point (what orders the grid cheapest first). */
  meanDepth: Map<SearchParams, number>;
}

/**
 * Mean depths an adaptive point is fitted at, as multiples of a fixed nprobe
 * n: n itself and halfway to 2n on a log scale, so the adaptive frontier has
 * twice the fixed grid's resolution where a recall target falls between two
 * powers of two (on a 512-d stand-in recall 0.95 lay between mean depths 8
 * and 16: 0.948 at 8; the point at 11.3 reached 0.958 at 0.43 MFLOPs, the
 * one at 16 0.969 at 0.53).
 */
const DEPTH_STEPS = [1, Math.SQRT2];

/**
 * Adaptive counterparts of a fixed grid (stages/adaptive-probe.ts), fitted on
 * the calibration queries: at the largest coarseDim of the grid, for every
 * fixed nprobe n below the list count and each mean depth d = n x
 * DEPTH_STEPS below it too, the margin under which the queries probe d lists
 * on average with a cap of 4d; each becomes a copy of the fixed points at
 * (coarseDim, n) with nprobe = cap and that margin. The sweep then
 * measures their recall like any point, so a recall budget picks the
 * margin fitted for its target (the fastest point that reaches it), adaptive
 * or fixed.
 */
export async function adaptiveGrid(index: AdannsIndex, queries: Float32Array, rows: number, grid: SearchParams[]): Promise<AdaptiveGrid> {
  const out: AdaptiveGrid = { points: [], probes: [], meanDepth: new Map() };
  const coarse = index.spec.coarse;
  if (!coarse || grid.length === 0) return out;
  const lists = coarse.lists;
  const coarseDim = Math.max(...grid.map((p) => p.coarseDim));
  const { lists: ranking, scores } = await index.rankLists(queries, rows, coarseDim, lists);
  const nprobes = [...new Set(grid.filter((p) => p.coarseDim === coarseDim && p.probeMargin === undefined).map((p) => p.nprobe))].filter((n) => n > 1 && n < lists);
  await patiencePoints(index, queries, rows, grid, coarseDim, ranking, out);
  for (const [n, depth] of nprobes.flatMap((n) => DEPTH_STEPS.map((step) => [n, n * step] as const)).filter(([, d]) => d < lists)) {
    const cap = Math.min(lists, Math.ceil(CAP_FACTOR * depth));
    const margin = marginForMeanDepth(scores, rows, lists, cap, depth);
    const counts = new Array<number>(lists).fill(0);
    let depths = 0;
    for (let q = 0; q < rows; q++) {
      const probed = probeDepth(scores, q * lists, cap, margin);
      depths += probed;
      for (let i = 0; i < probed; i++) counts[ranking[q * lists + i]]++;
    }
    // two mean depths can fit the same margin (few distinct gaps): keep one point
    if (out.probes.some((p) => p.nprobe === cap && p.probeMargin === margin)) continue;
    out.probes.push({ coarseDim, nprobe: cap, probeMargin: margin, counts });
    for (const fixed of grid) {
      if (fixed.coarseDim !== coarseDim || fixed.nprobe !== n || fixed.probeMargin !== undefined) continue;
      const point: SearchParams = { ...fixed, nprobe: cap, probeMargin: margin };
      out.points.push(point);
      out.meanDepth.set(point, depths / rows);
    }
  }
  return out;
}

/**
 * Patience points: for every scanDim of the grid at `coarseDim` and every
 * rule, the calibration queries searched once under the rule to count the
 * lists they probe (the depths depend on the scan, not on the shortlist,
 * as long as the watched top fits in it); each becomes a copy of the fixed
 * points there whose shortlist holds the top (one per shortlist and re-rank),
 * with nprobe = the cap and the rule. Only for grids that rescore a shortlist.
 */
async function patiencePoints(index: AdannsIndex, queries: Float32Array, rows: number, grid: SearchParams[], coarseDim: number, ranking: Int32Array, out: AdaptiveGrid): Promise<void> {
  const lists = index.spec.coarse!.lists;
  const cap = Math.min(lists, PATIENCE_CAP);
  const plain = grid.filter((p) => p.coarseDim === coarseDim && p.probeMargin === undefined && !p.patience && !p.funnel && usesShortlist(p));
  for (const scanDim of [...new Set(plain.map((p) => p.scanDim))]) {
    const shapes = new Map<string, SearchParams>();
    for (const p of plain) if (p.scanDim === scanDim) shapes.set(`${p.shortlist}/${p.rerankDim}`, p);
    for (const rule of PATIENCE_RULES) {
      // a window as long as the cap never stops a query early: that is the fixed point at the cap
      if (rule.lists >= cap) continue;
      const fits = [...shapes.values()].filter((p) => p.shortlist >= rule.top);
      if (fits.length === 0) continue;
      const probe: SearchParams = { ...fits[0], nprobe: cap, patience: rule };
      const { listsProbed } = await index.search(queries, rows, Math.min(fits[0].shortlist, index.size), probe);
      const counts = new Array<number>(lists).fill(0);
      let depths = 0;
      for (let q = 0; q < rows; q++) {
        depths += listsProbed![q];
        for (let i = 0; i < listsProbed![q]; i++) counts[ranking[q * lists + i]]++;
      }
      out.probes.push({ coarseDim, nprobe: cap, patience: { ...rule }, scanDim, counts });
      for (const fixed of fits) {
        const point: SearchParams = { ...fixed, nprobe: cap, patience: { ...rule } };
        out.points.push(point);
        out.meanDepth.set(point, depths / rows);
      }
    }
  }
}

/**
 * Re-rank patience rules calibration tries at k (stages/adaptive-rerank.ts):
 * the first k candidates, then chunks of k/2 or k while a chunk still brings
 * a new member into the exact top k (the rule watches its `first`: k here).
 */
export function rerankPatienceRules(k: number): RerankPatience[] {
  return [
    { first: k, step: Math.max(1, Math.round(k / 2)), newMax: 0 },
    { first: k, step: k, newMax: 0 },
  ];
}

/**
 * Re-rank patience points (stages/adaptive-rerank.ts), derived from the
 * measured points as funnel points are (planner/funnel-grid.ts): for each
 * calibrated k and recall target, the cheapest measured point reaching it
 * whose final re-rank takes at least 2k candidates (the last funnel keep, or
 * the shortlist) becomes the base of one variant per rule: the same scan and
 * funnel, its re-rank paced by the rule. A handful of points: their scans are
 * shared with each other (stages/scan-reuse.ts), and only re-ranks differ.
 */
export function rerankPatienceGrid(index: AdannsIndex, levels: readonly CalibrationLevel[]): SearchParams[] {
  const out: SearchParams[] = [];
  const seen = new Set<string>();
  for (const level of levels) {
    const k = level.k;
    const given = (p: SearchParams) => p.funnel?.at(-1)?.keep ?? p.shortlist;
    const bases = level.points.filter((p) => p.params.rerankDim !== undefined && !p.params.rerankPatience && given(p.params) >= 2 * k);
    for (const target of FUNNEL_TARGETS) {
      const base = bases.filter((p) => p.recall >= target).sort((a, b) => a.mflops - b.mflops)[0];
      if (!base) continue;
      for (const rule of rerankPatienceRules(k)) {
        let point: SearchParams;
        try {
          point = index.resolveParams(k, { ...base.params, rerankPatience: rule });
        } catch {
          continue;
        }
        const key = formatParams(point);
        if (seen.has(key)) continue;
        seen.add(key);
        out.push(point);
      }
    }
  }
  return out;
}
