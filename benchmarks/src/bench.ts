import { writeFileSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultThreads, parseMetric } from '@adanns/compute';
import { formatBudget, parseBudget } from '@adanns/core';
import { BACKEND_FLAGS, backendOptions, intOption, openBackend, parseOrUsage, progressBars, UsageError } from '@adanns/cli-kit';
import { loadBenchData } from './bench-data.js';
import { backendThreads, DEFAULT_BYTE_BUDGETS, type BenchContext } from './context.js';
import { filteredSummaryMarkdown } from './report/filtered-summary.js';
import { filteredPlot, recallPlot } from './report/plots.js';
import { formatParams, summaryMarkdown } from './report/summary.js';
import type { ResultRow, Results, SystemInfo, UntimedRow } from './row.js';
import { adannsAutoSuite, adannsIvfDiskSuite, adannsIvfFastScanSuite, adannsIvfOpqSuite, adannsIvfSuite, adannsOpqSuite, exactSuite, ivfOpqSuite, ivfSuite, opqSuite, singleRow } from './suites/adanns.js';
import { budgetSuite, DEFAULT_BUDGETS } from './suites/budget.js';
import { faissSuite } from './suites/faiss.js';
import { filteredSuite } from './suites/filtered.js';
import { hnswlibSuite } from './suites/hnswlib.js';
import { MIN_PASSES, timeRoundRobin, WARM_UP_QUERIES, type RowTiming, type SpeedFigures } from './timing.js';

const SUITES: Record<string, (ctx: BenchContext) => Promise<void>> = {
  exact: exactSuite,
  ivf: ivfSuite,
  'adanns-ivf': adannsIvfSuite,
  'adanns-ivf-disk': adannsIvfDiskSuite,
  'adanns-auto': adannsAutoSuite,
  opq: opqSuite,
  'adanns-opq': adannsOpqSuite,
  'ivf-opq': ivfOpqSuite,
  'adanns-ivf-opq': adannsIvfOpqSuite,
  'adanns-ivf-fastscan': adannsIvfFastScanSuite,
  hnswlib: hnswlibSuite,
  faiss: faissSuite,
  budget: budgetSuite,
  filtered: filteredSuite,
};
const DEFAULT_SUITES = ['exact', 'ivf', 'adanns-ivf', 'adanns-auto', 'hnswlib', 'faiss'];
const DEFAULT_SYNTHETIC = 'n=10000,dim=128,clusters=50,queries=200,noise=1,seed=42';

export const benchUsage = `adanns bench [data] [--suite NAMES|all] [--out DIR] [options]
  data: --synthetic n=N,dim=D[,...] | --hdf5 FILE | --adanns-imagenet DIR --dim D | --base SOURCE --queries SOURCE
        [--gt FILE] [--labels-base FILE --labels-queries FILE] [--limit-base N] [--limit-queries N]
        (default: --synthetic ${DEFAULT_SYNTHETIC})
  --metric cosine|ip|l2  --k 10  --transform none|pca  --seed N  ${BACKEND_FLAGS}
  --bytes 8,16,32,64   PQ byte budgets of the quantised suites
  --budgets recall=0.8,recall=0.9,recall=0.95,mflops=0.5   budgets of the budget suite
  --suite ${Object.keys(SUITES).join(',')} or all (default ${DEFAULT_SUITES.join(',')})
  --filter-suite   filtered search (the suite "filtered" alone): filters on the base labels at ~50%, 10%, 1%, 0.1%
                   selectivity, adanns-ivf, a {recall: 0.95} budget, hnswlib-node with a filter callback and the exact
                   scan of the matches, against exact filtered ground truth (cached in DIR like the unfiltered one)
  --spec SPEC --params k=v,...   exactly one configuration (one row)
  --threads N   threads of every system (ours, FAISS; hnswlib-node is always 1); read back and recorded
  --latency-queries N (200)  --out DIR (bench-out)
  --passes N (3, at least ${MIN_PASSES})   every speed is the median of N timed passes, taken round-robin once every suite
               has built: pass 1 of every row of the run, then pass 2, ... (FAISS's subprocess times its own rows)
  Exact ground truth is computed by the reference backend and cached in DIR under a hash of the data, metric and k.
  Writes DIR/results.json, DIR/recall-vs-mflops.svg, DIR/recall-vs-qps.svg and DIR/summary.md
  (the filtered suite: DIR/recall-vs-qps-filtered.svg and its table in DIR/summary.md).`;

/** The log line of a row: its quality when registered, with its QPS once timed. */
function rowLine(row: UntimedRow | ResultRow): string {
  const qps = 'qps' in row ? `, ${row.qps.toFixed(0)} QPS` : ', timed later';
  return `  ${row.system.padEnd(15)} ${row.spec} ${formatParams(row.params, ',')}: recall ${row.recall.toFixed(4)}, ${row.mflops === null ? '-' : row.mflops.toFixed(4)} MFLOPs${qps}`;
}

/** The row with its speeds where the suites used to put them (after mflops), so results.json reads as before. */
function withSpeeds(row: UntimedRow, speeds: SpeedFigures): ResultRow {
  return Object.fromEntries(Object.entries(row).flatMap(([key, value]) => (key === 'mflops' ? [[key, value], ...Object.entries(speeds)] : [[key, value]]))) as ResultRow;
}

export async function benchCommand(argv: string[]): Promise<void> {
  const o = parseOrUsage(() =>
    parseArgs({
      args: argv,
      options: {
        base: { type: 'string' },
        queries: { type: 'string' },
        gt: { type: 'string' },
        'labels-base': { type: 'string' },
        'labels-queries': { type: 'string' },
        hdf5: { type: 'string' },
        synthetic: { type: 'string' },
        'adanns-imagenet': { type: 'string' },
        dim: { type: 'string' },
        metric: { type: 'string' },
        k: { type: 'string', default: '10' },
        'limit-base': { type: 'string' },
        'limit-queries': { type: 'string' },
        ...backendOptions,
        seed: { type: 'string', default: '1' },
        suite: { type: 'string' },
        'filter-suite': { type: 'boolean', default: false },
        spec: { type: 'string' },
        params: { type: 'string', default: '' },
        transform: { type: 'string', default: 'none' },
        bytes: { type: 'string', default: DEFAULT_BYTE_BUDGETS.join(',') },
        budgets: { type: 'string', default: DEFAULT_BUDGETS.map(formatBudget).join(',') },
        'latency-queries': { type: 'string', default: '200' },
        passes: { type: 'string', default: String(MIN_PASSES) },
        out: { type: 'string', default: 'bench-out' },
      },
    }).values,
  );
  const optional = (flag: 'dim' | 'limit-base' | 'limit-queries') => (o[flag] === undefined ? undefined : intOption(o[flag], flag));
  if (o.transform !== 'none' && o.transform !== 'pca') throw new UsageError(`--transform must be none or pca, got "${o.transform}"`);
  if (o['filter-suite'] && o.suite !== undefined) throw new UsageError(`--filter-suite runs the filtered suite alone; give it without --suite "${o.suite}" (or use --suite ...,filtered)`);
  if (o['filter-suite'] && o.spec !== undefined) throw new UsageError('--filter-suite and --spec are two different runs: give one');
  const suites = o['filter-suite'] ? ['filtered'] : o.suite === undefined ? DEFAULT_SUITES : o.suite === 'all' ? Object.keys(SUITES) : o.suite.split(',').map((s) => s.trim());
  for (const s of suites) if (!(s in SUITES)) throw new UsageError(`unknown suite "${s}" (expected ${Object.keys(SUITES).join(', ')} or all)`);
  if (o.spec === undefined && o.params !== '') throw new UsageError('--params goes with --spec');
  const anyData = [o.base, o.queries, o.hdf5, o['adanns-imagenet']].some((v) => v !== undefined);
  const synthetic = o.synthetic ?? (anyData ? undefined : DEFAULT_SYNTHETIC);
  const threads = o.threads === undefined ? defaultThreads() : intOption(o.threads, 'threads');
  const k = intOption(o.k, 'k');
  const passes = intOption(o.passes, 'passes');
  if (passes < MIN_PASSES) throw new UsageError(`--passes must be at least ${MIN_PASSES} (each reported speed is the median of the passes), got ${passes}`);
  const backend = await openBackend({ backend: o.backend, threads: String(threads) });
  // enforced, not assumed: a pooled backend must run on exactly the threads asked for
  if ('threads' in backend && backendThreads(backend) !== threads) throw new Error(`--threads ${threads}: the ${backend.name} backend runs ${backendThreads(backend)} threads`);
  const bars = progressBars();
  const log = (line: string) => {
    bars.stop();
    process.stderr.write(`${line}\n`);
  };

  const data = await loadBenchData(
    {
      base: o.base,
      queries: o.queries,
      gt: o.gt,
      labelsBase: o['labels-base'],
      labelsQueries: o['labels-queries'],
      hdf5: o.hdf5,
      synthetic,
      adannsImagenet: o['adanns-imagenet'],
      dim: optional('dim'),
      metric: o.metric === undefined ? undefined : parseMetric(o.metric),
      k,
      limitBase: optional('limit-base'),
      limitQueries: optional('limit-queries'),
      out: o.out,
      // the filtered suite computes its own (filtered) truth: the unfiltered one is needed only by the others
      truth: o.spec !== undefined || suites.some((s) => s !== 'filtered'),
    },
    (done, total) => bars.update('groundtruth', done, total),
  );
  if (k > data.base.rows) throw new UsageError(`--k ${k} exceeds the ${data.base.rows} base vectors`);
  log(`bench: ${data.name}: ${data.base.rows} x ${data.base.dim} base, ${data.queries.rows} queries, ${data.metric}, k = ${k}`);

  // rows in the order the suites give them: complete (FAISS) or waiting for the round-robin timing
  const added: Array<ResultRow | { untimed: UntimedRow; timing: RowTiming }> = [];
  const releases: Array<() => void> = [];
  const systems: Record<string, SystemInfo> = {};
  const ctx: BenchContext = {
    backend,
    data,
    k,
    threads,
    seed: intOption(o.seed, 'seed'),
    latencyQueries: intOption(o['latency-queries'], 'latency-queries'),
    passes,
    transform: o.transform,
    out: o.out,
    suites,
    bytes: o.bytes.split(',').map((b) => intOption(b.trim(), 'bytes')),
    budgets: o.budgets.split(',').map((b) => {
      try {
        return parseBudget(b);
      } catch (e) {
        throw new UsageError(`--budgets: ${(e as Error).message}`);
      }
    }),
    progress: bars.update,
    log,
    add: (row) => {
      added.push(row);
      log(rowLine(row));
    },
    timed: (untimed, timing) => {
      added.push({ untimed, timing });
      log(rowLine(untimed));
    },
    afterTiming: (release) => releases.push(release),
    describe: (system, info) => {
      systems[system] = info;
    },
  };
  if (o.spec !== undefined) await singleRow(ctx, o.spec, o.params);
  else for (const s of suites) await SUITES[s](ctx);
  const pending = added.filter((a) => 'untimed' in a);
  let speeds: SpeedFigures[] = [];
  if (pending.length > 0) {
    log(`timing ${pending.length} rows round-robin: ${passes} passes, each pass of a row ${WARM_UP_QUERIES} untimed queries, then its single queries, then its batched call`);
    // a pass's length is the longest slow period of the machine the medians are sure to drop (it costs a row one pass)
    let passStarted = performance.now();
    const passDone = (pass: number) => {
      log(`timing pass ${pass + 1}/${passes}: ${pending.length} rows in ${((performance.now() - passStarted) / 1000).toFixed(1)} s`);
      passStarted = performance.now();
    };
    speeds = await timeRoundRobin(
      pending.map((p) => p.timing),
      passes,
      (pass, row) => {
        if (row === 0 && pass > 0) passDone(pass - 1);
        bars.update(`timing pass ${pass + 1}/${passes}, row`, row + 1, pending.length);
      },
    );
    passDone(passes - 1);
  }
  for (const release of releases) release();
  bars.stop();
  const timedRows = pending.map((p, i) => withSpeeds(p.untimed, speeds[i]));
  for (const row of timedRows) log(rowLine(row));
  const rows = added.map((a) => ('untimed' in a ? timedRows[pending.indexOf(a)] : a));

  const results: Results = {
    dataset: { name: data.name, n: data.base.rows, dim: data.base.dim, queries: data.queries.rows, metric: data.metric },
    machine: { cpus: cpus().length, node: process.version, backend: backend.name, threads, passes, systems },
    command: `adanns bench ${argv.join(' ')}`.trim(),
    rows,
  };
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  // filtered rows are measured against another truth per filter: they get their own table and plot
  const filtered = rows.filter((r) => r.selectivity !== undefined);
  const plain = rows.filter((r) => r.selectivity === undefined);
  const written = ['results.json'];
  let summary = '';
  if (plain.length > 0 || filtered.length === 0) {
    writeFileSync(join(o.out, 'recall-vs-mflops.svg'), await recallPlot(plain, 'mflops', `${data.name}: recall@${k} against modelled MFLOPs`, k));
    const qpsThreads = [...new Set(Object.values(systems).map((s) => s.threads))];
    writeFileSync(join(o.out, 'recall-vs-qps.svg'), await recallPlot(plain, 'qps', `${data.name}: recall@${k} against QPS (one query at a time, ${qpsThreads.join(' or ')} thread(s))`, k));
    summary += summaryMarkdown({ ...results, rows: plain });
    written.push('recall-vs-mflops.svg', 'recall-vs-qps.svg');
  }
  if (filtered.length > 0) {
    writeFileSync(join(o.out, 'recall-vs-qps-filtered.svg'), await filteredPlot(filtered, `${data.name}: filtered recall@${k} against QPS (one query at a time, ${threads} thread(s); hnswlib-node 1)`, k));
    summary += (summary ? '\n' : '') + filteredSummaryMarkdown({ ...results, rows: filtered });
    written.push('recall-vs-qps-filtered.svg');
  }
  writeFileSync(join(o.out, 'summary.md'), summary);
  console.log(summary);
  log(`wrote ${written.concat('summary.md').map((f) => join(o.out, f)).join(', ')}`);
}
