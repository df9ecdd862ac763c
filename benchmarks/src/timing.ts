/**
 * Timing helpers. Every reported speed is the median of at least MIN_PASSES
 * timed passes after a warm-up, so one noisy pass (another process on a
 * shared core, a GC pause) cannot make a row.
 */
export const MIN_PASSES = 3;

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Nearest-rank percentile (p in [0, 100]) of the values. */
export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Runs fn once to warm up, then `passes` times; returns the median wall time in ms. */
export async function medianMs(fn: () => Promise<unknown> | unknown, passes: number): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < passes; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return median(times);
}

/** Per-call latencies in ms of fn(i) for i < count (one pass, no warm-up). */
export async function latencies(count: number, fn: (i: number) => Promise<unknown> | unknown): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await fn(i);
    out.push(performance.now() - t);
  }
  return out;
}

export interface SingleQueryFigures {
  /** Queries per second, one query at a time: median over passes of (queries in the pass / its total time). */
  qps: number;
  /** Median over passes of each pass's p50 and p99 latency. */
  p50Ms: number;
  p99Ms: number;
}

/** Reduces the per-query latencies (ms) of each timed pass to the figures a row reports. */
export function singleQueryFigures(passes: number[][]): SingleQueryFigures {
  if (passes.length < MIN_PASSES) throw new Error(`a reported figure needs at least ${MIN_PASSES} timed passes, got ${passes.length}`);
  return {
    qps: median(passes.map((lat) => (1000 * lat.length) / lat.reduce((a, b) => a + b, 0))),
    p50Ms: median(passes.map((lat) => percentile(lat, 50))),
    p99Ms: median(passes.map((lat) => percentile(lat, 99))),
  };
}

/** Queries one at a time: a warm-up on the first few, then `passes` passes over `count` queries. */
export async function timeSingleQueries(count: number, passes: number, fn: (i: number) => Promise<unknown> | unknown): Promise<SingleQueryFigures> {
  for (let i = 0; i < Math.min(count, 10); i++) await fn(i);
  const all: number[][] = [];
  for (let p = 0; p < passes; p++) all.push(await latencies(count, fn));
  return singleQueryFigures(all);
}

export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}
