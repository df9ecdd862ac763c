import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SearchRequest } from '@adanns/client';
import { bundleConsole } from '../scripts/bundle.mjs';
import { ADMIN_KEY, chromiumProblem, launch, openPage, seed, startService, type Service, type Watch } from '../scripts/harness.js';

// The console in a real browser (Debian's chromium through puppeteer-core)
// against a real service on a loopback port. Without chromium this fails,
// saying how to install it; ADANNS_SKIP_BROWSER_TESTS=1 skips it instead
// (a machine without the browser, on purpose; .ci/run installs it).
// Screenshots of each page go to services/console/test-artifacts/ (git-ignored).

const problem = chromiumProblem();
const skip = problem !== null && process.env.ADANNS_SKIP_BROWSER_TESTS === '1';
if (skip) console.warn(`console browser tests skipped (ADANNS_SKIP_BROWSER_TESTS=1): ${problem}`);

const ARTEFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const DIM = 32;

describe.skipIf(skip)('the web console in chromium', () => {
  let service: Service;
  let browser: Browser;
  const opened: Watch[] = [];

  beforeAll(async () => {
    if (problem) throw new Error(`the console's browser tests need chromium: ${problem}; ADANNS_SKIP_BROWSER_TESTS=1 skips them`);
    mkdirSync(ARTEFACTS, { recursive: true });
    // the bundle of the sources as they are (what npm run build writes)
    await bundleConsole();
    service = await startService();
    await seed(service, 'docs', 400, DIM);
    browser = await launch();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await service?.stop();
  });

  const open = async (hash: string, key: string | null = ADMIN_KEY): Promise<{ page: Page; watch: Watch }> => {
    const o = await openPage(browser, service.url, key);
    opened.push(o.watch);
    await o.page.goto(`${service.url}/console/${hash}`, { waitUntil: 'load' });
    return o;
  };
  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTEFACTS, `${name}.png`), fullPage: true });
  const clean = (watch: Watch) => {
    expect(watch.errors).toEqual([]);
    expect(watch.offline).toEqual([]);
  };

  it('serves the console at /console (a redirect to /console/) without a key, and the API still needs one', async () => {
    const redirect = await fetch(`${service.url}/console`, { redirect: 'manual' });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe('/console/');
    const index = await fetch(`${service.url}/console/`);
    expect(index.status).toBe(200);
    expect(await index.text()).toContain('console.js');
    expect((await fetch(`${service.url}/v1/collections`)).status).toBe(401);
  });

  it('lists the collections with their index state and bytes per vector', async () => {
    const { page, watch } = await open('#/collections');
    const row = await page.waitForSelector('tr[data-collection="docs"][data-state="ready"]');
    const text = await row!.evaluate((el) => el.textContent ?? '');
    const info = await service.admin.getCollection('docs');
    expect(text).toContain('400');
    expect(text).toContain(info.index.spec!);
    expect(text).toContain(`${info.index.bytes!.residentPerVector} B`);
    await shot(page, 'collections');
    clean(watch);
    await page.close();
  });

  it('plots the frontier (one mark per plannable point, against MFLOPs and latency), the spec by stage and the PCA spectrum', async () => {
    const info = await service.admin.getCollection('docs');
    const frontier = info.frontier!;
    expect(frontier.length).toBeGreaterThan(1);
    const { page, watch } = await open('#/c/docs');
    await page.waitForSelector('#plot-spectrum svg g.ladder_marks path');
    for (const id of ['plot-mflops', 'plot-latency']) expect(await page.$$eval(`#${id} svg g.frontier_marks path`, (els) => els.length)).toBe(frontier.length);
    expect(await page.$$eval('#frontier-points tbody tr', (els) => els.length)).toBe(frontier.length);
    // one mark per prefix of the ladder
    expect(await page.$$eval('#plot-spectrum svg g.ladder_marks path', (els) => els.length)).toBe(info.dims.length);
    const stages = await page.$$eval('#spec-stages li', (els) => els.map((e) => e.textContent ?? ''));
    expect(stages).toHaveLength(4);
    expect(stages[0]).toMatch(/^PCA/);
    expect(stages[1]).toContain('16 k-means lists');
    expect(stages[2]).toContain('d_s = 16');
    expect(stages[3]).toContain(`d_r = ${DIM}`);
    await shot(page, 'collection');
    clean(watch);
    await page.close();
  });

  it('searches from the playground: the same ids as the API for the same request, two budgets side by side, the answers on the frontier', async () => {
    const { page, watch } = await open('#/c/docs/search');
    const sent: SearchRequest[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/search') && r.method() === 'POST') sent.push(JSON.parse(r.postData()!) as SearchRequest);
    });
    await page.waitForSelector('#search-form');
    await page.type('#query-id', '5');
    await page.click('#compare');
    await page.click('#run');
    await page.waitForSelector('#results-B tbody tr');
    await page.waitForSelector('#plot-answer-mflops svg g.answer_marks path');
    expect(sent).toHaveLength(2);
    const stored = await service.admin.getPoint('docs', 5);
    for (const [i, label] of ['A', 'B'].entries()) {
      expect(sent[i].budget).toBeDefined();
      const { vector, ...request } = sent[i] as SearchRequest & { vector: number[] };
      expect(vector).toEqual(stored!.vector);
      const answer = await service.admin.search('docs', vector, request);
      const shown = await page.$$eval(`#results-${label} tbody tr`, (rows) => rows.map((r) => JSON.parse(r.getAttribute('data-id')!) as number));
      expect(shown).toEqual(answer.results[0].map((hit) => hit.id));
      expect(shown).toHaveLength(10);
    }
    const a = sent[0].budget as { recall: number };
    const b = sent[1].budget as { mflops: number };
    expect(a.recall).toBeGreaterThan(0);
    expect(b.mflops).toBeGreaterThan(0);
    // the overlap of the two lists, counted as the page shows it
    const idsOf = (label: string) => page.$$eval(`#results-${label} tbody tr`, (rows) => rows.map((r) => r.getAttribute('data-id')!));
    const [x, y] = [await idsOf('A'), await idsOf('B')];
    expect(await page.$eval('#overlap', (el) => el.textContent)).toContain(`${x.filter((id) => y.includes(id)).length} of 10`);
    expect(await page.$$eval('#plot-answer-mflops svg g.answer_marks path', (els) => els.length)).toBe(2);
    await shot(page, 'playground');
    clean(watch);
    await page.close();
  });

  it('passes a filter through to the search', async () => {
    const { page, watch } = await open('#/c/docs/search');
    await page.waitForSelector('#search-form');
    await page.type('#query-id', '7');
    await page.type('#filter', JSON.stringify({ must: [{ key: 'lang', match: { value: 'de' } }] }));
    await page.click('#run');
    await page.waitForSelector('#results-A tbody tr');
    const payloads = await page.$$eval('#results-A tbody tr td:last-child', (tds) => tds.map((td) => JSON.parse(td.textContent!) as { lang: string }));
    expect(payloads.length).toBe(10);
    for (const p of payloads) expect(p.lang).toBe('de');
    clean(watch);
    await page.close();
  });

  it('shows request rates, latency percentiles and search MFLOPs from /metrics', async () => {
    const { page, watch } = await open('#/metrics');
    // the rate needs two reads of /metrics
    await page.waitForSelector('#plot-rates svg', { timeout: 20_000 });
    const routes = await page.$$eval('#latency tbody tr', (rows) => rows.map((r) => r.textContent ?? ''));
    expect(routes.some((r) => r.includes('POST /v1/collections/:name/search'))).toBe(true);
    const mflops = await page.$$eval('#mflops tbody tr', (rows) => rows.map((r) => r.textContent ?? ''));
    expect(mflops.some((r) => r.startsWith('docs'))).toBe(true);
    await shot(page, 'metrics');
    clean(watch);
    await page.close();
  });

  it('moves the progress bar while an index builds, then shows it ready', async () => {
    await seed(service, 'growing', 8000, DIM, { build: false, spec: `pca,ivf64@16,flat@32` });
    const { page, watch } = await open('#/collections');
    await page.waitForSelector('tr[data-collection="growing"] button[data-action="build"]');
    await page.click('tr[data-collection="growing"] button[data-action="build"]');
    // the bar shows the progress of the build's current stage (k-means, filling the lists, calibration, ...)
    const seen: { stage: string; value: number }[] = [];
    let shotTaken = false;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const state = await page.$eval('tr[data-collection="growing"]', (el) => el.getAttribute('data-state'));
      if (state === 'ready') break;
      const bar = await page.$eval('tr[data-collection="growing"] progress', (el) => ({ stage: el.getAttribute('data-stage')!, value: (el as HTMLProgressElement).value })).catch(() => null);
      const last = seen.at(-1);
      if (bar && (last?.stage !== bar.stage || last.value !== bar.value)) seen.push(bar);
      if (bar && bar.value > 0 && !shotTaken) {
        await shot(page, 'collections-building');
        shotTaken = true;
      }
      if (Date.now() > deadline) throw new Error(`the build did not finish; progress seen: ${JSON.stringify(seen)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const stages = [...new Set(seen.map((s) => s.stage))];
    const advanced = stages.filter((stage) => {
      const values = seen.filter((s) => s.stage === stage).map((s) => s.value);
      // within a stage the bar only moves forward
      for (let i = 1; i < values.length; i++) expect(values[i], `${stage}: ${values.join(', ')}`).toBeGreaterThan(values[i - 1]);
      return values.length >= 2;
    });
    expect(advanced.length, JSON.stringify(seen)).toBeGreaterThan(0);
    expect((await service.admin.indexStatus('growing')).state).toBe('ready');
    clean(watch);
    await page.close();
  }, 150_000);

  it('creates and drops a collection with the admin key', async () => {
    const { page, watch } = await open('#/collections');
    page.on('dialog', (d) => void d.accept());
    await page.waitForSelector('#create-form');
    await page.type('#create-form input[name=name]', 'scratch');
    await page.type('#create-form input[name=dim]', '8');
    await page.click('#create-form button[type=submit]');
    await page.waitForSelector('tr[data-collection="scratch"]');
    expect((await service.admin.getCollection('scratch')).dim).toBe(8);
    await page.click('tr[data-collection="scratch"] button[data-action="drop"]');
    await page.waitForFunction(() => !document.querySelector('tr[data-collection="scratch"]'));
    expect((await service.admin.listCollections()).map((c) => c.name)).not.toContain('scratch');
    clean(watch);
    await page.close();
  });

  it('says clearly when a key is missing, wrong or read-only', async () => {
    const { page, watch } = await open('#/collections', null);
    await page.waitForFunction(() => !document.getElementById('banner')!.hidden);
    expect(await page.$eval('#banner', (el) => el.textContent)).toMatch(/^This service needs an API key \(401\)/);
    await page.type('#key-input', 'not-the-key');
    await page.click('#key-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('banner')!.textContent!.startsWith('The API key was refused'));
    expect(await page.$eval('#banner', (el) => el.textContent)).toContain('the API key is not valid');
    expect(await page.$eval('#key-state', (el) => el.textContent)).toBe('key set (this session only)');
    await shot(page, 'wrong-key');
    // the key lives in sessionStorage only
    expect(await page.evaluate(() => [sessionStorage.getItem('adanns.apiKey'), localStorage.length, document.cookie])).toEqual(['not-the-key', 0, '']);
    // the browser logs each refused request (401) as an error: those only
    expect(watch.errors.length).toBeGreaterThan(0);
    for (const e of watch.errors) expect(e).toMatch(/401/);
    watch.errors.length = 0;
    clean(watch);
    await page.close();
  });
});
