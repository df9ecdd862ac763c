import type { SpeedFigures } from './timing.js';

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
  /** QPS with queries one at a time (on the system's threads, machine.systems): median over the timed passes. */
  qps: number;
  /** Batched QPS: all queries in one call, median of the timed passes. */
  batchQps: number;
  /** Median over the passes of each pass's p50 and p99 latency. */
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
  /** filtered suite: the share of the base the filter matches, what it says, how many rows match, and the fewest hits any query got (k whenever k match). */
  selectivity?: number;
  filter?: string;
  matches?: number;
  hits?: number;
}

/** A row before the harness times it (bench.ts times every row of a run round-robin, timing.ts timeRoundRobin). */
export type UntimedRow = Omit<ResultRow, keyof SpeedFigures>;

/** How a system ran: the threads it actually used (read back from it, not the request), and what else identifies the build. */
export interface SystemInfo {
  threads: number;
  version?: string;
  /** FAISS: faiss.get_compile_options() (e.g. "OPTIMIZE GENERIC" or "AVX2"). */
  compileOptions?: string;
  /** FAISS: the thread variables its subprocess ran with. */
  env?: Record<string, string>;
  /** What the run left out of this system's sweep, and why (the filtered suite's hnswlib time bound). */
  note?: string;
}

export interface Results {
  dataset: { name: string; n: number; dim: number; queries: number; metric: string };
  /** threads: --threads as given; systems: each system's own record of how it ran; passes: timed passes per figure (median reported). */
  machine: { cpus: number; node: string; backend: string; threads: number; passes: number; systems: Record<string, SystemInfo> };
  command: string;
  rows: ResultRow[];
}
