import type { ResultRow, Results } from '../row.js';
import { atRecall, formatParams } from './summary.js';

/** The recall the issue 18 goals ask of every selectivity. */
export const FILTER_RECALL_GOAL = 0.95;

const fmt = (v: number | null | undefined, digits = 3) => (v === null || v === undefined ? '-' : v.toFixed(digits));
const params = (r: ResultRow) => formatParams(r.params);
const percent = (s: number) => `${(100 * s).toPrecision(3)}%`;
/** adanns-ivf at chosen params and adanns-budget are one system for the goals: the same index. */
const isAdanns = (r: ResultRow) => r.system.startsWith('adanns');

/** The filtered suite's rows grouped by filter, most selective last. */
export function byFilter(rows: ResultRow[]): Array<{ filter: string; selectivity: number; matches: number; rows: ResultRow[] }> {
  const groups = new Map<string, ResultRow[]>();
  for (const r of rows) {
    if (r.selectivity === undefined) continue;
    const key = r.filter ?? String(r.selectivity);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(r);
  }
  return [...groups.entries()].map(([filter, rs]) => ({ filter, selectivity: rs[0].selectivity!, matches: rs[0].matches ?? 0, rows: rs })).sort((a, b) => b.selectivity - a.selectivity);
}

/**
 * The filter-suite report: one table "selectivity | system | params |
 * recall@k | hits | MFLOPs | QPS", then per selectivity the issue 18 goals
 * read off the same rows: recall >= 0.95 with k hits, MFLOPs against the
 * exact scan of the matches, QPS against hnswlib at equal recall.
 */
export function filteredSummaryMarkdown(results: Results): string {
  const { dataset, machine } = results;
  const groups = byFilter(results.rows);
  const k = results.rows[0]?.k ?? 10;
  const out: string[] = [];
  out.push(`# Filtered search: ${dataset.name}`);
  out.push('');
  out.push(`${dataset.n} base vectors of dimension ${dataset.dim}, ${dataset.queries} queries, ${dataset.metric}; ${machine.cpus} CPUs, Node ${machine.node}, backend ${machine.backend}, --threads ${machine.threads} (hnswlib-node: 1). Recall against the exact filtered ground truth (brute force over the matching rows); hits: the fewest results any query got. QPS: queries one at a time, median of ${machine.passes} timed passes.`);
  out.push(`Command: \`${results.command}\``);
  out.push('');
  out.push(`| selectivity | filter | system | params | recall@${k} | hits | MFLOPs | QPS |`);
  out.push('|---|---|---|---|---|---|---|---|');
  for (const g of groups) {
    for (const r of g.rows) out.push(`| ${percent(g.selectivity)} (${g.matches}) | ${g.filter} | ${r.system} | ${params(r) || '-'} | ${fmt(r.recall, 4)} | ${r.hits ?? '-'} | ${fmt(r.mflops, 3)} | ${fmt(r.qps, 0)} |`);
  }
  out.push('');
  out.push(`## Goals (issue 18): recall@${k} >= ${FILTER_RECALL_GOAL} with k hits; at 1% and below, MFLOPs <= the exact scan of the matches; at 10%, QPS >= hnswlib's at equal recall`);
  out.push('');
  out.push(`| selectivity | adanns cheapest row at >= ${FILTER_RECALL_GOAL} with k hits | its MFLOPs | exact scan MFLOPs | ratio | adanns best QPS at >= ${FILTER_RECALL_GOAL} | hnswlib best QPS at >= ${FILTER_RECALL_GOAL} | hnswlib best recall (its QPS) | adanns best QPS at >= that recall |`);
  out.push('|---|---|---|---|---|---|---|---|---|');
  for (const g of groups) {
    const want = Math.min(k, g.matches);
    const adanns = g.rows.filter(isAdanns).map((r) => ({ ...r, system: 'adanns' }));
    const full = adanns.filter((r) => (r.hits ?? 0) >= want);
    const cheapest = atRecall(full, FILTER_RECALL_GOAL)[0]?.mflops;
    const exact = g.rows.find((r) => r.system === 'exact-matches');
    const hnsw = g.rows.filter((r) => r.system === 'hnswlib');
    const qpsAt = (rows: ResultRow[], target: number) => atRecall(rows, target)[0]?.qps;
    const hnswBest = hnsw.reduce<ResultRow | undefined>((a, b) => (a === undefined || b.recall > a.recall || (b.recall === a.recall && b.qps > a.qps) ? b : a), undefined);
    const adannsAtHnsw = hnswBest ? qpsAt(full, hnswBest.recall) : undefined;
    out.push(
      `| ${percent(g.selectivity)} | ${cheapest ? `${params(cheapest)} (recall ${fmt(cheapest.recall, 4)})` : 'not reached'} | ${fmt(cheapest?.mflops, 3)} | ${fmt(exact?.mflops, 3)} | ${cheapest && exact?.mflops ? fmt(cheapest.mflops! / exact.mflops, 2) : '-'} | ${fmt(qpsAt(full, FILTER_RECALL_GOAL)?.qps, 0)} | ${fmt(qpsAt(hnsw, FILTER_RECALL_GOAL)?.qps, 0)} | ${hnswBest ? `${fmt(hnswBest.recall, 4)} (${fmt(hnswBest.qps, 0)}, ef ${hnswBest.params.ef}, hits ${hnswBest.hits})` : '-'} | ${adannsAtHnsw ? `${fmt(adannsAtHnsw.qps, 0)} (${params(adannsAtHnsw)})` : '-'} |`,
    );
  }
  // recall budgets planned under the filter (AdannsIndex.planFiltered): what the plan predicted against what it achieved
  const budgets = groups.flatMap((g) => g.rows.filter((r) => r.system === 'adanns-budget' && r.budget?.recall !== undefined).map((r) => ({ g, r })));
  if (budgets.length) {
    out.push('');
    out.push(`## Recall budgets under the filter: predicted against achieved`);
    out.push('');
    out.push(`| selectivity | budget | plan and params | predicted recall | achieved recall@${k} | budgetMet | target missed by > 0.01 | MFLOPs | QPS |`);
    out.push('|---|---|---|---|---|---|---|---|---|');
    for (const { g, r } of budgets) {
      const target = r.budget!.recall;
      out.push(`| ${percent(g.selectivity)} | recall ${target} | ${params(r)} | ${fmt(r.expectedRecall, 4)} | ${fmt(r.recall, 4)} | ${r.budgetMet ? 'yes' : 'no'} | ${r.recall < target - 0.01 ? 'yes' : 'no'} | ${fmt(r.mflops, 3)} | ${fmt(r.qps, 0)} |`);
    }
  }
  // the default params' and the budget's plan per filter (the other params' notes differ only in their probes)
  const notes = [...new Set(results.rows.filter((r) => r.selectivity !== undefined && r.note && (r.params.default === true || r.system === 'adanns-budget')).map((r) => `${percent(r.selectivity!)}, ${r.system} ${params(r)}: ${r.note}`))];
  if (notes.length) {
    out.push('');
    out.push('## Plans');
    out.push('');
    for (const note of notes) out.push(`- ${note}`);
  }
  const left = Object.entries(machine.systems).filter(([, info]) => info.note);
  if (left.length) {
    out.push('');
    out.push('## Left out');
    out.push('');
    for (const [system, info] of left) out.push(`- ${system}: ${info.note}`);
  }
  out.push('');
  out.push(`MFLOPs: as each index reports them (modelled, per query); exact-matches is charged matches x D; hnswlib has no cost model (-), and its filter is a JS callback that hnswlib-node calls through N-API for each candidate it visits (part of what its filtered search costs from Node). Rows of the adanns-ivf index: params as searched (default: the plan's defaults), plan: the filtered plan the index took; adanns-budget: what searchWithBudget picked under the filter.`);
  return out.join('\n') + '\n';
}
