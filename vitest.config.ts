import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

// Tests import the workspace packages from source, so they run without a build.
export default defineConfig({
  resolve: {
    alias: {
      '@adanns/compute': src('compute'),
      '@adanns/core': src('core'),
      '@adanns/datasets': src('datasets'),
      '@adanns/store': src('store'),
      '@adanns/client': src('client'),
      '@adanns/api': fileURLToPath(new URL('./services/api/src/index.ts', import.meta.url)),
      '@adanns/cli': src('cli'),
      '@adanns/benchmarks': fileURLToPath(new URL('./benchmarks/src/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'benchmarks/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
