import { describeError, session } from './api.js';
import { finalizePlots } from './plots.js';
import { collectionsPage } from './pages/collections.js';
import { collectionPage } from './pages/collection.js';
import { playgroundPage } from './pages/playground.js';
import { metricsPage } from './pages/metrics.js';

/** What a page gets: where to draw, and the banner for errors. */
export interface PageContext {
  view: HTMLElement;
  /** Shows what went wrong above the page (a wrong key says so in words). */
  fail(e: unknown): void;
  clear(): void;
  /** Set once the page is left: polling loops stop. */
  signal: AbortSignal;
}
export type Page = (ctx: PageContext, ...args: string[]) => Promise<void> | void;

const routes: [RegExp, Page, string][] = [
  [/^#?\/?(?:collections)?$/, collectionsPage, 'collections'],
  [/^#\/c\/([^/]+)$/, collectionPage, 'collections'],
  [/^#\/c\/([^/]+)\/search$/, playgroundPage, 'collections'],
  [/^#\/metrics$/, metricsPage, 'metrics'],
];

const view = document.getElementById('view')!;
const banner = document.getElementById('banner')!;
let leave: AbortController | undefined;

function fail(e: unknown): void {
  banner.textContent = describeError(e);
  banner.hidden = false;
}
function clear(): void {
  banner.hidden = true;
  banner.textContent = '';
}

async function render(): Promise<void> {
  leave?.abort();
  finalizePlots();
  clear();
  view.replaceChildren();
  leave = new AbortController();
  const hash = location.hash || '#/collections';
  for (const [pattern, page, nav] of routes) {
    const m = pattern.exec(hash);
    if (!m) continue;
    for (const a of document.querySelectorAll<HTMLAnchorElement>('[data-nav]')) a.classList.toggle('active', a.dataset.nav === nav);
    try {
      await page({ view, fail, clear, signal: leave.signal }, ...m.slice(1).map(decodeURIComponent));
    } catch (e) {
      fail(e);
    }
    return;
  }
  fail(new Error(`no page at ${hash}`));
}

function showKeyState(): void {
  document.getElementById('key-state')!.textContent = session.key() ? 'key set (this session only)' : 'no key';
}

document.getElementById('key-form')!.addEventListener('submit', (event) => {
  event.preventDefault();
  const input = document.getElementById('key-input') as HTMLInputElement;
  if (input.value.trim() === '') return;
  session.setKey(input.value.trim());
  input.value = '';
  showKeyState();
  void render();
});
document.getElementById('key-forget')!.addEventListener('click', () => {
  session.forget();
  showKeyState();
  void render();
});
window.addEventListener('hashchange', () => void render());
showKeyState();
void render();
