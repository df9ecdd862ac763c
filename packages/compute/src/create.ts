import type { Backend } from './backend.js';
import { CpuBackend } from './cpu/cpu-backend.js';

export const BACKEND_NAMES = ['cpu', 'auto'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/**
 * Creates a backend by name. `auto` picks the fastest backend available on
 * this machine; today that is the CPU backend (WASM SIMD and WebGPU backends
 * register here when they land).
 */
export async function createBackend(name: string = 'auto'): Promise<Backend> {
  switch (name) {
    case 'cpu':
    case 'auto':
      return new CpuBackend();
    default:
      throw new Error(`unknown backend "${name}" (expected one of ${BACKEND_NAMES.join(', ')})`);
  }
}
