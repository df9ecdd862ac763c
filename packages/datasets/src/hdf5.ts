import { existsSync } from 'node:fs';

/**
 * ann-benchmarks HDF5 files: datasets `train` (base), `test` (queries),
 * `neighbors` (ground-truth ids) and `distances`, with a `distance` attribute
 * naming the metric. Read through h5wasm (HDF5 compiled to WebAssembly).
 */
export interface Hdf5Dataset {
  values: Float32Array | Int32Array;
  shape: number[];
}

type H5Module = typeof import('h5wasm/node');
let h5: Promise<H5Module> | undefined;

async function h5wasm(): Promise<H5Module> {
  h5 ??= import('h5wasm/node').then(async (m) => {
    await m.ready;
    return m;
  });
  return h5;
}

export async function readHdf5Dataset(path: string, name: string): Promise<Hdf5Dataset> {
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  const lib = await h5wasm();
  let file: InstanceType<H5Module['File']>;
  try {
    file = new lib.File(path, 'r');
  } catch (e) {
    throw new Error(`${path}: not a readable HDF5 file (${(e as Error).message})`);
  }
  try {
    const node = file.get(name);
    if (!node || !(node instanceof lib.Dataset)) {
      throw new Error(`${path}: no dataset "${name}" (has ${file.keys().join(', ')})`);
    }
    const shape = node.shape ?? [];
    if (shape.length !== 2) throw new Error(`${path}: dataset "${name}" has shape (${shape.join(', ')}), expected 2 dimensions`);
    const raw = node.value as unknown;
    let values: Float32Array | Int32Array;
    if (raw instanceof Float32Array || raw instanceof Int32Array) values = raw;
    else if (raw instanceof Float64Array) values = Float32Array.from(raw);
    else if (raw instanceof BigInt64Array) values = Int32Array.from(raw, (v) => Number(v));
    else if (ArrayBuffer.isView(raw)) values = Int32Array.from(raw as unknown as ArrayLike<number>);
    else throw new Error(`${path}: dataset "${name}" has an unsupported type ${node.dtype}`);
    return { values, shape };
  } finally {
    file.close();
  }
}

/** The metric an ann-benchmarks file declares (`angular` -> cosine, `euclidean` -> l2), if any. */
export async function readHdf5Metric(path: string): Promise<string | undefined> {
  const lib = await h5wasm();
  const file = new lib.File(path, 'r');
  try {
    const value = file.attrs['distance']?.value;
    if (value === 'angular') return 'cosine';
    if (value === 'euclidean') return 'l2';
    if (value === 'dot') return 'ip';
    return undefined;
  } finally {
    file.close();
  }
}
