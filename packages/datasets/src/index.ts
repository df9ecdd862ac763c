export { readHdf5Dataset, readHdf5Metric, type Hdf5Dataset } from './hdf5.js';
export { FASHION_MNIST_DIR, readFashionMnist, readIdx } from './idx.js';
export { float16ToFloat32, float32ToFloat16, createNpyWriter, readNpy, readNpyHeader, writeNpy, type NpyArray, type NpyHeader } from './npy.js';
export { loadIds, loadVectors, openVectors, SOURCE_FORMS } from './source.js';
export { checkSynthetic, generateSynthetic, syntheticChunks, syntheticName, type SyntheticChunk, type SyntheticOptions } from './synthetic.js';
export type { IdMatrix, VectorSet } from './types.js';
export { readBvecs, readFvecs, readIvecs, writeBvecs, writeFvecs, writeIvecs } from './vecs.js';
export { arrowStream, DEFAULT_ARROW_COLUMN } from './arrow.js';
export { fixedRowStream, limitStream, memoryStream, readAll, readRowsByScan, type VectorChunk, type VectorStream } from './stream.js';
