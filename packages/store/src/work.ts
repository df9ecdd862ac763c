import type { AdannsIndex, SearchParams } from '@adanns/core';

/**
 * Planned MFLOPs of one query on `index` with resolved params `p`, before
 * anything runs, in the cost model of packages/core (cost.ts, one
 * multiply-add = 1 FLOP): the
 * calibrated mean priced on the current list sizes when the calibration
 * measured these params (a budget's plan always is one of them), else a bound from the index's shape, with the
 * scan taken at its worst (the `nprobe` largest lists). A search refused or
 * sliced on this figure is refused or sliced on the planner's own numbers.
 */
export function plannedQueryMflops(index: AdannsIndex, p: SearchParams): number {
  const predicted = index.predictMflops(p);
  if (predicted !== undefined) return predicted;
  const spec = index.spec;
  const rerankDim = p.rerankDim;
  const prefix = Math.max(p.coarseDim, p.scanDim, rerankDim !== undefined && rerankDim < index.dim ? rerankDim : 0);
  let scanned = index.size;
  if (spec.coarse) {
    const sizes = Int32Array.from(index.listSizes()).sort();
    scanned = 0;
    for (let i = sizes.length - 1; i >= Math.max(0, sizes.length - p.nprobe); i--) scanned += sizes[i];
  }
  // PQ scans cost its bytes per vector plus (O)PQ tables; float lists scanDim per vector
  // (decoding codecs such as f16 or sq8 at most twice that)
  // M table lookup-adds per vector: 8-bit PQ's bytes, the sub-quantisers of 4-bit fast scan (pq4, opq4)
  const bytes = ['pq', 'opq', 'pq4', 'opq4'].includes(spec.scan.codec) ? (spec.scan as { bytes?: number }).bytes ?? 0 : 0;
  const probes = spec.coarse ? p.nprobe : 1;
  const quantizerFlops = bytes > 0 ? (spec.scan.codec === 'opq' || spec.scan.codec === 'opq4' ? p.scanDim * p.scanDim : 0) + 256 * p.scanDim * probes : 0;
  const floatScan = bytes > 0 ? 0 : scanned * p.scanDim * (spec.scan.codec === 'flat' ? 1 : 2);
  // the terms of queryFlops (packages/core/src/cost.ts), with the scan bounded as above; a collection's
  // re-rank gathers its rows from LMDB, so for cosine their norms count too
  const scan = bytes > 0 ? quantizerFlops + scanned * bytes : floatScan;
  const flops = index.dim * (spec.transform === 'pca' ? prefix : 0) + (spec.coarse ? spec.coarse.lists * p.coarseDim : 0) + scan + (rerankDim !== undefined ? p.shortlist * rerankDim * (index.metric === 'cosine' ? 2 : 1) : 0);
  return flops / 1e6;
}
