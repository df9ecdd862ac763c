import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { callKernel, MAX_ARGS, POOL_OPS, type PoolOp, type SimdKernels } from './kernels.js';
import type { WasmArena } from './wasm-memory.js';
import { packageScript, startWorker } from '../package-files.js';

/** Layout of one thread's control slot (Int32 words in a SharedArrayBuffer): `memory` is the arena memory the op runs on. */
export const CONTROL = { request: 0, done: 1, op: 2, failed: 3, memory: 4, args: 5, ints: 5 + MAX_ARGS } as const;
export const STOP = -1;

// Worker entry point: worker.js beside this file, or worker.ts when running from source (tests).
const WORKER = packageScript(import.meta.url, './worker');

/**
 * Threads sharing the arena's memories. The main thread is thread 0 and does
 * its own share; threads 1..n-1 are workers woken through Atomics on their
 * control slot, so a dispatch allocates nothing and costs a wake-up, not a
 * message. A call runs on one memory (the one holding its main operand):
 * every thread has a kernel instance per memory, made when a call first
 * runs there. Workers get memories opened after they started through a
 * message port they read synchronously when a call names a memory they lack.
 */
export class KernelPool {
  private readonly controls: Int32Array[] = [];
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  /** Memories (in arena order) posted to every worker so far. */
  private posted = 0;

  private constructor(
    private readonly arena: WasmArena,
    readonly threads: number,
  ) {}

  static async create(module: WebAssembly.Module, arena: WasmArena, threads: number): Promise<KernelPool> {
    const pool = new KernelPool(arena, threads);
    // control slots live outside the memories: a call may run on any of them
    const control = new SharedArrayBuffer(threads * CONTROL.ints * 4);
    const ready: Promise<void>[] = [];
    for (let t = 0; t < threads; t++) {
      pool.controls.push(new Int32Array(control, t * CONTROL.ints * 4, CONTROL.ints));
      if (t === 0) continue;
      const { port1, port2 } = new MessageChannel();
      port1.unref();
      pool.ports.push(port1);
      const worker = startWorker(WORKER, { workerData: { module, control, slot: t, memories: port2 }, transferList: [port2] });
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

  /**
   * Runs `op` with each thread's arguments on threads 0..count-1 and waits
   * for all of them, on arena memory `memory`; `kernels` is the calling
   * thread's instance on that memory.
   */
  run(op: PoolOp, count: number, memory: number, kernels: SimdKernels): void {
    const code = POOL_OPS.indexOf(op);
    if (count > 1) this.postMemories();
    for (let t = 1; t < count; t++) {
      const c = this.controls[t];
      c[CONTROL.op] = code;
      c[CONTROL.memory] = memory;
      Atomics.add(c, CONTROL.request, 1);
      Atomics.notify(c, CONTROL.request);
    }
    let error: unknown;
    try {
      callKernel(kernels, code, this.controls[0], CONTROL.args);
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

  /** Sends every worker the memories opened since the last call (queued in order; a worker takes them when it needs them). */
  private postMemories(): void {
    for (; this.posted < this.arena.memories.length; this.posted++) {
      for (const port of this.ports) port.postMessage(this.arena.memories[this.posted].memory);
    }
  }

  async dispose(): Promise<void> {
    for (let t = 1; t < this.threads; t++) {
      const c = this.controls[t];
      c[CONTROL.op] = STOP;
      Atomics.add(c, CONTROL.request, 1);
      Atomics.notify(c, CONTROL.request);
    }
    await Promise.all(this.workers.map((w) => w.terminate()));
    for (const port of this.ports) port.close();
  }
}
