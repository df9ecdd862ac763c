import type { Backend } from './backend.js';
import { WasmSimdBackend } from './cpu/wasm-simd-backend.js';
import { ReferenceBackend } from './reference/reference-backend.js';

export const BACKEND_NAMES = ['auto', 'cpu', 'reference'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface BackendOptions {
  /** CPU threads (default ADANNS_THREADS, else all cores). */
  threads?: number;
}

/**
 * Creates a backend by name: `cpu` is the WebAssembly SIMD backend with its
 * thread pool, `reference` the plain TypeScript kernels every other backend
 * is tested against, `auto` the fastest available (today `cpu`).
 */
export async function createBackend(name: string = 'auto', options: BackendOptions = {}): Promise<Backend> {
  switch (name) {
    case 'auto':
    case 'cpu':
      return WasmSimdBackend.create(options);
    case 'reference':
      return new ReferenceBackend();
    default:
      throw new Error(`unknown backend "${name}" (expected one of ${BACKEND_NAMES.join(', ')})`);
  }
}
