import embed, { type Result } from 'vega-embed';
import type { TopLevelSpec } from 'vega-lite';
import type { FrontierPoint, SpectrumPoint } from './types.js';

/** Vega views of the page on screen, finalized (timers, listeners) when the page changes. */
const views = new Set<Result>();

export function finalizePlots(): void {
  for (const v of views) v.finalize();
  views.clear();
}

/** Renders a vega-lite spec as SVG (crisp in screenshots; marks countable in tests), without the export menu. */
export async function plot(el: HTMLElement, spec: TopLevelSpec): Promise<void> {
  const result = await embed(el, spec, { actions: false, renderer: 'svg' });
  views.add(result);
}

const isFunnel = (v: unknown): v is { keep: number; dim: number }[] => Array.isArray(v) && v.every((s) => typeof s === 'object' && s !== null && 'keep' in s && 'dim' in s);

/** One param's value: fractions to 3 significant digits, funnel stages as the CLI writes them (keep@dim/...). */
function paramValue(v: unknown): string {
  if (typeof v === 'number') return String(Number.isInteger(v) ? v : Number(v.toPrecision(3)));
  if (isFunnel(v)) return v.map((s) => `${s.keep}@${s.dim}`).join('/');
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** Search params as `name=value, ...`. */
export const paramsText = (p: object): string =>
  Object.entries(p)
    .map(([k, v]) => `${k}=${paramValue(v)}`)
    .join(', ') || 'defaults';

// fit the container's width, axes and legends included
const autosize = { type: 'fit-x', contains: 'padding' } as const;

/** A point drawn over the frontier: where a search's answer landed. */
export interface Landing {
  label: string;
  mflops: number;
  latencyMs: number | null;
  recall: number;
}

/**
 * The calibrated frontier, recall@k against one cost (MFLOPs per query or
 * latency), log scale: the layer named `frontier` has one symbol per
 * plannable point, the layer `answer` one per search drawn on it.
 */
export function frontierSpec(points: FrontierPoint[], k: number | null, cost: 'mflops' | 'latencyMs', landings: Landing[] = []): TopLevelSpec {
  const title = cost === 'mflops' ? 'MFLOPs per query (modelled)' : 'latency per query (ms, calibrated)';
  const rows = points.map((p, i) => ({ i, recall: p.recall, cost: p[cost], params: paramsText(p.params) }));
  const marks = landings.filter((l) => (cost === 'mflops' ? l.mflops > 0 : l.latencyMs !== null && l.latencyMs > 0)).map((l) => ({ label: l.label, recall: l.recall, cost: cost === 'mflops' ? l.mflops : l.latencyMs }));
  const x = { field: 'cost', type: 'quantitative' as const, title, scale: { type: 'log' as const, nice: false } };
  const y = { field: 'recall', type: 'quantitative' as const, title: `recall@${k ?? 'k'}`, scale: { zero: false } };
  // along the MFLOPs frontier recall rises with cost, so a line joins its points; latency (measured) need not follow that order
  const line = cost === 'mflops' ? [{ data: { values: rows }, mark: { type: 'line' as const, color: '#9db4d3' }, encoding: { x, y, order: { field: 'i' } } }] : [];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 'container',
    height: 240,
    autosize,
    layer: [
      ...line,
      {
        name: 'frontier',
        data: { values: rows },
        mark: { type: 'point', filled: true, size: 50, color: '#2b5d9c' },
        encoding: { x, y, tooltip: [{ field: 'params', title: 'params' }, { field: 'recall', format: '.3f' }, { field: 'cost', title, format: '.3~g' }] },
      },
      {
        name: 'answer',
        data: { values: marks },
        mark: { type: 'point', shape: 'diamond', filled: true, size: 160, color: '#d9480f' },
        encoding: { x, y, tooltip: [{ field: 'label' }, { field: 'recall', format: '.3f' }, { field: 'cost', title, format: '.3~g' }] },
      },
      {
        data: { values: marks },
        mark: { type: 'text', dx: 8, dy: -8, align: 'left', color: '#d9480f' },
        encoding: { x, y, text: { field: 'label' } },
      },
    ],
  };
}

/** Share of the variance by prefix: how much a d-dimensional prefix keeps. */
export function spectrumSpec(points: SpectrumPoint[], ladder: number[]): TopLevelSpec {
  const rows = points.map((p) => ({ dim: p.dim, share: p.share, ladder: ladder.includes(p.dim) }));
  const x = { field: 'dim', type: 'quantitative' as const, title: 'prefix d (PCA components)', scale: { domain: [0, Math.max(...points.map((p) => p.dim))], nice: false } };
  const y = { field: 'share', type: 'quantitative' as const, title: 'share of variance', scale: { domain: [0, 1] } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 'container',
    height: 200,
    autosize,
    layer: [
      { data: { values: rows }, mark: { type: 'line', color: '#2b5d9c' }, encoding: { x, y } },
      {
        name: 'ladder',
        data: { values: rows.filter((r) => r.ladder) },
        mark: { type: 'point', filled: true, size: 40, color: '#2b5d9c' },
        encoding: { x, y, tooltip: [{ field: 'dim', title: 'prefix' }, { field: 'share', format: '.1%' }] },
      },
    ],
  };
}

/** Requests per second over time, one line per series. */
export function rateSpec(rows: { t: number; series: string; rate: number }[]): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 'container',
    height: 180,
    autosize,
    data: { values: rows },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 't', type: 'temporal', title: 'time', axis: { format: '%H:%M:%S' } },
      y: { field: 'rate', type: 'quantitative', title: 'requests/s' },
      color: { field: 'series', type: 'nominal', title: null },
    },
  };
}
