import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, serve } from '@adanns/api';
import { loadVectors, readIvecs, writeNpy } from '@adanns/datasets';

// The CLI is tested as users run it, a bin in a child process: its source,
// through the TypeScript loader vitest gives this process (process.execArgv),
// so no build is needed.
const bin = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const node = [...process.execArgv, bin];
const dir = mkdtempSync(join(tmpdir(), 'adanns-cli-'));
const base = 'synthetic:n=3000,dim=32,clusters=30,queries=50,seed=5';
const queries = `${base},part=queries`;

function adanns(...args: string[]) {
  const r = spawnSync(process.execPath, [...node, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The CLI without blocking this process (the service under test may run in it or answer it). */
function adannsAsync(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...node, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('adanns CLI', () => {
  it('builds, searches with exact and file ground truth, and reports recall and MFLOPs', () => {
    const out = join(dir, 'index');
    // calibrated at the k searched below only (the default 1, 10, 100 sweeps about twice the work)
    const built = adanns('build', '--data', base, '--metric', 'cosine', '--spec', 'pca,ivf30@8,flat@16,rerank@32', '--out', out, '--calibration-k', '10');
    expect(built.stderr).not.toMatch(/error/);
    expect(built.code).toBe(0);
    expect(built.stdout).toMatch(/built pca,ivf30@8,flat@16,rerank@32 \(cosine, 3000 vectors of dim 32/);

    const gt = join(dir, 'gt.ivecs');
    const truth = adanns('groundtruth', '--base', base, '--queries', queries, '--metric', 'cosine', '--k', '10', '--out', gt);
    expect(truth.code).toBe(0);
    expect(readIvecs(gt)).toMatchObject({ rows: 50, k: 10 });

    const searched = adanns('search', '--index', out, '--queries', queries, '--k', '10', '--gt', gt, '--json', '--params', 'nprobe=1,shortlist=10', '--params', 'nprobe=30,shortlist=3000');
    expect(searched.code).toBe(0);
    const rows = searched.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows).toHaveLength(2);
    expect(rows[0].params).toMatchObject({ nprobe: 1, shortlist: 10, coarseDim: 8, scanDim: 16, rerankDim: 32 });
    expect(rows[1].recall).toBe(1); // every list probed and everything re-ranked at D: exact
    expect(rows[0].recall).toBeLessThan(rows[1].recall);
    expect(rows[0].mflops).toBeLessThan(rows[1].mflops);

    const exact = adanns('search', '--index', out, '--queries', queries, '--k', '10', '--gt', 'exact', '--json', '--params', 'nprobe=30,shortlist=3000');
    expect(JSON.parse(exact.stdout).recall).toBe(1);

    // the build calibrated the index, so budgets plan the params
    const budgeted = adanns('search', '--index', out, '--queries', queries, '--k', '10', '--gt', gt, '--json', '--budget', 'recall=0.9', '--budget', 'mflops=0.002');
    // nothing on stderr but the line saying which backend `auto` chose
    expect(budgeted.stderr).toMatch(/^backend: cpu \(WebAssembly SIMD, \d+ threads\); [^\n]+\n$/);
    const [byRecall, byMflops] = budgeted.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(byRecall).toMatchObject({ budget: { recall: 0.9 }, budgetMet: true });
    expect(byRecall.expectedRecall).toBeGreaterThanOrEqual(0.9);
    expect(byRecall.recall).toBeGreaterThanOrEqual(0.85);
    expect(byMflops.budget).toEqual({ mflops: 0.002 });
    const strict = adanns('search', '--index', out, '--queries', queries, '--k', '10', '--budget', 'mflops=0.000001', '--strict');
    expect(strict.code).toBe(2);
    expect(strict.stderr).toMatch(/budget mflops=0.000001 cannot be met/);
  });

  it('info prints what a saved index holds by kind, per vector, with the re-rank vectors on disk', () => {
    const out = join(dir, 'info-index');
    expect(adanns('build', '--data', base, '--metric', 'l2', '--spec', 'ivf30@8,sq8@16,rerank@32', '--out', out, '--calibrate', 'false').code).toBe(0);
    const info = adanns('info', '--index', out, '--json');
    expect(info.code).toBe(0);
    const r = JSON.parse(info.stdout);
    expect(r).toMatchObject({ spec: 'ivf30@8,sq8@16,rerank@32', vectors: 3000, dim: 32, formatVersion: 2, diskBytes: 3000 * 32 * 4 });
    expect(r.bytes.codes).toBeGreaterThanOrEqual(3000 * 16);
    expect(Object.values(r.bytes as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(r.residentBytes);
    expect(r.bytesPerVector.disk).toBe(128);
    const table = adanns('info', '--index', out);
    expect(table.stdout).toMatch(/^codes\s+[\d,]+\s+\d+\.\d\d$/m);
    expect(table.stdout).toMatch(/^rerank \(on disk\)\s+384,000\s+128\.00$/m);
  });

  it('build --spec auto (the default) chooses the spec, says why, and info shows it', () => {
    const out = join(dir, 'auto');
    const built = adanns('build', '--data', base, '--metric', 'cosine', '--out', out, '--calibrate', 'false');
    expect(built.code).toBe(0);
    const chosen = /auto chose (\S+): (.+)/.exec(built.stdout);
    expect(chosen, built.stdout + built.stderr).not.toBeNull();
    expect(chosen![2]).toMatch(/PCA components hold half the variance.*trial/);
    const info = JSON.parse(adanns('info', '--index', out, '--json').stdout);
    expect(info.spec).toBe(chosen![1]);
    expect(info.specReason).toBe(chosen![2]);
    expect(adanns('info', '--index', out).stdout).toMatch(/chosen by auto: /);
    const bad = adanns('build', '--data', base, '--metric', 'l2', '--spec', 'automatic', '--out', join(dir, 'x'));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown token "automatic"/);
  });

  it('prints the offending value and exits 2 on bad input', () => {
    const cases: Array<[string[], RegExp]> = [
      [['build', '--data', base, '--metric', 'hamming', '--spec', 'flat', '--out', join(dir, 'x')], /unknown metric "hamming"/],
      [['build', '--data', base, '--metric', 'l2', '--spec', 'ivf10@64,flat@16', '--out', join(dir, 'x')], /coarse dim d_c 64 exceeds the vector dimension 32/],
      [['build', '--data', base, '--metric', 'l2', '--spec', 'flat', '--out', join(dir, 'x'), '--limit', 'ten'], /--limit must be a positive integer, got "ten"/],
      [['build', '--data', 'missing.fvecs', '--metric', 'l2', '--spec', 'flat', '--out', join(dir, 'x')], /missing.fvecs.*no such file/i],
      [['build', '--metric', 'l2', '--spec', 'flat', '--out', join(dir, 'x')], /missing required option --data/],
      [['build', '--data', base, '--metric', 'l2', '--spec', 'flat', '--out', join(dir, 'x'), '--colour', 'red'], /Unknown option '--colour'/],
      [['search', '--index', join(dir, 'nope'), '--queries', queries, '--k', '10'], /cannot read index manifest/],
      [['info', '--index', join(dir, 'nope')], /nope\/manifest.json: cannot read index manifest/],
      [['info'], /missing required option --index/],
      [['search', '--index', join(dir, 'index'), '--queries', queries, '--k', '0'], /--k must be a positive integer, got "0"/],
      [['search', '--index', join(dir, 'index'), '--queries', queries, '--k', '10', '--params', 'nprobe=500'], /nprobe must be at most 30, got 500/],
      [['search', '--index', join(dir, 'index'), '--queries', queries, '--k', '10', '--params', 'rerankPatience=10/5'], /rerankPatience must be first\/step\/newMax .* got "10\/5"/],
      [['search', '--index', join(dir, 'index'), '--queries', 'synthetic:n=10,dim=8', '--k', '10'], /queries have dimension 8, the index 32/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['search', '--index', join(dir, 'index'), '--queries', queries, '--k', '10', '--budget', 'speed=fast'], /--budget "speed=fast": budget "speed=fast" is not mflops=X/],
      [['build', '--data', base, '--metric', 'l2', '--spec', 'flat', '--out', join(dir, 'x'), '--calibrate', 'maybe'], /--calibrate must be true or false, got "maybe"/],
    ];
    for (const [args, message] of cases) {
      const r = adanns(...args);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).not.toMatch(/^\s+at /m); // no stack trace for user errors
    }
    // 16 CLI processes, each starting Node and loading the engine: over a minute on a loaded two-core host
  }, 240_000);

  it('searches with adaptive probing from --params and names a bad margin', () => {
    // the index the first test built
    const adaptive = adanns('search', '--index', join(dir, 'index'), '--queries', queries, '--k', '10', '--json', '--params', 'nprobe=30,shortlist=100,probeMargin=0.05');
    expect(adaptive.stderr).not.toMatch(/error/i);
    expect(adaptive.code).toBe(0);
    expect(JSON.parse(adaptive.stdout.trim()).params).toMatchObject({ nprobe: 30, shortlist: 100, probeMargin: 0.05 });
    const bad = adanns('search', '--index', join(dir, 'index'), '--queries', queries, '--k', '10', '--params', 'nprobe=4,probeMargin=-1');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/probeMargin must be a finite number >= 0, got "-1"/);
  });

  it('searches with a funnel from --params and names a stage the index cannot serve', () => {
    // the index the first test built: float32 lists at 16 (scanned at 8 here), raw vectors at 32 under PCA
    const funnel = adanns('search', '--index', join(dir, 'index'), '--queries', queries, '--k', '10', '--json', '--params', 'nprobe=30,scanDim=8,shortlist=100,funnel=30@16');
    expect(funnel.stderr).not.toMatch(/error/i);
    expect(funnel.code).toBe(0);
    expect(JSON.parse(funnel.stdout.trim()).params).toMatchObject({ scanDim: 8, shortlist: 100, funnel: [{ dim: 16, keep: 30 }], rerankDim: 32 });
    const bad = adanns('search', '--index', join(dir, 'index'), '--queries', queries, '--k', '10', '--params', 'scanDim=8,shortlist=100,funnel=30@24');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/funnel stage 0 \(keep 30 at dim 24\): index "pca,ivf30@8,flat@16,rerank@32" cannot read vectors at dim 24/);
    const malformed = adanns('search', '--index', join(dir, 'index'), '--queries', queries, '--k', '10', '--params', 'funnel=30:16');
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/--params "funnel=30:16": funnel stage "30:16" is not keep@dim/);
  });

  it('searches with --filter on the labels of --payloads, against the exact filtered truth', async () => {
    // the index the first test built, over the synthetic set whose labels are its clusters
    const filter = '{"must":[{"key":"label","match":{"any":[3,5]}}]}';
    const out = join(dir, 'filtered.ivecs');
    const searched = adanns('search', '--index', join(dir, 'index'), '--queries', queries, '--k', '10', '--json', '--filter', filter, '--payloads', base, '--gt', 'exact', '--out', out, '--params', 'nprobe=30,shortlist=3000', '--params', 'nprobe=2,shortlist=50');
    expect(searched.stderr).not.toMatch(/error/i);
    expect(searched.code).toBe(0);
    const rows = searched.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows[0].recall).toBe(1); // every list, everything re-ranked at D: the exact filtered answer
    expect(rows[1].recall).toBeGreaterThan(0.5);
    const { labels } = await loadVectors(base);
    const ids = readIvecs(out);
    expect(Array.from(ids.ids).every((id) => id >= 0 && (labels![id] === 3 || labels![id] === 5))).toBe(true);
    const bad = adanns('search', '--index', join(dir, 'index'), '--queries', queries, '--k', '10', '--filter', '{"must":[{"key":"label","match":{"valu":3}}]}', '--payloads', base);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--filter "\{"must".*": filter\.must\[0\]\.match: give exactly one of value, any, except/);
    const noPayloads = adanns('search', '--index', join(dir, 'index'), '--queries', queries, '--k', '10', '--filter', filter);
    expect(noPayloads.code).toBe(2);
    expect(noPayloads.stderr).toMatch(/missing required option --payloads/);
  });

  it('shows usage with --help', () => {
    const r = adanns('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/adanns build --data SOURCE/);
    expect(r.stdout).toMatch(/adanns search --index DIR/);
    const search = adanns('search', '--help');
    expect(search.code).toBe(0);
    expect(search.stdout).toMatch(/^adanns search --index DIR/);
    const bench = adanns('bench', '--help');
    expect(bench.code).toBe(0);
    expect(bench.stdout).toMatch(/--suite/);
  });

  it('imports a data source into a collection of a running service and builds its index', async () => {
    // the service in this process, on a port the OS picks (no probe-then-reuse race);
    // serve() resolves once it listens, store.opened once every collection is open
    const config = loadConfig(['--port', '0', '--threads', '1', '--data-dir', join(dir, 'service')], { ADANNS_LOG_LEVEL: 'warn' });
    const { url, stop, store } = await serve(config);
    await store.opened;
    try {
      const imported = await adannsAsync('import', '--url', url, '--collection', 'syn', '--data', base, '--limit', '800', '--index', 'ivf8@16,flat@32', '--build', '--payload-index', 'label:integer');
      expect(imported.code).toBe(0);
      expect(imported.stdout).toMatch(/payload indexes: label \(integer\)/);
      expect(imported.stdout).toMatch(/imported 800 vectors of dimension 32 into syn/);
      expect(imported.stdout).toMatch(/index ivf8@16,flat@32 ready over 800 points/);
      const info = (await (await fetch(`${url}/v1/collections/syn`)).json()) as { count: number; index: { state: string } };
      expect(info).toMatchObject({ count: 800, index: { state: 'ready' } });
      const point = (await (await fetch(`${url}/v1/collections/syn/points/5`)).json()) as { id: number; payload: { label: number } };
      expect(point.id).toBe(5);
      expect(typeof point.payload.label).toBe('number'); // the synthetic set's cluster label
      const { labels } = await loadVectors(base, 800);
      const counted = await fetch(`${url}/v1/collections/syn/points/count`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ filter: { must: [{ key: 'label', match: { value: 7 } }] } }) });
      expect(await counted.json()).toEqual({ count: labels!.filter((l) => l === 7).length, note: null });
      const badIndex = await adannsAsync('import', '--url', url, '--collection', 'syn', '--data', base, '--payload-index', 'label:number');
      expect([badIndex.code, badIndex.stderr]).toEqual([2, expect.stringMatching(/--payload-index must be FIELD:TYPE with TYPE one of keyword, integer, float, bool, datetime, got "label:number"/)]);
      const wrongDim = await adannsAsync('import', '--url', url, '--collection', 'syn', '--data', 'synthetic:n=10,dim=8');
      expect([wrongDim.code, wrongDim.stderr]).toEqual([2, expect.stringMatching(/collection syn has dimension 32, synthetic:n=10,dim=8 has 8/)]);
    } finally {
      await stop();
    }
    const noService = await adannsAsync('import', '--url', 'http://127.0.0.1:1', '--collection', 'x', '--data', base);
    expect([noService.code, noService.stderr]).toEqual([2, expect.stringMatching(/no service at http:\/\/127.0.0.1:1/)]);
  });

  it('imports payloads from a JSON-lines file and .npy columns, aligned with the vectors, and names what is wrong in them', async () => {
    const rows = 300;
    const small = `synthetic:n=${rows},dim=8,clusters=4,queries=5,seed=2`;
    const colours = ['red', 'green', 'blue'];
    const lines = Array.from({ length: rows }, (_, i) => JSON.stringify({ colour: colours[i % 3], tags: i % 2 ? ['odd'] : ['even'], meta: { tenant: `t${i % 5}` } }));
    const payloads = join(dir, 'payloads.jsonl');
    writeFileSync(payloads, lines.join('\n') + '\n');
    const price = join(dir, 'price.npy');
    writeNpy(price, Float32Array.from({ length: rows }, (_, i) => i * 0.5), [rows], '<f4');
    const rank = join(dir, 'rank.npy');
    writeNpy(rank, Int32Array.from({ length: rows }, (_, i) => rows - i), [rows, 1], '<i4');
    const config = loadConfig(['--port', '0', '--threads', '1', '--data-dir', join(dir, 'service-payloads')], { ADANNS_LOG_LEVEL: 'warn' });
    const { url, stop, store } = await serve(config);
    await store.opened;
    const count = async (filter: unknown) => ((await (await fetch(`${url}/v1/collections/pay/points/count`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ filter }) })).json()) as { count: number }).count;
    try {
      const imported = await adannsAsync('import', '--url', url, '--collection', 'pay', '--data', small, '--payload-file', payloads, '--payload-column', `price=${price}`, '--payload-column', `meta.rank=${rank}`, '--payload-index', 'colour:keyword', '--payload-index', 'price:float');
      expect(imported.stderr).not.toMatch(/error/i);
      expect(imported.code).toBe(0);
      const point = (await (await fetch(`${url}/v1/collections/pay/points/7`)).json()) as { payload: Record<string, unknown> };
      // the data's label, the line's keys, the columns (the nested one merged into the line's meta)
      expect(point.payload).toEqual({ label: expect.any(Number), colour: 'green', tags: ['odd'], meta: { tenant: 't2', rank: rows - 7 }, price: 3.5 });
      expect(await count({ must: [{ key: 'colour', match: { value: 'blue' } }] })).toBe(rows / 3);
      expect(await count({ must: [{ key: 'price', range: { lt: 10 } }] })).toBe(20);
      expect(await count({ must: [{ key: 'meta.rank', range: { gt: 290 } }, { key: 'tags', match: { value: 'odd' } }] })).toBe(5);
    } finally {
      await stop();
    }
    // checked before anything is uploaded: no service is needed to see these errors
    const fails = async (...args: string[]) => {
      const r = await adannsAsync('import', '--url', 'http://127.0.0.1:1', '--collection', 'x', '--data', small, ...args);
      expect(r.code, r.stderr).toBe(2);
      return r.stderr;
    };
    const write = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    expect(await fails('--payload-file', write('long.jsonl', [...lines, '{"colour":"red"}'].join('\n')))).toMatch(/--payload-file .*long\.jsonl has 301 lines, the data has 300 rows: the payloads must be aligned with the vectors/);
    const broken = [...lines];
    broken[6] = '{"colour": "red",}';
    expect(await fails('--payload-file', write('broken.jsonl', broken.join('\n')))).toMatch(/--payload-file .*broken\.jsonl: line 7 is not valid JSON \(.*\): \{"colour": "red",\}/);
    // the other errors of each source: payload-sources.test.ts
  });
});
