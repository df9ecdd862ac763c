export { readHdf5Dataset, readHdf5Metric, type Hdf5Dataset } from './hdf5.js';
export { FASHION_MNIST_DIR, readFashionMnist, readIdx } from './idx.js';
export { float16ToFloat32, float32ToFloat16, readNpy, writeNpy, type NpyArray } from './npy.js';
export { loadIds, loadVectors, SOURCE_FORMS } from './source.js';
export { generateSynthetic, type SyntheticOptions } from './synthetic.js';
export type { IdMatrix, VectorSet } from './types.js';
export { readBvecs, readFvecs, readIvecs, writeBvecs, writeFvecs, writeIvecs } from './vecs.js';
