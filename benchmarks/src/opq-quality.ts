/**
 * OPQ quality and training time against FAISS's OPQMatrix on the same data,
 * threads and byte budget: recall@10 of an exhaustive ADC search (no IVF, no
 * re-rank, l2) and the training seconds of each side (median of --passes):
 * wall and CPU (all threads of the process; on a shared machine CPU seconds
 * at one thread are the comparison that load does not skew).
 *
 *   npm run bench:opq -- [--data fashion-mnist|synthetic] [--bytes 16] [--dims 784,64]
 *                        [--threads 1] [--passes 1] [--no-faiss] [--iterations N]
 *
 * Fashion-MNIST: the first 9,000 train images are the base, the first 1,000
 * test images the queries. Synthetic: 9,000 + 1,000 vectors of an anisotropic
 * clustered set (decaying spectrum). The truth is exact l2 at the full
 * dimension; a prefix d below it is the PCA prefix (the AdANNS-OPQ input),
 * handed to FAISS as the same float32 file. FAISS runs as `OPQ{M},PQ{M}` at
 * d (and `OPQ{M}_{d'},PQ{M}` with d' the multiple of 64 below d, the shape of
 * issue 16's reference, when that differs) with OpenMP and BLAS capped at
 * --threads (benchmarks/faiss/opq_quality.py).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { intOption } from '@adanns/cli-kit';
import { createBackend, TopK, type Backend } from '@adanns/compute';
import { exactNeighbours, PcaTransform, recallAtK, rotateRows, trainOpq } from '@adanns/core';
import { generateSynthetic, readFashionMnist, writeFvecs, writeIvecs, type VectorSet } from '@adanns/datasets';
import { log } from './fashion-mnist.js';
import { faissEnv, faissUnavailable } from './suites/faiss.js';

const { values: o } = parseArgs({
  options: {
    data: { type: 'string', default: 'fashion-mnist' },
    bytes: { type: 'string', default: '16' },
    dims: { type: 'string', default: '784,64' },
    threads: { type: 'string', default: '1' },
    passes: { type: 'string', default: '1' },
    iterations: { type: 'string' },
    'no-faiss': { type: 'boolean', default: false },
  },
});
const k = 10;
const m = intOption(o.bytes, 'bytes');
const threads = intOption(o.threads, 'threads');
const passes = intOption(o.passes, 'passes');
const iterations = o.iterations === undefined ? undefined : intOption(o.iterations, 'iterations');

function data(): { base: VectorSet; queries: VectorSet } {
  if (o.data === 'fashion-mnist') {
    const train = readFashionMnist('train');
    const test = readFashionMnist('test');
    const cut = (set: VectorSet, rows: number): VectorSet => ({ ...set, rows, data: set.data.slice(0, rows * set.dim) });
    return { base: cut(train, 9000), queries: cut(test, 1000) };
  }
  if (o.data === 'synthetic') return generateSynthetic({ n: 9000, dim: 256, queries: 1000, decay: 1, clusters: 64, seed: 7 });
  throw new Error(`--data must be fashion-mnist or synthetic, got "${o.data}"`);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Our OPQ at M bytes on rows x d: training seconds (per pass) and recall@k of exhaustive ADC. */
async function ours(backend: Backend, base: Float32Array, rows: number, queries: Float32Array, queryRows: number, d: number, truth: Int32Array): Promise<{ recall: number; seconds: number[]; cpu: number[] }> {
  const seconds: number[] = [];
  const cpu: number[] = [];
  let recall = 0;
  for (let p = 0; p < passes; p++) {
    const started = performance.now();
    const startedCpu = process.cpuUsage();
    const { rotation, pq } = await trainOpq(backend, base, rows, d, m, { iterations });
    seconds.push((performance.now() - started) / 1000);
    const used = process.cpuUsage(startedCpu);
    cpu.push((used.user + used.system) / 1e6);
    const codes = await pq.encode(backend, await rotateRows(backend, rotation, d, base, rows), rows);
    const tables = await pq.lookupTables(backend, await rotateRows(backend, rotation, d, queries, queryRows), queryRows, 'l2');
    const best = new TopK(queryRows, k);
    await backend.adcScanTopK(tables, queryRows, m, codes, rows, best);
    recall = recallAtK(best.ids, k, truth, k, queryRows, k);
    log(`ours d=${d}: recall ${recall.toFixed(4)}, train ${seconds.at(-1)!.toFixed(1)} s (${cpu.at(-1)!.toFixed(1)} s CPU)`);
  }
  return { recall, seconds, cpu };
}

interface FaissRow { factory: string; recall: number; trainSeconds: number[]; trainCpuSeconds: number[]; faiss: { threads: number; version: string; compileOptions: string } }

function faiss(dir: string, base: Float32Array, rows: number, queries: Float32Array, queryRows: number, d: number, truth: Int32Array): FaissRow[] {
  writeFvecs(join(dir, 'base.fvecs'), base, rows, d);
  writeFvecs(join(dir, 'queries.fvecs'), queries, queryRows, d);
  writeIvecs(join(dir, 'gt.ivecs'), truth, queryRows, k);
  const factories = [`OPQ${m},PQ${m}`];
  const reduced = d - (d % 64);
  if (reduced !== d && reduced >= m && reduced % m === 0) factories.push(`OPQ${m}_${reduced},PQ${m}`);
  const script = fileURLToPath(new URL('../faiss/opq_quality.py', import.meta.url));
  const args = [script, '--base', join(dir, 'base.fvecs'), '--queries', join(dir, 'queries.fvecs'), '--gt', join(dir, 'gt.ivecs'), '--k', String(k), '--threads', String(threads), '--passes', String(passes)];
  for (const f of factories) args.push('--factory', f);
  const r = spawnSync(process.env.ADANNS_PYTHON ?? '/usr/bin/python3', args, { encoding: 'utf8', env: faissEnv(threads), maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`opq_quality.py exited with ${r.status}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as FaissRow);
}

const backend = await createBackend('cpu', { threads });
const { base, queries } = data();
log(`${o.data}: ${base.rows} base, ${queries.rows} queries, d = ${base.dim}; M = ${m}, threads ${threads}, passes ${passes}`);
const truth = await exactNeighbours(backend, base.data, base.rows, queries.data, queries.rows, base.dim, 'l2', k);
const skip = o['no-faiss'] ? 'disabled by --no-faiss' : faissUnavailable();
const dir = mkdtempSync(join(tmpdir(), 'adanns-opq-'));
const table: string[] = ['| d | system | recall@10 | train s wall | train s CPU |', '|---|---|---|---|---|'];
let faissInfo = '';
try {
  for (const d of o.dims.split(',').map((x) => intOption(x, 'dims'))) {
    if (d > base.dim || d < m) throw new Error(`--dims: ${d} must lie in [M = ${m}, ${base.dim}]`);
    let b = base.data;
    let q = queries.data;
    if (d < base.dim) {
      // the AdANNS input: a PCA prefix fitted on the base
      const pca = PcaTransform.fit(base.data, base.rows, base.dim, 'l2', { sampleSize: base.rows });
      b = await pca.apply(backend, base.data, base.rows, d);
      q = await pca.apply(backend, queries.data, queries.rows, d);
    }
    const r = await ours(backend, b, base.rows, q, queries.rows, d, truth.ids);
    table.push(`| ${d} | adanns opq${m}@${d} | ${r.recall.toFixed(4)} | ${median(r.seconds).toFixed(1)} | ${median(r.cpu).toFixed(1)} |`);
    if (skip) continue;
    mkdirSync(dir, { recursive: true });
    for (const f of faiss(dir, b, base.rows, q, queries.rows, d, truth.ids)) {
      faissInfo = `FAISS ${f.faiss.version} (${f.faiss.compileOptions.trim()}), ${f.faiss.threads} thread(s)`;
      log(`faiss ${f.factory} d=${d}: recall ${f.recall.toFixed(4)}, train ${f.trainSeconds.map((s) => s.toFixed(1)).join(', ')} s (${f.trainCpuSeconds.map((s) => s.toFixed(1)).join(', ')} s CPU)`);
      table.push(`| ${d} | faiss ${f.factory} | ${f.recall.toFixed(4)} | ${median(f.trainSeconds).toFixed(1)} | ${median(f.trainCpuSeconds).toFixed(1)} |`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`OPQ at M = ${m} bytes, ${o.data}, l2, exhaustive ADC, recall@${k}; ${threads} thread(s); ${passes} pass(es). ${skip ? `FAISS skipped: ${skip}` : faissInfo}\n`);
console.log(table.join('\n'));
await backend.dispose();
