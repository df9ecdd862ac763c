import { api } from '../api.js';
import { fmt, h } from '../dom.js';
import type { PageContext } from '../main.js';
import { plot, rateSpec } from '../plots.js';
import { histograms, parseProm, quantile, type Histogram, type Sample } from '../prom.js';
import { poll } from './util.js';

const PERIOD_MS = 2000;
const HISTORY = 60;

/**
 * A percentile as the histogram can tell it: inside the first bucket it is
 * only known to be at most that bucket's bound (interpolating from 0 would
 * invent a figure).
 */
function percentile(hist: Histogram, q: number, scale = 1): string {
  const v = quantile(hist, q);
  if (v === null) return '–';
  const first = hist.buckets.find((b) => b.count > 0);
  return first && v <= first.le && first === hist.buckets[0] ? `≤ ${fmt(first.le * scale)}` : fmt(v * scale);
}

/** Total requests per route since the service started (all methods and statuses). */
function requestTotals(samples: Sample[]): Map<string, number> {
  const totals = new Map<string, number>();
  for (const s of samples) if (s.name === 'adanns_http_requests_total') totals.set(`${s.labels.method} ${s.labels.route}`, (totals.get(`${s.labels.method} ${s.labels.route}`) ?? 0) + s.value);
  return totals;
}

/** The service's own Prometheus metrics: request rates, latency percentiles per route, search MFLOPs per collection. */
export async function metricsPage(ctx: PageContext): Promise<void> {
  const rates = h('tbody');
  const latency = h('tbody');
  const mflops = h('tbody');
  const chart = h('div', { id: 'plot-rates', class: 'plot wide' });
  const gauges = h('p', { id: 'gauges', class: 'muted' });
  ctx.view.append(
    h('h1', null, 'Metrics'),
    h('p', { class: 'muted' }, `From the service's /metrics (Prometheus), read every ${PERIOD_MS / 1000} s: rates over the last interval, latency and MFLOPs percentiles since the service started (interpolated within histogram buckets).`),
    gauges,
    h('h2', null, 'Request rate'),
    chart,
    h('table', { id: 'rates' }, h('thead', null, h('tr', null, ...['route', 'requests/s', 'total'].map((t) => h('th', null, t)))), rates),
    h('h2', null, 'Latency'),
    h('table', { id: 'latency' }, h('thead', null, h('tr', null, ...['route', 'count', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms'].map((t) => h('th', null, t)))), latency),
    h('h2', null, 'Search MFLOPs per query'),
    h('table', { id: 'mflops' }, h('thead', null, h('tr', null, ...['collection', 'searches', 'p50', 'p90', 'p99', 'mean'].map((t) => h('th', null, t)))), mflops),
  );
  let previous: { at: number; totals: Map<string, number> } | undefined;
  const history: { t: number; series: string; rate: number }[] = [];
  const tick = async () => {
    const samples = parseProm(await api().metrics());
    const at = Date.now();
    const totals = requestTotals(samples);
    const rateOf = (key: string) => (previous ? ((totals.get(key) ?? 0) - (previous.totals.get(key) ?? 0)) / ((at - previous.at) / 1000) : null);
    const keys = [...totals.keys()].sort();
    rates.replaceChildren(...keys.map((key) => h('tr', null, h('td', null, h('code', null, key)), h('td', { class: 'num' }, fmt(rateOf(key))), h('td', { class: 'num' }, totals.get(key)!))));
    if (previous) {
      let all = 0;
      for (const key of keys) all += rateOf(key) ?? 0;
      history.push({ t: at, series: 'all routes', rate: all });
      const search = keys.filter((key) => key.endsWith('/search')).reduce((sum, key) => sum + (rateOf(key) ?? 0), 0);
      history.push({ t: at, series: 'searches', rate: search });
      while (history.length > 2 * HISTORY) history.shift();
      chart.replaceChildren();
      await plot(chart, rateSpec(history));
    }
    previous = { at, totals };
    latency.replaceChildren(
      ...histograms(samples, 'adanns_http_request_duration_seconds')
        .filter((x) => x.count > 0)
        .sort((x, y) => y.count - x.count)
        .map((x) => h('tr', null, h('td', null, h('code', null, `${x.labels.method} ${x.labels.route}`)), h('td', { class: 'num' }, x.count), ...[0.5, 0.9, 0.99].map((q) => h('td', { class: 'num' }, percentile(x, q, 1000))), h('td', { class: 'num' }, fmt((1000 * x.sum) / x.count)))),
    );
    mflops.replaceChildren(
      ...histograms(samples, 'adanns_search_mflops')
        .filter((x) => x.count > 0)
        .map((x) => h('tr', null, h('td', null, x.labels.collection), h('td', { class: 'num' }, x.count), ...[0.5, 0.9, 0.99].map((q) => h('td', { class: 'num' }, percentile(x, q))), h('td', { class: 'num' }, fmt(x.sum / x.count)))),
    );
    const gauge = (name: string) => samples.find((s) => s.name === name)?.value;
    gauges.textContent = `in flight: ${gauge('adanns_http_requests_in_flight') ?? 0} requests, ${gauge('adanns_searches_in_flight') ?? 0} searches; resident memory ${fmt((gauge('process_resident_memory_bytes') ?? 0) / 2 ** 20)} MiB`;
  };
  poll(ctx.signal, tick, () => PERIOD_MS, ctx.fail);
}
