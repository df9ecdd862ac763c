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

/** Per system at a recall target: the cheapest modelled MFLOPs and the best single-thread QPS among rows that reach it. */
export function atRecall(rows: ResultRow[], target: number): Array<{ system: string; mflops: ResultRow | undefined; qps: ResultRow | undefined }> {
  const systems = [...new Set(rows.map((r) => r.system))];
  return systems.map((system) => {
    const ok = rows.filter((r) => r.system === system && r.recall >= target);
    const withCost = ok.filter((r) => r.mflops !== null);
    return {
      system,
      mflops: withCost.sort((a, b) => a.mflops! - b.mflops!)[0],
      qps: [...ok].sort((a, b) => b.qps - a.qps)[0],
    };
  });
}

const fmt = (v: number | null | undefined, digits = 3) => (v === null || v === undefined ? '-' : v.toFixed(digits));
const params = (r: ResultRow) => Object.entries(r.params).map(([k, v]) => `${k}=${v}`).join(' ');

export function summaryMarkdown(results: Results): string {
  const { dataset, machine, rows } = results;
  const k = rows[0]?.k ?? 10;
  const out: string[] = [];
  out.push(`# Benchmark summary: ${dataset.name}`);
  out.push('');
  out.push(`${dataset.n} base vectors of dimension ${dataset.dim}, ${dataset.queries} queries, ${dataset.metric}; ${machine.cpus} CPUs, Node ${machine.node}, backend ${machine.backend}, ${machine.threads} thread(s).`);
  out.push(`Command: \`${results.command}\``);
  out.push('');
  for (const target of [0.9, 0.95]) {
    out.push(`## At recall@${k} >= ${target}`);
    out.push('');
    out.push('| system | cheapest MFLOPs/query | its spec and params | best single-thread QPS | its spec and params | its recall |');
    out.push('|---|---|---|---|---|---|');
    for (const { system, mflops, qps } of atRecall(rows, target)) {
      out.push(`| ${system} | ${mflops ? fmt(mflops.mflops, 4) : 'not reached'} | ${mflops ? `\`${mflops.spec}\` ${params(mflops)}` : '-'} | ${qps ? fmt(qps.qps, 0) : 'not reached'} | ${qps ? `\`${qps.spec}\` ${params(qps)}` : '-'} | ${qps ? fmt(qps.recall, 4) : '-'} |`);
    }
    out.push('');
  }
  const budgetRows = rows.filter((r) => r.budget);
  if (budgetRows.length) {
    out.push('## Budgets: requested against achieved');
    out.push('');
    out.push(`| budget | params chosen | met | expected recall@${k} | achieved recall@${k} | achieved MFLOPs/query | QPS (1 thread) | p50 ms |`);
    out.push('|---|---|---|---|---|---|---|---|');
    for (const r of budgetRows) {
      const budget = Object.entries(r.budget!).map(([key, v]) => `${key}=${v}`).join(' ');
      out.push(`| ${budget} | ${params(r)} | ${r.budgetMet ? 'yes' : 'no'} | ${fmt(r.expectedRecall, 4)} | ${fmt(r.recall, 4)} | ${fmt(r.mflops, 4)} | ${fmt(r.qps, 0)} | ${fmt(r.p50Ms)} |`);
    }
    out.push('');
  }
  out.push('## Pareto points per system');
  out.push('');
  out.push(`| system | spec | params | recall@${k} | top-1 | mAP@${k} | MFLOPs/query | QPS (1 thread) | batched QPS | p50 ms | p99 ms | build s | index MB |`);
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  const systems = [...new Set(rows.map((r) => r.system))];
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
  out.push('MFLOPs are modelled per query (one multiply-add = 1 FLOP, real probed list sizes); HNSW has no such model (-). Peak RSS is the measuring process\'s peak so far.');
  return out.join('\n') + '\n';
}
