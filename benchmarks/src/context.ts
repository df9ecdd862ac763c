import type { Backend } from '@adanns/compute';
import type { Budget } from '@adanns/core';
import type { BenchData } from './bench-data.js';
import type { ResultRow, SystemInfo, UntimedRow } from './row.js';
import type { RowTiming } from './timing.js';

/** What every suite gets: the data, the measuring settings and where rows go. */
export interface BenchContext {
  backend: Backend;
  data: BenchData;
  k: number;
  threads: number;
  seed: number;
  /** Queries timed one at a time for latency percentiles and single-thread QPS. */
  latencyQueries: number;
  /** Timed passes behind every speed figure (the median is reported; at least MIN_PASSES). */
  passes: number;
  /** 'pca,' or '' before AdANNS specs. */
  transform: 'pca' | 'none';
  out: string;
  /** Budgets of the budget suite. */
  budgets: Budget[];
  /** PQ byte budgets M for the quantised suites. */
  bytes: number[];
  /** The suites of this run (FAISS's PQ baselines run only next to a quantised suite). */
  suites: string[];
  progress: (stage: string, done: number, total: number) => void;
  log: (line: string) => void;
  /** A row timed by its system itself (FAISS's subprocess), speeds included. */
  add: (row: ResultRow) => void;
  /**
   * A row whose speeds the harness measures after every suite has built and
   * registered its rows: all rows' passes round-robin (timing.ts
   * timeRoundRobin). The closures must set any state the row depends on
   * (e.g. hnswlib's ef) themselves, since other rows run between its passes.
   */
  timed: (row: UntimedRow, timing: RowTiming) => void;
  /** Runs once every row is timed: releases what the timing closures search (an index). */
  afterTiming: (release: () => void) => void;
  /** Records how a system ran (results.json machine.systems); every suite describes the systems it adds rows for. */
  describe: (system: string, info: SystemInfo) => void;
}

/** The threads a backend actually runs on (the CPU backend's pool; the others compute on the calling thread or a device). */
export function backendThreads(backend: Backend): number {
  return 'threads' in backend && typeof backend.threads === 'number' ? backend.threads : 1;
}

/** IVF list count: the power of two nearest sqrt(N). */
export function listCount(n: number): number {
  return Math.max(1, 2 ** Math.round(Math.log2(Math.sqrt(n))));
}

export function nprobeSweep(lists: number): number[] {
  return [1, 2, 4, 8, 16, 32, 64].filter((p) => p <= lists);
}

export const DEFAULT_BYTE_BUDGETS = [8, 16, 32, 64];
