import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseMetric } from '@adanns/compute';
import { buildFromStream, saveIndex } from '@adanns/core';
import { openVectors } from '@adanns/datasets';
import { BACKEND_FLAGS, backendOptions, openBackend, intOption, parseOrUsage, required, UsageError, progressBars } from '@adanns/cli-kit';

export const buildUsage = `adanns build --data SOURCE --metric cosine|ip|l2 --spec SPEC --out DIR
             [--limit N] [--seed N] [--kmeans-iterations N] [--residual true|false]
             [--pq-train-size N] [--opq-iterations N] [--calibrate true|false]
             [--calibration-seconds N] ${BACKEND_FLAGS}
  Trains and fills an index (e.g. --spec pca,ivf256@32,flat@64,rerank@784 or
  pca,ivf256@32,opq16@64,rerank@784) and saves it to DIR. The data is streamed: training reads a
  sample, then vectors are added chunk by chunk, so a set larger than memory builds. It then calibrates the index for
  budgets (search --budget) on a held-out sample of the data, unless --calibrate false.`;

export async function buildCommand(argv: string[]): Promise<void> {
  const o = parseOrUsage(() => parseArgs({ args: argv, options: {
    data: { type: 'string' },
    metric: { type: 'string' },
    spec: { type: 'string' },
    out: { type: 'string' },
    limit: { type: 'string' },
    seed: { type: 'string' },
    'kmeans-iterations': { type: 'string' },
    residual: { type: 'string' },
    'pq-train-size': { type: 'string' },
    'opq-iterations': { type: 'string' },
    calibrate: { type: 'string', default: 'true' },
    'calibration-seconds': { type: 'string' },
    ...backendOptions,
  } }).values);
  const metric = parseMetric(required(o.metric, 'metric'));
  const spec = required(o.spec, 'spec');
  const out = required(o.out, 'out');
  if (o.residual !== undefined && o.residual !== 'true' && o.residual !== 'false') throw new UsageError(`--residual must be true or false, got "${o.residual}"`);
  if (o.calibrate !== 'true' && o.calibrate !== 'false') throw new UsageError(`--calibrate must be true or false, got "${o.calibrate}"`);
  const optionalInt = (flag: 'kmeans-iterations' | 'pq-train-size' | 'opq-iterations' | 'calibration-seconds') => (o[flag] === undefined ? undefined : intOption(o[flag], flag));
  const data = await openVectors(required(o.data, 'data'), o.limit === undefined ? undefined : intOption(o.limit, 'limit'));
  const backend = await openBackend(o);
  const bars = progressBars();
  const started = performance.now();
  // streamed: trained on a sample, then added chunk by chunk, so the data set is never whole in memory;
  // a disk re-rank store writes its rows straight into the output directory
  mkdirSync(out, { recursive: true });
  const index = await buildFromStream(backend, spec, data, {
    metric,
    seed: o.seed === undefined ? 1 : intOption(o.seed, 'seed'),
    kmeansIterations: optionalInt('kmeans-iterations'),
    pqTrainSize: optionalInt('pq-train-size'),
    opqIterations: optionalInt('opq-iterations'),
    residual: o.residual === undefined ? undefined : o.residual === 'true',
    calibrate: o.calibrate === 'true' && { maxSeconds: optionalInt('calibration-seconds') },
    onProgress: bars.update,
    rerankDir: out,
  });
  await data.close();
  bars.stop();
  const seconds = (performance.now() - started) / 1000;
  saveIndex(index, out);
  const calibrated = index.calibration ? `, calibrated on ${index.calibration.queries} held-out vectors (${index.calibration.points.length} points, frontier of ${index.frontier().length})` : '';
  const peakRssMb = (process.resourceUsage().maxRSS / 1024).toFixed(0);
  console.log(`built ${index.describe()} from ${data.name} in ${seconds.toFixed(1)} s (peak RSS ${peakRssMb} MB)${calibrated}; saved to ${out}`);
}
