import type { ResultRow, Results } from '../row.js';

/** Rows of one system that no other row of it beats on both recall and cost (cost: lower is better). */
export function paretoFront(rows: ResultRow[], cost: (r: ResultRow) => number | null): ResultRow[] {
  const usable = rows.filter((r) => cost(r) !== null).sort((a, b) => cost(a)! - cost(b)! || b.recall - a.recall);
  const front: ResultRow[] = [];
  let best = -Infinity;
  for (const r of usable) {
    if (r.recall > best) {
      front.push(r);
      best = r.recall;
    }
  }
  return front;
}

const mflopsCost = (r: ResultRow) => r.mflops;
const qpsCost = (r: ResultRow) => -r.qps;

/**
 * Per system at a recall target, read off that system's Pareto frontiers: the
 * frontier point with the fewest modelled MFLOPs and the one with the most QPS
 * among those that reach the target. A row another row beats or matches on
 * both recall and cost is never picked (ties on cost go to the higher recall).
 */
export function atRecall(rows: ResultRow[], target: number): Array<{ system: string; mflops: ResultRow | undefined; qps: ResultRow | undefined }> {
  const systems = [...new Set(rows.map((r) => r.system))];
  return systems.map((system) => {
    const mine = rows.filter((r) => r.system === system);
    // a frontier is sorted by rising cost and rising recall: the first point at the target is the cheapest
    const first = (cost: (r: ResultRow) => number | null) => paretoFront(mine, cost).find((r) => r.recall >= target);
    return { system, mflops: first(mflopsCost), qps: first(qpsCost) };
  });
}

const fmt = (v: number | null | undefined, digits = 3) => (v === null || v === undefined ? '-' : v.toFixed(digits));
// fractional params (a probe margin) to 3 significant digits, structured ones (a funnel) as JSON
const paramValue = (v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(3) : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));
/** A row's params as `key=value` pairs joined by `sep`. */
export const formatParams = (p: Record<string, unknown>, sep = ' ') => Object.entries(p).map(([k, v]) => `${k}=${paramValue(v)}`).join(sep);
const params = (r: ResultRow) => formatParams(r.params);

const TARGETS = [0.9, 0.95];

export function summaryMarkdown(results: Results): string {
  const { dataset, machine, rows } = results;
  const k = rows[0]?.k ?? 10;
  const systems = [...new Set(rows.map((r) => r.system))];
  const threadsOf = (system: string) => machine.systems[system]?.threads;
  const out: string[] = [];
  out.push(`# Benchmark summary: ${dataset.name}`);
  out.push('');
  out.push(`${dataset.n} base vectors of dimension ${dataset.dim}, ${dataset.queries} queries, ${dataset.metric}; ${machine.cpus} CPUs, Node ${machine.node}, backend ${machine.backend}, --threads ${machine.threads}. Every speed is the median of ${machine.passes} timed passes.`);
  out.push(`Command: \`${results.command}\``);
  out.push('');
  out.push('## How each system ran');
  out.push('');
  out.push('| system | threads | version | compile options | thread variables |');
  out.push('|---|---|---|---|---|');
  for (const system of systems) {
    const info = machine.systems[system];
    const env = info?.env ? Object.entries(info.env).map(([key, v]) => `${key}=${v}`).join(' ') : '-';
    out.push(`| ${system} | ${info?.threads ?? '?'} | ${info?.version ?? '-'} | ${info?.compileOptions ?? '-'} | ${env} |`);
  }
  out.push('');
  const at = TARGETS.map((t) => atRecall(rows, t));
  const pick = (r: ResultRow | undefined, value: string) => (r ? [value, fmt(r.recall, 4), `\`${r.spec}\` ${params(r)}`] : ['not reached', '-', '-']);
  out.push(`## Best QPS at recall@${k} (queries one at a time, on each system's recall-QPS Pareto frontier)`);
  out.push('');
  out.push(`| system | threads | ${TARGETS.map((t) => `QPS at >= ${t} | recall | spec and params`).join(' | ')} |`);
  out.push(`|---|---|${TARGETS.map(() => '---|---|---|').join('')}`);
  systems.forEach((system, i) => {
    const cells = at.flatMap((a) => pick(a[i].qps, fmt(a[i].qps?.qps, 0)));
    out.push(`| ${system} | ${threadsOf(system) ?? '?'} | ${cells.join(' | ')} |`);
  });
  out.push('');
  out.push(`## Cheapest modelled MFLOPs/query at recall@${k} (on each system's recall-MFLOPs Pareto frontier)`);
  out.push('');
  out.push(`| system | ${TARGETS.map((t) => `MFLOPs at >= ${t} | recall | spec and params`).join(' | ')} |`);
  out.push(`|---|${TARGETS.map(() => '---|---|---|').join('')}`);
  systems.forEach((system, i) => {
    if (rows.every((r) => r.system !== system || r.mflops === null)) return; // no cost model (HNSW)
    const cells = at.flatMap((a) => pick(a[i].mflops, fmt(a[i].mflops?.mflops, 4)));
    out.push(`| ${system} | ${cells.join(' | ')} |`);
  });
  out.push('');
  const budgetRows = rows.filter((r) => r.budget);
  if (budgetRows.length) {
    out.push('## Budgets: requested against achieved');
    out.push('');
    out.push(`| budget | params chosen | met | expected recall@${k} | achieved recall@${k} | achieved MFLOPs/query | QPS (one at a time) | p50 ms |`);
    out.push('|---|---|---|---|---|---|---|---|');
    for (const r of budgetRows) {
      const budget = Object.entries(r.budget!).map(([key, v]) => `${key}=${v}`).join(' ');
      out.push(`| ${budget} | ${params(r)} | ${r.budgetMet ? 'yes' : 'no'} | ${fmt(r.expectedRecall, 4)} | ${fmt(r.recall, 4)} | ${fmt(r.mflops, 4)} | ${fmt(r.qps, 0)} | ${fmt(r.p50Ms)} |`);
    }
    out.push('');
  }
  out.push('## Pareto points per system');
  out.push('');
  out.push(`| system | spec | params | recall@${k} | top-1 | mAP@${k} | MFLOPs/query | QPS (one at a time) | batched QPS | p50 ms | p99 ms | build s | index MB |`);
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const system of systems) {
    const mine = rows.filter((r) => r.system === system);
    const front = new Set([...paretoFront(mine, mflopsCost), ...paretoFront(mine, qpsCost)]);
    for (const r of mine.filter((row) => front.has(row))) {
      out.push(`| ${system} | \`${r.spec}\` | ${params(r)} | ${fmt(r.recall, 4)} | ${fmt(r.top1, 4)} | ${fmt(r.map, 4)} | ${fmt(r.mflops, 4)} | ${fmt(r.qps, 0)} | ${fmt(r.batchQps, 0)} | ${fmt(r.p50Ms)} | ${fmt(r.p99Ms)} | ${fmt(r.buildSeconds, 1)} | ${fmt(r.indexBytes / 1e6, 1)} |`);
    }
  }
  const notes = rows.filter((r) => r.note);
  if (notes.length) {
    out.push('');
    out.push('## Notes');
    out.push('');
    for (const note of [...new Set(notes.map((r) => `${r.system}: ${r.note}`))]) out.push(`- ${note}`);
  }
  out.push('');
  out.push(`MFLOPs are modelled per query (one multiply-add = 1 FLOP, real probed list sizes); HNSW has no such model (-). QPS, batched QPS, p50 and p99 are medians over ${machine.passes} timed passes, each system on the threads listed above. Peak RSS is the measuring process's peak so far when the row's quality was measured, every index built before it still alive (compare it within a system).`);
  return out.join('\n') + '\n';
}
