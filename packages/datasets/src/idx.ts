import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { VectorSet } from './types.js';

/** Where Debian's dataset-fashion-mnist package puts the files (ADANNS_FASHION_MNIST_DIR overrides). */
export const FASHION_MNIST_DIR = process.env.ADANNS_FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';

/** Reads an IDX file (optionally gzipped) of unsigned bytes: returns its shape and values. */
export function readIdx(path: string): { shape: number[]; values: Uint8Array } {
  let buf: Buffer = readFileSync(path);
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch (e) {
      throw new Error(`${path}: corrupt gzip data (${(e as Error).message})`);
    }
  }
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new Error(`${path}: not an IDX file (bad magic)`);
  if (buf[2] !== 0x08) throw new Error(`${path}: IDX element type 0x${buf[2].toString(16)} is not unsigned byte`);
  const rank = buf[3];
  if (buf.length < 4 + 4 * rank) throw new Error(`${path}: truncated IDX header`);
  const shape = Array.from({ length: rank }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const count = shape.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * rank;
  if (buf.length - start !== count) throw new Error(`${path}: truncated IDX data (${buf.length - start} bytes, shape ${shape.join('x')} needs ${count})`);
  return { shape, values: new Uint8Array(buf.subarray(start)) };
}

/** Fashion-MNIST images as 784-dimensional float32 vectors in [0, 1], with class labels. */
export function readFashionMnist(split: 'train' | 'test', dir = FASHION_MNIST_DIR): VectorSet {
  const prefix = split === 'train' ? 'train' : 't10k';
  const find = (kind: string): string => {
    for (const name of [`${prefix}-${kind}-ubyte.gz`, `${prefix}-${kind}-ubyte`]) if (existsSync(join(dir, name))) return join(dir, name);
    throw new Error(`Fashion-MNIST ${split} ${kind} not found in ${dir} (apt-get install dataset-fashion-mnist, or set ADANNS_FASHION_MNIST_DIR)`);
  };
  const images = readIdx(find('images-idx3'));
  const labels = readIdx(find('labels-idx1'));
  if (images.shape.length !== 3 || labels.shape.length !== 1 || labels.shape[0] !== images.shape[0]) {
    throw new Error(`Fashion-MNIST ${split}: image shape ${images.shape.join('x')} does not match label shape ${labels.shape.join('x')}`);
  }
  const [rows, h, w] = images.shape;
  const data = new Float32Array(images.values.length);
  for (let i = 0; i < data.length; i++) data[i] = images.values[i] / 255;
  return { name: `fashion-mnist-${split}`, data, rows, dim: h * w, labels: Int32Array.from(labels.values) };
}
