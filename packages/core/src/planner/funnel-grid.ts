import type { AdannsIndex } from '../index/adanns-index.js';
import type { FunnelStage, SearchParams } from '../params.js';
import type { CalibrationLevel } from './calibrate.js';
import type { FrontierPoint } from './frontier.js';

/** Recall targets whose cheapest measured point funnel variants are derived from. */
export const FUNNEL_TARGETS: readonly number[] = [0.9, 0.95, 0.99];

/** Funnel points measured per base point, and per calibrated k, at most (the grid grows by a handful). */
const PER_BASE = 4;
const PER_LEVEL = 12;

/**
 * Funnel points for calibration (docs/ARCHITECTURE.md, "Calibration and
 * planning"), derived from the measured points rather than crossed into the
 * grid: for each calibrated k and recall target, the cheapest plain point
 * reaching it (scan at s, shortlist S, re-rank at R) is the base of variants
 *  - with the same scan and one or two stages at prefixes the index can read
 *    (AdannsIndex.funnelDims) between s and R, keeping S/2, S/4 or 2k: a
 *    cheaper final re-rank;
 *  - with a scan at the ladder prefix below s and a shortlist of 2S or 4S,
 *    which the stages trim back (to S or less): a cheaper scan.
 * Without a re-rank stage the last stage answers (it keeps k), from
 * shortlists of 4k and 10k. A variant is kept only when the cost model
 * (AdannsIndex.modelMflops, on the base's mean scanned vectors) prices it
 * below its base, so it can only join the frontier by losing less recall than
 * the plain points. Recall falls with the candidates the final re-rank loses
 * (on Fashion-MNIST a stage keeping 2k of 10k cost 0.1 to 0.3 of recall@10),
 * so of those the cheapest two whose last stage keeps all of S, then the
 * cheapest keeping S/2 and S/4, are measured. Every point passes resolveParams: the planner never proposes a
 * funnel the index cannot run. `scanned` gives a point's mean scanned vectors
 * (calibration's probe statistics), undefined when unknown.
 */
export function funnelGrid(index: AdannsIndex, levels: readonly CalibrationLevel[], scanned: (p: SearchParams) => number | undefined): SearchParams[] {
  const readable = index.funnelDims();
  if (readable.length === 0) return [];
  // scan prefixes (a code scan runs at d_s only: resolveParams drops the others)
  const ladder = index.ladder.filter((d) => d <= index.spec.scan.dim);
  const out: SearchParams[] = [];
  const seen = new Set<string>();
  for (const level of levels) {
    const k = level.k;
    const runnable = (p: SearchParams): SearchParams | undefined => {
      try {
        return index.resolveParams(k, p);
      } catch {
        return undefined;
      }
    };
    const plain = level.points.filter((p) => !p.params.funnel);
    const bases: FrontierPoint[] = [];
    for (const target of FUNNEL_TARGETS) {
      const base = plain.filter((p) => p.recall >= target).sort((a, b) => a.mflops - b.mflops)[0];
      if (base && !bases.includes(base)) bases.push(base);
    }
    let added = 0;
    for (const base of bases) {
      const b = runnable(base.params);
      const mass = b && scanned(b);
      if (!b || mass === undefined) continue;
      const probed = Math.max(1, b.nprobe);
      const baseModel = index.modelMflops(b, mass, probed);
      const R = b.rerankDim;
      const S = b.shortlist;
      const mids = (s: number) => readable.filter((d) => d > s && (R === undefined || d < R));
      const variants: { p: SearchParams; mflops: number }[] = [];
      const consider = (scanDim: number, shortlist: number, funnel: FunnelStage[]) => {
        if (shortlist > index.size) return;
        const p = runnable({ ...b, scanDim, shortlist, funnel });
        if (!p || seen.has(JSON.stringify(p))) return;
        const mflops = base.mflops + index.modelMflops(p, mass, probed) - baseModel;
        if (mflops < base.mflops) variants.push({ p, mflops });
      };
      const cheaper = ladder.filter((d) => d < b.scanDim).at(-1);
      for (const scanDim of [b.scanDim, cheaper].filter((d): d is number => d !== undefined)) {
        const ms = mids(scanDim);
        if (R === undefined) {
          // the last stage answers: it keeps k of a longer shortlist
          for (const shortlist of [4 * k, 10 * k]) for (const m of ms) consider(scanDim, shortlist, [{ dim: m, keep: k }]);
          continue;
        }
        for (const shortlist of scanDim === b.scanDim ? [S] : [2 * S, 4 * S]) {
          const keeps = (from: number) => [...new Set([from === shortlist && scanDim !== b.scanDim ? S : 0, Math.floor(from / 2), Math.floor(from / 4), 2 * k])].filter((x) => x >= k && x < from);
          for (let i = 0; i < ms.length; i++) {
            for (const keep of keeps(shortlist)) {
              consider(scanDim, shortlist, [{ dim: ms[i], keep }]);
              // a second stage at a larger prefix, keeping fewer
              for (let j = i + 1; j < ms.length; j++) for (const last of keeps(keep)) consider(scanDim, shortlist, [{ dim: ms[i], keep }, { dim: ms[j], keep: last }]);
            }
          }
        }
      }
      // recall falls with the candidates the final re-rank loses: the cheapest variants keeping all of S (two), half and a quarter
      variants.sort((x, y) => x.mflops - y.mflops);
      const picks: typeof variants = [];
      for (const share of R === undefined ? [0, 0, 0, 0] : [1, 1, 0.5, 0.25]) {
        const next = variants.find((v) => v.p.funnel!.at(-1)!.keep >= share * S && !picks.includes(v));
        if (next) picks.push(next);
      }
      for (const { p } of picks.slice(0, PER_BASE)) {
        const key = JSON.stringify(p);
        if (added >= PER_LEVEL || seen.has(key)) continue;
        seen.add(key);
        out.push(p);
        added++;
      }
    }
  }
  return out;
}
