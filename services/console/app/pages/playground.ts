import type { Budget, CollectionInfo, PointId, SearchRequest, SearchResponse } from '@adanns/client';
import { api } from '../api.js';
import { fmt, h } from '../dom.js';
import type { PageContext } from '../main.js';
import { frontierSpec, paramsText, plot, type Landing } from '../plots.js';
import type { FrontierPoint } from '../types.js';
import { href } from './util.js';

type Kind = 'mflops' | 'latencyMs' | 'recall' | 'params' | 'defaults';

/** The range a budget slider spans: the frontier's, widened a little; log scale for costs. */
function sliderRange(frontier: FrontierPoint[], kind: 'mflops' | 'latencyMs' | 'recall'): { lo: number; hi: number; log: boolean } {
  const values = frontier.map((p) => p[kind]).filter((v) => v > 0);
  if (kind === 'recall') return { lo: Math.max(0.01, Math.min(...values, 0.5) - 0.05), hi: 1, log: false };
  if (values.length === 0) return { lo: kind === 'mflops' ? 0.001 : 0.01, hi: kind === 'mflops' ? 100 : 1000, log: true };
  return { lo: Math.min(...values) / 1.5, hi: Math.max(...values) * 1.5, log: true };
}

const STEPS = 1000;

/** One budget: its kind, a slider over the frontier's range (or explicit params as JSON), and the value it stands for. */
class BudgetControl {
  readonly el: HTMLElement;
  private readonly kind: HTMLSelectElement;
  private readonly slider: HTMLInputElement;
  private readonly readout: HTMLSpanElement;
  private readonly params: HTMLTextAreaElement;

  constructor(
    readonly label: string,
    private readonly frontier: FrontierPoint[],
    initial: { kind: Kind; at: number },
  ) {
    this.kind = h('select', { 'data-role': 'kind', onchange: () => this.sync() }, ...(['mflops', 'latencyMs', 'recall', 'params', 'defaults'] as const).map((k) => h('option', { value: k, selected: k === initial.kind }, k === 'mflops' ? 'MFLOPs per query' : k === 'latencyMs' ? 'latency (ms)' : k === 'recall' ? 'recall' : k === 'params' ? 'explicit params' : 'index defaults')));
    this.slider = h('input', { type: 'range', min: 0, max: STEPS, value: String(Math.round(initial.at * STEPS)), 'data-role': 'slider', oninput: () => this.sync() });
    this.readout = h('span', { class: 'readout', 'data-role': 'value' });
    this.params = h('textarea', { rows: 2, cols: 40, 'data-role': 'params', placeholder: '{"nprobe": 4, "scanDim": 16}' });
    this.el = h('div', { class: 'budget', 'data-budget': label }, h('strong', null, `Budget ${label} `), this.kind, ' ', this.slider, ' ', this.readout, this.params);
    this.sync();
  }

  private value(kind: 'mflops' | 'latencyMs' | 'recall'): number {
    const { lo, hi, log } = sliderRange(this.frontier, kind);
    const t = Number(this.slider.value) / STEPS;
    const v = log ? lo * (hi / lo) ** t : lo + (hi - lo) * t;
    return Number(v.toPrecision(3));
  }

  private sync(): void {
    const kind = this.kind.value as Kind;
    const sliding = kind === 'mflops' || kind === 'latencyMs' || kind === 'recall';
    this.slider.hidden = !sliding;
    this.params.hidden = kind !== 'params';
    this.readout.textContent = sliding ? `${kind === 'recall' ? 'recall ≥' : '≤'} ${this.value(kind)}${kind === 'latencyMs' ? ' ms' : kind === 'mflops' ? ' MFLOPs' : ''}` : '';
  }

  /** The request's budget or params (nothing for the index defaults). */
  request(): Pick<SearchRequest, 'budget' | 'params'> {
    const kind = this.kind.value as Kind;
    if (kind === 'defaults') return {};
    if (kind === 'params') {
      const text = this.params.value.trim();
      if (text === '') return {};
      let params: unknown;
      try {
        params = JSON.parse(text);
      } catch (e) {
        throw new Error(`params of budget ${this.label} are not JSON: ${(e as Error).message}`);
      }
      return { params: params as SearchRequest['params'] };
    }
    return { budget: { [kind]: this.value(kind) } as Budget };
  }
}

function parseId(text: string): PointId {
  const t = text.trim();
  if (t === '') throw new Error('give the id of a stored point, or choose "vector" and paste one');
  return /^[0-9]+$/.test(t) ? Number(t) : t;
}

function parseVector(text: string, dim: number): number[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`the vector is not JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw new Error('the vector must be a JSON array of numbers');
  if (v.length !== dim) throw new Error(`the vector has ${v.length} values, the collection's dimension is ${dim}`);
  return v as number[];
}

/** The answer: plan chosen, predicted against measured cost, and the hits. */
function answerView(label: string, r: SearchResponse): HTMLElement {
  const hits = r.results[0] ?? [];
  const p = r.planned;
  return h(
    'section',
    { class: 'answer', id: `answer-${label}` },
    h('h3', null, `Answer ${label}`),
    h(
      'table',
      { class: 'plan' },
      h('tr', null, h('th', null, 'params chosen'), h('td', { colspan: 2 }, h('code', null, r.params ? paramsText(r.params) : 'exact search'))),
      h('tr', null, h('th', null, ''), h('th', null, 'predicted'), h('th', null, 'measured')),
      h('tr', null, h('th', null, 'MFLOPs/query'), h('td', { class: 'num' }, fmt(p?.mflops)), h('td', { class: 'num', 'data-role': 'mflops' }, fmt(r.mflops))),
      h('tr', null, h('th', null, `recall${p?.k ? `@${p.k}` : ''}`), h('td', { class: 'num' }, fmt(p?.recall ?? r.expectedRecall)), h('td', { class: 'num' }, 'n/a (no ground truth)')),
      h('tr', null, h('th', null, 'latency ms'), h('td', { class: 'num' }, fmt(p?.latencyMs)), h('td', { class: 'num' }, fmt(r.tookMs))),
      h('tr', null, h('th', null, 'budget met'), h('td', { colspan: 2 }, r.budgetMet === null ? 'no budget' : r.budgetMet ? 'yes' : 'no')),
    ),
    r.note ? h('p', { class: 'muted' }, r.note) : '',
    h(
      'table',
      { class: 'results', id: `results-${label}` },
      h('thead', null, h('tr', null, h('th', null, '#'), h('th', null, 'id'), h('th', null, 'score'), h('th', null, 'payload'))),
      h('tbody', null, ...hits.map((hit, i) => h('tr', { 'data-id': JSON.stringify(hit.id) }, h('td', { class: 'num' }, i + 1), h('td', null, String(hit.id)), h('td', { class: 'num' }, fmt(hit.score, 4)), h('td', null, hit.payload ? h('code', null, JSON.stringify(hit.payload)) : '')))),
    ),
  );
}

/** Search a collection with a budget (or two, side by side) and see where each answer lands on the frontier. */
export async function playgroundPage(ctx: PageContext, name: string): Promise<void> {
  const c: CollectionInfo = await api().getCollection(name);
  const frontier = c.frontier ?? [];
  const source = h('select', { id: 'query-source' }, h('option', { value: 'id' }, 'stored point'), h('option', { value: 'vector' }, 'vector (JSON)'));
  const idInput = h('input', { id: 'query-id', placeholder: 'point id' });
  const vectorInput = h('textarea', { id: 'query-vector', rows: 3, cols: 60, placeholder: `[${Array.from({ length: Math.min(c.dim, 4) }, () => '0.1').join(', ')}${c.dim > 4 ? ', ...' : ''}] (${c.dim} numbers)`, hidden: true });
  source.addEventListener('change', () => {
    idInput.hidden = source.value !== 'id';
    vectorInput.hidden = source.value !== 'vector';
  });
  const k = h('input', { id: 'k', type: 'number', min: 1, value: '10', size: 4 });
  const filter = h('textarea', { id: 'filter', rows: 2, cols: 60, placeholder: '{"must": [{"key": "lang", "match": {"value": "en"}}]} (optional, Qdrant-like)' });
  const withPayload = h('input', { id: 'with-payload', type: 'checkbox', checked: true });
  const a = new BudgetControl('A', frontier, { kind: frontier.length > 0 ? 'recall' : 'defaults', at: 0.8 });
  const b = new BudgetControl('B', frontier, { kind: frontier.length > 0 ? 'mflops' : 'defaults', at: 0.2 });
  const compare = h('input', { id: 'compare', type: 'checkbox', onchange: () => (b.el.hidden = !compare.checked) });
  b.el.hidden = true;
  const out = h('div', { id: 'answers', class: 'answers' });
  const overlap = h('p', { id: 'overlap' });
  const plots = h('div', { class: 'plots' }, h('div', { id: 'plot-answer-mflops', class: 'plot' }), h('div', { id: 'plot-answer-latency', class: 'plot' }));

  const run = async () => {
    ctx.clear();
    const vector = source.value === 'id' ? (await api().getPoint(name, parseId(idInput.value)))?.vector : parseVector(vectorInput.value, c.dim);
    if (!vector) throw new Error(`no point ${idInput.value.trim()} in ${name}`);
    let filterValue: unknown;
    if (filter.value.trim() !== '') {
      try {
        filterValue = JSON.parse(filter.value);
      } catch (e) {
        throw new Error(`the filter is not JSON: ${(e as Error).message}`);
      }
    }
    const sides = compare.checked ? [a, b] : [a];
    const base = { k: Number(k.value), withPayload: withPayload.checked, ...(filterValue !== undefined ? { filter: filterValue as SearchRequest['filter'] } : {}) };
    const answers: SearchResponse[] = [];
    // one after the other: their measured latencies do not share the machine
    for (const side of sides) answers.push(await api().search(name, vector, { ...base, ...side.request() }));
    out.replaceChildren(...answers.map((r, i) => answerView(sides[i].label, r)));
    if (answers.length === 2) {
      const [x, y] = answers.map((r) => (r.results[0] ?? []).map((hit) => JSON.stringify(hit.id)));
      const shared = x.filter((id) => y.includes(id)).length;
      overlap.textContent = `Overlap of A and B: ${shared} of ${Math.max(x.length, y.length)} results (${fmt((100 * shared) / Math.max(1, x.length, y.length))}%)`;
    } else overlap.textContent = '';
    if (frontier.length > 0) {
      // an answer whose recall is not known (a filtered plan the calibration cannot speak for) is not drawn on the frontier
      const landings: Landing[] = answers.flatMap((r, i) => {
        const recall = r.planned ? r.planned.recall : r.expectedRecall;
        return recall === null || recall === undefined ? [] : [{ label: sides[i].label, mflops: r.mflops, latencyMs: r.tookMs, recall }];
      });
      plots.replaceChildren(h('div', { id: 'plot-answer-mflops', class: 'plot' }), h('div', { id: 'plot-answer-latency', class: 'plot' }));
      await Promise.all([plot(plots.children[0] as HTMLElement, frontierSpec(frontier, c.frontierK ?? null, 'mflops', landings)), plot(plots.children[1] as HTMLElement, frontierSpec(frontier, c.frontierK ?? null, 'latencyMs', landings))]);
    }
  };

  ctx.view.append(
    h('h1', null, `Search ${c.name} `, h('a', { href: href(c.name), class: 'button' }, 'collection')),
    h(
      'form',
      {
        id: 'search-form',
        class: 'stack',
        onsubmit: (event: Event) => {
          event.preventDefault();
          run().catch(ctx.fail);
        },
      },
      h('div', null, h('strong', null, 'Query '), source, ' ', idInput, vectorInput, ' ', h('label', null, 'k ', k), ' ', h('label', null, withPayload, ' payloads')),
      a.el,
      h('div', null, h('label', null, compare, ' compare with a second budget')),
      b.el,
      h('div', null, h('strong', null, 'Filter '), filter),
      h('div', null, h('button', { type: 'submit', id: 'run' }, 'search')),
    ),
    frontier.length === 0
      ? h('p', { class: 'muted' }, 'No calibrated index: searches are exact and budgets cannot be planned yet.')
      : h('p', { class: 'muted' }, 'Each answer is drawn on the frontier at its measured MFLOPs per query and at its measured time (tookMs: the whole search, so above the calibrated single-query latency of the frontier), at the recall its plan predicts.'),
    overlap,
    plots,
    out,
  );
}
