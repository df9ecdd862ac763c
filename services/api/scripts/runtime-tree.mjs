#!/usr/bin/env node
/**
 * Lays out the service's runtime tree in OUT (what the Docker image's
 * runtime stage copies): the root manifest and lockfile, every workspace's
 * a root manifest listing only the service's workspaces (services/api and
 * the workspaces it depends on), their package.json and built dist/, then
 * their production dependencies at the lockfile's versions (`npm install
 * --omit=dev --no-save`): no benchmarks, CLI, data-set readers, dev tools or
 * their native builds.
 *
 *   node services/api/scripts/runtime-tree.mjs OUT [--no-install]
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const out = process.argv[2];
if (!out) {
  console.error('usage: runtime-tree.mjs OUT [--no-install]');
  process.exit(2);
}
const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const workspaces = new Map();
for (const dir of rootManifest.workspaces) {
  const manifest = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8'));
  workspaces.set(manifest.name, { dir, manifest });
}
// the workspaces the service loads: @adanns/api and its workspace dependencies, transitively
const needed = new Set();
const visit = (name) => {
  if (needed.has(name) || !workspaces.has(name)) return;
  needed.add(name);
  for (const dep of Object.keys(workspaces.get(name).manifest.dependencies ?? {})) visit(dep);
};
visit('@adanns/api');

mkdirSync(out, { recursive: true });
cpSync(join(root, 'package-lock.json'), join(out, 'package-lock.json'));
// only the service's workspaces: npm then installs (at the lockfile's versions) and keeps nothing else
const trimmed = { ...rootManifest, workspaces: rootManifest.workspaces.filter((dir) => [...needed].some((name) => workspaces.get(name).dir === dir)) };
delete trimmed.devDependencies;
writeFileSync(join(out, 'package.json'), `${JSON.stringify(trimmed, null, 2)}\n`);
for (const [name, { dir }] of workspaces) {
  if (!needed.has(name)) continue;
  mkdirSync(join(out, dir), { recursive: true });
  cpSync(join(root, dir, 'package.json'), join(out, dir, 'package.json'));
  if (!existsSync(join(root, dir, 'dist'))) throw new Error(`${dir}/dist is missing: build first (npm run build)`);
  cpSync(join(root, dir, 'dist'), join(out, dir, 'dist'), { recursive: true, filter: (src) => !src.endsWith('.tsbuildinfo') && !src.endsWith('.map') });
}
writeFileSync(join(out, 'workspaces.txt'), `${[...needed].sort().join('\n')}\n`);
if (!process.argv.includes('--no-install')) {
  // install, not ci: the trimmed manifest no longer matches the whole lockfile, whose versions still apply
  execFileSync('npm', ['install', '--omit=dev', '--no-save', '--no-audit', '--no-fund'], { cwd: out, stdio: 'inherit' });
}
console.log(`runtime tree in ${out}: ${[...needed].sort().join(', ')}`);
