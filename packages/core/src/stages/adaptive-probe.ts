/**
 * Adaptive probing, decided from the centroid scores alone (SPANN's
 * query-aware pruning): a query probes its lists in centroid order while a
 * centroid's score is within `margin` of its best centroid's, at most the
 * cap. A query whose best centroids stand out stops early; one near several
 * cluster boundaries (many centroids almost as close) probes more. The
 * margin is fitted per mean depth on the calibration queries: for each fixed
 * nprobe n, the margin under which they probe n lists on average
 * (planner/adaptive-grid.ts); the planner then picks, per recall target, the
 * cheapest calibrated point that reaches it. Scores are the metric's "larger is closer" ones, so
 * the margin is in cosine, inner-product or negated squared-L2 units.
 */

/**
 * How many of one query's ranked lists the rule probes: `scores` are its
 * centroid scores best first (NaN past the lists that exist), `cap` how many
 * it may probe. At least one list is probed when any exists.
 */
export function probeDepth(scores: Float32Array, offset: number, cap: number, margin: number): number {
  const best = scores[offset];
  if (Number.isNaN(best)) return 0;
  let depth = 1;
  while (depth < cap && best - scores[offset + depth] <= margin) depth++;
  return depth;
}

/**
 * Cuts rows x nprobe ranked lists (best first, with their centroid scores) in
 * place to what the rule probes: -1 after each query's last list, the form
 * the batched scans skip. Returns each query's depth.
 */
export function cutProbes(lists: Int32Array, scores: Float32Array, rows: number, nprobe: number, margin: number): Int32Array {
  const depths = new Int32Array(rows);
  for (let q = 0; q < rows; q++) {
    const depth = probeDepth(scores, q * nprobe, nprobe, margin);
    depths[q] = depth;
    lists.fill(-1, q * nprobe + depth, (q + 1) * nprobe);
  }
  return depths;
}

/**
 * The margin under which queries probe `meanDepth` lists on average with this
 * cap (rows x width ranked scores, width >= cap): the margins where some
 * query's depth changes are its gaps to its best centroid, and the mean depth
 * only grows with the margin, so a bisection over the sorted gaps finds the
 * smallest margin reaching the mean (the largest gap when none does).
 */
export function marginForMeanDepth(scores: Float32Array, rows: number, width: number, cap: number, meanDepth: number): number {
  const gaps: number[] = [];
  for (let q = 0; q < rows; q++) {
    const best = scores[q * width];
    for (let i = 1; i < cap; i++) {
      const s = scores[q * width + i];
      if (!Number.isNaN(s)) gaps.push(best - s);
    }
  }
  if (gaps.length === 0) return 0;
  gaps.sort((a, b) => a - b);
  const mean = (margin: number) => {
    let total = 0;
    for (let q = 0; q < rows; q++) total += probeDepth(scores, q * width, cap, margin);
    return total / rows;
  };
  let lo = 0;
  let hi = gaps.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (mean(gaps[mid]) >= meanDepth) hi = mid;
    else lo = mid + 1;
  }
  return gaps[lo];
}
