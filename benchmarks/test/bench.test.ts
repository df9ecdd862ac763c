import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { writeIvecs, writeNpy } from '@adanns/datasets';
import { benchCommand } from '../src/index.js';
import { generateSynthetic, type VectorSet } from '@adanns/datasets';
import { groundTruthKey, readLabels } from '../src/bench-data.js';
import { meanAveragePrecisionAtK, top1Accuracy } from '../src/quality.js';
import { atRecall, paretoFront } from '../src/report/summary.js';
import { faissEnv, faissUnavailable } from '../src/suites/faiss.js';
import { singleQueryFigures, timeRoundRobin, type RowTiming } from '../src/timing.js';
import type { ResultRow, Results } from '../src/row.js';

const dir = mkdtempSync(join(tmpdir(), 'adanns-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const tiny = 'n=600,dim=16,clusters=6,queries=20,seed=3';

async function bench(args: string[]): Promise<Results> {
  const out = join(dir, `run-${Math.random().toString(36).slice(2)}`);
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await benchCommand([...args, '--out', out, '--latency-queries', '5']);
  } finally {
    log.mockRestore();
    err.mockRestore();
  }
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Results;
  expect(readFileSync(join(out, 'recall-vs-mflops.svg'), 'utf8')).toMatch(/^<svg/);
  expect(readFileSync(join(out, 'recall-vs-qps.svg'), 'utf8')).toMatch(/^<svg/);
  expect(readFileSync(join(out, 'summary.md'), 'utf8')).toMatch(/\| system \| threads \| QPS at >= 0.9 \| recall \| spec and params \| QPS at >= 0.95 /);
  return results;
}

describe('quality measures', () => {
  const baseLabels = Int32Array.from([0, 0, 1, 1, 2]);
  it('top-1 counts queries whose first result has their label', () => {
    // query 0 (label 0) first hit id 1 (label 0); query 1 (label 2) first hit id 2 (label 1); query 2 no result
    expect(top1Accuracy([1, 2, 2, 4, -1, -1], 2, baseLabels, Int32Array.from([0, 2, 1]))).toBeCloseTo(1 / 3, 12);
  });
  it('mAP@k averages precision at the matching ranks and divides by k', () => {
    // ranks: match, miss, match -> (1/1 + 2/3) / 3
    expect(meanAveragePrecisionAtK([0, 2, 1], 3, baseLabels, Int32Array.from([0]))).toBeCloseTo((1 + 2 / 3) / 3, 12);
    // miss, match -> (1/2) / 2; and a query with no match scores 0
    expect(meanAveragePrecisionAtK([2, 0, 4, 4], 2, baseLabels, Int32Array.from([0, 1]))).toBeCloseTo((0.5 / 2 + 0) / 2, 12);
  });
  it('reads labels from .npy and .ivecs and names bad ones', () => {
    writeNpy(join(dir, 'labels.npy'), [3, 1, 2], [3], '|u1');
    expect(Array.from(readLabels(join(dir, 'labels.npy')))).toEqual([3, 1, 2]);
    writeIvecs(join(dir, 'labels.ivecs'), Int32Array.from([5, 6]), 2, 1);
    expect(Array.from(readLabels(join(dir, 'labels.ivecs')))).toEqual([5, 6]);
    writeNpy(join(dir, 'float.npy'), [0.5], [1], '<f4');
    expect(() => readLabels(join(dir, 'float.npy'))).toThrow(/1-D integer array/);
    expect(() => readLabels(join(dir, 'labels.txt'))).toThrow(/cannot tell the format of labels/);
  });
});

describe('timing', () => {
  it('reports the median of the passes, not a mean over them or the best one', () => {
    // pass QPS: 1000, 500, 100 (one slow pass); pooling the latencies would give 3000 / 13 = 231
    const figures = singleQueryFigures([[1, 1], [2, 2, 2, 2], [10, 10]]);
    expect(figures.qps).toBe(500);
    expect(figures.p50Ms).toBe(2);
    expect(figures.p99Ms).toBe(2);
    expect(singleQueryFigures([[4, 1, 1], [3, 3, 3], [5, 5, 5]]).p99Ms).toBe(4);
  });
  it('refuses fewer than three passes', () => {
    expect(() => singleQueryFigures([[1], [1]])).toThrow(/at least 3 timed passes/);
  });

  describe('round-robin over rows', () => {
    // a fake clock: every search call takes 1 ms, or 10 ms in a slow period of the machine
    let clock = 0;
    let calls = 0;
    let slow: (call: number) => boolean = () => false;
    const trace: string[] = [];
    const work = (event: string) => {
      trace.push(event);
      clock += slow(calls++) ? 10 : 1;
    };
    const row = (name: string, batch = true): RowTiming => ({
      before: () => trace.push(`${name} before`),
      singles: 4,
      single: (i) => work(`${name} ${i}`),
      ...(batch ? { batch: { queries: 4, run: () => work(`${name} batch`) } } : {}),
    });
    const run = (rows: RowTiming[]) => {
      [clock, calls, trace.length] = [0, 0, 0];
      const now = vi.spyOn(performance, 'now').mockImplementation(() => clock);
      return timeRoundRobin(rows, 3).finally(() => now.mockRestore());
    };

    it('takes pass 1 of every row, then pass 2 of every row, each after its state and a warm-up', async () => {
      await run([row('a'), row('b'), row('c')]);
      expect(trace.filter((e) => e.endsWith('before'))).toEqual(['a before', 'b before', 'c before', 'a before', 'b before', 'c before', 'a before', 'b before', 'c before']);
      // one pass of a row: its state, the warm-up queries (all 4 here: fewer than 10), the timed queries, the batched call
      expect(trace.slice(0, 10)).toEqual(['a before', 'a 0', 'a 1', 'a 2', 'a 3', 'a 0', 'a 1', 'a 2', 'a 3', 'a batch']);
    });

    it('keeps a slow period out of every row\'s median', async () => {
      // slow for the second of three rounds of calls (a pass of a and of b: 4 warm-up, 4 timed, 1 batched call;
      // of c: 8): interleaved, it is one pass of each row; row by row, it would reach all three passes of row b
      slow = (call) => call >= 26 && call < 52;
      try {
        const figures = await run([row('a'), row('b'), row('c', false)]);
        for (const f of figures) expect(f).toMatchObject({ qps: 1000, p50Ms: 1, p99Ms: 1 });
        expect(figures.map((f) => f.batchQps)).toEqual([4000, 4000, 1000]); // no batched call: its batchQps is its qps
      } finally {
        slow = () => false;
      }
    });
  });
});

describe('ground-truth cache key', () => {
  const { base, queries } = generateSynthetic({ n: 50, dim: 8, queries: 4, seed: 5 });
  const key = groundTruthKey(base, queries, 'cosine', 10);
  it('is the same for the same vectors under another name', () => {
    expect(groundTruthKey({ ...base, name: 'renamed' }, { ...queries, data: queries.data.slice() }, 'cosine', 10)).toBe(key);
  });
  it('changes with one value of the base or the queries, the metric, k or the rows used', () => {
    const changed = (set: VectorSet, at: number): VectorSet => {
      const data = set.data.slice();
      data[at] += 1e-3;
      return { ...set, data };
    };
    const others = [
      groundTruthKey(changed(base, 123), queries, 'cosine', 10),
      groundTruthKey(base, changed(queries, 7), 'cosine', 10),
      groundTruthKey(base, queries, 'l2', 10),
      groundTruthKey(base, queries, 'cosine', 5),
      groundTruthKey({ ...base, rows: 49 }, queries, 'cosine', 10),
    ];
    expect(new Set([key, ...others]).size).toBe(others.length + 1);
  });
});

describe('summary', () => {
  const row = (system: string, recall: number, mflops: number | null, qps: number): ResultRow => ({
    system, spec: 's', params: {}, k: 10, recall, top1: null, map: null, mflops, qps, batchQps: qps, p50Ms: 1, p99Ms: 1, buildSeconds: 0, indexBytes: 0, rssBytes: 0,
  });
  it('keeps Pareto points and finds the cheapest row at a recall target', () => {
    const rows = [row('a', 0.5, 1, 900), row('a', 0.8, 2, 500), row('a', 0.7, 3, 400), row('a', 0.96, 5, 100), row('b', 0.92, null, 700)];
    expect(paretoFront(rows.filter((r) => r.system === 'a'), (r) => r.mflops).map((r) => r.recall)).toEqual([0.5, 0.8, 0.96]);
    const at = atRecall(rows, 0.9);
    expect(at.find((x) => x.system === 'a')!.mflops!.mflops).toBe(5);
    expect(at.find((x) => x.system === 'b')!.mflops).toBeUndefined();
    expect(at.find((x) => x.system === 'b')!.qps!.qps).toBe(700);
  });
  it('takes the best QPS at a recall target from the recall-QPS frontier', () => {
    const rows = [
      row('a', 0.95, 2, 800), // as fast as the row below, lower recall: dominated, never picked
      row('a', 0.97, 3, 800),
      row('a', 0.93, 2, 700), // slower and less accurate than the first: dominated
      row('a', 0.91, 1, 900),
      row('a', 0.5, 1, 2000),
    ];
    expect(paretoFront(rows, (r) => -r.qps).map((r) => r.recall)).toEqual([0.5, 0.91, 0.97]);
    const pick = (target: number) => atRecall(rows, target)[0].qps;
    expect(pick(0.9)!.recall).toBe(0.91);
    expect(pick(0.92)).toBe(rows[1]);
    expect(pick(0.95)).toBe(rows[1]);
    expect(pick(0.98)).toBeUndefined();
  });
});

describe('adanns bench', () => {
  it('runs every suite on a tiny synthetic set', async () => {
    const results = await bench(['--synthetic', tiny, '--suite', 'all', '--bytes', '8']);
    expect(results.dataset).toMatchObject({ n: 600, dim: 16, queries: 20, metric: 'cosine' });
    const systems = new Set(results.rows.map((r) => r.system));
    for (const s of ['exact', 'ivf', 'adanns-ivf', 'adanns-auto', 'opq', 'adanns-opq', 'ivf-opq', 'adanns-ivf-opq', 'hnswlib', 'budget']) expect(systems, s).toContain(s);
    const budgets = results.rows.filter((r) => r.system === 'budget');
    expect(budgets.map((r) => r.budget)).toEqual([{ recall: 0.8 }, { recall: 0.9 }, { recall: 0.95 }, { mflops: 0.5 }]);
    for (const r of budgets) {
      expect(typeof r.budgetMet).toBe('boolean');
      expect(r.expectedRecall).toBeGreaterThan(0);
    }
    for (const s of ['faiss', 'faiss-opq', 'faiss-ivf-opq']) expect(systems.has(s), s).toBe(faissUnavailable() === undefined);
    // every system says how it ran
    for (const s of systems) expect(results.machine.systems[s]?.threads, s).toBeGreaterThanOrEqual(1);
    expect(results.machine.passes).toBe(3);
    const exact = results.rows.find((r) => r.system === 'exact')!;
    expect(exact.recall).toBe(1);
    expect(exact.mflops).toBeCloseTo((600 * 16) / 1e6, 10);
    for (const r of results.rows) {
      expect(r.recall).toBeGreaterThanOrEqual(0);
      expect(r.recall).toBeLessThanOrEqual(1);
      expect(r.top1).not.toBeNull(); // synthetic sets carry labels
      expect(r.qps).toBeGreaterThan(0);
      expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms);
      // rows timed round-robin get their speeds where rows timed inline had them (FAISS's runner orders its own)
      const keys = Object.keys(r);
      if (!r.system.startsWith('faiss')) expect(keys.slice(keys.indexOf('mflops'), keys.indexOf('mflops') + 5), r.system).toEqual(['mflops', 'qps', 'p50Ms', 'p99Ms', 'batchQps']);
    }
  }, 300_000);

  it('single-row mode gives the recall `adanns search` prints for the same index and params', async () => {
    const results = await bench(['--synthetic', tiny, '--spec', 'ivf16@8,flat@16', '--params', 'nprobe=3']);
    expect(results.rows).toHaveLength(1);
    // the CLI from source, through the TypeScript loader vitest gives this process
    const bin = fileURLToPath(new URL('../../packages/cli/src/main.ts', import.meta.url));
    const indexDir = join(dir, 'single-index');
    const run = (...args: string[]) => spawnSync(process.execPath, [...process.execArgv, bin, ...args], { encoding: 'utf8' });
    // the bench builds without calibration; a calibrating build holds its calibration rows out of training (another index)
    expect(run('build', '--data', `synthetic:${tiny}`, '--metric', 'cosine', '--spec', 'ivf16@8,flat@16', '--calibrate', 'false', '--out', indexDir).status).toBe(0);
    const searched = run('search', '--index', indexDir, '--queries', `synthetic:${tiny},part=queries`, '--k', '10', '--gt', 'exact', '--json', '--params', 'nprobe=3');
    expect(searched.status).toBe(0);
    expect(JSON.parse(searched.stdout).recall).toBe(results.rows[0].recall);
  });

  it('adanns-auto builds the spec auto chooses and measures its calibrated frontier up to recall 0.99', async () => {
    // 3,000 vectors: enough for auto's trial to choose an IVF build (below 2,000 it chooses an exact scan)
    const results = await bench(['--synthetic', 'n=3000,dim=16,clusters=10,queries=20,seed=3', '--suite', 'adanns-auto']);
    const rows = results.rows.filter((r) => r.system === 'adanns-auto');
    expect(rows.length).toBe(results.rows.length);
    expect(rows.length).toBeGreaterThan(1);
    // one build, auto's choice, re-ranking (if at all) from float32 rows in memory; its choice-and-build time on every row
    expect(new Set(rows.map((r) => r.spec)).size).toBe(1);
    expect(rows[0].spec).toMatch(/^(pca,)?ivf\d+@\d+,flat@\d+(,rerank@16:f32)?$/);
    expect(new Set(rows.map((r) => r.buildSeconds)).size).toBe(1);
    expect(rows[0].buildSeconds).toBeGreaterThan(0);
    expect(rows[0].note).toMatch(/^calibration [\d.]+ s on \d+ held-out base vectors \(\d+ points\), not in build time$/);
    // every row its own plan; the sweep stops at the first row past recall 0.99
    expect(new Set(rows.map((r) => JSON.stringify(r.params))).size).toBe(rows.length);
    for (const r of rows.slice(0, -1)) expect(r.recall).toBeLessThan(0.99);
    expect(results.machine.systems['adanns-auto'].threads).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it('runs every system on one thread with --threads 1, and records it', async () => {
    const before = process.env.OMP_NUM_THREADS;
    process.env.OMP_NUM_THREADS = '2'; // the subprocess must not inherit it
    let results: Results;
    try {
      results = await bench(['--synthetic', tiny, '--suite', 'exact,hnswlib,faiss', '--threads', '1']);
    } finally {
      if (before === undefined) delete process.env.OMP_NUM_THREADS;
      else process.env.OMP_NUM_THREADS = before;
    }
    const { systems } = results.machine;
    expect(systems.exact.threads).toBe(1);
    expect(systems.hnswlib.threads).toBe(1);
    if (faissUnavailable() === undefined) {
      // read back from FAISS itself (omp_get_max_threads) and its environment
      expect(systems.faiss).toMatchObject({ threads: 1, env: { OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' } });
      expect(systems.faiss.compileOptions).toEqual(expect.any(String));
      expect(systems.faiss.version).toMatch(/^\d+\.\d+/);
    }
  }, 120_000);

  it('caps FAISS\'s OpenMP and BLAS threads in its environment', () => {
    const env = faissEnv(1, { PATH: '/bin', OMP_NUM_THREADS: '8', OPENBLAS_NUM_THREADS: '8' });
    expect(env).toEqual({ PATH: '/bin', OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' });
  });

  it('rejects unknown suites and stray params', async () => {
    await expect(benchCommand(['--synthetic', tiny, '--suite', 'annoy', '--out', dir])).rejects.toThrow(/unknown suite "annoy"/);
    await expect(benchCommand(['--synthetic', tiny, '--params', 'nprobe=2', '--out', dir])).rejects.toThrow(/--params goes with --spec/);
    await expect(benchCommand(['--base', 'fashion-mnist:train', '--out', dir])).rejects.toThrow(/give a data set/);
    await expect(benchCommand(['--synthetic', tiny, '--passes', '2', '--out', dir])).rejects.toThrow(/--passes must be at least 3/);
  });
});
