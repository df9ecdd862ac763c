/**
 * What the console's browser test and the screenshot script share: a real
 * service on a loopback port (its own data directory, keys set), small seeded
 * collections, and Debian's chromium driven by puppeteer-core (no browser
 * download).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { AdannsClient } from '@adanns/client';
import { loadConfig, serve } from '@adanns/api';

export const ADMIN_KEY = 'console-admin-key';
export const READ_KEY = 'console-read-key';

/** Where chromium is: ADANNS_CHROMIUM, else Debian's /usr/bin/chromium. */
export const CHROMIUM = process.env.ADANNS_CHROMIUM ?? '/usr/bin/chromium';

export interface Service {
  url: string;
  admin: AdannsClient;
  stop(): Promise<void>;
}

/** The service with an admin and a read key, on 127.0.0.1 at a free port, one thread, no automatic builds. */
export async function startService(): Promise<Service> {
  const dir = mkdtempSync(join(tmpdir(), 'adanns-console-'));
  const { url, stop } = await serve({ ...loadConfig([], {}), host: '127.0.0.1', port: 0, dataDir: dir, threads: 1, logLevel: 'silent', apiKey: ADMIN_KEY, readKey: READ_KEY, autoBuildAt: 0 });
  return {
    url,
    admin: new AdannsClient(url, { apiKey: ADMIN_KEY }),
    stop: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Seeded uniform numbers in [0, 1) (mulberry32): the same collection on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Points around 12 centres under a decaying spectrum (the first dimensions
 * carry most of the variance, like a Matryoshka embedding), with a payload
 * each (`lang`, `group`).
 */
export function points(n: number, dim: number, seed = 7): { id: number; vector: number[]; payload: { lang: string; group: number } }[] {
  const random = rng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const scale = Array.from({ length: dim }, (_, d) => 1 / (1 + d / 4));
  const centres = Array.from({ length: 12 }, () => scale.map((s) => s * normal()));
  return Array.from({ length: n }, (_, i) => {
    const c = i % 12;
    return { id: i, vector: centres[c].map((x, d) => x + 0.4 * scale[d] * normal()), payload: { lang: i % 3 === 0 ? 'de' : 'en', group: c } };
  });
}

/** A collection of n points with a small PCA + IVF index spec, calibrated at k = 10; built and ready when `build`. */
export async function seed(service: Service, name: string, n: number, dim: number, options: { build?: boolean; spec?: string } = {}): Promise<void> {
  const { admin } = service;
  await admin.createCollection(name, { dim, metric: 'cosine', index: options.spec ?? `pca,ivf16@8,flat@16,rerank@${dim}`, calibrationK: [10] });
  const all = points(n, dim);
  for (let i = 0; i < all.length; i += 1000) await admin.upsert(name, all.slice(i, i + 1000));
  if (options.build ?? true) {
    await admin.buildIndex(name);
    const state = await admin.waitForIndex(name, 100, 120_000);
    if (state.state !== 'ready') throw new Error(`index of ${name} is ${state.state}: ${state.lastError ?? state.note}`);
  }
}

/** Whether the browser can run here; the reason when not. */
export function chromiumProblem(): string | null {
  return existsSync(CHROMIUM) ? null : `no chromium at ${CHROMIUM} (Debian: apt-get install -y chromium; or set ADANNS_CHROMIUM to its path)`;
}

export function launch(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--hide-scrollbars'],
    // the CI machine has 2 slow cores
    protocolTimeout: 120_000,
  });
}

/** What a page logged as errors, and any request that left the loopback service (the console needs no network). */
export interface Watch {
  errors: string[];
  offline: string[];
}

/** A page with the session's key set (or none), watched for console errors, page errors and requests beyond `origin`. */
export async function openPage(browser: Browser, origin: string, key: string | null, width = 1280): Promise<{ page: Page; watch: Watch }> {
  const page = await browser.newPage();
  await page.setViewport({ width, height: 900 });
  const watch: Watch = { errors: [], offline: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') watch.errors.push(m.text());
  });
  page.on('pageerror', (e) => watch.errors.push(String(e)));
  await page.setRequestInterception(true);
  page.on('request', (r) => {
    if (r.url().startsWith(origin) || r.url().startsWith('data:') || r.url().startsWith('blob:')) void r.continue();
    else {
      watch.offline.push(r.url());
      void r.abort();
    }
  });
  if (key !== null) await page.evaluateOnNewDocument((k) => sessionStorage.setItem('adanns.apiKey', k), key);
  return { page, watch };
}
