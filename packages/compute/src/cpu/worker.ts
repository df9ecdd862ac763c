import { parentPort, workerData } from 'node:worker_threads';
import { callKernel, instantiateKernels } from './kernels.js';
import { CONTROL, STOP } from './pool.js';

/**
 * A pool thread: instantiates the kernels on the shared memory, then sleeps on
 * its control slot and runs whatever op the main thread writes there.
 */
const { module, memory, slot } = workerData as { module: WebAssembly.Module; memory: WebAssembly.Memory; slot: number };
const kernels = instantiateKernels(module, memory);
const control = new Int32Array(memory.buffer, slot, CONTROL.ints);
parentPort!.postMessage('ready');
let seen = 0;
for (;;) {
  Atomics.wait(control, CONTROL.request, seen);
  const request = Atomics.load(control, CONTROL.request);
  if (request === seen) continue;
  seen = request;
  const op = control[CONTROL.op];
  if (op === STOP) break;
  try {
    callKernel(kernels, op, control, CONTROL.args);
    control[CONTROL.failed] = 0;
  } catch {
    control[CONTROL.failed] = 1;
  }
  Atomics.store(control, CONTROL.done, request);
  Atomics.notify(control, CONTROL.done);
}
