import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// Tests import the packages from source, but the kernels are compiled files the
// compute package loads from its dist/kernels: build them first (a no-op when
// simd.wasm is newer than kernels/cpu; WGSL is always copied, so edits show up).
export default function setup(): void {
  const script = fileURLToPath(new URL('../packages/compute/scripts/build-kernels.mjs', import.meta.url));
  const run = spawnSync(process.execPath, [script], { stdio: 'inherit' });
  if (run.status !== 0) throw new Error(`building the kernels failed (${run.signal ?? `exit ${run.status}`})`);
}
