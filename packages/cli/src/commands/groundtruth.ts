import { parseArgs } from 'node:util';
import { parseMetric } from '@adanns/compute';
import { exactNeighboursOf } from '@adanns/core';
import { loadVectors, openVectors, writeIvecs } from '@adanns/datasets';
import { BACKEND_FLAGS, backendOptions, openBackend, intOption, parseOrUsage, required, UsageError, progressBars } from '@adanns/cli-kit';

export const groundtruthUsage = `adanns groundtruth --base SOURCE --queries SOURCE --metric cosine|ip|l2 --k K --out FILE.ivecs
             [--limit-base N] [--limit-queries N] ${BACKEND_FLAGS}
  Exact k nearest neighbours (row numbers of the base) by brute force at the full dimension.`;

export async function groundtruthCommand(argv: string[]): Promise<void> {
  const o = parseOrUsage(() => parseArgs({ args: argv, options: {
    base: { type: 'string' },
    queries: { type: 'string' },
    metric: { type: 'string' },
    k: { type: 'string' },
    out: { type: 'string' },
    'limit-base': { type: 'string' },
    'limit-queries': { type: 'string' },
    ...backendOptions,
  } }).values);
  const metric = parseMetric(required(o.metric, 'metric'));
  const k = intOption(o.k, 'k');
  const out = required(o.out, 'out');
  if (!out.endsWith('.ivecs')) throw new UsageError(`--out must name an .ivecs file, got "${out}"`);
  // the base is streamed in chunks: it may be larger than memory
  const base = await openVectors(required(o.base, 'base'), o['limit-base'] === undefined ? undefined : intOption(o['limit-base'], 'limit-base'));
  const queries = await loadVectors(required(o.queries, 'queries'), o['limit-queries'] === undefined ? undefined : intOption(o['limit-queries'], 'limit-queries'));
  if (queries.dim !== base.dim) throw new UsageError(`queries have dimension ${queries.dim}, base has ${base.dim}`);
  const backend = await openBackend(o);
  const bars = progressBars();
  const { ids } = await exactNeighboursOf(backend, base.chunks(65536), base.rows, queries.data, queries.rows, base.dim, metric, k, (d, t) => bars.update('groundtruth', d, t));
  bars.stop();
  await base.close();
  writeIvecs(out, ids, queries.rows, k);
  console.log(`wrote ${queries.rows} x ${k} exact neighbours to ${out}`);
}
