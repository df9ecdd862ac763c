import { parseArgs } from 'node:util';
import { createBackend } from '@adanns/compute';
import { formatParams, loadIndex, parseParams, recallAtK, type SearchParams } from '@adanns/core';
import { loadIds, loadVectors, writeIvecs } from '@adanns/datasets';
import { intOption, parseOrUsage, required, UsageError } from '../args.js';

export const searchUsage = `adanns search --index DIR --queries SOURCE --k K [--params k=v,...]... [--gt FILE|exact]
             [--limit-queries N] [--out FILE.ivecs] [--json] [--backend cpu|auto]
  Searches a saved index once per --params (coarseDim, nprobe, scanDim, shortlist, rerankDim;
  omitted ones take the index defaults) and prints recall@k (with --gt), modelled MFLOPs per
  query and measured time. --gt exact computes the truth by brute force over the index.`;

export interface SearchRow {
  params: SearchParams;
  k: number;
  queries: number;
  recall: number | null;
  mflops: number;
  msPerQuery: number;
  qps: number;
}

export async function searchCommand(argv: string[]): Promise<void> {
  const o = parseOrUsage(() => parseArgs({ args: argv, options: {
    index: { type: 'string' },
    queries: { type: 'string' },
    k: { type: 'string' },
    params: { type: 'string', multiple: true },
    gt: { type: 'string' },
    'limit-queries': { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean', default: false },
    backend: { type: 'string', default: 'auto' },
  } }).values);
  const k = intOption(o.k, 'k');
  const backend = await createBackend(o.backend);
  const index = loadIndex(backend, required(o.index, 'index'));
  const queries = await loadVectors(required(o.queries, 'queries'), o['limit-queries'] === undefined ? undefined : intOption(o['limit-queries'], 'limit-queries'));
  if (queries.dim !== index.dim) throw new UsageError(`queries have dimension ${queries.dim}, the index ${index.dim}`);
  const paramSets = (o.params ?? ['']).map((text) => {
    try {
      return parseParams(text);
    } catch (e) {
      throw new UsageError(`--params "${text}": ${(e as Error).message}`);
    }
  });

  let truth: { ids: ArrayLike<number>; k: number } | undefined;
  if (o.gt === 'exact') {
    truth = { ids: (await index.exactSearch(queries.data, queries.rows, k)).ids, k };
  } else if (o.gt !== undefined) {
    const gt = await loadIds(o.gt);
    if (gt.rows < queries.rows) throw new UsageError(`ground truth ${o.gt} has ${gt.rows} rows for ${queries.rows} queries`);
    if (gt.k < k) throw new UsageError(`ground truth ${o.gt} has ${gt.k} neighbours per query, fewer than k = ${k}`);
    truth = gt;
  }

  if (!o.json) console.log(`index ${index.describe(k)}; ${queries.rows} queries from ${queries.name}`);
  for (const given of paramSets) {
    const started = performance.now();
    const result = await index.search(queries.data, queries.rows, k, given);
    const ms = performance.now() - started;
    const mflops = result.mflops.reduce((a, b) => a + b, 0) / queries.rows;
    const row: SearchRow = {
      params: result.params,
      k,
      queries: queries.rows,
      recall: truth ? recallAtK(result.ids, k, truth.ids, truth.k, queries.rows, k) : null,
      mflops,
      msPerQuery: ms / queries.rows,
      qps: (queries.rows * 1000) / ms,
    };
    if (o.json) console.log(JSON.stringify(row));
    else {
      const recall = row.recall === null ? '' : `recall@${k} ${row.recall.toFixed(4)}  `;
      console.log(`${formatParams(row.params).padEnd(64)} ${recall}MFLOPs/query ${mflops.toFixed(4)}  ${row.msPerQuery.toFixed(3)} ms/query  ${row.qps.toFixed(0)} QPS (batched)`);
    }
    if (o.out) writeIvecs(o.out, Int32Array.from(result.ids), queries.rows, k);
  }
}
