/**
 * Funnel plans on Fashion-MNIST (cosine; docs/ARCHITECTURE.md, "Calibration and planning"): one
 * index calibrated as the library does (held-out base vectors, funnel points derived from the
 * grid's best), then per recall@k target the cheapest calibrated point with and without funnels,
 * and what the plan for the target (with and without funnels) achieves on the test queries.
 *
 *   node benchmarks/dist/funnel-frontier.js [--queries 1000] [--spec SPEC] [--k 10] [--seconds 120]
 *     [--targets 0.9,0.95,0.99] [--cache DIR]
 */
import { parseArgs } from 'node:util';
import { intOption, UsageError } from '@adanns/cli-kit';
import { createBackend } from '@adanns/compute';
import { AdannsIndex, calibrationLevels, formatParams, recallAtK, type Calibration, type FrontierPoint } from '@adanns/core';
import { fashionMnist, log } from './fashion-mnist.js';

const { values: o } = parseArgs({
  options: {
    queries: { type: 'string', default: '1000' },
    spec: { type: 'string', default: 'pca,ivf256@16,flat@128,rerank@784:f32' },
    k: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '120' },
    targets: { type: 'string', default: '0.9,0.95,0.99' },
    cache: { type: 'string', default: 'benchmarks/results/fashion-mnist-budget-k100' },
  },
});
const targets = o.targets.split(',').map(Number);
if (!targets.every((t) => Number.isFinite(t) && t > 0 && t <= 1)) throw new UsageError(`--targets must be numbers in (0, 1], got "${o.targets}"`);
const k = intOption(o.k, 'k');
const { base, queries, truth } = await fashionMnist(intOption(o.queries, 'queries'), 100, o.cache);
if (k > truth.k) throw new UsageError(`--k ${k} exceeds the cached ground truth's ${truth.k}`);
const backend = await createBackend('cpu', { threads: 1 });
log(`building ${o.spec} and calibrating at k = ${k} (${o.seconds} s bound)`);
const started = performance.now();
const index = await AdannsIndex.build(backend, o.spec, base.data, base.rows, base.dim, { metric: 'cosine', calibrate: { ks: [k], maxSeconds: intOption(o.seconds, 'seconds') } });
const cal = index.calibration!;
const points = calibrationLevels(cal).find((l) => l.k === k)!.points;
const funnels = points.filter((p) => p.params.funnel);
log(`built in ${((performance.now() - started) / 1000).toFixed(1)} s; calibration ${cal.seconds.toFixed(1)} s on ${cal.queries} ${cal.source} vectors: ${points.length} points, ${funnels.length} with funnels${cal.complete ? '' : ' (time bound reached)'}`);

const withoutFunnels: Calibration = { ...cal, points: cal.points.filter((p) => !p.params.funnel), levels: calibrationLevels(cal).map((l) => ({ k: l.k, points: l.points.filter((p) => !p.params.funnel) })) };
const cheapest = (from: FrontierPoint[], target: number) => from.filter((p) => p.recall >= target).sort((a, b) => a.mflops - b.mflops)[0];
const show = (p: FrontierPoint | undefined) => (p ? `${p.mflops.toFixed(4)} (recall ${p.recall.toFixed(4)}; ${formatParams(p.params)})` : 'out of reach');

console.log(`Fashion-MNIST, cosine: ${base.rows} base vectors, ${queries.rows} test queries; ${o.spec}; calibrated on ${cal.queries} ${cal.source} base vectors at k = ${k} in ${cal.seconds.toFixed(1)} s (${points.length} points, ${funnels.length} funnel points).\n`);
console.log(`Cheapest calibrated point reaching recall@${k} (mean MFLOPs per query on the calibration queries):\n`);
console.log('| target | without funnels | with funnels | ratio |');
console.log('|---|---|---|---|');
for (const target of targets) {
  const plain = cheapest(withoutFunnels.points.length > 0 ? calibrationLevels(withoutFunnels).find((l) => l.k === k)!.points : [], target);
  const any = cheapest(points, target);
  console.log(`| ${target} | ${show(plain)} | ${show(any)} | ${plain && any ? (plain.mflops / any.mflops).toFixed(3) + 'x' : '-'} |`);
}

console.log(`\nFunnel points measured (calibration queries):\n`);
console.log('| params | recall | MFLOPs |');
console.log('|---|---|---|');
for (const p of [...funnels].sort((a, b) => a.mflops - b.mflops)) console.log(`| ${formatParams(p.params)} | ${p.recall.toFixed(4)} | ${p.mflops.toFixed(4)} |`);

console.log(`\nPlans for {recall: target} at k = ${k}, searched on the ${queries.rows} test queries (never seen):\n`);
console.log('| target | funnels | params | expected recall | achieved recall | MFLOPs/query |');
console.log('|---|---|---|---|---|---|');
for (const target of targets) {
  for (const [label, calibration] of [['no', withoutFunnels], ['yes', cal]] as const) {
    index.calibration = calibration;
    const plan = index.plan({ recall: target }, k);
    const r = await index.search(queries.data, queries.rows, k, plan.params);
    const recall = recallAtK(r.ids, k, truth.ids, truth.k, queries.rows, k);
    const mflops = r.mflops.reduce((a, b) => a + b, 0) / queries.rows;
    console.log(`| ${target} | ${label} | ${formatParams(plan.params)} | ${plan.expectedRecall.toFixed(4)} | ${recall.toFixed(4)} | ${mflops.toFixed(4)} |`);
  }
}
index.calibration = cal;
await backend.dispose();
