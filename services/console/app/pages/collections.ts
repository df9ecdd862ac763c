import type { CollectionInfo, IndexStats } from '@adanns/client';
import { api } from '../api.js';
import { bytes, h } from '../dom.js';
import type { PageContext } from '../main.js';
import { href, poll } from './util.js';

type Entry = CollectionInfo | { name: string; error: string };

/** The index state, with a live progress bar while a build runs (progress within the build's current stage). */
function stateCell(index: IndexStats, name: string): HTMLElement {
  if (index.state === 'building') {
    const pct = Math.round((index.progress ?? 0) * 100);
    return h(
      'div',
      { class: 'building' },
      h('progress', { class: 'build-progress', 'data-collection': name, 'data-stage': index.stage ?? '', max: 1, value: index.progress ?? 0 }),
      h('span', { class: 'stage' }, ` ${pct}% ${index.stage ?? ''}`),
    );
  }
  return h('span', { class: `state state-${index.state}`, title: index.note ?? '' }, index.state, index.note ? h('small', null, ` (${index.note})`) : null);
}

function row(c: Entry, ctx: PageContext, refresh: () => Promise<void>): HTMLTableRowElement {
  if ('error' in c) return h('tr', { 'data-collection': c.name }, h('td', null, c.name), h('td', { colspan: 8, class: 'error' }, c.error));
  const { index } = c;
  const act = (what: string, run: () => Promise<unknown>) =>
    h('button', {
      type: 'button',
      'data-action': what,
      onclick: async () => {
        try {
          ctx.clear();
          await run();
          await refresh();
        } catch (e) {
          ctx.fail(e);
        }
      },
    }, what);
  return h(
    'tr',
    { 'data-collection': c.name, 'data-state': index.state },
    h('td', null, h('a', { href: href(c.name) }, c.name)),
    h('td', { class: 'num' }, c.count.toLocaleString('en')),
    h('td', { class: 'num' }, c.dim),
    h('td', null, c.metric),
    h('td', null, h('code', null, index.spec ?? '–')),
    h('td', null, stateCell(index, c.name)),
    h('td', { class: 'num' }, index.bytes ? bytes(index.bytes.residentPerVector) : '–'),
    h('td', { class: 'error' }, index.lastError ?? index.calibration?.lastError ?? ''),
    h(
      'td',
      { class: 'actions' },
      act(index.state === 'ready' ? 'rebuild' : 'build', () => api().buildIndex(c.name)),
      h('a', { href: href(c.name, '/search'), class: 'button' }, 'search'),
      act('drop', async () => {
        if (confirm(`Drop collection ${c.name} and all its points?`)) await api().dropCollection(c.name);
      }),
    ),
  );
}

function createForm(ctx: PageContext, refresh: () => Promise<void>): HTMLFormElement {
  const name = h('input', { name: 'name', required: true, pattern: '[A-Za-z0-9][A-Za-z0-9_\\-]{0,63}', placeholder: 'name' });
  const dim = h('input', { name: 'dim', type: 'number', min: 1, max: 65536, required: true, placeholder: 'dim' });
  const metric = h('select', { name: 'metric' }, h('option', null, 'cosine'), h('option', null, 'ip'), h('option', null, 'l2'));
  const spec = h('input', { name: 'index', placeholder: 'index spec (auto)', size: 30 });
  return h(
    'form',
    {
      id: 'create-form',
      class: 'inline',
      onsubmit: async (event: Event) => {
        event.preventDefault();
        try {
          ctx.clear();
          await api().createCollection(name.value, { dim: Number(dim.value), metric: metric.value as 'cosine' | 'ip' | 'l2', ...(spec.value.trim() ? { index: spec.value.trim() } : {}) });
          name.value = '';
          await refresh();
        } catch (e) {
          ctx.fail(e);
        }
      },
    },
    h('strong', null, 'New collection '),
    name,
    dim,
    metric,
    spec,
    h('button', { type: 'submit' }, 'create'),
    h('small', null, ' (admin key)'),
  );
}

/** Every collection: size, shape, index state (a progress bar during builds), bytes per vector, last error; create, build, drop. */
export async function collectionsPage(ctx: PageContext): Promise<void> {
  const body = h('tbody');
  const table = h(
    'table',
    { id: 'collections' },
    h('thead', null, h('tr', null, ...['name', 'points', 'dim', 'metric', 'index spec', 'index', 'bytes/vector', 'last error', ''].map((t) => h('th', null, t)))),
    body,
  );
  const empty = h('p', { class: 'muted', hidden: true }, 'No collections yet.');
  let building = false;
  const refresh = async () => {
    const list: Entry[] = await api().listCollections();
    ctx.clear();
    building = list.some((c) => 'index' in c && c.index.state === 'building');
    body.replaceChildren(...list.map((c) => row(c, ctx, refresh)));
    empty.hidden = list.length > 0;
  };
  ctx.view.append(h('h1', null, 'Collections'), table, empty, createForm(ctx, refresh));
  // every 250 ms while a build runs, so the bar moves, otherwise every 2 s; checked every 250 ms so that a
  // build started from this page (its action refreshes, which sets `building`) is followed at once
  let lastRefresh = 0;
  const tick = async () => {
    if (!building && Date.now() - lastRefresh < 2000) return;
    lastRefresh = Date.now();
    await refresh();
  };
  poll(ctx.signal, tick, () => 250, ctx.fail);
}
