import { TopK, type RowBlock } from '@adanns/compute';
import { gatherQueries } from '../index/filtered.js';
import type { RerankPatience } from '../params.js';

/**
 * Patience on the re-rank (params.ts RerankPatience; issue 17): the depth a
 * query needs into its shortlist varies as much as the lists it needs to
 * probe. The earlier stage (scan or funnel) ranks the candidates; the exact
 * re-rank rescores them in that order, the first `first`, then `step` more
 * per round for the queries whose last chunk brought more than `newMax` new
 * members into their exact top `first`, until a query's candidates run out.
 * The watched top is `first`, not k, so the depth does not depend on k (a
 * search at k serves every smaller k: calibration measures once). Each round
 * is one call of the plain re-rank (`rerank`, keeping a given count) on the
 * queries still going, with only their chunk as candidates, so the scores are
 * the plain re-rank's; the chunk's best `first` merge into each query's top
 * `first` (the heap's total order: ties on the lower slot, as one re-rank of
 * everything rescored would break them). Returns that top (its best k are
 * the answer) and how many candidates each query rescored (what its MFLOPs
 * count). `first` must be at least k (AdannsIndex.resolveParams).
 */
export async function rerankWithPatience(queries: RowBlock, candidates: TopK, rule: RerankPatience, rerank: (queries: RowBlock, chunk: TopK, keep: number) => Promise<TopK>): Promise<{ final: TopK; reranked: Int32Array }> {
  const rows = queries.rows;
  const width = candidates.k;
  // the candidates best first, copied: the scan's heaps may be shared (calibration's scan reuse)
  const order = new TopK(rows, width);
  order.ids.set(candidates.ids);
  order.scores.set(candidates.scores);
  order.sizes.set(candidates.sizes);
  order.sort();
  const first = rule.first;
  // the watched top never holds more than the candidates: a heap wider than them would never fill, so capping it
  // changes no answer or depth, and keeps a request's `first` (up to 1e6) from sizing the heaps
  const k = Math.min(first, width);
  const final = new TopK(rows, k);
  const reranked = new Int32Array(rows);
  const chunkWidth = Math.max(first, rule.step);
  const active = new Int32Array(rows);
  for (let q = 0; q < rows; q++) active[q] = q;
  let n = rows;
  let round = 0;
  while (n > 0) {
    const size = round === 0 ? first : rule.step;
    const chunk = new TopK(n, Math.min(chunkWidth, width));
    for (let i = 0; i < n; i++) {
      const q = active[i];
      const from = reranked[q];
      const take = Math.min(size, order.sizes[q] - from);
      chunk.ids.set(order.ids.subarray(q * width + from, q * width + from + take), i * chunk.k);
      chunk.sizes[i] = take;
      reranked[q] = from + take;
    }
    const sub = n === rows ? queries : gatherQueries(queries, active.subarray(0, n));
    const scored = await rerank(sub, chunk, k);
    let next = 0;
    for (let i = 0; i < n; i++) {
      const q = active[i];
      for (let j = 0; j < scored.sizes[i]; j++) final.push(q, scored.ids[i * k + j], scored.scores[i * k + j]);
      // a chunk member is in the watched top after the merge when the row has room or it is not behind the row's worst (the root)
      let brought = scored.sizes[i];
      if (final.sizes[q] === k) {
        const rootScore = final.scores[q * k];
        const rootId = final.ids[q * k];
        brought = 0;
        for (let j = 0; j < scored.sizes[i]; j++) {
          const s = scored.scores[i * k + j];
          if (s > rootScore || (s === rootScore && scored.ids[i * k + j] <= rootId)) brought++;
        }
      }
      if (reranked[q] < order.sizes[q] && brought > rule.newMax) active[next++] = q;
    }
    n = next;
    round++;
  }
  return { final, reranked };
}
