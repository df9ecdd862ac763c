/**
 * Similarity metrics. Every kernel returns a score where larger means closer:
 * cosine similarity of the re-normalised prefixes, the inner product, or the
 * negated squared Euclidean distance.
 */
export type Metric = 'cosine' | 'ip' | 'l2';

export const METRICS: readonly Metric[] = ['cosine', 'ip', 'l2'];

export function parseMetric(value: string): Metric {
  if ((METRICS as readonly string[]).includes(value)) return value as Metric;
  throw new Error(`unknown metric "${value}" (expected one of ${METRICS.join(', ')})`);
}
