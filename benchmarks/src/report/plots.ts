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
