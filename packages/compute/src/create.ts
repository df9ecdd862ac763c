import type { Backend } from './backend.js';
import { WasmSimdBackend } from './cpu/wasm-simd-backend.js';
import { ReferenceBackend } from './reference/reference-backend.js';
import { probeHardwareWebGpu } from './webgpu/probe.js';
import { WebGpuBackend } from './webgpu/webgpu-backend.js';

export const BACKEND_NAMES = ['auto', 'cpu', 'webgpu', 'reference'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface BackendOptions {
  /** CPU threads (default ADANNS_THREADS, else all cores). */
  threads?: number;
  /** CPU: most bytes one WebAssembly memory holds (default ADANNS_WASM_MEMORY_BYTES, else 4 GiB); the arena opens more memories past it. */
  maxMemoryBytes?: number;
  /** Where `auto` reports what it chose (and why). */
  log?: (line: string) => void;
}

/**
 * Creates a backend by name: `cpu` is the WebAssembly SIMD backend with its
 * thread pool, `webgpu` the WGSL kernels through Dawn (any adapter, software
 * ones included), `reference` the plain TypeScript kernels every other
 * backend is tested against. `auto` takes WebGPU only on a hardware adapter
 * (a software rasteriser is slower than the CPU backend), else `cpu`.
 */
export async function createBackend(name: string = 'auto', options: BackendOptions = {}): Promise<Backend> {
  switch (name) {
    case 'auto': {
      const probe = probeHardwareWebGpu();
      if (probe.hardware) {
        options.log?.(`backend: webgpu on ${probe.why}`);
        return WebGpuBackend.create();
      }
      const cpu = await WasmSimdBackend.create(options);
      options.log?.(`backend: cpu (WebAssembly SIMD, ${cpu.threads} threads); ${probe.why}`);
      return cpu;
    }
    case 'cpu':
      return WasmSimdBackend.create(options);
    case 'webgpu':
      return WebGpuBackend.create();
    case 'reference':
      return new ReferenceBackend();
    default:
      throw new Error(`unknown backend "${name}" (expected one of ${BACKEND_NAMES.join(', ')})`);
  }
}
