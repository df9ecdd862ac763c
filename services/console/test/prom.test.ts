import { describe, expect, it } from 'vitest';
import { histograms, parseProm, quantile } from '../app/prom.js';

// The metrics page's reading of the Prometheus text format (app/prom.ts).

const TEXT = `# HELP adanns_http_request_duration_seconds HTTP request latency
# TYPE adanns_http_request_duration_seconds histogram
adanns_http_request_duration_seconds_bucket{le="0.01",route="/a",method="GET"} 2
adanns_http_request_duration_seconds_bucket{le="0.1",route="/a",method="GET"} 6
adanns_http_request_duration_seconds_bucket{le="1",route="/a",method="GET"} 10
adanns_http_request_duration_seconds_bucket{le="+Inf",route="/a",method="GET"} 10
adanns_http_request_duration_seconds_sum{route="/a",method="GET"} 2.5
adanns_http_request_duration_seconds_count{route="/a",method="GET"} 10
adanns_http_request_duration_seconds_bucket{le="0.01",route="/b",method="POST"} 0
adanns_http_request_duration_seconds_bucket{le="0.1",route="/b",method="POST"} 0
adanns_http_request_duration_seconds_bucket{le="1",route="/b",method="POST"} 1
adanns_http_request_duration_seconds_bucket{le="+Inf",route="/b",method="POST"} 2
adanns_http_request_duration_seconds_sum{route="/b",method="POST"} 7
adanns_http_request_duration_seconds_count{route="/b",method="POST"} 2
adanns_http_requests_total{route="/a",method="GET",status="200"} 10
weird_label{path="a \\"quoted\\" \\\\ path"} 1e3
`;

describe('prometheus text parsing', () => {
  it('reads names, labels (escapes included) and values, skipping comments', () => {
    const samples = parseProm(TEXT);
    expect(samples).toHaveLength(14);
    expect(samples.find((s) => s.name === 'adanns_http_requests_total')).toEqual({ name: 'adanns_http_requests_total', labels: { route: '/a', method: 'GET', status: '200' }, value: 10 });
    expect(samples.at(-1)).toEqual({ name: 'weird_label', labels: { path: 'a "quoted" \\ path' }, value: 1000 });
  });

  it('groups histograms by label set and interpolates quantiles inside a bucket as histogram_quantile does', () => {
    const [a, b] = histograms(parseProm(TEXT), 'adanns_http_request_duration_seconds');
    expect(a.labels).toEqual({ route: '/a', method: 'GET' });
    expect(a.count).toBe(10);
    expect(a.sum).toBe(2.5);
    // rank 5 of 10 falls in (0.01, 0.1], holding ranks 3-6: 0.01 + 0.09 x 3/4
    expect(quantile(a, 0.5)).toBeCloseTo(0.0775, 10);
    // rank 9 in (0.1, 1], ranks 7-10: 0.1 + 0.9 x 3/4
    expect(quantile(a, 0.9)).toBeCloseTo(0.775, 10);
    // in the +Inf bucket: the largest finite bound
    expect(quantile(b, 0.99)).toBe(1);
    expect(quantile({ labels: {}, buckets: [], count: 0, sum: 0 }, 0.5)).toBeNull();
  });
});
