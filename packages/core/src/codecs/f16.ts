import { readHalves, writeHalves } from '@adanns/compute';
import type { ScanSpec } from '../spec.js';
import { FloatCodec } from './float-codec.js';
import { registerCodec } from './registry.js';

/**
 * float16 lists (2 bytes per value, half the float32 lists): values round to
 * the nearest half (relative error below 2^-11); magnitudes past 65504
 * saturate. Scans decode in the kernels (exact half to float32) and score as float32.
 */
export class F16Codec extends FloatCodec {
  readonly flopsPerValue = 2;
  protected readonly listEncoding = 'f16';

  constructor(spec: ScanSpec) {
    super(spec, 2);
  }

  protected encodeRow(src: Float32Array, from: number, out: Uint8Array, at: number): void {
    writeHalves(src, from, this.spec.dim, out, at);
  }

  decode(codes: Uint8Array, rows: number, dim: number, out: Float32Array): void {
    for (let r = 0; r < rows; r++) readHalves(codes, 2 * r * this.spec.dim, dim, out, r * dim);
  }
}

registerCodec({
  name: 'f16',
  token: 'f16@d',
  parse: (head) => (head === 'f16' ? {} : undefined),
  format: (spec) => `f16@${spec.dim}`,
  exact: false,
  sampleSize: () => 0,
  train: async ({ spec }) => new F16Codec(spec),
  load: ({ spec }) => new F16Codec(spec),
});
