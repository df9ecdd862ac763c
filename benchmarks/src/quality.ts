/**
 * Result quality against labels, computed as the AdANNS evaluation code does:
 * top-1 is how often the first result carries the query's label; mAP@k
 * averages precision@i over the ranks i <= k that carry the label, divided
 * by k (not by the number of relevant results).
 */
export function top1Accuracy(ids: ArrayLike<number>, k: number, baseLabels: Int32Array, queryLabels: Int32Array): number {
  if (queryLabels.length === 0) return 0;
  let hits = 0;
  for (let q = 0; q < queryLabels.length; q++) {
    const id = ids[q * k];
    if (id >= 0 && baseLabels[id] === queryLabels[q]) hits++;
  }
  return hits / queryLabels.length;
}

export function meanAveragePrecisionAtK(ids: ArrayLike<number>, k: number, baseLabels: Int32Array, queryLabels: Int32Array): number {
  if (queryLabels.length === 0) return 0;
  let total = 0;
  for (let q = 0; q < queryLabels.length; q++) {
    let hits = 0;
    let sum = 0;
    for (let i = 0; i < k; i++) {
      const id = ids[q * k + i];
      if (id >= 0 && baseLabels[id] === queryLabels[q]) {
        hits++;
        sum += hits / (i + 1);
      }
    }
    total += sum / k;
  }
  return total / queryLabels.length;
}
