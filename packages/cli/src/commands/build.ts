import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseMetric } from '@adanns/compute';
import { buildFromStream, calibratedKs, formatSpec, saveIndex } from '@adanns/core';
import { loadVectors, openVectors } from '@adanns/datasets';
import { BACKEND_FLAGS, backendOptions, openBackend, intOption, parseOrUsage, required, UsageError, progressBars } from '@adanns/cli-kit';
import { parseCalibrationKs } from '../calibration-flags.js';

export const buildUsage = `adanns build --data SOURCE --metric cosine|ip|l2 [--spec SPEC|auto] --out DIR
             [--limit N] [--seed N] [--kmeans-iterations N] [--residual true|false]
             [--pq-train-size N] [--opq-iterations N] [--calibrate true|false]
             [--calibration-seconds N] [--calibration-k 1,10,100] [--calibration-queries SOURCE] ${BACKEND_FLAGS}
  Trains and fills an index (e.g. --spec pca,ivf256@32,flat@64,rerank@784 or
  pca,ivf256@32,opq16@64,rerank@784) and saves it to DIR. --spec auto (the default) chooses lists,
  d_c, d_s and the re-rank from the PCA spectrum and a small trial on a sample, and says why. The data is streamed: training reads a
  sample, then vectors are added chunk by chunk, so a set larger than memory builds. It then calibrates the index for
  budgets (search --budget) on a held-out sample of the data, unless --calibrate false: 300 vectors drawn before
  training, left out of every training sample and still indexed; or on --calibration-queries (queries like the ones
  you will serve, any source form), at each k of --calibration-k (budgets at other k are planned from these).`;

export async function buildCommand(argv: string[]): Promise<void> {
  const o = parseOrUsage(() => parseArgs({ args: argv, options: {
    data: { type: 'string' },
    metric: { type: 'string' },
    spec: { type: 'string', default: 'auto' },
    out: { type: 'string' },
    limit: { type: 'string' },
    seed: { type: 'string' },
    'kmeans-iterations': { type: 'string' },
    residual: { type: 'string' },
    'pq-train-size': { type: 'string' },
    'opq-iterations': { type: 'string' },
    calibrate: { type: 'string', default: 'true' },
    'calibration-seconds': { type: 'string' },
    'calibration-k': { type: 'string' },
    'calibration-queries': { type: 'string' },
    ...backendOptions,
  } }).values);
  const metric = parseMetric(required(o.metric, 'metric'));
  const spec = o.spec!;
  const out = required(o.out, 'out');
  if (o.residual !== undefined && o.residual !== 'true' && o.residual !== 'false') throw new UsageError(`--residual must be true or false, got "${o.residual}"`);
  if (o.calibrate !== 'true' && o.calibrate !== 'false') throw new UsageError(`--calibrate must be true or false, got "${o.calibrate}"`);
  const optionalInt = (flag: 'kmeans-iterations' | 'pq-train-size' | 'opq-iterations' | 'calibration-seconds') => (o[flag] === undefined ? undefined : intOption(o[flag], flag));
  const ks = parseCalibrationKs(o['calibration-k']);
  const data = await openVectors(required(o.data, 'data'), o.limit === undefined ? undefined : intOption(o.limit, 'limit'));
  let calibrationQueries: { queries: Float32Array; queryRows: number } | undefined;
  if (o['calibration-queries'] !== undefined) {
    const given = await loadVectors(o['calibration-queries']);
    if (given.dim !== data.dim) throw new UsageError(`--calibration-queries ${o['calibration-queries']} has dimension ${given.dim}, --data ${data.name} has ${data.dim}`);
    if (given.rows < 2) throw new UsageError(`--calibration-queries ${o['calibration-queries']} holds ${given.rows} vector(s); calibration needs at least 2`);
    calibrationQueries = { queries: given.data, queryRows: given.rows };
  }
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
    calibrate: o.calibrate === 'true' && { maxSeconds: optionalInt('calibration-seconds'), ...(ks ? { ks } : {}), ...calibrationQueries },
    onProgress: bars.update,
    rerankDir: out,
  });
  await data.close();
  bars.stop();
  const seconds = (performance.now() - started) / 1000;
  saveIndex(index, out);
  const c = index.calibration;
  const calibrated = c ? `, calibrated at k = ${calibratedKs(c).join(', ')} on ${c.queries} ${c.source === 'given' ? 'given queries' : c.source === 'held-out' ? 'held-out vectors (never trained on)' : 'stored vectors'} (${c.points.length} points at k = ${c.k}, frontier of ${index.frontier().length}${c.complete ? '' : '; the time bound cut the sweep short'})` : '';
  const peakRssMb = (process.resourceUsage().maxRSS / 1024).toFixed(0);
  console.log(`built ${index.describe()} from ${data.name} in ${seconds.toFixed(1)} s (peak RSS ${peakRssMb} MB)${calibrated}; saved to ${out}`);
  if (index.choice) console.log(`auto chose ${formatSpec(index.spec)}: ${index.choice.reason}`);
}
