import { api } from '../api.js';
import { bytes, fmt, h } from '../dom.js';
import { explainSpec } from '../explain.js';
import type { PageContext } from '../main.js';
import { frontierSpec, paramsText, plot, spectrumSpec } from '../plots.js';
import { href } from './util.js';

/** One collection: the calibrated frontier (recall against MFLOPs and latency), its points, the spec stage by stage, the PCA spectrum. */
export async function collectionPage(ctx: PageContext, name: string): Promise<void> {
  const c = await api().getCollection(name);
  const { index } = c;
  const frontier = c.frontier ?? [];
  ctx.view.append(
    h('h1', null, c.name, ' ', h('a', { href: href(c.name, '/search'), class: 'button' }, 'search playground')),
    h(
      'dl',
      { class: 'facts' },
      ...[
        ['points', c.count.toLocaleString('en')],
        ['dim', `${c.dim} (ladder ${c.dims.join(', ')})`],
        ['metric', c.metric],
        ['index', `${index.state}${index.state === 'building' ? ` ${Math.round((index.progress ?? 0) * 100)}% ${index.stage ?? ''}` : ''}`],
        ['bytes per vector', index.bytes ? bytes(index.bytes.residentPerVector) : '–'],
        ['calibration', index.calibration ? `k = ${index.calibration.ks.join(', ')} on ${index.calibration.queries} ${index.calibration.source ?? ''} queries${index.calibration.complete ? '' : ' (cut short by the time bound)'}` : '–'],
      ].flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]),
    ),
    index.note ? h('p', { class: 'muted' }, index.note) : '',
    index.lastError ? h('p', { class: 'error' }, `last error: ${index.lastError}`) : '',
  );

  ctx.view.append(h('h2', null, 'Frontier'));
  if (frontier.length === 0) {
    ctx.view.append(h('p', { class: 'muted', id: 'no-frontier' }, index.state === 'building' ? 'The index is building; the frontier appears once it is calibrated.' : 'No calibrated index: searches are exact. Build an index to see its recall/compute frontier.'));
  } else {
    const byMflops = h('div', { id: 'plot-mflops', class: 'plot' });
    const byLatency = h('div', { id: 'plot-latency', class: 'plot' });
    ctx.view.append(
      h('p', { class: 'muted' }, `Each point is a set of search params the planner can choose (the calibration's Pareto front at k = ${c.frontierK ?? '?'}); a budget picks one per request.`),
      h('div', { class: 'plots' }, byMflops, byLatency),
      h(
        'table',
        { id: 'frontier-points' },
        h('thead', null, h('tr', null, ...['params', `recall@${c.frontierK ?? 'k'}`, 'MFLOPs/query', 'latency ms'].map((t) => h('th', null, t)))),
        h('tbody', null, ...frontier.map((p) => h('tr', null, h('td', null, h('code', null, paramsText(p.params))), h('td', { class: 'num' }, fmt(p.recall)), h('td', { class: 'num' }, fmt(p.mflops)), h('td', { class: 'num' }, fmt(p.latencyMs))))),
      ),
    );
    await Promise.all([plot(byMflops, frontierSpec(frontier, c.frontierK ?? null, 'mflops')), plot(byLatency, frontierSpec(frontier, c.frontierK ?? null, 'latencyMs'))]);
  }

  ctx.view.append(h('h2', null, 'Index spec'));
  if (c.specParts) {
    ctx.view.append(
      h('p', null, h('code', null, index.spec ?? '')),
      h('ol', { id: 'spec-stages', class: 'stages' }, ...explainSpec(c.specParts, c.dim).map((s) => h('li', null, h('strong', null, s.stage), ': ', s.what))),
      index.specReason ? h('p', { class: 'muted' }, `auto chose it: ${index.specReason}`) : '',
    );
  } else {
    ctx.view.append(h('p', { class: 'muted' }, 'No index trained yet.'));
  }

  ctx.view.append(h('h2', null, 'PCA spectrum'));
  if (c.spectrum && c.spectrum.length > 0) {
    const el = h('div', { id: 'plot-spectrum', class: 'plot wide' });
    const half = c.spectrum.find((p) => p.share >= 0.5);
    ctx.view.append(h('p', { class: 'muted' }, `Share of the variance kept by each prefix of the PCA space${half ? `; the first ${half.dim} of ${c.dim} components hold half of it` : ''}. Points mark the prefix ladder.`), el);
    await plot(el, spectrumSpec(c.spectrum, c.dims));
  } else {
    ctx.view.append(h('p', { class: 'muted' }, c.specParts ? 'This index has no PCA stage: it scans the vectors’ own prefixes.' : 'No index trained yet.'));
  }
}
