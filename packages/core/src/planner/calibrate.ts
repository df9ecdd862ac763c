import type { AdannsIndex, VectorReader } from '../index/adanns-index.js';
import type { SearchParams } from '../params.js';
import { dimsLadder } from '../prefixes.js';
import type { FrontierPoint } from './frontier.js';
import type { ProbeCounts, ProbeStatistics } from './pricing.js';

export interface CalibrateOptions {
  /** Calibration queries (rows x dim); default: a seeded sample of the stored vectors, each excluded from its own results. */
  queries?: Float32Array;
  queryRows?: number;
  /** Stored vectors sampled when no queries are given (default 300). */
  sampleSize?: number;
  k?: number;
  /** Time bound (default 120 s): the grid runs cheapest first and stops when it is spent. */
  maxSeconds?: number;
  /** Queries timed one at a time per point for its latency (default 20). */
  latencyQueries?: number;
  seed?: number;
  /**
   * The stored vectors at the full dimension by slot, for an index that keeps
   * none (no rerank@D, no flat@D lists): build() passes its input here.
   */
  vectors?: VectorReader;
  onProgress?: (done: number, total: number) => void;
}

/** What calibration measured, persisted with the index. */
export interface Calibration {
  k: number;
  queries: number;
  /** True when the queries were sampled from the index (each excluded from its own results and truth). */
  selfExcluded: boolean;
  points: FrontierPoint[];
  seconds: number;
  /** False when the time bound cut the grid short. */
  complete: boolean;
  /** Which lists the queries probed, and the list sizes then: prices the points on later list sizes (absent in older calibrations). */
  probeStats?: ProbeStatistics;
}

/**
 * For each coarseDim and nprobe of the grid, how often the queries probed
 * each list: one full ranking of the lists per query and coarseDim (top-n is
 * a prefix of it, the order being total), counted at every nprobe.
 */
async function probeStatistics(index: AdannsIndex, queries: Float32Array, rows: number, grid: SearchParams[]): Promise<ProbeStatistics> {
  const listSizes = Array.from(index.listSizes());
  const probes: ProbeCounts[] = [];
  const lists = listSizes.length;
  for (const coarseDim of new Set(grid.filter((p) => p.nprobe > 0).map((p) => p.coarseDim))) {
    const ranking = await index.probeLists(queries, rows, coarseDim, lists);
    const nprobes = [...new Set(grid.filter((p) => p.coarseDim === coarseDim).map((p) => p.nprobe))].sort((a, b) => a - b);
    const counts = new Array<number>(lists).fill(0);
    let done = 0;
    for (const nprobe of nprobes) {
      for (let q = 0; q < rows; q++) {
        for (let i = done; i < nprobe; i++) {
          const list = ranking[q * lists + i];
          if (list >= 0) counts[list]++;
        }
      }
      done = nprobe;
      probes.push({ coarseDim, nprobe, counts: [...counts] });
    }
  }
  return { queries: rows, listSizes, probes };
}

function geometric(max: number): number[] {
  const out: number[] = [];
  for (let v = 1; v < max; v *= 2) out.push(v);
  out.push(max);
  return out;
}

/** The parameter grid of an index: prefixes from its ladder, nprobe doubling, shortlists in multiples of k. */
export function calibrationGrid(index: AdannsIndex, k: number): SearchParams[] {
  const { spec } = index;
  const coarse = spec.coarse ? dimsLadder(spec.coarse.dim).slice(-3) : [0];
  const nprobes = spec.coarse ? geometric(spec.coarse.lists) : [0];
  const scans = spec.scan.codec === 'flat' ? dimsLadder(spec.scan.dim).slice(-3) : [spec.scan.dim];
  const rerank = spec.rerank?.dim;
  const shortlists = rerank === undefined ? [k] : [k, 2 * k, 4 * k, 10 * k, 20 * k].filter((s) => s <= Math.max(k, index.size));
  const grid: SearchParams[] = [];
  for (const coarseDim of coarse) {
    for (const nprobe of nprobes) {
      for (const scanDim of scans) {
        for (const shortlist of shortlists) {
          const p: SearchParams = { coarseDim, nprobe, scanDim, shortlist };
          if (rerank !== undefined) p.rerankDim = rerank;
          grid.push(p);
        }
      }
    }
  }
  return grid;
}

const meanAndStdErr = (values: ArrayLike<number>): [number, number] => {
  const n = values.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i];
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i] - mean) ** 2;
  return [mean, n > 1 ? Math.sqrt(ss / (n - 1) / n) : 0];
};

/**
 * Sweeps the grid on calibration queries against exact ground truth at the
 * full dimension, recording recall@k, modelled MFLOPs and latency per point.
 */
export async function calibrate(index: AdannsIndex, options: CalibrateOptions = {}): Promise<Calibration> {
  const started = performance.now();
  const k = options.k ?? 10;
  const dim = index.dim;
  let queries: Float32Array;
  let rows: number;
  let ownIds: Float64Array | undefined;
  if (options.queries) {
    queries = options.queries;
    rows = options.queryRows ?? options.queries.length / dim;
  } else {
    const sample = await index.sampleStored(options.sampleSize ?? 300, options.seed ?? 7, options.vectors);
    queries = sample.vectors;
    rows = sample.ids.length;
    ownIds = sample.ids;
  }
  if (rows < 2) throw new Error(`calibration needs at least 2 queries, got ${rows}`);
  // with queries drawn from the index, ask for one more result and drop the query itself
  const extra = ownIds ? 1 : 0;
  if (k + extra > index.size) throw new Error(`calibration at k = ${k} needs more than ${k + extra - 1} stored vectors`);
  const dropOwn = (ids: Float64Array, width: number): Float64Array => {
    if (!ownIds) return ids;
    const out = new Float64Array(rows * k);
    for (let q = 0; q < rows; q++) {
      let w = 0;
      for (let i = 0; i < width && w < k; i++) if (ids[q * width + i] !== ownIds[q]) out[q * k + w++] = ids[q * width + i];
    }
    return out;
  };
  const truth = dropOwn((await index.exactSearch(queries, rows, k + extra, options.vectors)).ids, k + extra);
  const grid = calibrationGrid(index, k + extra);
  const probeStats = await probeStatistics(index, queries, rows, grid);
  const maxMs = (options.maxSeconds ?? 120) * 1000;
  const latencyQueries = Math.min(options.latencyQueries ?? 20, rows);
  const points: FrontierPoint[] = [];
  const perQuery = new Float64Array(rows);
  const want = new Set<number>();
  let complete = true;
  // cheapest first, so a time bound keeps the useful low-cost end of the grid
  const cost = (p: SearchParams) => p.coarseDim * p.nprobe + p.nprobe * p.scanDim * 64 + p.shortlist * (p.rerankDim ?? 0);
  grid.sort((a, b) => cost(a) - cost(b));
  for (let g = 0; g < grid.length; g++) {
    if (performance.now() - started > maxMs) {
      complete = false;
      break;
    }
    const params = grid[g];
    const result = await index.search(queries, rows, k + extra, params);
    const found = dropOwn(result.ids, k + extra);
    for (let q = 0; q < rows; q++) {
      want.clear();
      for (let i = 0; i < k; i++) want.add(truth[q * k + i]);
      let hits = 0;
      for (let i = 0; i < k; i++) if (want.has(found[q * k + i])) hits++;
      perQuery[q] = hits / k;
    }
    const [recall, recallStdErr] = meanAndStdErr(perQuery);
    const [mflops, mflopsStdErr] = meanAndStdErr(result.mflops);
    let mflopsMax = 0;
    for (const m of result.mflops) mflopsMax = Math.max(mflopsMax, m);
    let latency = 0;
    for (let q = 0; q < latencyQueries; q++) {
      const t = performance.now();
      await index.search(queries.subarray(q * dim, (q + 1) * dim), 1, k + extra, params);
      latency += performance.now() - t;
    }
    points.push({ params: result.params, recall, recallStdErr, mflops, mflopsStdErr, mflopsMax, latencyMs: latency / latencyQueries });
    options.onProgress?.(g + 1, grid.length);
  }
  return { k, queries: rows, selfExcluded: ownIds !== undefined, points, seconds: (performance.now() - started) / 1000, complete, probeStats };
}
