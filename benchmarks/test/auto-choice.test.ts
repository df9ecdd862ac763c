import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { autoLists, parseSpec, validateSpec } from '@adanns/core';
import { fixedSpecs, sameBuild } from '../src/auto-compare.js';

const dir = mkdtempSync(join(tmpdir(), 'adanns-auto-choice-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// the script from source, through the TypeScript loader vitest gives this process
const script = fileURLToPath(new URL('../src/auto-choice.ts', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [...process.execArgv, script, ...args], { encoding: 'utf8' });

describe('bench:auto comparison builds', () => {
  it('gives valid fixed specs for any dimension, or a reason per skipped shape', () => {
    for (const dim of [3, 8, 9, 16, 63, 64, 65, 100, 512, 784]) {
      const rows = 3000;
      const { specs, skipped } = fixedSpecs(rows, dim);
      for (const { spec } of specs) expect(() => validateSpec(parseSpec(spec, dim), dim, rows), `${spec} at D = ${dim}`).not.toThrow();
      // the store's default is always buildable at this count
      expect(specs.length).toBeGreaterThanOrEqual(1);
      const prefixScan = specs.find((s) => s.spec.endsWith(`,rerank@${dim}`) && s.spec.includes(`ivf${autoLists(rows)}@`));
      if (dim > 64) expect(prefixScan).toEqual({ spec: `pca,ivf${autoLists(rows)}@32,flat@64,rerank@${dim}` });
      else if (dim > 8) {
        expect(prefixScan?.spec).toMatch(new RegExp(`^pca,ivf\\d+@\\d+,flat@(\\d+),rerank@${dim}$`));
        expect(prefixScan?.note).toMatch(new RegExp(`D = ${dim}`));
      } else expect(skipped.join('\n')).toMatch(new RegExp(`issue 17's shape .*at D = ${dim} no ladder prefix`));
      // no build listed twice
      for (const [i, a] of specs.entries()) for (const b of specs.slice(i + 1)) expect(sameBuild(a.spec, b.spec, dim)).toBe(false);
    }
    // D = 64: a scan at 64 leaves nothing to re-rank (the old crash); the shape scans at 32
    expect(fixedSpecs(3000, 64).specs.map((s) => s.spec)).toContain(`pca,ivf${autoLists(3000)}@32,flat@32,rerank@64`);
  });

  it('tells the same build written two ways from different builds', () => {
    expect(sameBuild('flat', 'flat@16', 16)).toBe(true);
    expect(sameBuild('pca,ivf980@32,flat@64,rerank@784', 'pca, ivf980@32, flat@64, rerank@784', 784)).toBe(true);
    expect(sameBuild('pca,ivf980@32,flat@64,rerank@784', 'pca,ivf980@32,flat@64,rerank@784:f32', 784)).toBe(false);
    expect(sameBuild('ivf51@64,flat@64', 'pca,ivf51@64,flat@64', 64)).toBe(false);
  });

  it('names the offending value of a bad argument, before any work', () => {
    for (const [args, message] of [
      [['--dim', '6x'], '--dim must be a positive integer, got "6x"'],
      [['--data', 'mnist'], '--data must be fashion-mnist or flat, got "mnist"'],
      [['--compare', 'maybe'], '--compare must be true or false, got "maybe"'],
      [['--noise=0'], '--noise must be a positive number, got "0"'],
    ] as const) {
      const r = run(...args);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr.trim()).toBe(`auto-choice: ${message}`);
      expect(r.stdout).toBe('');
    }
  }, 60_000);

  it('runs at D = 64 with a valid fixed row, and sweeps auto\'s build again for a row with its spec', () => {
    // 2,000 vectors at D = 64: the fixed shape used to be flat@64,rerank@64 (invalid); auto chooses ivf@64,flat@64 here, rigid IVF-Flat's build
    const r = run('--data', 'flat', '--dim', '64', '--n', '2000', '--clusters', '20', '--queries', '30', '--cache', dir);
    expect(r.status, r.stderr).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => /^\| (auto|fixed|rigid)/.test(l));
    expect(rows.find((l) => l.startsWith('| fixed AdANNS-IVF | `pca,ivf51@32,flat@32,rerank@64`'))).toBeDefined();
    const autoSpec = /auto chose (\S+) /.exec(r.stdout)?.[1];
    expect(autoSpec).toBeDefined();
    // every row whose spec is auto's says it reused auto's build, and no build of that spec is logged twice
    const same = rows.filter((l) => l.includes(`| \`${autoSpec}\` |`));
    expect(same.length).toBeGreaterThanOrEqual(1);
    for (const l of same.filter((l) => !l.startsWith('| auto'))) expect(l).toMatch(/\(auto's build\) \|$/);
    expect(r.stderr.split(`building ${autoSpec}\n`).length - 1).toBe(1);
  }, 120_000);
});
