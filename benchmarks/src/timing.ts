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

/** How one row is timed: its queries one at a time and, where the system has one, its batched call. */
export interface RowTiming {
  /** Sets the state the row's searches depend on (hnswlib's ef), before each of its passes: other rows run between them. */
  before?: () => void;
  /** Queries timed one at a time: single(i) for i < singles. */
  singles: number;
  single: (i: number) => Promise<unknown> | unknown;
  /** One call over `queries` queries; without it (no batch API) the row's batchQps is its qps. */
  batch?: { queries: number; run: () => Promise<unknown> | unknown };
}

export interface SpeedFigures extends SingleQueryFigures {
  /** Queries per second of the batched call: its queries over the median of its pass times. */
  batchQps: number;
}

/** Queries run untimed before each pass of a row (the first ones of its single queries). */
export const WARM_UP_QUERIES = 10;

/**
 * Times rows round-robin: pass 1 of every row, then pass 2 of every row, and
 * so on; each row's figures are the median over its passes. The machines we
 * measure on have slow periods (seconds to minutes in which memory-bound code
 * runs ~1.5x slower in the same process): passes of a row taken back to back
 * fall into one together, while here a row's passes are one round of all rows
 * apart (less its own pass), so a slow period shorter than that gap costs a
 * row at most one pass (a run of one row gets no such protection),
 * which the median drops (longer ones need more passes), and the rows of
 * every system are measured over the same span of time. Each pass of a row
 * starts with WARM_UP_QUERIES untimed queries, because the rows timed before
 * it evicted its data from the caches; its batched call follows its single
 * queries (warm from them). `onRow(pass, row)` is told before each.
 */
export async function timeRoundRobin(rows: RowTiming[], passes: number, onRow: (pass: number, row: number) => void = () => {}): Promise<SpeedFigures[]> {
  if (passes < MIN_PASSES) throw new Error(`a reported figure needs at least ${MIN_PASSES} timed passes, got ${passes}`);
  const singles = rows.map((): number[][] => []);
  const batches = rows.map((): number[] => []);
  for (let p = 0; p < passes; p++) {
    for (const [r, row] of rows.entries()) {
      onRow(p, r);
      row.before?.();
      for (let i = 0; i < Math.min(row.singles, WARM_UP_QUERIES); i++) await row.single(i);
      singles[r].push(await latencies(row.singles, row.single));
      if (row.batch) {
        const t = performance.now();
        await row.batch.run();
        batches[r].push(performance.now() - t);
      }
    }
  }
  return rows.map((row, r) => {
    const single = singleQueryFigures(singles[r]);
    return { ...single, batchQps: row.batch ? (row.batch.queries * 1000) / median(batches[r]) : single.qps };
  });
}

export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}
