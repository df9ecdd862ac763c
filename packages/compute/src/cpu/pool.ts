import { Worker } from 'node:worker_threads';
import { callKernel, MAX_ARGS, POOL_OPS, type PoolOp, type SimdKernels } from './kernels.js';
import type { WasmMemory } from './wasm-memory.js';

/** Layout of one thread's control slot (Int32 words in shared memory). */
export const CONTROL = { request: 0, done: 1, op: 2, failed: 3, args: 4, ints: 4 + MAX_ARGS } as const;
export const STOP = -1;

// Worker entry point: the compiled worker.js (tests run from source, so both
// src/cpu and dist/cpu resolve to the built file).
const WORKER_URL = new URL('../../dist/cpu/worker.js', import.meta.url);

/**
 * Threads sharing the kernels' memory. The main thread is thread 0 and does
 * its own share; threads 1..n-1 are workers woken through Atomics on their
 * control slot, so a dispatch allocates nothing and costs a wake-up, not a
 * message.
 */
export class KernelPool {
  private readonly controls: Int32Array[] = [];
  private readonly workers: Worker[] = [];

  private constructor(
    private readonly kernels: SimdKernels,
    readonly threads: number,
  ) {}

  static async create(module: WebAssembly.Module, memory: WasmMemory, kernels: SimdKernels, threads: number): Promise<KernelPool> {
    const pool = new KernelPool(kernels, threads);
    const ready: Promise<void>[] = [];
    for (let t = 0; t < threads; t++) {
      const slot = memory.allocate(CONTROL.ints * 4);
      if (slot === undefined) throw new Error('kernel pool: no memory for control slots');
      pool.controls.push(new Int32Array(memory.memory.buffer, slot, CONTROL.ints));
      if (t === 0) continue;
      const worker = new Worker(WORKER_URL, { workerData: { module, memory: memory.memory, slot } });
      worker.unref();
      pool.workers.push(worker);
      ready.push(
        new Promise((resolve, reject) => {
          worker.once('message', () => resolve());
          worker.once('error', (e) => reject(new Error(`kernel worker failed to start: ${e.message}`)));
        }),
      );
    }
    await Promise.all(ready);
    return pool;
  }

  /** Argument words of thread t's slot, to fill before run(). */
  args(t: number): Int32Array {
    return this.controls[t].subarray(CONTROL.args);
  }

  /** Runs `op` with each thread's arguments on threads 0..count-1 and waits for all of them. */
  run(op: PoolOp, count: number): void {
    const code = POOL_OPS.indexOf(op);
    for (let t = 1; t < count; t++) {
      const c = this.controls[t];
      c[CONTROL.op] = code;
      Atomics.add(c, CONTROL.request, 1);
      Atomics.notify(c, CONTROL.request);
    }
    let error: unknown;
    try {
      callKernel(this.kernels, code, this.controls[0], CONTROL.args);
    } catch (e) {
      error = e;
    }
    let failed = false;
    for (let t = 1; t < count; t++) {
      const c = this.controls[t];
      const request = Atomics.load(c, CONTROL.request);
      for (let done = Atomics.load(c, CONTROL.done); done !== request; done = Atomics.load(c, CONTROL.done)) Atomics.wait(c, CONTROL.done, done);
      failed ||= c[CONTROL.failed] !== 0;
    }
    if (error) throw error;
    if (failed) throw new Error(`kernel ${op} failed on a worker thread`);
  }

  async dispose(): Promise<void> {
    for (let t = 1; t < this.threads; t++) {
      const c = this.controls[t];
      c[CONTROL.op] = STOP;
      Atomics.add(c, CONTROL.request, 1);
      Atomics.notify(c, CONTROL.request);
    }
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
