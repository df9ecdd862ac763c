/**
 * The planner's accuracy on unseen queries (docs/ARCHITECTURE.md, "Calibration and planning"):
 * Fashion-MNIST (cosine), one index calibrated as collections are (k = 1, 10, 100 on 300 base
 * vectors drawn before training and never trained on), then a sweep of recall targets at each k;
 * a target counts as held when the recall achieved on the test queries (never seen) is at least
 * target - 0.01. Also k = 5 and 50, which are not calibrated (planned from the ks around them).
 *
 *   node benchmarks/dist/calibration-sweep.js [--queries 1000] [--spec SPEC] [--seconds 120]
 *     [--targets 0.5:0.99:0.01] [--cache DIR]
 */
import { parseArgs } from 'node:util';
import { intOption, UsageError } from '@adanns/cli-kit';
import { createBackend } from '@adanns/compute';
import { AdannsIndex, calibrationLevels, formatParams, recallAtK, type SearchParams } from '@adanns/core';
import { fashionMnist, log } from './fashion-mnist.js';

const { values: o } = parseArgs({
  options: {
    queries: { type: 'string', default: '1000' },
    spec: { type: 'string', default: 'pca,ivf256@32,flat@128,rerank@784' },
    seconds: { type: 'string', default: '120' },
    targets: { type: 'string', default: '0.5:0.99:0.01' },
    cache: { type: 'string', default: 'benchmarks/results/fashion-mnist-budget-k100' },
  },
});
const [from, to, step] = o.targets.split(':').map(Number);
if (![from, to, step].every((v) => Number.isFinite(v) && v > 0 && v <= 1) || from > to) throw new UsageError(`--targets must be FROM:TO:STEP within (0, 1], got "${o.targets}"`);
const targets = Array.from({ length: Math.floor((to - from) / step + 1e-9) + 1 }, (_, i) => Number((from + i * step).toFixed(4)));
const kmax = 100;
const { base, queries, truth } = await fashionMnist(intOption(o.queries, 'queries'), kmax, o.cache);
const backend = await createBackend('cpu', { threads: 1 });
log(`building ${o.spec} and calibrating at k = 1, 10, 100 (${o.seconds} s bound)`);
const started = performance.now();
const index = await AdannsIndex.build(backend, o.spec, base.data, base.rows, base.dim, { metric: 'cosine', calibrate: { ks: [1, 10, 100], maxSeconds: intOption(o.seconds, 'seconds') } });
const cal = index.calibration!;
log(`built in ${((performance.now() - started) / 1000).toFixed(1)} s; calibrated on ${cal.queries} ${cal.source} vectors: ${calibrationLevels(cal).map((l) => `${l.points.length} points at k = ${l.k}`).join(', ')}${cal.complete ? '' : ' (time bound reached)'}`);

const achievedBy = new Map<string, { recall: number; mflops: number }>();
async function achieved(k: number, params: SearchParams): Promise<{ recall: number; mflops: number }> {
  const key = `${k}:${formatParams(params)}`;
  if (!achievedBy.has(key)) {
    const r = await index.search(queries.data, queries.rows, k, params);
    achievedBy.set(key, { recall: recallAtK(r.ids, k, truth.ids, truth.k, queries.rows, k), mflops: r.mflops.reduce((a, b) => a + b, 0) / queries.rows });
  }
  return achievedBy.get(key)!;
}

console.log(`Fashion-MNIST, cosine: ${base.rows} base vectors, ${queries.rows} test queries; ${o.spec}; calibrated on ${cal.queries} ${cal.source} base vectors at k = ${calibrationLevels(cal).map((l) => l.k).join(', ')}.`);
console.log(`Recall targets ${from} to ${to} by ${step}; a target is planned when the calibrated lower bound reaches it (else the plan says budgetMet false and is not counted).\n`);
console.log('| k | calibrated | targets planned | held (achieved >= target - 0.01) | share held | largest shortfall | note |');
console.log('|---|---|---|---|---|---|---|');
const detail: string[] = [];
for (const k of [1, 5, 10, 50, 100]) {
  let planned = 0;
  let held = 0;
  let worst = 0;
  let note = '';
  for (const target of targets) {
    const plan = index.plan({ recall: target }, k);
    note = plan.recallNote ?? '';
    // at an uncalibrated k a plan is never claimed; count the targets its estimated lower bound reaches
    if (!(plan.budgetMet && plan.recallLowerBound >= target)) continue;
    planned++;
    const got = await achieved(k, plan.params);
    if (got.recall >= target - 0.01) held++;
    worst = Math.max(worst, target - got.recall);
    if (Math.round(target * 100) % 5 === 0) detail.push(`| ${k} | ${target} | ${formatParams(plan.params)} | ${plan.expectedRecall.toFixed(4)} | ${got.recall.toFixed(4)} | ${got.mflops.toFixed(4)} |`);
  }
  console.log(`| ${k} | ${plan0(k)} | ${planned} | ${held} | ${planned ? (held / planned).toFixed(3) : '-'} | ${worst.toFixed(4)} | ${note} |`);
}
console.log('\n| k | target | planned params | expected recall | achieved recall | achieved MFLOPs/query |');
console.log('|---|---|---|---|---|---|');
for (const line of detail) console.log(line);
index.release();
await backend.dispose();

function plan0(k: number): string {
  return calibrationLevels(cal).some((l) => l.k === k) ? 'yes' : 'no';
}
