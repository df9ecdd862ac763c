/** Timing helpers: a warm-up first, then the median of repeats; per-query latencies for percentiles. */
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

/** Runs fn once to warm up, then `repeats` times; returns the median wall time in ms. */
export async function medianMs(fn: () => Promise<unknown> | unknown, repeats: number): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return median(times);
}

/** Per-call latencies of fn(i) for i < count, after warming up on the first few. */
export async function latencies(count: number, fn: (i: number) => Promise<unknown> | unknown): Promise<number[]> {
  for (let i = 0; i < Math.min(count, 10); i++) await fn(i);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await fn(i);
    out.push(performance.now() - t);
  }
  return out;
}

export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}
