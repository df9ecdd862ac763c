import type { SearchParams } from '../params.js';

/** One calibrated configuration: what it costs and what recall it buys, measured on calibration queries. */
export interface FrontierPoint {
  params: SearchParams;
  /** Mean recall@k over the calibration queries, and its standard error. */
  recall: number;
  recallStdErr: number;
  /** Mean modelled MFLOPs per query, and its standard error. */
  mflops: number;
  mflopsStdErr: number;
  /** Largest MFLOPs of one calibration query (absent in calibrations saved before it was kept). */
  mflopsMax?: number;
  /** Mean single-query latency (ms) on the calibrating machine. */
  latencyMs: number;
}

/**
 * Points no other point beats on both recall and cost (cost: lower is
 * better), ordered by cost; recall strictly increases along it.
 */
export function paretoFrontier(points: FrontierPoint[], cost: (p: FrontierPoint) => number): FrontierPoint[] {
  const sorted = [...points].sort((a, b) => cost(a) - cost(b) || b.recall - a.recall);
  const front: FrontierPoint[] = [];
  for (const p of sorted) if (front.length === 0 || p.recall > front[front.length - 1].recall) front.push(p);
  return front;
}
