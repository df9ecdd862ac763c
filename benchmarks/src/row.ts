/** One row of results.json (docs/ARCHITECTURE.md, "Benchmark results"), plus the extra measures the harness takes. */
export interface ResultRow {
  system: string;
  spec: string;
  params: Record<string, unknown>;
  k: number;
  recall: number;
  /** 1-NN label accuracy (null without labels). */
  top1: number | null;
  /** mAP@k as the AdANNS code computes it (null without labels). */
  map: number | null;
  /** Modelled MFLOPs per query (null where a system has no cost model, e.g. HNSW). */
  mflops: number | null;
  /** Single-thread QPS, queries one at a time (1000 / mean latency in ms). */
  qps: number;
  /** Batched QPS: all queries in one call, median of repeats. */
  batchQps: number;
  p50Ms: number;
  p99Ms: number;
  buildSeconds: number;
  /** Bytes the index holds in memory (every array, by its allocated length; on-disk re-rank vectors not included). */
  indexBytes: number;
  /** indexBytes by kind (lists, codes, norms, ids, centroids, rotation, codebooks, rerank); adanns indexes only. */
  indexBytesByKind?: Record<string, number>;
  /** Bytes of re-rank vectors on disk (rerank@d); adanns indexes only. */
  diskBytes?: number;
  /** Peak resident set size of the process that measured the row, so far. */
  rssBytes: number;
  note?: string;
  /** budget suite: the budget as requested, whether the plan met it, and the calibrated recall it expected. */
  budget?: Record<string, number>;
  budgetMet?: boolean;
  expectedRecall?: number | null;
}

export interface Results {
  dataset: { name: string; n: number; dim: number; queries: number; metric: string };
  machine: { cpus: number; node: string; backend: string; threads: number };
  command: string;
  rows: ResultRow[];
}
