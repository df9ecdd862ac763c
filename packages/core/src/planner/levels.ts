import { formatParams, usesShortlist, type SearchParams } from '../params.js';
import type { Calibration, CalibrationLevel } from './calibrate.js';
import type { FrontierPoint } from './frontier.js';

/**
 * Recall kept in hand when a budget's k was not calibrated. The estimate is
 * already the lower of the two calibrated k around it (see pointsAtK); the
 * margin covers the curvature between them (or past the largest k).
 */
export const UNCALIBRATED_K_MARGIN = 0.02;

/** Every calibrated k with its points, ascending (an older calibration has one: its k). */
export function calibrationLevels(calibration: Calibration): CalibrationLevel[] {
  return calibration.levels && calibration.levels.length > 0 ? calibration.levels : [{ k: calibration.k, points: calibration.points }];
}

/** The calibrated ks, ascending. */
export function calibratedKs(calibration: Calibration): number[] {
  return calibrationLevels(calibration).map((l) => l.k);
}

/** What a budget at k is planned on. */
export interface PointsAtK {
  /** Points with their recall at k: calibrated, or estimated (less the margin). */
  points: FrontierPoint[];
  /** k itself when calibrated; null when the recall is an estimate. */
  calibratedK: number | null;
  /** The calibrated k the estimate comes from (k itself when calibrated). */
  from: number[];
  /** Why and how the recall at k was estimated (null when calibrated). */
  note: string | null;
}

// every param pairs a point across levels (an adaptive point's probeMargin too, else it would share the key of the
// fixed point at its nprobe; a funnel's stages too), but the shortlist only when a re-rank or funnel rescores it
// (without, a level records its own k there)
export const paramsKey = (p: SearchParams): string => formatParams(usesShortlist(p) ? p : { ...p, shortlist: 0 });

/**
 * The points a budget at k is planned on. A calibrated k: its own. Otherwise
 * recall at k is estimated, conservatively. Recall@k is not monotone in k in
 * general: coverage losses (lists not probed, a shortlist cut) hurt far
 * neighbours more, so recall falls with k; ordering losses (a quantised scan
 * without an exact re-rank) hurt the top ranks more, so recall@1 can be below
 * recall@10. Either way, when recall moves one way between two calibrated ks
 * the lower of the two bounds it, so k between two calibrated values takes,
 * per params, the lower of their recalls (the params must serve the larger
 * one: its shortlist is at least that k), less UNCALIBRATED_K_MARGIN. Below
 * the smallest calibrated k only the one above is known, past the largest
 * only the one below: its recall less the margin (past the largest k, the
 * shortlist is raised to k by the plan).
 */
export function pointsAtK(calibration: Calibration, k: number): PointsAtK {
  const levels = calibrationLevels(calibration);
  const exact = levels.find((l) => l.k === k);
  if (exact) return { points: exact.points, calibratedK: k, from: [k], note: null };
  const below = levels.filter((l) => l.k < k).at(-1);
  const above = levels.find((l) => l.k > k);
  const base = above ?? below!;
  const other = above && below ? new Map(below.points.map((p) => [paramsKey(p.params), p])) : undefined;
  const points: FrontierPoint[] = [];
  for (const p of base.points) {
    const q = other?.get(paramsKey(p.params));
    if (other && !q) continue;
    const low = q && q.recall < p.recall ? q : p;
    points.push({ ...p, recall: Math.max(0, low.recall - UNCALIBRATED_K_MARGIN), recallStdErr: Math.max(p.recallStdErr, q?.recallStdErr ?? 0) });
  }
  const from = [below, above].filter((l): l is CalibrationLevel => l !== undefined).map((l) => l.k);
  const how = from.length === 2 ? `the lower of the recalls at k = ${from[0]} and ${from[1]}` : `the recall at k = ${from[0]}`;
  return { points, calibratedK: null, from, note: `recall at k = ${k} is not calibrated (calibrated k: ${levels.map((l) => l.k).join(', ')}): planned on ${how} less ${UNCALIBRATED_K_MARGIN}` };
}
