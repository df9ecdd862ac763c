export type { Backend } from './backend.js';
export { METRICS, parseMetric, type Metric } from './metric.js';
export { checkPrefix, rowBlock, type RowBlock } from './rows.js';
export { TopK } from './topk.js';
export { CpuBackend } from './cpu/cpu-backend.js';
export { computeInvNorms } from './cpu/kernels.js';
export { BACKEND_NAMES, createBackend, type BackendName } from './create.js';
export { createRng, sampleIndices, type Rng } from './random.js';
