import { receiveMessageOnPort, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { callKernel, instantiateKernels, type SimdKernels } from './kernels.js';
import { CONTROL, STOP } from './pool.js';

/**
 * A pool thread: sleeps on its control slot and runs whatever op the main
 * thread writes there, on the arena memory the slot names. Memories arrive in
 * order on `memories` (posted before the call that first needs them) and get
 * a kernel instance when a call first runs on them.
 */
const { module, control: buffer, slot, memories: port } = workerData as { module: WebAssembly.Module; control: SharedArrayBuffer; slot: number; memories: MessagePort };
const control = new Int32Array(buffer, slot * CONTROL.ints * 4, CONTROL.ints);
const memories: WebAssembly.Memory[] = [];
const instances: SimdKernels[] = [];

function kernelsOn(memory: number): SimdKernels {
  while (memories.length <= memory) {
    const message = receiveMessageOnPort(port);
    if (!message) throw new Error(`kernel worker: memory ${memory} was never sent`);
    memories.push(message.message as WebAssembly.Memory);
  }
  return (instances[memory] ??= instantiateKernels(module, memories[memory]));
}

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
    callKernel(kernelsOn(control[CONTROL.memory]), op, control, CONTROL.args);
    control[CONTROL.failed] = 0;
  } catch {
    control[CONTROL.failed] = 1;
  }
  Atomics.store(control, CONTROL.done, request);
  Atomics.notify(control, CONTROL.done);
}
