import { parseArgs } from 'node:util';
import { allowedIdsOf, exactNeighboursOf, formatBudget, formatParams, loadIndex, parseBudget, parseParams, recallAtK, type AllowedIds, type Budget, type SearchParams } from '@adanns/core';
import { loadIds, loadVectors, writeIvecs } from '@adanns/datasets';
import { filterMatches, parseFilter } from '@adanns/wire';
import { BACKEND_FLAGS, backendOptions, openBackend, intOption, parseOrUsage, required, UsageError } from '@adanns/cli-kit';

export const searchUsage = `adanns search --index DIR --queries SOURCE --k K [--params k=v,...]... [--budget B]... [--strict]
             [--gt FILE|exact] [--limit-queries N] [--out FILE.ivecs] [--json]
             [--filter JSON --payloads SOURCE] ${BACKEND_FLAGS}
  Searches a saved index once per --params (coarseDim, nprobe, scanDim, shortlist, rerankDim,
  probeMargin: adaptive probing, lists within that centroid-score margin of the best, at most
  nprobe; patience=TOP/NEWMAX/LISTS: lists probed one at a time until the last LISTS brought at most
  NEWMAX new members into the scan's top TOP, at most nprobe; rerankPatience=FIRST/STEP/NEWMAX: the
  re-rank rescores the first FIRST candidates (FIRST >= k), then STEP more at a time until a chunk
  brings at most NEWMAX new members into its exact top FIRST; funnel=KEEP@DIM/...: re-rank stages
  between scan and re-rank, e.g. funnel=100@64/30@128;
  omitted ones take the index defaults) and once per --budget (mflops=X, recall=X or latencyMs=X:
  the planner picks the params from the index's calibration; --strict refuses budgets it cannot
  meet). Prints recall@k (with --gt), modelled MFLOPs per query, expected recall and time.
  --gt exact computes the truth by brute force over the index.
  --filter searches only the points that pass a filter (README, "Filters"): the payload of row i of
  --payloads (the labelled source the index was built from, ids = row numbers) is {label}, e.g.
  --filter '{"must":[{"key":"label","match":{"any":[3,5]}}]}'; --gt exact is then the exact filtered
  truth, by brute force over the matching rows of --payloads.`;

export interface SearchRow {
  budget?: Budget;
  budgetMet?: boolean;
  expectedRecall: number | null;
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
    budget: { type: 'string', multiple: true },
    strict: { type: 'boolean', default: false },
    gt: { type: 'string' },
    'limit-queries': { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean', default: false },
    filter: { type: 'string' },
    payloads: { type: 'string' },
    ...backendOptions,
  } }).values);
  const k = intOption(o.k, 'k');
  const backend = await openBackend(o);
  const index = loadIndex(backend, required(o.index, 'index'));
  const queries = await loadVectors(required(o.queries, 'queries'), o['limit-queries'] === undefined ? undefined : intOption(o['limit-queries'], 'limit-queries'));
  if (queries.dim !== index.dim) throw new UsageError(`queries have dimension ${queries.dim}, the index ${index.dim}`);
  const asUsage = <T>(flag: string, text: string, parse: (t: string) => T): T => {
    try {
      return parse(text);
    } catch (e) {
      throw new UsageError(`--${flag} "${text}": ${(e as Error).message}`);
    }
  };
  const budgets = (o.budget ?? []).map((text) => asUsage('budget', text, parseBudget));
  const paramSets = (o.params ?? (budgets.length ? [] : [''])).map((text) => asUsage('params', text, parseParams));
  if (budgets.length > 0 && !index.calibration) throw new UsageError(`index ${o.index} has no calibration: rebuild it with --calibrate true to search with --budget`);
  // latencies were calibrated on the building machine: rescale them here with a short probe
  if (index.calibration) await index.probeLatency();

  let filter: AllowedIds | undefined;
  let matching: Int32Array | undefined;
  let base: Awaited<ReturnType<typeof loadVectors>> | undefined;
  if (o.filter !== undefined) {
    const node = asUsage('filter', o.filter, (text) => parseFilter(JSON.parse(text)));
    base = await loadVectors(required(o.payloads, 'payloads'));
    const labels = base.labels;
    if (!labels) throw new UsageError(`--payloads ${o.payloads} has no labels to filter on (fashion-mnist and synthetic sources have them)`);
    if (base.rows !== index.size || base.dim !== index.dim) throw new UsageError(`--payloads ${o.payloads} has ${base.rows} rows of dimension ${base.dim}, the index ${index.size} of ${index.dim}: give the source the index was built from`);
    const ids: number[] = [];
    for (let i = 0; i < base.rows; i++) if (filterMatches(node, i, { label: labels[i] })) ids.push(i);
    matching = Int32Array.from(ids);
    filter = allowedIdsOf(ids);
    if (!o.json) console.log(`filter ${o.filter} matches ${ids.length} of ${base.rows} points (${((100 * ids.length) / base.rows).toPrecision(3)}%)`);
    if (o.gt !== undefined && o.gt !== 'exact') throw new UsageError(`--gt ${o.gt} holds unfiltered neighbours: use --gt exact with --filter`);
  }

  let truth: { ids: ArrayLike<number>; k: number } | undefined;
  if (o.gt === 'exact' && matching && base) {
    // brute force over the matching rows only, their positions mapped back to row numbers
    const data = new Float32Array(matching.length * base.dim);
    matching.forEach((row, i) => data.set(base.data.subarray(row * base.dim, (row + 1) * base.dim), i * base.dim));
    const kk = Math.min(k, matching.length);
    const exact = kk === 0 ? { ids: new Int32Array(0) } : await exactNeighboursOf(backend, [{ from: 0, rows: matching.length, data }], matching.length, queries.data, queries.rows, base.dim, index.metric, kk);
    const ids = new Int32Array(queries.rows * k).fill(-1);
    for (let q = 0; q < queries.rows; q++) for (let i = 0; i < kk; i++) ids[q * k + i] = matching[exact.ids[q * kk + i]];
    truth = { ids, k };
  } else if (o.gt === 'exact') {
    truth = { ids: (await index.exactSearch(queries.data, queries.rows, k)).ids, k };
  } else if (o.gt !== undefined) {
    const gt = await loadIds(o.gt);
    if (gt.rows < queries.rows) throw new UsageError(`ground truth ${o.gt} has ${gt.rows} rows for ${queries.rows} queries`);
    if (gt.k < k) throw new UsageError(`ground truth ${o.gt} has ${gt.k} neighbours per query, fewer than k = ${k}`);
    truth = gt;
  }

  if (!o.json) console.log(`index ${index.describe(k)}; ${queries.rows} queries from ${queries.name}`);
  const requests: Array<{ params?: Partial<SearchParams>; budget?: Budget }> = [...paramSets.map((params) => ({ params })), ...budgets.map((budget) => ({ budget }))];
  for (const request of requests) {
    const started = performance.now();
    const result = request.budget
      ? await index.searchWithBudget(queries.data, queries.rows, k, request.budget, { strict: o.strict, ...(filter ? { filter } : {}) })
      : await index.search(queries.data, queries.rows, k, request.params, filter ? { filter } : {});
    const ms = performance.now() - started;
    const mflops = result.mflops.reduce((a, b) => a + b, 0) / queries.rows;
    const row: SearchRow = {
      ...(request.budget ? { budget: request.budget, budgetMet: result.budgetMet ?? false } : {}),
      expectedRecall: result.expectedRecall,
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
      const expected = row.expectedRecall === null ? '' : `expected ${row.expectedRecall.toFixed(4)}  `;
      const budget = row.budget ? `budget ${formatBudget(row.budget)}${row.budgetMet ? '' : ' (not met)'}: ` : '';
      console.log(`${budget}${formatParams(row.params).padEnd(64)} ${recall}${expected}MFLOPs/query ${mflops.toFixed(4)}  ${row.msPerQuery.toFixed(3)} ms/query  ${row.qps.toFixed(0)} QPS (batched)`);
    }
    if (o.out) writeIvecs(o.out, Int32Array.from(result.ids), queries.rows, k);
  }
}
