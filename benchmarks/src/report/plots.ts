import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { ResultRow } from '../row.js';

/** An SVG scatter-and-line plot of recall against a cost axis (log scale), one colour per system. */
export async function recallPlot(rows: ResultRow[], field: 'mflops' | 'qps', title: string, k: number): Promise<string> {
  const values = rows
    .filter((r) => r[field] !== null && (r[field] as number) > 0)
    .map((r) => ({ system: r.system, recall: r.recall, x: r[field] as number, spec: r.spec }));
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    width: 560,
    height: 360,
    data: { values },
    mark: { type: 'point', filled: true, size: 40 },
    encoding: {
      x: { field: 'x', type: 'quantitative', scale: { type: 'log' }, title: field === 'mflops' ? 'MFLOPs per query (modelled, log scale)' : 'queries per second, one query at a time (log scale)' },
      y: { field: 'recall', type: 'quantitative', title: `recall@${k}`, scale: { zero: false } },
      color: { field: 'system', type: 'nominal' },
      shape: { field: 'system', type: 'nominal' },
    },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}

/** The filtered suite: recall against QPS (log scale), one panel per filter (its selectivity), one colour per system. */
export async function filteredPlot(rows: ResultRow[], title: string, k: number): Promise<string> {
  const values = rows
    .filter((r) => r.selectivity !== undefined && r.qps > 0)
    .map((r) => ({ system: r.system, recall: r.recall, x: r.qps, panel: `${(100 * r.selectivity!).toPrecision(3)}% (${r.filter ?? ''})`, selectivity: r.selectivity! }));
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    data: { values },
    facet: { field: 'panel', type: 'nominal', title: 'selectivity (filter)', sort: { field: 'selectivity', order: 'descending' } },
    columns: 2,
    spec: {
      width: 300,
      height: 220,
      mark: { type: 'point', filled: true, size: 40 },
      encoding: {
        x: { field: 'x', type: 'quantitative', scale: { type: 'log' }, title: 'QPS, one query at a time (log scale)' },
        y: { field: 'recall', type: 'quantitative', title: `recall@${k} (filtered truth)`, scale: { zero: false } },
        color: { field: 'system', type: 'nominal' },
        shape: { field: 'system', type: 'nominal' },
      },
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}
