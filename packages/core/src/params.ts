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
}

export const PARAM_NAMES = ['coarseDim', 'nprobe', 'scanDim', 'shortlist', 'rerankDim', 'probeMargin'] as const;

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
    if (key === 'probeMargin') {
      if (value === '' || probeMarginError(n)) throw new Error(`search param probeMargin must be a finite number >= 0, got "${value}"`);
    } else if (value === '' || !Number.isInteger(n) || n < 1) throw new Error(`search param ${key} must be a positive integer, got "${value}"`);
    out[key as keyof SearchParams] = n;
  }
  return out;
}

export function formatParams(p: SearchParams): string {
  const parts = [`coarseDim=${p.coarseDim}`, `nprobe=${p.nprobe}`, `scanDim=${p.scanDim}`, `shortlist=${p.shortlist}`];
  if (p.rerankDim !== undefined) parts.push(`rerankDim=${p.rerankDim}`);
  if (p.probeMargin !== undefined) parts.push(`probeMargin=${p.probeMargin}`);
  return parts.join(',');
}

/**
 * Default params for a built index: full built dims, a modest nprobe, and a
 * shortlist of 10 x k when a re-rank is built.
 */
export function defaultParams(spec: IndexSpec, k: number): SearchParams {
  const p: SearchParams = {
    coarseDim: spec.coarse?.dim ?? 0,
    nprobe: spec.coarse ? Math.min(spec.coarse.lists, Math.max(1, Math.round(Math.sqrt(spec.coarse.lists) / 2))) : 0,
    scanDim: spec.scan.dim,
    shortlist: spec.rerank ? Math.max(10 * k, 100) : k,
  };
  if (spec.rerank) p.rerankDim = spec.rerank.dim;
  return p;
}
