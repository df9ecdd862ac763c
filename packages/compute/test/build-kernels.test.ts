import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { kernelSource } from '../src/webgpu/wgsl.js';

const script = fileURLToPath(new URL('../scripts/build-kernels.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'adanns-kernels-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('build-kernels', () => {
  const cpu = join(dir, 'cpu');
  const wgsl = join(dir, 'wgsl');
  const out = join(dir, 'out');
  mkdirSync(cpu);
  mkdirSync(wgsl);
  // a kernel file is named simd.ts like the real one; the flags are the real ones
  writeFileSync(join(cpu, 'simd.ts'), 'export function add(a: i32, b: i32): i32 { return a + b; }\n');
  writeFileSync(join(wgsl, 'prelude.wgsl'), '// prelude\n');
  writeFileSync(join(wgsl, 'one.wgsl'), '// one\n');
  const build = () => {
    const run = spawnSync(process.execPath, [script, '--cpu', cpu, '--wgsl', wgsl, '--out', out], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    return run.stdout;
  };

  it('compiles the WebAssembly only when a source is newer, and mirrors the WGSL', () => {
    expect(build()).toMatch(/compiled simd\.wasm/);
    const wasm = readFileSync(join(out, 'simd.wasm'));
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(wasm), { env: { memory: new WebAssembly.Memory({ initial: 64, maximum: 65536, shared: true }) } });
    expect((exports.add as (a: number, b: number) => number)(2, 3)).toBe(5);
    expect(readdirSync(join(out, 'wgsl')).sort()).toEqual(['one.wgsl', 'prelude.wgsl']);

    expect(build()).toMatch(/up to date/);

    // a source edited after the last compile: the .wasm is older than it
    const earlier = new Date(Date.now() - 60_000);
    utimesSync(join(out, 'simd.wasm'), earlier, earlier);
    expect(build()).toMatch(/compiled simd\.wasm/);

    rmSync(join(wgsl, 'one.wgsl'));
    writeFileSync(join(wgsl, 'two.wgsl'), '// two\n');
    expect(build()).toMatch(/up to date/);
    expect(readdirSync(join(out, 'wgsl')).sort()).toEqual(['prelude.wgsl', 'two.wgsl']);
    expect(existsSync(join(out, 'simd.wasm.stamp.json'))).toBe(true);
  }, 60_000);

  it('fails with the compiler error when the source does not compile', () => {
    writeFileSync(join(cpu, 'simd.ts'), 'export function add(a: i32): i32 { return a + undefinedName; }\n');
    const run = spawnSync(process.execPath, [script, '--cpu', cpu, '--wgsl', wgsl, '--out', out], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/asc failed/);
    // a failed compile leaves no stamp, so the next build tries again
    expect(existsSync(join(out, 'simd.wasm.stamp.json'))).toBe(false);
  }, 60_000);
});

describe('WGSL kernels', () => {
  const kernels = readdirSync(fileURLToPath(new URL('../../../kernels/wgsl/', import.meta.url)))
    .filter((f) => f.endsWith('.wgsl') && f !== 'prelude.wgsl')
    .map((f) => f.slice(0, -'.wgsl'.length));

  it.each(kernels)('%s is composed behind the shared prelude and binds nothing at binding 0 itself', (kernel) => {
    const source = kernelSource(kernel);
    const prelude = readFileSync(fileURLToPath(new URL('../../../kernels/wgsl/prelude.wgsl', import.meta.url)), 'utf8');
    expect(source.startsWith(prelude)).toBe(true);
    const own = source.slice(prelude.length);
    expect(own).toMatch(/struct Params/);
    expect(own).not.toMatch(/@binding\(0\)/);
  });
});
