import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFvecs, writeIvecs } from '@adanns/datasets';
import { listCount, nprobeSweep, type BenchContext } from '../context.js';
import { budgets } from './adanns.js';
import type { ResultRow, SystemInfo } from '../row.js';

const RUNNER = fileURLToPath(new URL('../../faiss/runner.py', import.meta.url));

/** Debian's python3-faiss installs for the system interpreter; ADANNS_PYTHON overrides. */
function python(): string {
  return process.env.ADANNS_PYTHON ?? '/usr/bin/python3';
}

/** Why FAISS cannot run here, or undefined when it can. */
export function faissUnavailable(): string | undefined {
  const r = spawnSync(python(), ['-c', 'import faiss, numpy'], { encoding: 'utf8' });
  if (r.error) return `${python()} not found (${r.error.message}); set ADANNS_PYTHON`;
  if (r.status !== 0) return `${python()} cannot import faiss (apt-get install python3-faiss)`;
  return undefined;
}

/** The subprocess's environment: OpenMP and every BLAS FAISS may link capped at `threads` (OPQ training calls BLAS). */
export function faissEnv(threads: number, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const t = String(threads);
  return { ...env, OMP_NUM_THREADS: t, OPENBLAS_NUM_THREADS: t, MKL_NUM_THREADS: t };
}

/**
 * FAISS (Debian's python3-faiss) on the same files, as a subprocess with
 * --threads threads: IVF{n},Flat over an nprobe sweep, and when the run has a
 * quantised suite, rigid OPQ (OPQ{M}_{D'},PQ{M}np) and IVF-OPQ
 * (OPQ{M},IVF{n},PQ{M}np) at each --bytes budget. The runner times its
 * rows itself (a warm-up, then each row's passes back to back) while the
 * suites build: they come complete (ctx.add), outside the round-robin timing
 * of the other systems' rows (timing.ts timeRoundRobin).
 */
export async function faissSuite(ctx: BenchContext): Promise<void> {
  const reason = faissUnavailable();
  if (reason) {
    ctx.log(`faiss: skipped: ${reason}`);
    return;
  }
  const { base, queries, truth, baseLabels, queryLabels, metric } = ctx.data;
  const dir = join(ctx.out, 'faiss-input');
  mkdirSync(dir, { recursive: true });
  const file = (name: string) => join(dir, name);
  writeFvecs(file('base.fvecs'), base.data, base.rows, base.dim);
  writeFvecs(file('queries.fvecs'), queries.data, queries.rows, queries.dim);
  writeIvecs(file('gt.ivecs'), truth.ids, truth.rows, truth.k);
  const args = [RUNNER, '--base', file('base.fvecs'), '--queries', file('queries.fvecs'), '--gt', file('gt.ivecs')];
  if (baseLabels && queryLabels) {
    writeIvecs(file('labels-base.ivecs'), baseLabels, baseLabels.length, 1);
    writeIvecs(file('labels-queries.ivecs'), queryLabels, queryLabels.length, 1);
    args.push('--labels-base', file('labels-base.ivecs'), '--labels-queries', file('labels-queries.ivecs'));
  }
  const lists = listCount(base.rows);
  args.push(
    '--metric', metric,
    '--k', String(ctx.k),
    '--lists', String(lists),
    '--nprobes', nprobeSweep(lists).join(','),
    '--bytes', ctx.suites.some((s) => s.includes('opq')) ? budgets(ctx).join(',') : '',
    '--threads', String(ctx.threads),
    '--latency-queries', String(ctx.latencyQueries),
    '--passes', String(ctx.passes),
  );
  ctx.log(`faiss: ${python()} ${args.slice(1).join(' ')}`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(python(), args, { stdio: ['ignore', 'pipe', 'pipe'], env: faissEnv(ctx.threads) });
    let info: SystemInfo | undefined;
    const take = (parsed: ResultRow | { skip: string } | { system: SystemInfo }) => {
      if ('skip' in parsed) ctx.log(`faiss: ${parsed.skip}`);
      else if (typeof parsed.system !== 'string') {
        info = parsed.system;
        if (info.threads !== ctx.threads) throw new Error(`faiss runner: asked for ${ctx.threads} thread(s), OpenMP runs ${info.threads}`);
      } else {
        if (!info) throw new Error('faiss runner: a row came before the line describing how FAISS runs');
        ctx.describe(parsed.system, info);
        ctx.add(parsed as ResultRow);
      }
    };
    let pending = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (!line) continue;
        try {
          take(JSON.parse(line) as ResultRow | { skip: string } | { system: SystemInfo });
        } catch (e) {
          child.kill();
          reject(e);
          return;
        }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`faiss runner exited with code ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`))));
  });
}
