/**
 * Adaptive probing against fixed params (issue 17): on held-out queries, the
 * recall@10 / mean-MFLOPs Pareto frontier of fixed params (nprobe, scanDim,
 * shortlist) and of adaptive probing (the same with a probe margin under an
 * nprobe cap), the MFLOPs each frontier needs at recall 0.9 and 0.95
 * (linear between frontier points) and the fixed one's ratio to the adaptive
 * points' alone and to every point's (fixed ones too: never below 1x), without and with funnel
 * points (the planner can choose funnels: the honest fixed baseline includes
 * them); the same for patience termination (stages/adaptive-probe.ts: lists probed one at a time until the
 * scan's top settles), rules over tops 40 and 100 and windows of 1 to 4 lists under caps 16 and 32; re-rank patience
 * (stages/adaptive-rerank.ts: the final re-rank in chunks of k/2 or k after the first k, until a chunk brings no new
 * member into the exact top k) on the fixed funnel points keeping 40 and on the patience points, compared with the
 * patience points as one family; a per-query depth oracle and a per-query depth-and-shortlist oracle
 * (the ceiling of any per-query rule); then what the planner picks for those
 * recall targets once calibrated on other held-out queries.
 *
 *   npm run bench:adaptive -- [--data fashion-mnist,synthetic] [--queries 1000] [--calibration-queries 300]
 *                             [--calibration-seconds 120] [--spec SPEC] [--cache .cache] [--skip-margin]
 *
 * Fashion-MNIST: 60,000 train vectors as the base, the test set's first
 * queries evaluated and the next ones calibrating (cosine, default spec
 * pca,ivf256@16,flat@128,rerank@784). Synthetic: generateSynthetic
 * n=60000, dim=128, 64 clusters, noise 1 (cosine, pca,ivf256@16,flat@64,rerank@128).
 */
import { parseArgs } from 'node:util';
import { intOption } from '@adanns/cli-kit';
import { createBackend } from '@adanns/compute';
import { AdannsIndex, dimsLadder, formatParams, marginForMeanDepth, recallAtK, type PatienceRule, type RerankPatience, type SearchParams } from '@adanns/core';
import { generateSynthetic, loadVectors, type VectorSet } from '@adanns/datasets';
import { cachedGroundTruth } from './bench-data.js';
import { log } from './fashion-mnist.js';

const { values: o } = parseArgs({
  options: {
    data: { type: 'string', default: 'fashion-mnist,synthetic' },
    queries: { type: 'string', default: '1000' },
    spec: { type: 'string' },
    'calibration-seconds': { type: 'string', default: '120' },
    'calibration-queries': { type: 'string', default: '300' },
    cache: { type: 'string', default: '.cache' },
    // skip the margin-rule sweep (the slowest family, never the best): fixed, patience and re-rank patience only
    'skip-margin': { type: 'boolean', default: false },
  },
});
const queryCount = intOption(o.queries, 'queries');
const calibrationSeconds = intOption(o['calibration-seconds'], 'calibration-seconds');
const calibrationQueries = intOption(o['calibration-queries'], 'calibration-queries');
const k = 10;
const TARGETS = [0.9, 0.95];
const backend = await createBackend('cpu');

interface Point {
  params: SearchParams;
  recall: number;
  mflops: number;
}

/** Points no other beats on both recall and mean MFLOPs, by cost. */
function frontier(points: Point[]): Point[] {
  const sorted = [...points].sort((a, b) => a.mflops - b.mflops || b.recall - a.recall);
  const front: Point[] = [];
  for (const p of sorted) if (front.length === 0 || p.recall > front[front.length - 1].recall) front.push(p);
  return front;
}

/** Mean MFLOPs a frontier needs for a recall: linear between the two frontier points around it (NaN when out of reach). */
function mflopsAt(front: Point[], recall: number): number {
  const i = front.findIndex((p) => p.recall >= recall);
  if (i < 0) return NaN;
  if (i === 0) return front[0].mflops;
  const a = front[i - 1];
  const b = front[i];
  return a.mflops + ((b.mflops - a.mflops) * (recall - a.recall)) / (b.recall - a.recall);
}

interface DataSet {
  name: string;
  spec: string;
  base: VectorSet;
  /** Evaluated queries (never seen by the build or the calibration). */
  evalQueries: VectorSet;
  /** Calibration queries for the planner (held out too). */
  calQueries: VectorSet;
}

const slice = (set: VectorSet, from: number, rows: number): VectorSet => ({ ...set, rows, data: set.data.slice(from * set.dim, (from + rows) * set.dim) });

async function dataSet(name: string): Promise<DataSet> {
  if (name === 'fashion-mnist') {
    const base = await loadVectors('fashion-mnist:train');
    const test = await loadVectors('fashion-mnist:test', queryCount + calibrationQueries);
    if (test.rows < queryCount + calibrationQueries) throw new Error(`fashion-mnist has ${test.rows} test vectors, fewer than --queries + --calibration-queries`);
    return { name, spec: o.spec ?? 'pca,ivf256@16,flat@128,rerank@784', base, evalQueries: slice(test, 0, queryCount), calQueries: slice(test, queryCount, calibrationQueries) };
  }
  if (name === 'synthetic') {
    const { base, queries } = generateSynthetic({ n: 60000, dim: 128, clusters: 64, queries: queryCount + calibrationQueries, noise: 1, seed: 42 });
    return { name, spec: o.spec ?? 'pca,ivf256@16,flat@64,rerank@128', base, evalQueries: slice(queries, 0, queryCount), calQueries: slice(queries, queryCount, calibrationQueries) };
  }
  throw new Error(`--data: unknown data set "${name}" (expected fashion-mnist or synthetic)`);
}

async function run(name: string): Promise<void> {
  const ds = await dataSet(name);
  const { base, evalQueries: queries } = ds;
  log(`${name}: ${base.rows} base vectors of dim ${base.dim}, ${queries.rows} evaluated queries; exact ground truth (cached in ${o.cache})`);
  const truth = await cachedGroundTruth(base, queries, 'cosine', k, o.cache);
  let started = performance.now();
  const index = await AdannsIndex.build(backend, ds.spec, base.data, base.rows, base.dim, { metric: 'cosine', seed: 1 });
  log(`built ${ds.spec} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const spec = index.spec;
  const lists = spec.coarse!.lists;
  const coarseDim = spec.coarse!.dim;
  const scanDims = spec.scan.codec === 'flat' ? dimsLadder(spec.scan.dim).slice(-3) : [spec.scan.dim];
  // the fixed baseline's grid is fine (every nprobe to 12, shortlists 10-200): a coarse one flatters the adaptive
  // points (on Fashion-MNIST at 0.95 the fixed frontier of [20, 40, 100] x (1..6, 8, 10, ...) cost 15% more)
  const shortlists = [10, 15, 20, 30, 40, 60, 80, 100, 150, 200].filter((s) => s >= k);
  const nprobes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 20, 24, 28, 32, 40, 48, 64, 96, 128].filter((n) => n <= lists);
  const caps = [8, 16, 32, 64, 128].filter((c) => c <= lists);
  const meanDepths = [1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48];

  const measure = async (params: SearchParams): Promise<Point> => {
    const r = await index.search(queries.data, queries.rows, k, params);
    let mflops = 0;
    for (const m of r.mflops) mflops += m;
    return { params: r.params, recall: recallAtK(r.ids, k, truth.ids, truth.k, queries.rows, k), mflops: mflops / queries.rows };
  };
  const fixed: Point[] = [];
  const adaptive: Point[] = [];
  // the sweep's margins: those under which these queries probe a given mean number of lists per cap (labels unused)
  const { scores } = await index.rankLists(queries.data, queries.rows, coarseDim, lists);
  started = performance.now();
  for (const scanDim of scanDims) {
    for (const shortlist of shortlists) {
      const common = { coarseDim, scanDim, shortlist, rerankDim: spec.rerank?.dim };
      for (const nprobe of nprobes) fixed.push(await measure({ ...common, nprobe }));
      if (o['skip-margin']) continue;
      for (const cap of caps) {
        const margins = new Set(meanDepths.filter((d) => d < cap / 1.5).map((d) => marginForMeanDepth(scores, queries.rows, lists, cap, d)));
        for (const probeMargin of margins) adaptive.push(await measure({ ...common, nprobe: cap, probeMargin }));
      }
    }
  }
  // funnel points (the planner can choose them): a scan shortlist of 50 to 300 rescored at a larger prefix the index
  // reads (index.funnelDims) keeping 10 to 60 for the re-rank; fixed nprobe up to 32, and adaptive caps 16 and 32
  const funnelFixed: Point[] = [];
  const funnelAdaptive: Point[] = [];
  const stageDims = index.funnelDims();
  for (const scanDim of scanDims) {
    for (const dim of stageDims.filter((d) => d > scanDim && d < (spec.rerank?.dim ?? Infinity) && d <= spec.scan.dim)) {
      for (const shortlist of [50, 100, 150, 200, 300]) {
        for (const keep of [10, 20, 30, 40, 60].filter((keep) => keep >= k && keep < shortlist)) {
          const common = { coarseDim, scanDim, shortlist, rerankDim: spec.rerank?.dim, funnel: [{ dim, keep }] };
          for (const nprobe of nprobes.filter((n) => n <= 32)) funnelFixed.push(await measure({ ...common, nprobe }));
          for (const cap of caps.filter((c) => (c === 16 || c === 32) && !o['skip-margin'])) {
            const margins = new Set([2, 3, 4, 6, 8].map((d) => marginForMeanDepth(scores, queries.rows, lists, cap, d)));
            for (const probeMargin of margins) funnelAdaptive.push(await measure({ ...common, nprobe: cap, probeMargin }));
          }
        }
      }
    }
  }
  // patience termination (stages/adaptive-probe.ts): rules watching the scan's top 40 or 100, windows of 1-4 lists,
  // under caps 16 and 32, plain (shortlists 40, 100) and as funnels (shortlist 100 or 200 rescored at each stage prefix, keeping 20 or 40)
  const patience: Point[] = [];
  const funnelPatience: Point[] = [];
  const rules: PatienceRule[] = [];
  for (const top of [40, 100]) for (const [newMax, window] of [[0, 1], [1, 2], [2, 3], [3, 4]]) rules.push({ top, newMax: top === 100 ? newMax + 1 : newMax, lists: window });
  for (const scanDim of scanDims) {
    for (const cap of caps.filter((c) => c === 16 || c === 32)) {
      for (const rule of rules) {
        const common = { coarseDim, scanDim, rerankDim: spec.rerank?.dim, nprobe: cap, patience: rule };
        for (const shortlist of [40, 100].filter((s) => s >= rule.top)) patience.push(await measure({ ...common, shortlist }));
        // funnel shapes among the fixed ones': shortlist 100 or 200, keeping 20 or 40
        for (const dim of stageDims.filter((d) => d > scanDim && d < (spec.rerank?.dim ?? Infinity) && d <= spec.scan.dim)) {
          for (const shortlist of [100, 200].filter((s) => s >= rule.top)) for (const keep of [20, 40]) funnelPatience.push(await measure({ ...common, shortlist, funnel: [{ dim, keep }] }));
        }
      }
    }
  }
  // re-rank patience (stages/adaptive-rerank.ts): the final re-rank in chunks until the exact top k settles, on the fixed
  // funnel points keeping 40 (nprobe up to 16) and on the patience points re-ranking 40 or more (plain and funnel)
  const paced: Point[] = [];
  const rerankRules: RerankPatience[] = [{ first: k, step: k / 2, newMax: 0 }, { first: k, step: k, newMax: 0 }];
  const given = (p: SearchParams) => p.funnel?.at(-1)?.keep ?? p.shortlist;
  // only points with a re-rank can pace it (a --spec without one has none)
  for (const base of [...funnelFixed.filter((p) => p.params.nprobe <= 16 && given(p.params) === 40), ...patience.filter((p) => given(p.params) >= 40), ...funnelPatience.filter((p) => given(p.params) === 40)].filter((p) => p.params.rerankDim !== undefined)) {
    for (const rerankPatience of base.params.patience ? rerankRules : rerankRules.slice(0, 1)) paced.push(await measure({ ...base.params, rerankPatience }));
  }
  log(`swept ${fixed.length} fixed, ${adaptive.length} adaptive, ${funnelFixed.length} fixed funnel, ${funnelAdaptive.length} adaptive funnel, ${patience.length} patience, ${funnelPatience.length} patience funnel and ${paced.length} re-rank patience points in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const fixedFront = frontier(fixed);
  const describe = (front: Point[], recall: number) => {
    const p = front.find((f) => f.recall >= recall);
    return p ? `${formatParams(p.params)}: ${p.recall.toFixed(4)}, ${p.mflops.toFixed(4)}` : 'out of reach';
  };
  // two comparisons: the plain families (no funnel points), and every point the planner can choose (funnel points
  // included); each against two adaptive frontiers: the adaptive points alone (can fall below 1x), and every point,
  // fixed ones too (what a planner choosing between them gains: never below 1x)
  // (margin rule and patience rule separately: "adaptive" is the margin rule, "patience" the patience rule)
  const comparisons: [string, Point[], Point[], Point[]][] = [
    ['without funnel points', fixed, adaptive, patience],
    ['with funnel points (what the planner can choose)', [...fixed, ...funnelFixed], [...adaptive, ...funnelAdaptive], [...patience, ...funnelPatience]],
    // the patience column: patience points and re-rank patience points together (depth and re-rank adapting per query)
    ['with funnel points and re-rank patience (patience column: patience and re-rank patience points)', [...fixed, ...funnelFixed], [...adaptive, ...funnelAdaptive], [...patience, ...funnelPatience, ...paced]],
  ];
  for (const [what, fixedSet, adaptiveSet, patienceSet] of comparisons) {
    const fFront = frontier(fixedSet);
    const aFront = frontier(adaptiveSet);
    const pFront = frontier(patienceSet);
    const allFront = frontier([...fixedSet, ...adaptiveSet, ...patienceSet]);
    console.log(`\n## ${name}: ${ds.spec} (cosine), recall@${k} on ${queries.rows} held-out queries, ${what}\n`);
    console.log('| recall@10 | fixed MFLOPs | margin-rule points alone | ratio | patience points alone | ratio | every point | ratio | fixed point above (params: recall, MFLOPs) | margin-rule point above | patience point above |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const target of TARGETS) {
      const f = mflopsAt(fFront, target);
      const a = mflopsAt(aFront, target);
      const pa = mflopsAt(pFront, target);
      const all = mflopsAt(allFront, target);
      console.log(`| ${target} | ${f.toFixed(4)} | ${a.toFixed(4)} | ${(f / a).toFixed(3)}x | ${pa.toFixed(4)} | ${(f / pa).toFixed(3)}x | ${all.toFixed(4)} | ${(f / all).toFixed(3)}x | ${describe(fFront, target)} | ${describe(aFront, target)} | ${describe(pFront, target)} |`);
    }
  }

  // What any per-query depth rule could reach with the scan and re-rank params of the fixed point
  // at each target: every query searched at every depth up to twice that point's nprobe, then
  // stopped at the first depth whose recall reaches min(t, its recall at the deepest), over t.
  console.log('\nper-query depth oracle (each query stops at the first depth with its neighbours; the other params of the fixed point):\n');
  console.log('| recall@10 | fixed MFLOPs | oracle MFLOPs | fixed / oracle | params |');
  console.log('|---|---|---|---|---|');
  for (const target of TARGETS) {
    const at = fixedFront.find((p) => p.recall >= target);
    if (!at) continue;
    const depthMax = Math.min(lists, 2 * at.params.nprobe);
    const rows = queries.rows;
    const recall = new Float64Array(rows * (depthMax + 1));
    const cost = new Float64Array(rows * (depthMax + 1));
    for (let d = 1; d <= depthMax; d++) {
      const r = await index.search(queries.data, rows, k, { ...at.params, nprobe: d });
      for (let q = 0; q < rows; q++) {
        recall[q * (depthMax + 1) + d] = recallAtK(r.ids.subarray(q * k, (q + 1) * k), k, truth.ids.subarray(q * truth.k, (q + 1) * truth.k), truth.k, 1, k);
        cost[q * (depthMax + 1) + d] = r.mflops[q];
      }
    }
    const oracle: Point[] = [];
    for (let t = 0.05; t <= 1.0001; t += 0.01) {
      let rSum = 0;
      let mSum = 0;
      for (let q = 0; q < rows; q++) {
        const row = q * (depthMax + 1);
        const want = Math.min(t, recall[row + depthMax]);
        let d = 1;
        while (d < depthMax && recall[row + d] < want) d++;
        rSum += recall[row + d];
        mSum += cost[row + d];
      }
      oracle.push({ params: at.params, recall: rSum / rows, mflops: mSum / rows });
    }
    const f = mflopsAt(fixedFront, target);
    const o = mflopsAt(frontier(oracle), target);
    console.log(`| ${target} | ${f.toFixed(4)} | ${o.toFixed(4)} | ${(f / o).toFixed(3)}x | ${formatParams({ ...at.params, nprobe: depthMax })} (depths 1..${depthMax}) |`);
  }

  // The ceiling of any per-query rule over depth and shortlist together, at the scanDim of the fixed point at 0.95:
  // every query searched at each (depth, shortlist) of a grid, then each picks the one minimising
  // MFLOPs - lambda x recall (the per-query optimum for a trade-off lambda), over lambda.
  const top = fixedFront.find((p) => p.recall >= TARGETS[TARGETS.length - 1]);
  if (top && spec.rerank) {
    const depths = nprobes.filter((n) => n <= Math.min(lists, 2 * top.params.nprobe));
    const jointShortlists = [10, 20, 40, 80, 160];
    const rows = queries.rows;
    const cells = depths.length * jointShortlists.length;
    const recall = new Float64Array(rows * cells);
    const cost = new Float64Array(rows * cells);
    let c = 0;
    for (const nprobe of depths) {
      for (const shortlist of jointShortlists) {
        const r = await index.search(queries.data, rows, k, { ...top.params, nprobe, shortlist });
        for (let q = 0; q < rows; q++) {
          recall[q * cells + c] = recallAtK(r.ids.subarray(q * k, (q + 1) * k), k, truth.ids.subarray(q * truth.k, (q + 1) * truth.k), truth.k, 1, k);
          cost[q * cells + c] = r.mflops[q];
        }
        c++;
      }
    }
    const joint: Point[] = [];
    for (let lambda = 0.001; lambda < 100; lambda *= 1.1) {
      let rSum = 0;
      let mSum = 0;
      for (let q = 0; q < rows; q++) {
        let best = 0;
        for (let j = 1; j < cells; j++) if (cost[q * cells + j] - lambda * recall[q * cells + j] < cost[q * cells + best] - lambda * recall[q * cells + best]) best = j;
        rSum += recall[q * cells + best];
        mSum += cost[q * cells + best];
      }
      joint.push({ params: top.params, recall: rSum / rows, mflops: mSum / rows });
    }
    console.log(`\nper-query oracle over depth and shortlist together (scanDim ${top.params.scanDim}; nprobe ${depths.join('/')}, shortlist ${jointShortlists.join('/')}): the ceiling of any per-query rule adapting both\n`);
    console.log('| recall@10 | fixed MFLOPs (no funnels) | joint oracle MFLOPs | fixed / oracle |');
    console.log('|---|---|---|---|');
    for (const target of TARGETS) {
      const f = mflopsAt(fixedFront, target);
      const o = mflopsAt(frontier(joint), target);
      console.log(`| ${target} | ${f.toFixed(4)} | ${o.toFixed(4)} | ${(f / o).toFixed(3)}x |`);
    }
  }

  // the planner: calibrated on other held-out queries (adaptive points join its grid), budgets at the targets
  started = performance.now();
  const cal = await index.calibrate({ queries: ds.calQueries.data, queryRows: ds.calQueries.rows, ks: [k], maxSeconds: calibrationSeconds, latencyQueries: 5 });
  const adaptiveCalibrated = cal.points.filter((p) => p.params.probeMargin !== undefined || p.params.patience !== undefined || p.params.rerankPatience !== undefined).length;
  log(`calibrated ${cal.points.length} points (${adaptiveCalibrated} adaptive) on ${cal.queries} queries in ${((performance.now() - started) / 1000).toFixed(1)} s${cal.complete ? '' : ' (time bound reached)'}`);
  console.log(`\nplanner (calibrated on ${cal.queries} other held-out queries, ${cal.points.length} points of which ${adaptiveCalibrated} adaptive):\n`);
  console.log('| budget | planned params | expected recall | achieved recall | planned MFLOPs | achieved MFLOPs |');
  console.log('|---|---|---|---|---|---|');
  for (const target of TARGETS) {
    const plan = index.plan({ recall: target }, k);
    const achieved = await measure(plan.params);
    console.log(`| recall=${target} | ${formatParams(plan.params)} | ${plan.expectedRecall.toFixed(4)} | ${achieved.recall.toFixed(4)} | ${plan.expectedMflops.toFixed(4)} | ${achieved.mflops.toFixed(4)} |`);
  }
  index.release();
}

for (const name of o.data.split(',').map((s) => s.trim()).filter(Boolean)) await run(name);
