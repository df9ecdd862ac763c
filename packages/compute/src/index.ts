export type { Backend } from './backend.js';
export { allocateLike, heapArena, type ArenaArray, type ArrayArena } from './arena.js';
export { METRICS, parseMetric, type Metric } from './metric.js';
export { checkPrefix, gatherRows, rowBlock, type RowBlock, type RowGroups } from './rows.js';
export { checkCoded, codedInvNorms, codedRows, decodedBlock, decodeRows, encodedBytes, floatToHalf, halfToFloatTable, readHalves, ROW_ENCODINGS, writeHalves, type CodedRows, type RowEncoding } from './coded.js';
export { TopK } from './topk.js';
export { allowedCount, allowedRows, checkMask, maskAllows, maskCodes, maskCoded, maskFastScanCodes, maskFastScanLists, maskListSet, maskRows } from './mask.js';
export { checkListRescore, checkListScan, checkPqScan, composedPqScanListsTopK, composedRescoreListsTopK, composedScanListsTopK, groupQueriesByList, listBytesPerElement, listCodeBytes, pqListBiases, PQ_TABLE, type ListCandidates, type ListSet, type PqQuantizer } from './lists.js';
export { blockedBytes, blockLayoutWord, checkBlockLayout, moveBlockedRow, readBlockedRow, unblockRows, writeBlockedRow, type BlockLayout } from './blocked.js';
export { checkFastScan, checkFastScanLists, composedFastScanListsTopK, type FastScanLists, type FastScanTables, FASTSCAN_BLOCK, FASTSCAN_CENTROIDS, FASTSCAN_RUN, fastScanBytes, fastScanCodeBytes, fastScanNibble, fastScanProbeTable, fastScanScore, moveFastScan, packFastScan, quantizeFastScanTable, unpackFastScan } from './fastscan.js';
export { ReferenceBackend } from './reference/reference-backend.js';
export { computeInvNorms } from './reference/kernels.js';
export { WasmSimdBackend, defaultThreads, type RescoreOrder, type WasmSimdBackendOptions } from './cpu/wasm-simd-backend.js';
export { WasmArena, type WasmArenaOptions, type WasmLocation } from './cpu/wasm-memory.js';
export { BACKEND_NAMES, createBackend, type BackendName, type BackendOptions } from './create.js';
export { WebGpuBackend } from './webgpu/webgpu-backend.js';
// The seeded RNG lives in @adanns/random (datasets uses it without the compute stack).
export { createRng, sampleIndices, type Rng } from '@adanns/random';
export { KERNELS_DIR, packageScript, startWorker, type PackageScript } from './package-files.js';
