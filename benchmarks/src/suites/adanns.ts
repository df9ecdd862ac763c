import { AdannsIndex, dimsLadder, formatSpec, paretoFrontier, parseParams, pointsAtK, recallAtK, selectQuantizedDim, type BuildOptions, type IndexSizes, type SearchParams } from '@adanns/core';
import { createRng, sampleIndices } from '@adanns/compute';
import { backendThreads, listCount, nprobeSweep, type BenchContext } from '../context.js';
import { meanAveragePrecisionAtK, top1Accuracy } from '../quality.js';
import type { UntimedRow } from '../row.js';
import { peakRssBytes } from '../timing.js';

/** Builds an index with progress and returns it with its build time in seconds. */
export async function buildTimed(ctx: BenchContext, spec: string, extra: Partial<BuildOptions> = {}): Promise<{ index: AdannsIndex; seconds: number }> {
  const { base } = ctx.data;
  ctx.log(`building ${spec}`);
  const started = performance.now();
  const index = await AdannsIndex.build(ctx.backend, spec, base.data, base.rows, base.dim, {
    metric: ctx.data.metric,
    seed: ctx.seed,
    onProgress: (stage, done, total) => ctx.progress(`${stage}`, done, total),
    ...extra,
  });
  return { index, seconds: (performance.now() - started) / 1000 };
}

/**
 * Measures one configuration of a built index and records the row (with
 * `extra` fields, e.g. a budget) for the harness to time; returns it. The
 * index must stay alive until then (release it through ctx.afterTiming).
 */
export async function measureIndex(
  ctx: BenchContext,
  system: string,
  index: AdannsIndex,
  params: Partial<SearchParams>,
  buildSeconds: number,
  note?: string,
  extra: Partial<UntimedRow> = {},
): Promise<UntimedRow> {
  const { queries, truth, baseLabels, queryLabels } = ctx.data;
  const k = ctx.k;
  const q = queries.rows;
  const result = await index.search(queries.data, q, k, params);
  const sizes = index.sizes();
  const dim = queries.dim;
  ctx.describe(system, { threads: backendThreads(ctx.backend) });
  const labelled = baseLabels !== undefined && queryLabels !== undefined;
  const row: UntimedRow = {
    system,
    spec: formatSpec(index.spec),
    // stages the index does not have (coarseDim/nprobe without IVF) are left out
    params: Object.fromEntries(Object.entries(result.params).filter(([, v]) => v !== 0)),
    k,
    recall: recallAtK(result.ids, k, truth.ids, truth.k, q, k),
    top1: labelled ? top1Accuracy(result.ids, k, baseLabels, queryLabels) : null,
    map: labelled ? meanAveragePrecisionAtK(result.ids, k, baseLabels, queryLabels) : null,
    mflops: result.mflops.reduce((a, b) => a + b, 0) / q,
    buildSeconds,
    indexBytes: sizes.resident,
    indexBytesByKind: byKind(sizes),
    diskBytes: sizes.rerankDisk,
    rssBytes: peakRssBytes(),
    ...(note ? { note } : {}),
    ...extra,
  };
  ctx.timed(row, {
    singles: Math.min(ctx.latencyQueries, q),
    single: (i) => index.search(queries.data.subarray(i * dim, (i + 1) * dim), 1, k, params),
    batch: { queries: q, run: () => index.search(queries.data, q, k, params) },
  });
  return row;
}

/** Resident bytes of each kind an index holds (the kinds it has none of left out). */
function byKind(sizes: IndexSizes): Record<string, number> {
  const kinds = ['lists', 'codes', 'norms', 'ids', 'centroids', 'rotation', 'codebooks', 'rerank'] as const;
  return Object.fromEntries(kinds.filter((kind) => sizes[kind] > 0).map((kind) => [kind, sizes[kind]]));
}

const prefix = (ctx: BenchContext) => (ctx.transform === 'pca' ? 'pca,' : '');

export async function exactSuite(ctx: BenchContext): Promise<void> {
  const { index, seconds } = await buildTimed(ctx, 'flat');
  await measureIndex(ctx, 'exact', index, {}, seconds);
  // every index is given back once the run's rows are timed (they are timed round-robin, after every build)
  ctx.afterTiming(() => index.release());
}

export async function ivfSuite(ctx: BenchContext): Promise<void> {
  const { base } = ctx.data;
  const lists = listCount(base.rows);
  const { index, seconds } = await buildTimed(ctx, `ivf${lists}@${base.dim},flat@${base.dim}`);
  for (const nprobe of nprobeSweep(lists)) await measureIndex(ctx, 'ivf', index, { nprobe }, seconds);
  ctx.afterTiming(() => index.release());
}

/**
 * AdANNS-IVF: d_c from the short end of the ladder, d_s swept at query time,
 * nprobe swept, exact re-rank at D from float32 vectors in memory (the
 * footing hnswlib and rigid IVF are measured on).
 */
export function adannsIvfSuite(ctx: BenchContext): Promise<void> {
  return adannsIvf(ctx, 'adanns-ivf', ':f32');
}

/** AdANNS-IVF with the re-rank vectors read from disk (`rerank@D`): a fraction of the memory, a read per candidate. */
export function adannsIvfDiskSuite(ctx: BenchContext): Promise<void> {
  return adannsIvf(ctx, 'adanns-ivf-disk', '');
}

async function adannsIvf(ctx: BenchContext, system: string, rerankStorage: '' | ':f32'): Promise<void> {
  const { base } = ctx.data;
  const D = base.dim;
  const lists = listCount(base.rows);
  const ladder = dimsLadder(D);
  // the two largest ladder prefixes up to 32 for clustering, the three largest up to 128 for scanning
  const coarseDims = ladder.filter((d) => d < D && d <= 32).slice(-2);
  const scanDims = ladder.filter((d) => d < D && d <= 128).slice(-3);
  if (coarseDims.length === 0) {
    ctx.log(`${system}: dimension ${D} has no shorter prefix to adapt over; skipped`);
    return;
  }
  const builtScan = Math.max(...scanDims);
  for (const dc of coarseDims) {
    const { index, seconds } = await buildTimed(ctx, `${prefix(ctx)}ivf${lists}@${dc},flat@${builtScan},rerank@${D}${rerankStorage}`);
    // the re-rank is most of a query's work at small d_s: shorter shortlists are points of the frontier too
    for (const shortlist of [2, 4, 10].map((f) => f * ctx.k)) {
      for (const scanDim of scanDims) {
        for (const nprobe of nprobeSweep(lists)) await measureIndex(ctx, system, index, { nprobe, scanDim, shortlist }, seconds);
      }
    }
    ctx.afterTiming(() => index.release());
  }
}

/** Calibrated points measured on the test queries at most: the sweep's most accurate end, up to its first point at recall 0.99. */
const AUTO_SWEEP_POINTS = 40;
/** Recall after which the auto sweep stops: points beyond it only cost more. */
const AUTO_SWEEP_STOP = 0.99;
/**
 * Calibration's time bound in the bench (the service's default is 120 s): a
 * bound that cuts the grid short leaves the accurate end of the frontier
 * unmeasured, which would make the suite's result depend on the machine's load.
 */
const AUTO_CALIBRATION_SECONDS = 900;

/**
 * AdANNS with the build `auto` chooses for the data (planner/auto.ts), as a
 * user of `--spec auto` gets it: build time is the choice and the build
 * together. A re-rank it chooses keeps float32 rows in memory (`rerank@D:f32`,
 * the footing of adanns-ivf, rigid IVF and hnswlib; `--spec auto` reads them
 * from disk). The index is then calibrated at k as collections are (on base
 * vectors drawn before training and never trained on; the test queries stay
 * unseen), which sweeps its plan space (the calibration grid, adaptive and
 * funnel points); calibration time is not build time (the note gives it).
 * The calibrated points on the recall-MFLOPs or the recall-latency Pareto
 * frontier are measured on the test queries in order of calibrated recall,
 * until the test recall passes 0.99.
 */
export async function adannsAutoSuite(ctx: BenchContext): Promise<void> {
  const calibrate = { ks: [ctx.k], filtered: false, maxSeconds: AUTO_CALIBRATION_SECONDS, onProgress: (d: number, t: number) => ctx.progress('calibrate', d, t) };
  const { index, seconds } = await buildTimed(ctx, 'auto', { calibrate, autoRerank: 'f32' });
  const cal = index.calibration!;
  const buildSeconds = seconds - cal.seconds;
  ctx.log(`adanns-auto: chose ${formatSpec(index.spec)} (${buildSeconds.toFixed(1)} s with the build): ${index.choice?.reason ?? 'no choice recorded'}`);
  const points = pointsAtK(cal, ctx.k).points;
  const frontier = [...new Set([...paretoFrontier(points, (p) => p.mflops), ...paretoFrontier(points, (p) => p.latencyMs)])].sort((a, b) => a.recall - b.recall || a.mflops - b.mflops);
  const top = frontier.findIndex((p) => p.recall >= AUTO_SWEEP_STOP);
  const sweep = frontier.slice(0, top < 0 ? frontier.length : top + 1).slice(-AUTO_SWEEP_POINTS);
  const note = `calibration ${cal.seconds.toFixed(1)} s on ${cal.queries} ${cal.source} base vectors (${points.length} points${cal.complete ? '' : ', cut short by its time bound'}), not in build time`;
  for (const point of sweep) {
    const row = await measureIndex(ctx, 'adanns-auto', index, point.params, buildSeconds, note);
    if (row.recall >= AUTO_SWEEP_STOP) break;
  }
  ctx.afterTiming(() => index.release());
}

/**
 * AdANNS-IVF over 4-bit fast-scan codes: per byte budget M, pq{2M}x4 codes
 * of the shortest ladder prefix with two dimensions per sub-quantiser, the
 * shortlist (10k) re-ranked exactly at D from float32 rows in memory, nprobe
 * swept. `pq{M}` at the same bytes and prefix, same IVF and re-rank, is
 * measured beside it (system adanns-ivf-pq8) for the comparison.
 */
export async function adannsIvfFastScanSuite(ctx: BenchContext): Promise<void> {
  const { base } = ctx.data;
  const D = base.dim;
  const lists = listCount(base.rows);
  const ladder = dimsLadder(D);
  const dc = ladder.filter((d) => d < D && d <= 32).slice(-1)[0] ?? D;
  for (const m of budgets(ctx)) {
    const ds = ladder.find((d) => d >= 4 * m) ?? D;
    if (2 * m > ds) continue; // each of the 2M sub-quantisers needs a dimension
    for (const [system, codec] of [['adanns-ivf-fastscan', `pq${2 * m}x4`], ['adanns-ivf-pq8', `pq${m}`]]) {
      const { index, seconds } = await buildTimed(ctx, `${prefix(ctx)}ivf${lists}@${dc},${codec}@${ds},rerank@${D}:f32`);
      for (const nprobe of nprobeSweep(lists)) await measureIndex(ctx, system, index, { nprobe, shortlist: 10 * ctx.k }, seconds, `${m} bytes per vector`);
      ctx.afterTiming(() => index.release());
    }
  }
}

/** Calibration queries for choosing d: a seeded sample of base vectors (the evaluated queries stay unseen). */
function calibration(ctx: BenchContext): { queries: Float32Array; rows: number } {
  const { base } = ctx.data;
  const rows = sampleIndices(base.rows, Math.min(200, base.rows), createRng(ctx.seed + 99));
  const queries = new Float32Array(rows.length * base.dim);
  rows.forEach((r, i) => queries.set(base.data.subarray(r * base.dim, (r + 1) * base.dim), i * base.dim));
  return { queries, rows: rows.length };
}

/** The byte budgets that fit the dimension (M sub-quantisers need M dimensions). */
export function budgets(ctx: BenchContext): number[] {
  return ctx.bytes.filter((m) => m <= ctx.data.base.dim);
}

export async function opqSuite(ctx: BenchContext): Promise<void> {
  const D = ctx.data.base.dim;
  for (const m of budgets(ctx)) {
    const { index, seconds } = await buildTimed(ctx, `opq${m}@${D}`);
    await measureIndex(ctx, 'opq', index, {}, seconds);
    ctx.afterTiming(() => index.release());
  }
}

export async function adannsOpqSuite(ctx: BenchContext): Promise<void> {
  const { base } = ctx.data;
  const cal = calibration(ctx);
  for (const m of budgets(ctx)) {
    const started = performance.now();
    const chosen = await selectQuantizedDim(ctx.backend, `${prefix(ctx)}opq${m}@${m}`, base.data, base.rows, base.dim, {
      metric: ctx.data.metric,
      seed: ctx.seed,
      queries: cal.queries,
      queryRows: cal.rows,
      k: ctx.k,
      onCandidate: (c, spec) => ctx.log(`  calibration ${spec}: recall ${c.recall.toFixed(4)}`),
    });
    const note = `best d = ${chosen.best.dim} for ${m} bytes (calibration recall ${chosen.candidates.map((c) => `${c.dim}:${c.recall.toFixed(3)}`).join(' ')})`;
    await measureIndex(ctx, 'adanns-opq', chosen.index, {}, (performance.now() - started) / 1000, note);
    ctx.afterTiming(() => chosen.index.release());
  }
}

export async function ivfOpqSuite(ctx: BenchContext): Promise<void> {
  const { base } = ctx.data;
  const lists = listCount(base.rows);
  for (const m of budgets(ctx)) {
    const { index, seconds } = await buildTimed(ctx, `ivf${lists}@${base.dim},opq${m}@${base.dim}`);
    for (const nprobe of nprobeSweep(lists)) await measureIndex(ctx, 'ivf-opq', index, { nprobe }, seconds);
    ctx.afterTiming(() => index.release());
  }
}

export async function adannsIvfOpqSuite(ctx: BenchContext): Promise<void> {
  const { base } = ctx.data;
  const lists = listCount(base.rows);
  const dc = Math.min(32, base.dim);
  const cal = calibration(ctx);
  const sweep = nprobeSweep(lists);
  const probe = sweep[Math.floor(sweep.length / 2)];
  for (const m of budgets(ctx)) {
    const started = performance.now();
    const chosen = await selectQuantizedDim(ctx.backend, `${prefix(ctx)}ivf${lists}@${dc},opq${m}@${m}`, base.data, base.rows, base.dim, {
      metric: ctx.data.metric,
      seed: ctx.seed,
      queries: cal.queries,
      queryRows: cal.rows,
      k: ctx.k,
      params: { nprobe: probe },
      onCandidate: (c, spec) => ctx.log(`  calibration ${spec}: recall ${c.recall.toFixed(4)}`),
    });
    const seconds = (performance.now() - started) / 1000;
    for (const nprobe of sweep) await measureIndex(ctx, 'adanns-ivf-opq', chosen.index, { nprobe }, seconds, `best d = ${chosen.best.dim} for ${m} bytes at nprobe ${probe}`);
    ctx.afterTiming(() => chosen.index.release());
  }
}

/** `--spec SPEC --params k=v,...`: exactly one configuration, one row (system "adanns"). */
export async function singleRow(ctx: BenchContext, spec: string, params: string): Promise<void> {
  const { index, seconds } = await buildTimed(ctx, spec);
  await measureIndex(ctx, 'adanns', index, parseParams(params), seconds);
  ctx.afterTiming(() => index.release());
}
