import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import {
  FASHION_MNIST_DIR,
  float16ToFloat32,
  float32ToFloat16,
  generateSynthetic,
  loadIds,
  loadVectors,
  readBvecs,
  readFashionMnist,
  readFvecs,
  readIvecs,
  readNpy,
  writeBvecs,
  writeFvecs,
  writeIvecs,
  writeNpy,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'adanns-readers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

describe('fvecs / ivecs / bvecs', () => {
  it('round-trip', () => {
    const f = Float32Array.from({ length: 15 }, (_, i) => i * 0.5 - 3);
    writeFvecs(at('a.fvecs'), f, 5, 3);
    expect(readFvecs(at('a.fvecs'))).toEqual({ data: f, rows: 5, dim: 3 });
    const ids = Int32Array.from({ length: 12 }, (_, i) => i * 7);
    writeIvecs(at('a.ivecs'), ids, 3, 4);
    expect(readIvecs(at('a.ivecs'))).toEqual({ ids, rows: 3, k: 4 });
    const bytes = Uint8Array.from({ length: 8 }, (_, i) => i * 30);
    writeBvecs(at('a.bvecs'), bytes, 2, 4);
    expect(Array.from(readBvecs(at('a.bvecs')).data)).toEqual(Array.from(bytes));
  });

  it('refuses truncated files and inconsistent rows', () => {
    writeFvecs(at('t.fvecs'), new Float32Array(12), 3, 4);
    writeFileSync(at('t2.fvecs'), readFileSync(at('t.fvecs')).subarray(0, 50));
    expect(() => readFvecs(at('t2.fvecs'))).toThrow(/truncated fvecs file/);
    const bad = Buffer.from(readFileSync(at('t.fvecs')));
    bad.writeInt32LE(5, 20); // second row header says 5
    writeFileSync(at('t3.fvecs'), bad);
    expect(() => readFvecs(at('t3.fvecs'))).toThrow(/row 1 declares dimension 5/);
    writeFileSync(at('empty.fvecs'), '');
    expect(() => readFvecs(at('empty.fvecs'))).toThrow(/empty or truncated/);
  });
});

describe('npy', () => {
  it('round-trips float32, float16, uint8, uint16, int32', () => {
    const values = [0, 1, -2.5, 0.333, 65504, -0.0001];
    writeNpy(at('f4.npy'), values, [2, 3], '<f4');
    expect(readNpy(at('f4.npy'))).toMatchObject({ shape: [2, 3], descr: '<f4' });
    expect(Array.from(readNpy(at('f4.npy')).values)).toEqual(Array.from(Float32Array.from(values)));
    writeNpy(at('f2.npy'), values, [3, 2], '<f2');
    const half = readNpy(at('f2.npy'));
    values.forEach((v, i) => expect(Math.abs(half.values[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 1e-3 + 1e-4));
    writeNpy(at('u1.npy'), [0, 7, 255], [3], '|u1');
    expect(Array.from(readNpy(at('u1.npy')).values)).toEqual([0, 7, 255]);
    writeNpy(at('u2.npy'), [0, 7, 65535], [3], '<u2');
    expect(Array.from(readNpy(at('u2.npy')).values)).toEqual([0, 7, 65535]);
    writeNpy(at('i4.npy'), [-1, 2, 3, 4], [2, 2], '<i4');
    expect(readNpy(at('i4.npy')).values).toBeInstanceOf(Int32Array);
  });

  it('converts float16 exactly for representable values', () => {
    for (const v of [0, 1, -1, 0.5, 2048, 65504, 2 ** -14, 2 ** -24]) expect(float16ToFloat32(float32ToFloat16(v))).toBe(v);
    expect(float16ToFloat32(0x7c00)).toBe(Infinity);
  });

  it('refuses bad magic, truncation and unsupported dtypes', () => {
    writeFileSync(at('bad.npy'), 'not numpy at all');
    expect(() => readNpy(at('bad.npy'))).toThrow(/not a .npy file/);
    writeNpy(at('cut.npy'), [1, 2, 3, 4], [2, 2], '<f4');
    writeFileSync(at('cut.npy'), readFileSync(at('cut.npy')).subarray(0, -3));
    expect(() => readNpy(at('cut.npy'))).toThrow(/truncated .npy data/);
    const text = readFileSync(at('f4.npy')).toString('latin1').replace("'<f4'", "'>f4'");
    writeFileSync(at('be.npy'), Buffer.from(text, 'latin1'));
    expect(() => readNpy(at('be.npy'))).toThrow(/dtype >f4 is not supported/);
  });
});

describe('ann-benchmarks HDF5', () => {
  it('reads train, test and neighbors written by h5wasm, and names missing datasets', async () => {
    const h5 = await import('h5wasm/node');
    await h5.ready;
    const path = at('tiny.hdf5');
    const f = new h5.File(path, 'w');
    f.create_dataset({ name: 'train', data: Float32Array.from({ length: 12 }, (_, i) => i), shape: [4, 3], dtype: '<f' });
    f.create_dataset({ name: 'test', data: Float32Array.from([1, 2, 3]), shape: [1, 3], dtype: '<f' });
    f.create_dataset({ name: 'neighbors', data: Int32Array.from([3, 2]), shape: [1, 2], dtype: '<i' });
    f.close();
    const train = await loadVectors(`${path}:train`);
    expect(train.rows).toBe(4);
    expect(train.dim).toBe(3);
    expect(Array.from(train.data)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect((await loadVectors(`${path}:test`)).rows).toBe(1);
    expect(await loadIds(`${path}:neighbors`)).toEqual({ ids: Int32Array.from([3, 2]), rows: 1, k: 2 });
    await expect(loadVectors(`${path}:validation`)).rejects.toThrow(/name the HDF5 dataset/);
    await expect(loadIds(`${path}:distances`)).rejects.toThrow(/no dataset "distances"/);
  });
});

describe('Fashion-MNIST IDX', () => {
  it('reads gzipped IDX images and labels from a directory', () => {
    const idx = (magic: number[], dims: number[], body: number[]) => {
      const h = Buffer.alloc(4 + 4 * dims.length);
      h.set(magic);
      dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
      return gzipSync(Buffer.concat([h, Buffer.from(body)]));
    };
    const d = at('fm');
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d);
    writeFileSync(join(d, 't10k-images-idx3-ubyte.gz'), idx([0, 0, 8, 3], [2, 2, 2], [0, 255, 51, 102, 1, 2, 3, 4]));
    writeFileSync(join(d, 't10k-labels-idx1-ubyte.gz'), idx([0, 0, 8, 1], [2], [7, 9]));
    const set = readFashionMnist('test', d);
    expect(set).toMatchObject({ rows: 2, dim: 4 });
    expect(Array.from(set.labels!)).toEqual([7, 9]);
    expect(set.data[1]).toBe(1);
    expect(set.data[2]).toBeCloseTo(0.2, 6);
    expect(() => readFashionMnist('train', d)).toThrow(/train images-idx3 not found in .*apt-get install dataset-fashion-mnist/);
  });

  it.runIf(existsSync(join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz')))('reads the Debian package files (10,000 x 784 test split)', () => {
    const set = readFashionMnist('test');
    expect(set).toMatchObject({ rows: 10000, dim: 784 });
    expect(set.labels!.every((l) => l >= 0 && l <= 9)).toBe(true);
  });
});

describe('synthetic Matryoshka generator', () => {
  it('is deterministic per seed, labelled, and puts most variance in the first coordinates', () => {
    const a = generateSynthetic({ n: 2000, dim: 64, queries: 10, seed: 3 });
    const b = generateSynthetic({ n: 2000, dim: 64, queries: 10, seed: 3 });
    const c = generateSynthetic({ n: 2000, dim: 64, queries: 10, seed: 4 });
    expect(a.base.data).toEqual(b.base.data);
    expect(a.base.data).not.toEqual(c.base.data);
    expect(a.base.labels!.length).toBe(2000);
    expect(a.queries.rows).toBe(10);
    const energy = (from: number, to: number) => {
      let s = 0;
      for (let r = 0; r < 2000; r++) for (let i = from; i < to; i++) s += a.base.data[r * 64 + i] ** 2;
      return s;
    };
    expect(energy(0, 8)).toBeGreaterThan(energy(32, 64));
  });

  it('rejects bad parameters', () => {
    expect(() => generateSynthetic({ n: 0, dim: 4 })).toThrow(/n must be a positive integer/);
  });
});

describe('loadVectors sources', () => {
  it('resolves synthetic specs, applies limits and names bad forms', async () => {
    const s = await loadVectors('synthetic:n=300,dim=16,seed=2', 100);
    expect(s).toMatchObject({ rows: 100, dim: 16 });
    expect(s.data.length).toBe(1600);
    const q = await loadVectors('synthetic:n=300,dim=16,seed=2,queries=7,part=queries');
    expect(q.rows).toBe(7);
    await expect(loadVectors('synthetic:n=300')).rejects.toThrow(/needs n= and dim=/);
    await expect(loadVectors('synthetic:n=30,dim=4,colour=red')).rejects.toThrow(/unknown key "colour"/);
    await expect(loadVectors('vectors.csv')).rejects.toThrow(/cannot tell the format of "vectors.csv"/);
    await expect(loadVectors('fashion-mnist:validation')).rejects.toThrow(/train or test/);
    await expect(loadIds('truth.txt')).rejects.toThrow(/cannot tell the format of ground truth/);
  });
});
