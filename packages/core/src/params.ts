import type { IndexSpec } from './spec.js';

/** What one search uses: the stage settings (docs/ARCHITECTURE.md, "Index stages and contracts"). */
export interface SearchParams {
  coarseDim: number;
  nprobe: number;
  scanDim: number;
  shortlist: number;
  /** Exact re-rank prefix; omitted = no re-rank. */
  rerankDim?: number;
  /**
   * Adaptive probing (stages/adaptive-probe.ts): each query probes its lists in
   * centroid order while a centroid's score is within this margin of its best
   * centroid's (score units of the metric), at most `nprobe` of them; omitted =
   * every query probes `nprobe` lists.
   */
  probeMargin?: number;
  /**
   * Funnel (the MRL funnel of the AdANNS paper): re-rank stages between the
   * scan and the final re-rank, each rescoring the candidates left at a
   * larger prefix `dim` and keeping the best `keep` (e.g. shortlist 400 at
   * scanDim 32, then {dim: 64, keep: 100}, then k at rerankDim). Dims strictly
   * increase, keeps do not; the first keep is at most the shortlist, the last
   * at least k. Omitted = the scan's shortlist goes straight to the re-rank.
   * Where a stage reads its vectors is the index's choice (AdannsIndex.funnelSource).
   */
  funnel?: FunnelStage[];
  /**
   * Patience termination (stages/adaptive-probe.ts): each query probes its
   * lists one at a time in centroid order and stops once the last
   * `lists` lists brought at most `newMax` new members into its scan-level
   * top `top`, at most `nprobe` lists; omitted = every query probes `nprobe`
   * lists. Not with probeMargin (one probe rule at a time).
   */
  patience?: PatienceRule;
  /**
   * Adaptive re-rank depth (stages/adaptive-rerank.ts): the final re-rank
   * rescores each query's candidates in their earlier-stage score order, the
   * first `first` (at least k) of them, then `step` more at a time until a
   * chunk brings at most `newMax` new members into the exact top `first` (or
   * none are left); omitted = every candidate is rescored. Needs rerankDim.
   * The depth does not depend on k, so one search serves every k <= first.
   */
  rerankPatience?: RerankPatience;
}

/** One funnel stage: rescore the candidates at prefix `dim`, keep the best `keep`. */
export interface FunnelStage {
  dim: number;
  keep: number;
}

export const PARAM_NAMES = ['coarseDim', 'nprobe', 'scanDim', 'shortlist', 'rerankDim', 'probeMargin', 'funnel', 'patience', 'rerankPatience'] as const;

/** Whether the shortlist shapes the answer: a re-rank or a funnel rescores it (without either, the scan returns k). */
export function usesShortlist(p: Pick<SearchParams, 'rerankDim' | 'funnel'>): boolean {
  return p.rerankDim !== undefined || (p.funnel !== undefined && p.funnel.length > 0);
}

/** The largest k params can answer: the last funnel keep, else the shortlist when re-ranking, else any. */
export function servedK(p: SearchParams): number {
  // re-rank patience watches its exact top `first`: it answers at most that many
  const watched = p.rerankPatience?.first ?? Infinity;
  if (p.funnel && p.funnel.length > 0) return Math.min(p.shortlist, p.funnel[p.funnel.length - 1].keep, watched);
  return p.rerankDim !== undefined ? Math.min(p.shortlist, watched) : Infinity;
}

/**
 * Params serving k: a shortlist that a re-rank or funnel rescores raised to
 * at least k, and every funnel keep with it (a plan calibrated at a smaller k).
 */
export function raiseToK(p: SearchParams, k: number): SearchParams {
  if (!usesShortlist(p)) return { ...p };
  const out: SearchParams = { ...p, shortlist: Math.max(p.shortlist, k) };
  if (p.funnel) out.funnel = p.funnel.map((s) => ({ dim: s.dim, keep: Math.max(s.keep, k) }));
  if (p.rerankPatience) out.rerankPatience = { ...p.rerankPatience, first: Math.max(p.rerankPatience.first, k) };
  return out;
}

/**
 * Params whose rescored candidates are `extra` more: the shortlist, every
 * funnel keep and the re-rank patience `first` (calibration searches with the
 * query's own vector as one extra result and drops it).
 */
export function widenBy(p: SearchParams, extra: number): SearchParams {
  if (!usesShortlist(p) || extra === 0) return { ...p };
  const out: SearchParams = { ...p, shortlist: p.shortlist + extra };
  if (p.funnel) out.funnel = p.funnel.map((s) => ({ dim: s.dim, keep: s.keep + extra }));
  if (p.rerankPatience) out.rerankPatience = { ...p.rerankPatience, first: p.rerankPatience.first + extra };
  return out;
}

/** `keep@dim` stages joined by `/` (the CLI form: funnel=400@64/100@256). */
export function formatFunnel(funnel: readonly FunnelStage[]): string {
  return funnel.map((s) => `${s.keep}@${s.dim}`).join('/');
}

/** Reads formatFunnel's form; every stage must be two positive integers. */
export function parseFunnel(text: string): FunnelStage[] {
  return text.split('/').map((part) => {
    const m = /^\s*(\d+)@(\d+)\s*$/.exec(part);
    const keep = m ? Number(m[1]) : NaN;
    const dim = m ? Number(m[2]) : NaN;
    if (!m || keep < 1 || dim < 1) throw new Error(`funnel stage "${part}" is not keep@dim with positive integers (e.g. funnel=400@64/100@256)`);
    return { dim, keep };
  });
}

/**
 * Why a funnel is malformed on its own (shape, order), or undefined; what an
 * index can serve (prefixes it holds, the shortlist, k) is checked by
 * AdannsIndex.resolveParams. Messages name the offending stage.
 */
export function funnelShapeError(funnel: unknown): string | undefined {
  if (!Array.isArray(funnel)) return `funnel must be an array of {dim, keep} stages, got ${JSON.stringify(funnel)}`;
  for (let i = 0; i < funnel.length; i++) {
    const s = funnel[i] as Partial<FunnelStage> | null;
    const ok = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 1;
    if (typeof s !== 'object' || s === null || !ok(s.dim) || !ok(s.keep)) return `funnel stage ${i} must be {dim, keep} with positive integers, got ${JSON.stringify(s)}`;
    if (i > 0) {
      const prev = funnel[i - 1] as FunnelStage;
      if (s.dim! <= prev.dim) return `funnel stage ${i}: dim ${s.dim} must exceed the previous stage's dim ${prev.dim} (dims strictly increase)`;
      if (s.keep! > prev.keep) return `funnel stage ${i}: keep ${s.keep} must not exceed the previous stage's keep ${prev.keep} (keeps do not increase)`;
    }
  }
  return undefined;
}

/**
 * Patience termination ("patience in proximity" from graph search, applied to
 * IVF lists): a query probes its lists in centroid order, one at a time, and
 * stops once the last `lists` lists together brought at most `newMax` new
 * members into its scan-level top `top` (or at the cap). It follows where a
 * query's neighbours actually land rather than the centroid geometry: a
 * query whose best candidates keep arriving probes on, one whose top has
 * settled stops. Fitted per recall target by calibration (planner/adaptive-grid.ts).
 */
export interface PatienceRule {
  /** Size of the scan-level top watched (at most the scan's shortlist). */
  top: number;
  /** New members of that top the window may bring and still stop. */
  newMax: number;
  /** Window: how many of the latest lists are counted (the least a query probes). */
  lists: number;
}

/** `top/newMax/lists` (the params text form: patience=40/1/2). */
export function formatPatience(rule: PatienceRule): string {
  return `${rule.top}/${rule.newMax}/${rule.lists}`;
}

/** Why a patience rule is malformed on its own, or undefined (limits that depend on the params are AdannsIndex.resolveParams'). */
export function patienceError(rule: unknown): string | undefined {
  const r = rule as Partial<PatienceRule> | null;
  const int = (v: unknown, min: number) => typeof v === 'number' && Number.isInteger(v) && v >= min;
  if (typeof r !== 'object' || r === null || !int(r.top, 1) || !int(r.newMax, 0) || !int(r.lists, 1)) return `patience must be {top, newMax, lists} with integers top >= 1, newMax >= 0, lists >= 1, got ${JSON.stringify(rule)}`;
  return undefined;
}

/** Reads formatPatience's form. */
export function parsePatience(text: string): PatienceRule {
  const m = /^\s*(\d+)\/(\d+)\/(\d+)\s*$/.exec(text);
  const rule = m ? { top: Number(m[1]), newMax: Number(m[2]), lists: Number(m[3]) } : undefined;
  const error = rule && patienceError(rule);
  if (!rule || error) throw new Error(`search param patience must be top/newMax/lists with integers top >= 1, newMax >= 0, lists >= 1 (e.g. patience=40/1/2), got "${text}"`);
  return rule;
}

/**
 * Patience on the re-rank: the exact re-rank visits the candidates in the
 * order the scan (or the last funnel stage) ranked them and stops once a
 * chunk no longer changes the exact top k: an easy query, whose first
 * candidates already hold its neighbours, rescores few; a hard one more.
 */
export interface RerankPatience {
  /** Candidates rescored first, and the size of the exact top watched (at least k). */
  first: number;
  /** Candidates rescored per further chunk. */
  step: number;
  /** New members of the exact top `first` a chunk may bring and still stop. */
  newMax: number;
}

/** `first/step/newMax` (the params text form: rerankPatience=20/10/0). */
export function formatRerankPatience(rule: RerankPatience): string {
  return `${rule.first}/${rule.step}/${rule.newMax}`;
}

/** Why a re-rank patience rule is malformed on its own, or undefined (that it needs a re-rank is AdannsIndex.resolveParams'). */
export function rerankPatienceError(rule: unknown): string | undefined {
  const r = rule as Partial<RerankPatience> | null;
  const int = (v: unknown, min: number) => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= 1e6;
  if (typeof r !== 'object' || r === null || !int(r.first, 1) || !int(r.step, 1) || !int(r.newMax, 0)) return `rerankPatience must be {first, step, newMax} with integers 1 <= first <= 1e6, 1 <= step <= 1e6, 0 <= newMax <= 1e6, got ${JSON.stringify(rule)}`;
  return undefined;
}

/** Reads formatRerankPatience's form. */
export function parseRerankPatience(text: string): RerankPatience {
  const m = /^\s*(\d+)\/(\d+)\/(\d+)\s*$/.exec(text);
  const rule = m ? { first: Number(m[1]), step: Number(m[2]), newMax: Number(m[3]) } : undefined;
  const error = rule && rerankPatienceError(rule);
  if (!rule || error) throw new Error(`search param rerankPatience must be first/step/newMax with integers first >= 1, step >= 1, newMax >= 0 (e.g. rerankPatience=20/10/0), got "${text}"`);
  return rule;
}

/** Why a probe margin is unusable, or undefined when it is a finite number >= 0. */
export function probeMarginError(value: unknown): string | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? undefined : `probeMargin must be a finite number >= 0, got ${String(value)}`;
}

/** Parses `nprobe=8,shortlist=100,...` (the CLI form) into a partial params object. */
export function parseParams(text: string): Partial<SearchParams> {
  const out: Partial<SearchParams> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    if (!(PARAM_NAMES as readonly string[]).includes(key)) {
      throw new Error(`unknown search param "${key}" (expected ${PARAM_NAMES.join(', ')})`);
    }
    const n = Number(value);
    if (key === 'funnel') {
      out.funnel = value === '' ? [] : parseFunnel(value);
      const shape = funnelShapeError(out.funnel);
      if (shape) throw new Error(`search param ${shape}`);
      continue;
    }
    if (key === 'patience') {
      out.patience = parsePatience(value);
      continue;
    }
    if (key === 'rerankPatience') {
      out.rerankPatience = parseRerankPatience(value);
      continue;
    }
    if (key === 'probeMargin') {
      if (value === '' || probeMarginError(n)) throw new Error(`search param probeMargin must be a finite number >= 0, got "${value}"`);
    } else if (value === '' || !Number.isInteger(n) || n < 1) throw new Error(`search param ${key} must be a positive integer, got "${value}"`);
    out[key as Exclude<keyof SearchParams, 'funnel' | 'patience' | 'rerankPatience'>] = n;
  }
  return out;
}

export function formatParams(p: SearchParams): string {
  const parts = [`coarseDim=${p.coarseDim}`, `nprobe=${p.nprobe}`, `scanDim=${p.scanDim}`, `shortlist=${p.shortlist}`];
  if (p.rerankDim !== undefined) parts.push(`rerankDim=${p.rerankDim}`);
  if (p.probeMargin !== undefined) parts.push(`probeMargin=${p.probeMargin}`);
  if (p.funnel && p.funnel.length > 0) parts.push(`funnel=${formatFunnel(p.funnel)}`);
  if (p.patience) parts.push(`patience=${formatPatience(p.patience)}`);
  if (p.rerankPatience) parts.push(`rerankPatience=${formatRerankPatience(p.rerankPatience)}`);
  return parts.join(',');
}

/**
 * Default params for a built index: full built dims, a modest nprobe, and a
 * shortlist of 10 x k when a re-rank is built; with `given`, overridden by
 * its own keys (as `{ ...defaults, ...given }`).
 */
export function defaultParams(spec: IndexSpec, k: number, given?: Partial<SearchParams>): SearchParams {
  const coarseDim = spec.coarse?.dim ?? 0;
  const nprobe = spec.coarse ? Math.min(spec.coarse.lists, Math.max(1, Math.round(Math.sqrt(spec.coarse.lists) / 2))) : 0;
  const scanDim = spec.scan.dim;
  const shortlist = spec.rerank ? Math.max(10 * k, 100) : k;
  // given spread into the literal itself: in V8, { ...defaults, ...given } took a slower clone-and-extend path (~1.5 us measured per call, and slower reads of the params after it)
  return spec.rerank ? { coarseDim, nprobe, scanDim, shortlist, rerankDim: spec.rerank.dim, ...given } : { coarseDim, nprobe, scanDim, shortlist, ...given };
}
