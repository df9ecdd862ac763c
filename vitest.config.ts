import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

// Tests import the workspace packages from source, so they run without a build.
export default defineConfig({
  resolve: {
    alias: {
      '@adanns/random': src('random'),
      '@adanns/wire': src('wire'),
      '@adanns/compute': src('compute'),
      '@adanns/core': src('core'),
      '@adanns/datasets': src('datasets'),
      '@adanns/store': src('store'),
      '@adanns/cluster': src('cluster'),
      '@adanns/client': src('client'),
      '@adanns/api': fileURLToPath(new URL('./services/api/src/index.ts', import.meta.url)),
      '@adanns/console': fileURLToPath(new URL('./services/console/src/index.ts', import.meta.url)),
      '@adanns/cli-kit': src('cli-kit'),
      '@adanns/benchmarks': fileURLToPath(new URL('./benchmarks/src/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'benchmarks/test/**/*.test.ts', 'tools/test/**/*.test.ts'],
    globalSetup: ['tools/vitest-setup.ts'],
    // Worker threads and child processes the packages start (kernel pool, probes,
    // the store's build worker) inherit these: tsx loads their .ts sources, and the
    // adanns-source export condition resolves @adanns/* to src like the aliases above.
    execArgv: ['--import', 'tsx', '--conditions', 'adanns-source'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
