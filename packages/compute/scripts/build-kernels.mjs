#!/usr/bin/env node
// Puts the kernels @adanns/compute ships into its dist/kernels (docs/ARCHITECTURE.md, "Kernels"):
// - simd.wasm, compiled from kernels/cpu by AssemblyScript, only when it is older than its
//   sources or was built with other flags or another compiler (a cold compile takes ~25 s,
//   so `npm start` and the test setup skip it when nothing changed);
// - wgsl/*.wgsl, copied from kernels/wgsl (cheap, so always; composed with prelude.wgsl at load time).
// Usage: node packages/compute/scripts/build-kernels.mjs [--force] [--cpu DIR --wgsl DIR --out DIR]
// (the folders default to the repository's kernels/cpu, kernels/wgsl and this package's dist/kernels)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({ options: { force: { type: 'boolean' }, cpu: { type: 'string' }, wgsl: { type: 'string' }, out: { type: 'string' } } });
const repo = fileURLToPath(new URL('../../../', import.meta.url));
const dir = (given, fallback) => (given ? `${resolve(given)}/` : fallback);
const out = dir(o.out, fileURLToPath(new URL('../dist/kernels/', import.meta.url)));
const cpuDir = dir(o.cpu, `${repo}kernels/cpu/`);
const wgslDir = dir(o.wgsl, `${repo}kernels/wgsl/`);
const wasm = `${out}simd.wasm`;
const stampFile = `${out}simd.wasm.stamp.json`;

// The memory flags must match packages/compute/src/cpu/wasm-memory.ts (imported, shared, 64 KiB pages;
// an initial size of one page, so the arena's memories may be as small as one page, as tests make them).
const ASC_FLAGS = ['-O3', '--runtime', 'stub', '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', '65536', '--enable', 'simd', '--enable', 'threads', '--noAssert'];

const ascPackage = JSON.parse(readFileSync(`${repo}node_modules/assemblyscript/package.json`, 'utf8'));
const sources = readdirSync(cpuDir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => `${cpuDir}${f}`);
const stamp = JSON.stringify({ asc: ascPackage.version, flags: ASC_FLAGS, sources });

function upToDate() {
  if (o.force || !existsSync(wasm) || !existsSync(stampFile)) return false;
  if (readFileSync(stampFile, 'utf8') !== stamp) return false;
  const built = statSync(wasm).mtimeMs;
  return sources.every((f) => statSync(f).mtimeMs <= built);
}

mkdirSync(out, { recursive: true });
if (upToDate()) {
  console.log('kernels: simd.wasm is up to date');
} else {
  const started = Date.now();
  rmSync(stampFile, { force: true });
  // compiled beside and renamed into place, so a process loading simd.wasm meanwhile never reads half a file
  const tmp = `${wasm}.tmp-${process.pid}.wasm`;
  const asc = spawnSync(process.execPath, [`${repo}node_modules/assemblyscript/bin/asc.js`, `${cpuDir}simd.ts`, '-o', tmp, ...ASC_FLAGS], { stdio: 'inherit', cwd: repo });
  if (asc.status !== 0) {
    rmSync(tmp, { force: true });
    console.error(`kernels: asc failed (${asc.signal ?? `exit ${asc.status}`})`);
    process.exit(1);
  }
  renameSync(tmp, wasm);
  writeFileSync(stampFile, stamp);
  console.log(`kernels: compiled simd.wasm in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
// Mirrored file by file (each replaced by rename, stale ones removed), never by deleting the
// folder, so tests or a service reading the kernels meanwhile always find every file whole.
const wgslOut = `${out}wgsl/`;
mkdirSync(wgslOut, { recursive: true });
const wgslFiles = readdirSync(wgslDir).filter((f) => f.endsWith('.wgsl'));
for (const file of wgslFiles) {
  const text = readFileSync(`${wgslDir}${file}`);
  if (existsSync(`${wgslOut}${file}`) && readFileSync(`${wgslOut}${file}`).equals(text)) continue;
  writeFileSync(`${wgslOut}${file}.tmp-${process.pid}`, text);
  renameSync(`${wgslOut}${file}.tmp-${process.pid}`, `${wgslOut}${file}`);
}
for (const file of readdirSync(wgslOut)) if (!wgslFiles.includes(file) && file.endsWith('.wgsl')) rmSync(`${wgslOut}${file}`);
