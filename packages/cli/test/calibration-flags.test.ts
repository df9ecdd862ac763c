import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// adanns build --calibration-queries / --calibration-k, run as users run them (see cli.test.ts).
const bin = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'adanns-cli-cal-'));
const base = 'synthetic:n=3000,dim=32,clusters=30,queries=50,seed=5';
const queries = `${base},part=queries`;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function adanns(...args: string[]) {
  const r = spawnSync(process.execPath, [...process.execArgv, bin, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('adanns build calibration flags', () => {
  it('calibrates on the queries given, at the ks given', () => {
    const built = adanns('build', '--data', base, '--metric', 'cosine', '--spec', 'pca,ivf30@8,flat@16,rerank@32', '--out', join(dir, 'given'), '--calibration-queries', queries, '--calibration-k', '10,5', '--calibration-seconds', '30');
    expect(built.stderr).not.toMatch(/error/i);
    expect(built.code).toBe(0);
    expect(built.stdout).toMatch(/calibrated at k = 5, 10 on 50 given queries/);
    const held = adanns('build', '--data', base, '--metric', 'cosine', '--spec', 'pca,ivf30@8,flat@16,rerank@32', '--out', join(dir, 'held'), '--calibration-k', '10', '--calibration-seconds', '30');
    expect(held.stdout).toMatch(/calibrated at k = 10 on 300 held-out vectors \(never trained on\)/);
  }, 240_000);

  it('names a bad value', () => {
    const bad = adanns('build', '--data', base, '--metric', 'cosine', '--out', join(dir, 'x'), '--calibration-k', '1,x');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--calibration-k takes k values from 1 to 10000 separated by commas \(e.g. 1,10,100\), got "x" in "1,x"/);
    const dims = adanns('build', '--data', base, '--metric', 'cosine', '--out', join(dir, 'x'), '--calibration-queries', 'synthetic:n=10,dim=8');
    expect(dims.code).toBe(2);
    expect(dims.stderr).toMatch(/--calibration-queries synthetic:n=10,dim=8 has dimension 8, --data synthetic.* has 32/);
  });
});
