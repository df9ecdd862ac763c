import type { AdannsIndex, SearchParams } from '@adanns/core';

/**
 * Planned MFLOPs of one query on `index` with resolved params `p`, before
 * anything runs, in the cost model of packages/core (cost.ts, one
 * multiply-add = 1 FLOP): the calibrated mean priced on the current list
 * sizes when the calibration measured these params (a budget's plan always is
 * one of them), else the index's upper bound (AdannsIndex.boundMflops: the
 * `nprobe` largest lists scanned, counted by the same terms as a search). A
 * search refused or sliced on this figure is refused or sliced on the
 * planner's own numbers.
 */
export function plannedQueryMflops(index: AdannsIndex, p: SearchParams): number {
  return index.predictMflops(p) ?? index.boundMflops(p);
}
