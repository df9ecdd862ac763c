import type { Backend, Metric } from '@adanns/compute';
import { exactNeighbours } from '../eval/ground-truth.js';
import { recallAtK } from '../eval/recall.js';
import { AdannsIndex, type BuildOptions } from '../index/adanns-index.js';
import type { SearchParams } from '../params.js';
import { dimsLadder } from '../prefixes.js';
import { fitPca } from '../index/training.js';
import { formatSpec, parseSpec, type IndexSpec } from '../spec.js';
import { OPQ_ITERATIONS } from './opq.js';

export interface DimChoice {
  dim: number;
  recall: number;
  mflops: number;
}

export interface SelectDimOptions extends Omit<BuildOptions, 'metric'> {
  metric: Metric;
  /** Calibration queries (rows x dim), not part of the data. */
  queries: Float32Array;
  queryRows: number;
  k?: number;
  /** Prefixes to try (default: the dims ladder from M up). */
  dims?: number[];
  /** Search params used for the comparison (e.g. nprobe for IVF-OPQ). */
  params?: Partial<SearchParams>;
  /**
   * OPQ alternations of the screening build at each prefix (default 10); the
   * chosen prefix is then built again with the full count (opqIterations,
   * default 50). At or above the full count the screening build is kept.
   */
  screenOpqIterations?: number;
  /** Screened prefixes trained in full, best screened recall first (default 2). */
  finalists?: number;
  onCandidate?: (choice: DimChoice, spec: string) => void;
}

/**
 * AdANNS-OPQ: for a byte budget M, build the quantised index at every prefix
 * d of the ladder (d >= M) and keep the one with the best recall@k on the
 * calibration queries (exact ground truth at the full dimension). `template`
 * is a spec whose pq/opq stage gives M (e.g. `pca,opq16@64` or
 * `pca,ivf256@32,opq16@64`); its scan dim is what is varied.
 *
 * Work shared across prefixes: the PCA is fitted once (every candidate would
 * fit the same one), and OPQ candidates are screened with a short rotation
 * training (screenOpqIterations) before the best `finalists` of them are
 * trained in full; the reported best is the fully trained index's recall,
 * `candidates` the screening recalls.
 */
export async function selectQuantizedDim(
  backend: Backend,
  template: IndexSpec | string,
  data: Float32Array,
  rows: number,
  dim: number,
  options: SelectDimOptions,
): Promise<{ best: DimChoice; index: AdannsIndex; candidates: DimChoice[] }> {
  const spec = typeof template === 'string' ? parseSpec(template, dim) : template;
  const bytes = spec.scan.bytes;
  if (bytes === undefined) throw new Error(`selectQuantizedDim: spec "${formatSpec(spec)}" has no pq/opq stage`);
  const k = options.k ?? 10;
  const dims = (options.dims ?? dimsLadder(dim)).filter((d) => d >= bytes && d <= dim);
  if (dims.length === 0) throw new Error(`selectQuantizedDim: no prefix of the ladder holds M = ${bytes} sub-quantisers`);
  const truth = await exactNeighbours(backend, data, rows, options.queries, options.queryRows, dim, options.metric, k);
  // a build that calibrates holds rows out of the PCA sample itself, so only a plain build can take a shared fit
  const pca = spec.transform === 'pca' && !options.calibrate ? (options.pca ?? fitPca(data, rows, dim, options)) : options.pca;
  const full = options.opqIterations ?? OPQ_ITERATIONS;
  const screen = spec.scan.codec === 'opq' ? Math.min(options.screenOpqIterations ?? 10, full) : full;
  const measure = async (index: AdannsIndex, d: number): Promise<DimChoice> => {
    const result = await index.search(options.queries, options.queryRows, k, options.params);
    return {
      dim: d,
      recall: recallAtK(result.ids, k, truth.ids, k, options.queryRows, k),
      mflops: result.mflops.reduce((a, b) => a + b, 0) / options.queryRows,
    };
  };
  const specAt = (d: number): IndexSpec => {
    const candidate: IndexSpec = { ...spec, scan: { ...spec.scan, dim: d } };
    if (candidate.rerank && candidate.rerank.dim < d) candidate.rerank = { ...candidate.rerank, dim: d };
    return candidate;
  };
  let best: { choice: DimChoice; index: AdannsIndex } | undefined;
  const candidates: DimChoice[] = [];
  for (const d of dims) {
    const candidate = specAt(d);
    const index = await AdannsIndex.build(backend, candidate, data, rows, dim, { ...options, pca, opqIterations: screen });
    const choice = await measure(index, d);
    candidates.push(choice);
    options.onCandidate?.(choice, formatSpec(candidate));
    if (!best || choice.recall > best.choice.recall) {
      // a dropped candidate gives its arrays back, so later builds and timings do not run on the heap fallback
      best?.index.release();
      best = { choice, index };
    } else {
      index.release();
    }
  }
  if (screen < full) {
    // the finalists (best screened recall first, smaller d on ties) are trained in full: a short training ranks near-equal prefixes by chance
    best!.index.release();
    best = undefined;
    const finalists = [...candidates].sort((a, b) => b.recall - a.recall || a.dim - b.dim).slice(0, options.finalists ?? 2);
    for (const { dim: d } of finalists) {
      const index = await AdannsIndex.build(backend, specAt(d), data, rows, dim, { ...options, pca, opqIterations: full });
      const choice = await measure(index, d);
      if (!best || choice.recall > best.choice.recall || (choice.recall === best.choice.recall && d < best.choice.dim)) {
        best?.index.release();
        best = { choice, index };
      } else {
        index.release();
      }
    }
  }
  return { best: best!.choice, index: best!.index, candidates };
}
