/** One sample of the Prometheus text format. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the text exposition format (what /metrics serves); comments and malformed lines are skipped. */
export function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    out.push({ name: m[1], labels, value });
  }
  return out;
}

/** A histogram's cumulative buckets for one label set (le excluded), with its count and sum. */
export interface Histogram {
  labels: Record<string, string>;
  buckets: { le: number; count: number }[];
  count: number;
  sum: number;
}

const keyOf = (labels: Record<string, string>) =>
  Object.entries(labels)
    .filter(([k]) => k !== 'le')
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/** Groups `name`'s _bucket, _count and _sum samples by label set. */
export function histograms(samples: Sample[], name: string): Histogram[] {
  const byKey = new Map<string, Histogram>();
  const get = (labels: Record<string, string>) => {
    const key = keyOf(labels);
    let h = byKey.get(key);
    if (!h) {
      const { le: _le, ...rest } = labels;
      byKey.set(key, (h = { labels: rest, buckets: [], count: 0, sum: 0 }));
    }
    return h;
  };
  for (const s of samples) {
    if (s.name === `${name}_bucket`) get(s.labels).buckets.push({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value });
    else if (s.name === `${name}_count`) get(s.labels).count = s.value;
    else if (s.name === `${name}_sum`) get(s.labels).sum = s.value;
  }
  for (const h of byKey.values()) h.buckets.sort((a, b) => a.le - b.le);
  return [...byKey.values()];
}

/**
 * The q-quantile of a histogram, interpolated linearly inside its bucket as
 * Prometheus's histogram_quantile does (the upper bound of the last finite
 * bucket when it falls in +Inf); null for an empty histogram.
 */
export function quantile(h: Histogram, q: number): number | null {
  const total = h.buckets.at(-1)?.count ?? 0;
  if (total === 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of h.buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe;
      const inBucket = b.count - prevCount;
      return inBucket === 0 ? b.le : prevLe + ((b.le - prevLe) * (rank - prevCount)) / inBucket;
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}
