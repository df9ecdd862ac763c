/**
 * The fixed builds `bench:auto` (auto-choice.ts) compares auto's choice with,
 * made valid for any vector count and dimension, and the test for "this fixed
 * build is auto's own" (then the bench reuses auto's build and sweep).
 */
import { autoLists, dimsLadder, formatSpec, parseSpec, validateSpec } from '@adanns/core';
import { defaultSpec } from '@adanns/store';

export interface FixedSpec {
  spec: string;
  /** Why the spec differs from the shape's usual form at this dimension (printed with the row). */
  note?: string;
}

export interface FixedSpecs {
  specs: FixedSpec[];
  /** One printed reason per fixed shape that has no valid spec for this data. */
  skipped: string[];
}

/**
 * Issue 17's default shape, `pca,ivf{L}@32,flat@64,rerank@D`, and the store's
 * defaultSpec. The issue-17 shape is a prefix scan re-ranked at D, so at
 * D <= 64 it scans at the largest ladder prefix below D instead (a scan at
 * D leaves nothing to re-rank: validateSpec rejects `flat@64,rerank@64`);
 * at D <= 8 there is no such prefix and the shape is skipped. Each spec is
 * checked with validateSpec on `rows` vectors; one that fails is skipped
 * with the validator's reason. Duplicates (same build) are listed once.
 */
export function fixedSpecs(rows: number, dim: number): FixedSpecs {
  const ladder = dimsLadder(dim);
  const lists = autoLists(rows);
  const specs: FixedSpec[] = [];
  const skipped: string[] = [];
  const scan = [...ladder].reverse().find((d) => d <= 64 && d < dim);
  const candidates: FixedSpec[] = [];
  if (scan === undefined) {
    skipped.push(`issue 17's shape pca,ivf@32,flat@64,rerank@D: at D = ${dim} no ladder prefix (${ladder.join(', ')}) lies below D to scan before a re-rank at D`);
  } else {
    const coarse = [...ladder].reverse().find((d) => d <= Math.min(32, scan)) ?? ladder[0];
    candidates.push({ spec: `pca,ivf${lists}@${coarse},flat@${scan},rerank@${dim}`, ...(scan < 64 ? { note: `issue 17's shape scans at ${scan}, not 64: at D = ${dim} it re-ranks at D after a prefix scan below D` } : {}) });
  }
  candidates.push({ spec: defaultSpec(rows, ladder) });
  for (const c of candidates) {
    try {
      validateSpec(parseSpec(c.spec, dim), dim, rows);
    } catch (e) {
      skipped.push(`${c.spec}: ${(e as Error).message}`);
      continue;
    }
    if (!specs.some((s) => sameBuild(s.spec, c.spec, dim))) specs.push(c);
  }
  return { specs, skipped };
}

/** Whether two spec strings describe the same build (written alike once parsed, e.g. `flat` and `flat@D`). */
export function sameBuild(a: string, b: string, dim: number): boolean {
  return formatSpec(parseSpec(a, dim)) === formatSpec(parseSpec(b, dim));
}
