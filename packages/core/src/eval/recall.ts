/**
 * recall@k as ann-benchmarks and the AdANNS code define it: the fraction of
 * the true k nearest neighbours found among the k returned, averaged over
 * queries. `truth` is queries x truthK (truthK >= k), best first.
 */
export function recallAtK(found: ArrayLike<number>, foundK: number, truth: ArrayLike<number>, truthK: number, queries: number, k: number): number {
  if (k > truthK) throw new Error(`recall@${k} needs ground truth with at least ${k} neighbours per query, got ${truthK}`);
  if (k > foundK) throw new Error(`recall@${k} needs at least ${k} results per query, got ${foundK}`);
  if (queries === 0) return 0;
  let hits = 0;
  const want = new Set<number>();
  for (let q = 0; q < queries; q++) {
    want.clear();
    for (let i = 0; i < k; i++) want.add(truth[q * truthK + i]);
    for (let i = 0; i < k; i++) if (want.has(found[q * foundK + i])) hits++;
  }
  return hits / (queries * k);
}
