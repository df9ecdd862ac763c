/**
 * What `index: "auto"` chooses, and what it buys: builds auto's choice, the
 * fixed AdANNS-IVF shapes collections used before it (`pca,ivf{4 sqrt n}@32,
 * flat@64,rerank@D`, as issue 17 measured, adapted to D <= 64 by fixedSpecs, and the store's defaultSpec) and rigid IVF-Flat (`ivf{L}@D,flat@D`, searched at
 * d_c = d_s = D only; a row whose spec is auto's sweeps auto's build, not a second one), sweeps each over its calibration grid on held-out test
 * queries with exact ground truth, and prints the cheapest modelled MFLOPs per
 * query reaching recall@10 0.9 and 0.95 (read off each build's frontier).
 * Auto's build is swept over funnel plans too (a scan at a shorter prefix, a
 * stage rescoring its shortlist at d_s from the lists, the re-rank at D: what
 * auto prices with cheapestFunnel), on a row of its own, and auto's predicted
 * MFLOPs stand beside the measured ones on the row of the plan kind it chose.
 *
 *   node benchmarks/dist/auto-choice.js --data fashion-mnist [--queries 500]
 *   node benchmarks/dist/auto-choice.js --data flat [--n 100000] [--dim 100] [--clusters 1000] [--noise 1.4]
 * --compare false prints only what auto chose and why.
 */
import { parseArgs } from 'node:util';
import { intOption, UsageError } from '@adanns/cli-kit';
import { createBackend, type Metric } from '@adanns/compute';
import { AdannsIndex, autoLists, calibrationGrid, chooseAutoSpec, formatFunnel, recallAtK, type AutoCandidate, type AutoChoice, type SearchParams } from '@adanns/core';
import { generateSynthetic } from '@adanns/datasets';
import { fixedSpecs, sameBuild } from './auto-compare.js';
import { cachedGroundTruth } from './bench-data.js';
import { fashionMnist, log } from './fashion-mnist.js';

/** The arguments, each checked before any work starts (the Fashion-MNIST download, auto's trial). */
function options() {
  const { values: o } = parseArgs({
    options: {
      data: { type: 'string', default: 'flat' },
      queries: { type: 'string', default: '500' },
      n: { type: 'string', default: '100000' },
      dim: { type: 'string', default: '100' },
      clusters: { type: 'string', default: '1000' },
      noise: { type: 'string', default: '1.4' },
      cache: { type: 'string', default: '.cache' },
      compare: { type: 'string', default: 'true' },
    },
  });
  if (o.data !== 'fashion-mnist' && o.data !== 'flat') throw new UsageError(`--data must be fashion-mnist or flat, got "${o.data}"`);
  if (o.compare !== 'true' && o.compare !== 'false') throw new UsageError(`--compare must be true or false, got "${o.compare}"`);
  const noise = Number(o.noise);
  if (!(noise > 0)) throw new UsageError(`--noise must be a positive number, got "${o.noise}"`);
  const synthetic = { n: intOption(o.n, 'n'), dim: intOption(o.dim, 'dim'), clusters: intOption(o.clusters, 'clusters'), noise };
  return { ...o, queryCount: intOption(o.queries, 'queries'), synthetic };
}
let o: ReturnType<typeof options>;
try {
  o = options();
} catch (e) {
  // a usage mistake (parseArgs' unknown or malformed options too) is one line naming the value, not a stack trace
  console.error(`auto-choice: ${(e as Error).message}`);
  process.exit(2);
}
const k = 10;
const { queryCount, synthetic } = o;
const backend = await createBackend('cpu');
let metric: Metric = 'cosine';
let dataName: string;
let set: Awaited<ReturnType<typeof fashionMnist>>;
if (o.data === 'fashion-mnist') {
  set = await fashionMnist(queryCount, k, o.cache!);
  dataName = `Fashion-MNIST (${set.base.rows} x ${set.base.dim}, cosine)`;
} else {
  const { noise } = synthetic;
  const { base, queries } = generateSynthetic({ ...synthetic, decay: 0, queries: queryCount, seed: 17 });
  metric = 'cosine';
  set = { base, queries, truth: await cachedGroundTruth(base, queries, metric, k, o.cache!) };
  dataName = `synthetic flat spectrum (decay 0, ${o.clusters} clusters, noise ${noise}; ${base.rows} x ${base.dim}, cosine)`;
}
const { base, queries, truth } = set;
const dim = base.dim;

type Target = '0.9' | '0.95';
interface Result {
  name: string;
  spec: string;
  buildS: number;
  /** The row swept auto's build (same spec) instead of building it again. */
  reused?: boolean;
  at: Record<Target, { mflops: number; params: SearchParams; recall: number } | null>;
  /** What auto's trial predicted for this row's plans (auto's own build, the row of the kind it chose). */
  predicted?: Record<Target, number | null>;
}

/** Shortlists (multiples of k) and stage keeps the funnel sweep tries; auto's own 0.99 shortlist joins them. */
const FUNNEL_SHORTLISTS = [2, 4, 10, 20, 40];
const FUNNEL_KEEPS = [1, 2, 4, 10];

/**
 * Funnel plans of a build with decodable lists at d_s and a re-rank (what
 * auto prices with cheapestFunnel): for each plain grid point scanning below
 * d_s, the scan at its prefix handing S to a stage at d_s keeping K < S for
 * the re-rank. Params the index cannot run are left out (resolveParams).
 */
function funnelPoints(index: AdannsIndex, grid: SearchParams[], shortlist99: number | null): SearchParams[] {
  const ds = index.spec.scan.dim;
  const R = index.spec.rerank?.dim;
  if (R === undefined || index.funnelSource(ds) !== 'lists') return [];
  const shortlists = [...new Set([...FUNNEL_SHORTLISTS.map((m) => m * k), ...(shortlist99 ? [shortlist99] : [])])].filter((s) => s <= index.size);
  const out = new Map<string, SearchParams>();
  for (const p of grid.filter((g) => g.scanDim < ds)) {
    for (const shortlist of shortlists) {
      for (const keep of FUNNEL_KEEPS.map((m) => m * k).filter((x) => x < shortlist)) {
        try {
          const f = index.resolveParams(k, { ...p, shortlist, funnel: [{ dim: ds, keep }] });
          out.set(JSON.stringify(f), f);
        } catch {
          // not runnable on this build (e.g. a stage at d_s below the scan)
        }
      }
    }
  }
  return [...out.values()];
}

/** The cheapest point per target of a sweep over lines of params (nprobe ascending, stopping once recall passes 0.97). */
async function sweep(index: AdannsIndex, points: SearchParams[], into: Result): Promise<void> {
  const lines = new Map<string, SearchParams[]>();
  for (const p of points) {
    const key = JSON.stringify({ ...p, nprobe: 0 });
    lines.set(key, [...(lines.get(key) ?? []), p]);
  }
  for (const line of lines.values()) {
    for (const p of line.sort((a, b) => a.nprobe - b.nprobe)) {
      const r = await index.search(queries.data, queries.rows, k, p);
      const recall = recallAtK(r.ids, k, truth.ids, truth.k, queries.rows, k);
      const mflops = r.mflops.reduce((a, b) => a + b, 0) / queries.rows;
      for (const target of ['0.9', '0.95'] as const) {
        const best = into.at[target];
        if (recall >= Number(target) && (!best || mflops < best.mflops)) into.at[target] = { mflops, params: r.params, recall };
      }
      if (recall >= 0.97) break;
    }
  }
}

/** Auto's build, kept to the end: a comparison row whose spec is the same build sweeps it rather than building it again. */
let autoBuild: { spec: string; index: AdannsIndex; buildS: number } | undefined;

/**
 * Builds `spec` (or reuses auto's build when it is the same) and sweeps its
 * calibration grid; with `funnels`, its funnel plans too, as a second row
 * (auto's build: `funnels` is auto's choice).
 */
async function measure(name: string, spec: string, keep: (p: SearchParams) => boolean = () => true, funnels?: AutoChoice): Promise<Result[]> {
  const reused = autoBuild !== undefined && sameBuild(spec, autoBuild.spec, dim);
  let index: AdannsIndex;
  let buildS: number;
  if (reused) {
    ({ index, buildS } = autoBuild!);
    log(`${name}: ${spec} is auto's build; sweeping it again instead of rebuilding`);
  } else {
    log(`${name}: building ${spec}`);
    const started = performance.now();
    index = await AdannsIndex.build(backend, spec, base.data, base.rows, dim, { metric, seed: 1 });
    buildS = (performance.now() - started) / 1000;
  }
  const plain: Result = { name, spec, buildS, reused, at: { '0.9': null, '0.95': null } };
  const grid = calibrationGrid(index, k).filter(keep);
  await sweep(index, grid, plain);
  const results = [plain];
  const chosen = funnels?.chosen;
  const predicted = (c: AutoCandidate) => ({ '0.9': c.mflops[0.9], '0.95': c.mflops[0.95] });
  if (chosen && chosen.funnelScanDim === undefined) plain.predicted = predicted(chosen);
  const extra = funnels ? funnelPoints(index, grid, chosen?.funnelScanDim !== undefined ? chosen.shortlist99 : null) : [];
  if (extra.length > 0) {
    const funnel: Result = { name: `${name}, funnel plans`, spec, buildS, at: { '0.9': null, '0.95': null } };
    if (chosen && chosen.funnelScanDim !== undefined) funnel.predicted = predicted(chosen);
    await sweep(index, extra, funnel);
    results.push(funnel);
  }
  log(`${name}: done (${grid.length} grid points${extra.length ? `, ${extra.length} funnel points` : ''}, build ${buildS.toFixed(1)} s${reused ? ', reused' : ''})`);
  if (funnels) autoBuild = { spec, index, buildS };
  else if (!reused) index.release();
  return results;
}

const t = performance.now();
const choice = await chooseAutoSpec(backend, base.data, base.rows, dim, { metric, k });
const chooseS = (performance.now() - t) / 1000;
console.log(`\n${dataName}: auto chose ${choice.spec} in ${chooseS.toFixed(1)} s: ${choice.reason}`);
if (o.compare === 'false') {
  await backend.dispose();
  process.exit(0);
}
const lists = autoLists(base.rows);
// the shape issue 17 measured as the default (`pca,ivf@32,flat@64,rerank@D`, adapted to D <= 64), and the store's fixed default before auto
const fixed = fixedSpecs(base.rows, dim);
const notes: string[] = [];
for (const reason of fixed.skipped) notes.push(`fixed AdANNS-IVF row skipped: ${reason}`);
const results = await measure('auto', choice.spec, undefined, choice);
for (const { spec, note } of fixed.specs) {
  if (note) notes.push(note);
  results.push(...(await measure('fixed AdANNS-IVF', spec)));
}
results.push(...(await measure('rigid IVF-Flat', `ivf${lists}@${dim},flat@${dim}`, (p) => p.coarseDim === dim && p.scanDim === dim)));
autoBuild?.index.release();
for (const r of results.filter((r) => r.reused)) notes.push(`${r.name}: \`${r.spec}\` is auto's build; its row sweeps that build (not built twice)`);
const cell = (r: Result, target: Target) => {
  const at = r.at[target];
  const p = at?.params;
  const measured = at && p ? `${at.mflops.toFixed(3)} (recall ${at.recall.toFixed(3)}; nprobe ${p.nprobe}, d_c ${p.coarseDim}, d_s ${p.scanDim}${p.rerankDim ? `, shortlist ${p.shortlist}` : ''}${p.funnel ? `, funnel ${formatFunnel(p.funnel)}` : ''})` : 'not reached';
  const predicted = r.predicted?.[target];
  return r.predicted ? `${measured}; auto predicted ${predicted === null || predicted === undefined ? 'unreached' : predicted.toFixed(3)}` : measured;
};
console.log(`\n${dataName}; ${queries.rows} held-out test queries, exact top-${k} ground truth; backend ${backend.name}.`);
console.log('| build | spec | MFLOPs/query at recall@10 >= 0.9 | at >= 0.95 | build s |');
console.log('|---|---|---|---|---|');
for (const r of results) console.log(`| ${r.name} | \`${r.spec}\` | ${cell(r, '0.9')} | ${cell(r, '0.95')} | ${r.buildS.toFixed(1)}${r.reused ? ' (auto\'s build)' : ''} |`);
if (notes.length > 0) console.log(`\n${notes.map((note) => `- ${note}`).join('\n')}`);
await backend.dispose();
